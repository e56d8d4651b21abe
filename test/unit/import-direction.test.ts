// Who may import whom among the folders that are not shipped code. scripts/ builds what is released (the
// image, the release files, helm): the test harness uses it to build what it runs, so test/ may import
// scripts/; never the other way, or a release would depend on the test harness. Shipped code (src/,
// node-agent/, but for their unit tests) imports neither.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "../..");

function tsFiles(dir: string): string[] {
  return readdirSync(join(repo, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(repo, dir, f));
}

/** Each file's imports that reach into one of `folders` (resolved against the file's own folder). */
function importsInto(files: string[], folders: string[]): string[] {
  return files.flatMap((file) =>
    [...readFileSync(file, "utf8").matchAll(/from "(\.{1,2}\/[^"]+)"/g)]
      .map((m) => relative(repo, join(file, "..", m[1] ?? "")))
      .filter((target) => folders.some((f) => target.startsWith(`${f}/`)))
      .map((target) => `${relative(repo, file)} -> ${target}`),
  );
}

describe("import direction", () => {
  it("scripts/ imports nothing from test/", () => {
    expect(importsInto(tsFiles("scripts"), ["test"])).toEqual([]);
  });

  it("shipped code (not its unit tests) imports nothing from scripts/, test/ or bench/", () => {
    const shipped = [...tsFiles("src"), ...tsFiles("node-agent")].filter((f) => !f.endsWith(".test.ts"));
    expect(importsInto(shipped, ["scripts", "test", "bench"])).toEqual([]);
  });
});
