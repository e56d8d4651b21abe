import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import * as z from "zod";

const deploy = join(import.meta.dirname, "../../deploy");

describe("deploy/kustomization.yaml", () => {
  // A manifest that is in deploy/ but not in the kustomization (the webhook's NetworkPolicy, say) is
  // silently not installed by `kubectl apply -k deploy/`.
  it("lists every manifest under deploy/, and only files that exist", () => {
    const { resources } = z
      .object({ resources: z.array(z.string()) })
      .parse(parse(readFileSync(join(deploy, "kustomization.yaml"), "utf8")));
    const files = readdirSync(deploy, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
      .sort();
    expect([...resources].sort()).toEqual(files);
    expect(resources).toContain("webhook/network-policy.yaml");
  });
});
