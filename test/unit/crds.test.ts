import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { crdFiles } from "../../src/api/crd-files.ts";

describe("crds/", () => {
  it.each(Object.entries(crdFiles()))("%s is what `make crds` generates", (file, text) => {
    expect(readFileSync(join(import.meta.dirname, "../..", file), "utf8")).toBe(text);
  });
});
