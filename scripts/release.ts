// `make release VERSION=x.y.z`: what a release publishes, written into dist/release/ without a container
// engine or a registry (docs/adr/0063-release-artifacts.md):
//   lockstep-<version>.oci.tar   the image index for linux/amd64 and linux/arm64 (an OCI image layout),
//   install.yaml                 deploy/ in one file, the image pinned by the index's digest,
//   lockstep-<version>.tgz       the Helm chart (charts/lockstep), its values pinning the same digest,
//   crds/*.yaml                  the CRDs alone (for GitOps tools that apply them first),
//   sbom.spdx.json               what the image is made of (SPDX 2.3): Node, the npm packages, the .deb files,
//   lockstep-dev-cli-<version>.tgz  the CLI's npm package (`npm install -g` it; scripts/cli-package.ts),
//   SHA256SUMS                   `sha256sum -c` over every file above.
// Pushing the index to a registry keeps its digest (`skopeo copy --all oci-archive:... docker://...`),
// so install.yaml and the chart name exactly what was built here. Both come from src/manifests/, the
// source of deploy/ (docs/adr/0064-one-source-for-every-manifest.md).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import * as z from "zod";
import { CHART_DIR, chartFiles, installYaml } from "../src/manifests/files.ts";
import { pinnedValues } from "../src/manifests/workloads.ts";
import { packCliPackage } from "./cli-package.ts";
import { helmBinary } from "./helm.ts";
import {
  type BuiltImage,
  bootstrappedNodeDir,
  buildImage,
  IMAGE_REPOSITORY,
  PLATFORMS,
  type Platform,
} from "./image/build.ts";

const root = join(import.meta.dirname, "..");
export const RELEASE_DIR = join(root, "dist", "release");
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;

const DependencyMap = z.record(z.string(), z.string()).optional();
/** package-lock.json (lockfileVersion 3), the fields read here and in test/unit/package-lock.test.ts. */
export const LockSchema = z.object({
  lockfileVersion: z.number(),
  packages: z.record(
    z.string(),
    z.object({
      version: z.string().optional(),
      license: z.string().optional(),
      dev: z.boolean().optional(),
      link: z.boolean().optional(),
      dependencies: DependencyMap,
      devDependencies: DependencyMap,
      optionalDependencies: DependencyMap,
      bin: z.union([z.string(), z.record(z.string(), z.string())]).optional(),
      engines: z.record(z.string(), z.string()).optional(),
    }),
  ),
});

interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo: string;
  downloadLocation: "NOASSERTION";
  licenseConcluded: string;
  externalRefs: { referenceCategory: "PACKAGE-MANAGER"; referenceType: "purl"; referenceLocator: string }[];
}

/** An SPDX identifier from any text: letters, digits, `.` and `-` only. */
const spdxId = (text: string) => `SPDXRef-${text.replace(/[^A-Za-z0-9.-]/g, "-")}`;

const spdxPackage = (
  id: string,
  name: string,
  version: string,
  purl: string,
  license?: string,
): SpdxPackage => ({
  SPDXID: spdxId(id),
  name,
  versionInfo: version,
  downloadLocation: "NOASSERTION",
  licenseConcluded: license ?? "NOASSERTION",
  externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: purl }],
});

export interface SbomInput {
  version: string;
  /** package-lock.json's text: the production npm packages are its entries that are not dev-only. */
  lockText: string;
  nodeVersion: string;
  /** Per platform, the .deb files its layers were unpacked from (`name_version_arch.deb`). */
  debs: Partial<Record<Platform, readonly string[]>>;
  /** The SPDX document's creation time (fixed by the caller, so the same release gives the same bytes). */
  created: string;
}

/** The image's software bill of materials as an SPDX 2.3 document. Pure. */
export function imageSbom(input: SbomInput): object {
  const lock = LockSchema.parse(JSON.parse(input.lockText));
  const npm = Object.entries(lock.packages)
    .filter(([path, entry]) => path.startsWith("node_modules/") && !entry.dev && !entry.link)
    .map(([path, entry]) => {
      const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
      const version = entry.version ?? "NOASSERTION";
      return spdxPackage(
        `npm-${path}`,
        name,
        version,
        `pkg:npm/${name.replace("@", "%40")}@${version}`,
        entry.license,
      );
    });
  const debian = Object.entries(input.debs).flatMap(([platform, files]) =>
    [...new Set(files)].sort().map((file) => {
      const [name = file, version = "NOASSERTION", arch = PLATFORMS[platform as Platform].debianArch] =
        basename(file, ".deb").split("_");
      const debVersion = decodeURIComponent(version);
      return spdxPackage(
        `deb-${name}-${arch}`,
        name,
        debVersion,
        `pkg:deb/debian/${name}@${encodeURIComponent(debVersion)}?arch=${arch}&distro=bookworm`,
      );
    }),
  );
  const node = Object.keys(input.debs).map((platform) =>
    spdxPackage(
      `node-${platform}`,
      PLATFORMS[platform as Platform].nodePackage,
      input.nodeVersion,
      `pkg:npm/${PLATFORMS[platform as Platform].nodePackage}@${input.nodeVersion}`,
      "MIT",
    ),
  );
  const image = spdxPackage(
    "lockstep",
    "lockstep",
    input.version,
    `pkg:oci/lockstep?repository_url=${IMAGE_REPOSITORY}`,
  );
  const packages = [image, ...node, ...npm, ...debian];
  return {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: `lockstep-${input.version}`,
    documentNamespace: `https://lockstep.dev/spdx/lockstep-${input.version}`,
    creationInfo: { created: input.created, creators: ["Tool: lockstep make release (scripts/release.ts)"] },
    packages,
    relationships: [
      { spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: image.SPDXID },
      ...packages.slice(1).map((p) => ({
        spdxElementId: image.SPDXID,
        relationshipType: "CONTAINS",
        relatedSpdxElement: p.SPDXID,
      })),
    ],
  };
}

