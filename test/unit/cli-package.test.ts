// The CLI package's manifest and launcher, from the repository's (scripts/cli-package.ts).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CLI_PACKAGE_NAME, cliPackageManifest, packagedLauncher } from "../../scripts/cli-package.ts";

const root = join(import.meta.dirname, "../..");

describe("cliPackageManifest", () => {
  it("takes version, engines and licence from the repository's package.json and depends on nothing", () => {
    const rootPackage = {
      name: "lockstep",
      version: "1.2.3",
      description: "Distributes profiles",
      license: "Apache-2.0",
      engines: { node: ">=22.19.0" },
      bin: { lockstep: "bin/lockstep.js" },
      dependencies: { pino: "^10.0.0" },
    };
    const manifest = cliPackageManifest(JSON.stringify(rootPackage));
    expect(manifest).toMatchObject({
      name: CLI_PACKAGE_NAME,
      version: "1.2.3",
      license: "Apache-2.0",
      engines: { node: ">=22.19.0" },
      bin: { lockstep: "bin/lockstep.js" },
      files: ["bin/", "lib/"],
    });
    expect(manifest).not.toHaveProperty("dependencies");
  });

  it("refuses a package.json whose launcher is elsewhere", () => {
    expect(() =>
      cliPackageManifest(
        JSON.stringify({
          version: "1.0.0",
          description: "x",
          license: "MIT",
          engines: { node: ">=22" },
          bin: { lockstep: "cli.js" },
        }),
      ),
    ).toThrow(/bin/);
  });
});

describe("packagedLauncher", () => {
  it("points the repository's launcher at the bundle and changes nothing else", () => {
    const launcher = readFileSync(join(root, "bin/lockstep.js"), "utf8");
    const packaged = packagedLauncher(launcher);
    expect(packaged).toContain('import("../lib/lockstep.mjs")');
    expect(packaged).not.toContain("src/cli/main.ts");
    expect(packaged.replace('import("../lib/lockstep.mjs")', 'import("../src/cli/main.ts")')).toBe(launcher);
  });

  it("fails when the launcher no longer names the source exactly once", () => {
    expect(() => packagedLauncher("#!/usr/bin/env node\n")).toThrow(/exactly once, found it 0 times/);
  });
});
