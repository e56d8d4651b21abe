import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  admissionFiles,
  mutatingWebhookConfiguration,
  podNodeAffinityPolicy,
  referencesLockstepExpression,
} from "../../src/api/admission-manifests.ts";
import { BINDINGS_NAMESPACE_LABEL, BINDINGS_NAMESPACE_MODES } from "../../src/api/profile-binding.ts";

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
  type Selector = { matchExpressions: { key: string; operator: string; values: string[] }[] };
  const webhooks = (mutatingWebhookConfiguration() as { webhooks: { namespaceSelector: Selector }[] })
    .webhooks;

  it("checks exactly the pods the webhook guards: same namespaces, same references (not its in-use label clause)", () => {
    // The webhook's entries split those namespaces by the bindings label: NotIn every mode (pods that
    // name a profile), then In each mode (every pod); the policy checks all of them.
    const policySelector = policy.spec.matchConstraints.namespaceSelector as Selector;
    const split = webhooks.map((w) => {
      const [first, ...rest] = w.namespaceSelector.matchExpressions;
      expect({ matchExpressions: [first] }).toEqual(policySelector);
      expect(rest).toHaveLength(1);
      return rest[0];
    });
    expect(split[0]).toEqual({
      key: BINDINGS_NAMESPACE_LABEL,
      operator: "NotIn",
      values: [...BINDINGS_NAMESPACE_MODES],
    });
    expect(split.slice(1)).toEqual(
      BINDINGS_NAMESPACE_MODES.map((mode) => ({
        key: BINDINGS_NAMESPACE_LABEL,
        operator: "In",
        values: [mode],
      })),
    );
    const condition = policy.spec.matchConditions[0]?.expression ?? "";
    expect(referencesLockstepExpression().startsWith(condition)).toBe(true);
    expect(condition).not.toContain("metadata.labels");
  });
});
