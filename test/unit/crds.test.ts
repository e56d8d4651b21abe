import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import * as z from "zod";
import { CRD_FOLDERS, crdFiles } from "../../src/manifests/crd-files.ts";

const root = join(import.meta.dirname, "../..");

describe("crds/", () => {
  it.each(Object.entries(crdFiles()))("%s is what `make manifests` generates", (file, text) => {
    expect(readFileSync(join(root, file), "utf8")).toBe(text);
  });

  // `kubectl apply -f crds/` reads every .yaml, .yml and .json file of the folder: anything else there
  // (a kustomization.yaml was) fails the command as people type it.
  it("holds nothing but the CustomResourceDefinitions, so `kubectl apply -f crds/` applies as typed", () => {
    const files = readdirSync(join(root, "crds")).sort();
    expect(files.map((file) => `crds/${file}`)).toEqual(
      Object.keys(crdFiles())
        .filter((f) => f.startsWith("crds/"))
        .sort(),
    );
    for (const file of files)
      for (const doc of parseAllDocuments(readFileSync(join(root, "crds", file), "utf8")))
        expect(doc.toJS()?.kind, file).toBe("CustomResourceDefinition");
  });

  it("reaches deploy/ through its own copy, since kustomize reads no file outside deploy/", () => {
    const { resources } = z
      .object({ resources: z.array(z.string()) })
      .parse(parse(readFileSync(join(root, "deploy/kustomization.yaml"), "utf8")));
    for (const resource of resources) expect(resource, "a file outside deploy/").not.toMatch(/^\.\.|^\//);
    const copies = Object.keys(crdFiles()).filter((file) => file.startsWith(`${CRD_FOLDERS[1]}/`));
    expect(
      resources
        .filter((r) => r.startsWith("crds/"))
        .map((r) => `deploy/${r}`)
        .sort(),
    ).toEqual(copies.sort());
  });
});
