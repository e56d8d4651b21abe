// package-lock.json is complete: `npm ci` (the Dockerfile, the release workflow) takes it as it is, and
// `make deps`' `npm install` on a fresh clone has nothing to add, so a checkout stays clean. The lock once
// lacked the @biomejs/cli-* builds for other platforms, which npm then added on every machine
// (issue 31, point 8).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import { LockSchema } from "../../scripts/release.ts";

const root = join(import.meta.dirname, "../..");
const lock = LockSchema.parse(JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")));
const PackageJsonSchema = z.object({
  name: z.string(),
  version: z.string(),
  dependencies: z.record(z.string(), z.string()),
  devDependencies: z.record(z.string(), z.string()),
  engines: z.record(z.string(), z.string()),
  bin: z.record(z.string(), z.string()),
});
const packageJson = PackageJsonSchema.parse(JSON.parse(readFileSync(join(root, "package.json"), "utf8")));

/** Where Node (and npm) find `dependency` from the package installed at `path`: its own node_modules, then each parent's. */
function resolvedEntry(path: string, dependency: string): string | undefined {
  let from = path;
  for (;;) {
    const candidate = `${from === "" ? "" : `${from}/`}node_modules/${dependency}`;
    if (lock.packages[candidate]) return candidate;
    if (from === "") return undefined;
    const parent = from.lastIndexOf("/node_modules/");
    from = parent === -1 ? "" : from.slice(0, parent);
  }
}

describe("package-lock.json", () => {
  it("is npm 7+'s format, and its root says what package.json says", () => {
    expect(lock.lockfileVersion).toBe(3);
    expect(lock.packages[""]).toMatchObject({
      version: packageJson.version,
      dependencies: packageJson.dependencies,
      devDependencies: packageJson.devDependencies,
      engines: packageJson.engines,
      bin: packageJson.bin,
    });
  });

  it("has an entry for every dependency of every package, optional platform builds included", () => {
    const missing = Object.entries(lock.packages).flatMap(([path, entry]) =>
      [
        ...Object.keys(entry.dependencies ?? {}),
        ...Object.keys(entry.optionalDependencies ?? {}),
        ...(path === "" ? Object.keys(entry.devDependencies ?? {}) : []),
      ]
        .filter((dependency) => resolvedEntry(path, dependency) === undefined)
        .map((dependency) => `${path || "(root)"} -> ${dependency}`),
    );
    expect(missing).toEqual([]);
    // The builds that were once missing: every platform biome ships a binary for.
    const biome = lock.packages["node_modules/@biomejs/biome"];
    expect(Object.keys(biome?.optionalDependencies ?? {}).length).toBeGreaterThanOrEqual(8);
  });
});