/** `sha256sum` output for `files` (relative to `dir`), as `sha256sum -c` reads it. */
export function checksums(dir: string, files: readonly string[]): string {
  return files
    .map(
      (file) =>
        `${createHash("sha256")
          .update(readFileSync(join(dir, file)))
          .digest("hex")}  ${file}\n`,
    )
    .join("");
}

/**
 * The chart at the release's values (the image pinned by `digest`), packaged by helm into `out`:
 * lockstep-<version>.tgz, which `helm install lockstep <file>` installs. Returns its file name.
 */
export function packageChart(out: string, version: string, digest: string, helm = helmBinary()): string {
  const dir = mkdtempSync(join(tmpdir(), "lockstep-chart-"));
  try {
    for (const [file, text] of Object.entries(chartFiles(version, pinnedValues(digest)))) {
      const path = join(dir, relative(CHART_DIR, file));
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    }
    execFileSync(helm, ["package", dir, "--destination", out], { encoding: "utf8" });
    return `lockstep-${version}.tgz`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes every release file into `out` from an image index already built; returns the files written. */
export function writeRelease(out: string, version: string, image: BuiltImage, helm?: string): string[] {
  mkdirSync(join(out, "crds"), { recursive: true });
  const archive = `lockstep-${version}.oci.tar`;
  copyFileSync(image.archive, join(out, archive));
  writeFileSync(join(out, "install.yaml"), installYaml(version, image.digest));
  const chart = packageChart(out, version, image.digest, helm);
  const crds = readdirSync(join(root, "crds"))
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  for (const crd of crds) copyFileSync(join(root, "crds", crd), join(out, "crds", crd));
  const nodeVersion =
    /^NODE_VERSION := (\S+)$/m.exec(readFileSync(join(root, "Makefile"), "utf8"))?.[1] ?? "";
  const sbom = imageSbom({
    version,
    lockText: readFileSync(join(root, "package-lock.json"), "utf8"),
    nodeVersion,
    debs: image.debs,
    // The commit's time, not the clock's: the same commit gives the same SBOM.
    created: new Date(
      Number(execFileSync("git", ["-C", root, "log", "-1", "--format=%ct"], { encoding: "utf8" }).trim()) *
        1000,
    )
      .toISOString()
      .replace(/\.\d{3}Z$/, "Z"),
  });
  writeFileSync(join(out, "sbom.spdx.json"), `${JSON.stringify(sbom, null, 2)}\n`);
  const cli = basename(packCliPackage(out));
  const files = [archive, "install.yaml", chart, ...crds.map((crd) => `crds/${crd}`), "sbom.spdx.json", cli];
  writeFileSync(join(out, "SHA256SUMS"), checksums(out, files));
  return [...files, "SHA256SUMS"];
}

if (import.meta.main) {
  const version = process.env.VERSION ?? "";
  const { version: packageVersion } = z
    .object({ version: z.string() })
    .parse(JSON.parse(readFileSync(join(root, "package.json"), "utf8")));
  if (!SEMVER.test(version))
    throw new Error(
      `VERSION=${version}: give the release's version, e.g. make release VERSION=${packageVersion}`,
    );
  if (version !== packageVersion)
    throw new Error(
      `VERSION=${version}, package.json says ${packageVersion}: the image is tagged with package.json's version; set it to ${version} in a commit first`,
    );
  const image = await buildImage({
    nodeDir: bootstrappedNodeDir(),
    archive: join(root, "build", `lockstep-${version}.oci.tar`),
    platforms: ["amd64", "arm64"],
    progress: (line) => process.stdout.write(`${line}\n`),
  });
  rmSync(RELEASE_DIR, { recursive: true, force: true });
  for (const file of writeRelease(RELEASE_DIR, version, image))
    process.stdout.write(`${relative(root, join(RELEASE_DIR, file))}\n`);
  process.stdout.write(`${image.reference}@${image.digest}\n`);
}
