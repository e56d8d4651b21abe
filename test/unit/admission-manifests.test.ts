import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  admissionFiles,
  mutatingWebhookConfiguration,
  podNodeAffinityPolicy,
  referencesLockstepExpression,
} from "../../src/api/admission-manifests.ts";

describe("deploy/ admission configuration", () => {
  it.each(Object.entries(admissionFiles()))("%s is what `make admission` generates", (file, text) => {
    expect(readFileSync(join(import.meta.dirname, "../..", file), "utf8")).toBe(text);
  });
});

describe("lockstep-pod-node-affinity", () => {
  type Policy = {
    kind: string;
    spec: {
      matchConstraints: { namespaceSelector: unknown };
      matchConditions: { expression: string }[];
    };
  };
  const policy = podNodeAffinityPolicy().find(
    (d) => (d as Policy).kind === "ValidatingAdmissionPolicy",
  ) as Policy;
  const webhook = (mutatingWebhookConfiguration() as { webhooks: { namespaceSelector: unknown }[] })
    .webhooks[0];

  it("checks exactly the pods the webhook guards: same namespaces, same references (not its in-use label clause)", () => {
    expect(policy.spec.matchConstraints.namespaceSelector).toEqual(webhook?.namespaceSelector);
    const condition = policy.spec.matchConditions[0]?.expression ?? "";
    expect(referencesLockstepExpression().startsWith(condition)).toBe(true);
    expect(condition).not.toContain("metadata.labels");
  });
});
