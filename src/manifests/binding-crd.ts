// The ProfileBinding CRD, from the constants and patterns ProfileBindingSchema (profile-binding.ts) uses,
// so the API server refuses what the webhook's schema would: `make crds` writes it, test/unit/crds.test.ts
// fails when it is stale, and test/integration/binding-crd-validation.test.ts holds the two together on a corpus on the real API server.

import {
  DNS_SUBDOMAIN_MAX,
  DNS_SUBDOMAIN_PATTERN,
  LABEL_NAME_MAX,
  LABEL_VALUE_PATTERN,
} from "../api/patterns.ts";
import {
  BINDING_LIMITS,
  IMAGE_PATTERN_ALPHABET,
  PROFILE_BINDING_KIND,
  PROFILE_BINDING_PLURAL,
  REFUSAL_REASONS,
  SELECTOR_OPERATORS,
} from "../api/profile-binding.ts";
import { MAX_SECCOMP_PROFILE_NAME } from "../api/seccomp.ts";
import { isLabelKeyCel, lockstepCrd } from "./crd.ts";

type Schema = Record<string, unknown>;

const labelValue: Schema = { type: "string", maxLength: LABEL_NAME_MAX, pattern: LABEL_VALUE_PATTERN };
const profileName = (maxLength: number, kind: string): Schema => ({
  type: "string",
  minLength: 1,
  maxLength,
  pattern: DNS_SUBDOMAIN_PATTERN,
  description: `The name of a ${kind}. A pod bound to one that does not exist or is being deleted is refused, as a pod naming it itself.`,
});

/** metav1.LabelSelector, bounded as ProfileBinding's and ProfileRecording's PodSelectorSchema is. */
export const podSelector: Schema = {
  type: "object",
  description:
    "Pods of this namespace whose labels match (metav1.LabelSelector). Absent or empty: every pod of the namespace.",
  properties: {
    matchLabels: {
      type: "object",
      maxProperties: BINDING_LIMITS.matchLabels,
      additionalProperties: labelValue,
      "x-kubernetes-validations": [
        {
          rule: `self.all(k, ${isLabelKeyCel("k")})`,
          message: "every key must be a valid label key ([prefix/]name)",
        },
      ],
    },
    matchExpressions: {
      type: "array",
      maxItems: BINDING_LIMITS.matchExpressions,
      items: {
        type: "object",
        required: ["key", "operator"],

        properties: {
          key: {
            type: "string",
            maxLength: 317,
            "x-kubernetes-validations": [
              { rule: isLabelKeyCel("self"), message: "must be a label key ([prefix/]name)" },
            ],
          },
          operator: { type: "string", enum: [...SELECTOR_OPERATORS] },
          values: { type: "array", maxItems: BINDING_LIMITS.expressionValues, items: labelValue },
        },
        "x-kubernetes-validations": [
          {
            rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
            message: "In and NotIn need values; Exists and DoesNotExist take none",
          },
        ],
      },
    },
  },
};

const spec: Schema = {
  type: "object",
  properties: {
    podSelector,
    image: {
      type: "string",
      minLength: 1,
      maxLength: BINDING_LIMITS.imagePatternChars,
      pattern: IMAGE_PATTERN_ALPHABET,
      description:
        "Containers whose image, as the pod writes it, matches this pattern; `*` matches any characters ('/' and ':' too). Absent: every container.",
    },
    seccompProfile: profileName(MAX_SECCOMP_PROFILE_NAME, "SeccompProfile"),
    appArmorProfile: profileName(DNS_SUBDOMAIN_MAX, "AppArmorProfile"),
    override: {
      type: "boolean",
      description:
        "Replace a profile the container or its pod sets itself. Refused in a namespace labelled lockstep.dev/profile-bindings=no-override.",
    },
  },
  "x-kubernetes-validations": [
    {
      rule: "has(self.seccompProfile) || has(self.appArmorProfile)",
      message: "must name a seccompProfile, an appArmorProfile or both",
    },
  ],
};

const status: Schema = {
  type: "object",
  description: "Written by the Lockstep webhook: what it did at pod CREATE.",
  properties: {
    boundPods: { type: "integer", minimum: 0, description: "Pods created with this binding applied" },
    refusedPods: { type: "integer", minimum: 0, description: "Pods refused because of this binding" },
    refusals: {
      type: "array",
      maxItems: BINDING_LIMITS.statusRefusals,
      description: "The last refusals, newest first",
      items: {
        type: "object",
        required: ["pod", "reason", "message", "time"],
        properties: {
          pod: { type: "string", maxLength: 512 },
          reason: { type: "string", enum: [...REFUSAL_REASONS] },
          message: { type: "string", maxLength: BINDING_LIMITS.statusMessageChars + 3 },
          time: { type: "string", format: "date-time" },
        },
      },
    },
    lastBoundPod: { type: "string", maxLength: 512 },
    lastBoundTime: { type: "string", format: "date-time" },
  },
};

export function profileBindingCrd() {
  return lockstepCrd({
    kind: PROFILE_BINDING_KIND,
    plural: PROFILE_BINDING_PLURAL,
    singular: "profilebinding",
    shortNames: ["pb"],
    // Namespaced: a binding acts on pods of its own namespace, and namespace owners may be granted it.
    scope: "Namespaced",
    printerColumns: [
      { name: "Image", type: "string", jsonPath: ".spec.image" },
      { name: "Seccomp", type: "string", jsonPath: ".spec.seccompProfile" },
      { name: "AppArmor", type: "string", jsonPath: ".spec.appArmorProfile" },
      { name: "Bound", type: "integer", jsonPath: ".status.boundPods" },
      { name: "Refused", type: "integer", jsonPath: ".status.refusedPods" },
      { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
    ],
    what: "Gives the selected containers of this namespace's pods a Lockstep profile at creation, without editing the pods (docs/adr/0036-profile-bindings.md).",
    metadata: { type: "object" },
    spec,
    status,
  });
}
