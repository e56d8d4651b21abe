// The two container images a real test node needs, written as one OCI image-layout archive without
// any registry: the pod sandbox's pause program (tools/node/pause.c, built with `gcc -static`) and a
// busybox image from Debian's busybox-static. Nodes import the archive with
// `ctr -n k8s.io images import`, and pods name the images with `imagePullPolicy: Never`, so no node
// ever tries to pull from the network.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

const repo = join(import.meta.dirname, "../..");

/** The pod sandbox image containerd's CRI pins (its `pinned_images.sandbox`). */
export const PAUSE_IMAGE = "lockstep.test/pause:1";
/** A busybox image whose /bin holds every applet as a symlink, so `sh -c` works. */
export const BUSYBOX_IMAGE = "lockstep.test/busybox:1";

export const BUSYBOX_BINARY = "/usr/bin/busybox";
const PAUSE_SOURCE = join(repo, "tools/node/pause.c");
const MEDIA = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** Stores `content` as a blob of the layout and returns its descriptor. */
function writeBlob(layout: string, mediaType: string, content: Buffer): Descriptor {
  const hex = createHash("sha256").update(content).digest("hex");
  writeFileSync(join(layout, "blobs", "sha256", hex), content);
  return { mediaType, digest: `sha256:${hex}`, size: content.length };
}

/** One uncompressed layer from a folder, with fixed owners and times so the same input gives the same digest. */
function layerFrom(rootfs: string, tarPath: string): Buffer {
  execFileSync("tar", [
    "--sort=name",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--mtime=@0",
    "-C",
    rootfs,
    "-cf",
    tarPath,
    ".",
  ]);
  return readFileSync(tarPath);
}

function imageManifest(
  layout: string,
  name: string,
  rootfs: string,
  config: Record<string, unknown>,
): Descriptor {
  const layer = writeBlob(layout, MEDIA.layer, layerFrom(rootfs, `${rootfs}.tar`));
  const configBlob = writeBlob(
    layout,
    MEDIA.config,
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config,
        rootfs: { type: "layers", diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = writeBlob(
    layout,
    MEDIA.manifest,
    Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.manifest, config: configBlob, layers: [layer] }),
    ),
  );
  // containerd's importer names the image after this annotation.
  return { ...manifest, annotations: { "io.containerd.image.name": name } };
}

function requireCommand(path: string, installLine: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${installLine}`);
}

/**
 * Writes the archive holding PAUSE_IMAGE and BUSYBOX_IMAGE into `dir` (once; later calls reuse it)
 * and returns its path.
 */
export function buildNodeImages(dir: string): string {
  const archive = join(dir, "images.oci.tar");
  if (existsSync(archive)) return archive;
  requireCommand(BUSYBOX_BINARY, "apt-get install busybox-static");
  requireCommand("/usr/bin/gcc", "apt-get install gcc libc6-dev");
  const work = join(dir, "images");
  const layout = join(work, "layout");
  mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });

  const pauseRoot = join(work, "pause");
  mkdirSync(pauseRoot, { recursive: true });
  execFileSync("gcc", ["-static", "-O2", "-o", join(pauseRoot, "pause"), PAUSE_SOURCE]);

  const busyboxRoot = join(work, "busybox");
  for (const sub of ["bin", "tmp", "etc", "www"]) mkdirSync(join(busyboxRoot, sub), { recursive: true });
  // The page examples/deployment.yaml's httpd serves from /www (make demo runs it on its AppArmor node).
  writeFileSync(join(busyboxRoot, "www", "index.html"), "<p>served under Lockstep's web-readonly</p>\n");
  copyFileSync(BUSYBOX_BINARY, join(busyboxRoot, "bin", "busybox"));
  const applets = execFileSync(BUSYBOX_BINARY, ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const applet of applets)
    if (applet !== "busybox") symlinkSync("busybox", join(busyboxRoot, "bin", applet));

  const manifests = [
    imageManifest(layout, PAUSE_IMAGE, pauseRoot, { Entrypoint: ["/pause"] }),
    imageManifest(layout, BUSYBOX_IMAGE, busyboxRoot, { Env: ["PATH=/bin"], Cmd: ["sh"] }),
  ];
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(layout, "index.json"),
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests }),
  );
  execFileSync("tar", ["-C", layout, "-cf", `${archive}.tmp`, "."]);
  renameSync(`${archive}.tmp`, archive);
  return archive;
}
