// Reads an OCI archive that `make image` wrote, and runs commands in its file system with runc, as a
// container runtime would: the layers unpacked in order, the image's user, environment and working
// directory, a read-only root. No container engine needed.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ImageConfig,
  ImageConfigSchema,
  IndexSchema,
  type Manifest,
  ManifestSchema,
  MEDIA_TYPES,
} from "../../scripts/image/oci.ts";
import { type ContainerResult, runcPath } from "./runc.ts";

export interface UnpackedImage {
  dir: string;
  manifest: Manifest;
  config: ImageConfig;
  /** Each layer's file list, as `tar -t` prints it, in layer order. */
  layerEntries: string[][];
  /** The layers unpacked in order: the container's root file system. */
  rootfs: string;
  remove: () => void;
}

function blob(dir: string, digest: string): string {
  return join(dir, "blobs", "sha256", digest.slice("sha256:".length));
}

/**
 * The manifest digest of `platform` in a layout whose index.json names one image: that manifest itself, or
 * an image index listing one per platform.
 */
export function platformManifestDigest(dir: string, platform = "amd64"): string {
  const top = IndexSchema.parse(JSON.parse(readFileSync(join(dir, "index.json"), "utf8"))).manifests[0];
  if (!top) throw new Error("index.json names no image");
  if (top.mediaType !== MEDIA_TYPES.index) return top.digest;
  const nested = IndexSchema.parse(JSON.parse(readFileSync(blob(dir, top.digest), "utf8")));
  const entry = nested.manifests.find((m) => m.platform?.architecture === platform);
  if (!entry) throw new Error(`the image index has no ${platform} manifest`);
  return entry.digest;
}

export function unpackImage(archive: string, platform = "amd64"): UnpackedImage {
  const dir = mkdtempSync(join(tmpdir(), "lockstep-image-test-"));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    execFileSync("tar", ["-xf", archive, "-C", dir]);
    const manifestDigest = platformManifestDigest(dir, platform);
    const manifest = ManifestSchema.parse(JSON.parse(readFileSync(blob(dir, manifestDigest), "utf8")));
    const config = ImageConfigSchema.parse(
      JSON.parse(readFileSync(blob(dir, manifest.config.digest), "utf8")),
    );
    const rootfs = join(dir, "bundle", "rootfs");
    mkdirSync(rootfs, { recursive: true });
    const layerEntries = manifest.layers.map((layer) => {
      // --same-owner/-p: the owners and modes the layer records, as a runtime unpacks them.
      execFileSync("tar", ["--same-owner", "-pxf", blob(dir, layer.digest), "-C", rootfs]);
      return execFileSync("tar", ["-tf", blob(dir, layer.digest)], { encoding: "utf8" })
        .trim()
        .split("\n");
    });
    return { dir, manifest, config, layerEntries, rootfs, remove };
  } catch (error) {
    remove();
    throw error;
  }
}

/** Runs `args` in the unpacked image as its config says (user, Env, WorkingDir), on a read-only root. */
export async function runInImage(image: UnpackedImage, args: readonly string[]): Promise<ContainerResult> {
  const runc = runcPath();
  const bundle = join(image.dir, "bundle");
  const id = `lockstep-image-${randomBytes(4).toString("hex")}`;
  rmSync(join(bundle, "config.json"), { force: true });
  execFileSync(runc, ["spec", "--bundle", bundle]);
  const spec = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
  const [uid, gid] = image.config.config.User.split(":").map(Number);
  spec.process.args = [...args];
  spec.process.terminal = false;
  spec.process.user = { uid, gid: gid ?? uid };
  spec.process.env = image.config.config.Env;
  spec.process.cwd = image.config.config.WorkingDir;
  spec.root.readonly = true;
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
  try {
    return await new Promise((resolve) => {
      execFile(runc, ["run", "--bundle", bundle, id], { timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ exitCode: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      });
    });
  } finally {
    try {
      execFileSync(runc, ["delete", "--force", id], { stdio: "ignore" });
    } catch {
      // already gone
    }
  }
}
