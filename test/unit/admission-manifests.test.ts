import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { admissionFiles } from "../../src/api/admission-manifests.ts";

describe("deploy/ admission configuration", () => {
  it.each(Object.entries(admissionFiles()))("%s is what `make admission` generates", (file, text) => {
    expect(readFileSync(join(import.meta.dirname, "../..", file), "utf8")).toBe(text);
  });
});
