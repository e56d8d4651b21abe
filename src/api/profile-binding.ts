// ProfileBinding: give pods a Lockstep profile without editing them (docs/adr/0036-profile-bindings.md).
// A namespaced object selects pods of its own namespace by labels and containers by image (a glob with
// `*`), and names a SeccompProfile and/or an AppArmorProfile; the webhook writes them into the pod at
// CREATE (binding-match.ts decides, src/webhook/bind.ts applies). This module holds the names, the
// limits and the one zod schema; the CRD (binding-crd.ts) is built from the same constants.
import * as z from "zod";
import { isValidLabelKey } from "./common.ts";
import { API_VERSION, GROUP, VERSION } from "./constants.ts";
import { isValidLabelValue } from "./labels.ts";
import { DNS_SUBDOMAIN, DNS_SUBDOMAIN_MAX } from "./patterns.ts";
import { MAX_SECCOMP_PROFILE_NAME } from "./seccomp.ts";

export const PROFILE_BINDING_KIND = "ProfileBinding";
export const PROFILE_BINDING_PLURAL = "profilebindings";

/** The API path of every ProfileBinding (all namespaces), or of one. */
export function profileBindingPath(namespace?: string, name?: string): string {
  const base = `/apis/${GROUP}/${VERSION}`;
  if (namespace === undefined) return `${base}/${PROFILE_BINDING_PLURAL}`;
  const collection = `${base}/namespaces/${encodeURIComponent(namespace)}/${PROFILE_BINDING_PLURAL}`;
  return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
}

/**
 * The namespace label that lets bindings act there: the webhook sees every pod of a namespace that
 * carries it (and only then, ADR 0030: other pods never wait on Lockstep). `enabled`: bindings apply,
 * `override: true` included; `no-override`: bindings apply only to containers without a profile of
 * their own. A ProfileBinding is refused in a namespace without it (policy lockstep-profile-bindings).
 */
export const BINDINGS_NAMESPACE_LABEL = `${GROUP}/profile-bindings`;
export const BINDINGS_NAMESPACE_MODES = ["enabled", "no-override"] as const;
export type BindingsNamespaceMode = (typeof BINDINGS_NAMESPACE_MODES)[number];

/** The pod annotation naming the bindings the webhook applied (comma-separated, sorted). */
export const BOUND_BY_ANNOTATION = `${GROUP}/bound-by`;

/**
 * Bounds that keep a review's matching work small whatever a binding says (docs/adr/0036): the image
 * glob is matched in time linear in image and pattern (binding-match.ts), the selector is a handful of
 * map lookups.
 */
export const BINDING_LIMITS = {
  imagePatternChars: 256,
  matchLabels: 32,
  matchExpressions: 16,
  expressionValues: 64,
  /** Refusals kept in status, newest first. */
  statusRefusals: 10,
  /** Characters of a refusal's message kept in status. */
  statusMessageChars: 512,
} as const;

export const SELECTOR_OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"] as const;

const labelKey = z.string().refine(isValidLabelKey, "must be a label key ([prefix/]name)");
const labelValue = z.string().refine(isValidLabelValue, "must be a label value");

/** metav1.LabelSelector, bounded. */
export const PodSelectorSchema = z
  .object({
    matchLabels: z
      .record(labelKey, labelValue)
      .refine((m) => Object.keys(m).length <= BINDING_LIMITS.matchLabels, {
        message: `at most ${BINDING_LIMITS.matchLabels} entries`,
      })
      .optional(),
    matchExpressions: z
      .array(
        z
          .object({
            key: labelKey,
            operator: z.enum(SELECTOR_OPERATORS),
            values: z.array(labelValue).max(BINDING_LIMITS.expressionValues).optional(),
          })
          .superRefine((e, ctx) => {
            const needsValues = e.operator === "In" || e.operator === "NotIn";
            const count = e.values?.length ?? 0;
            if (needsValues && count === 0)
              ctx.addIssue({ code: "custom", path: ["values"], message: `${e.operator} needs values` });
            if (!needsValues && count > 0)
              ctx.addIssue({ code: "custom", path: ["values"], message: `${e.operator} takes no values` });
          }),
      )
      .max(BINDING_LIMITS.matchExpressions)
      .optional(),
  })
  .strict();
export type PodSelector = z.infer<typeof PodSelectorSchema>;

const profileName = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine(
      (n) => DNS_SUBDOMAIN.test(n),
      "must be a profile's name (lower-case letters, digits, '-' and '.')",
    );

/** An image glob: `*` matches any run of characters (`/` and `:` too); every other character itself. */
export const IMAGE_PATTERN_ALPHABET = "^[^\\s]+$";

export const ProfileBindingSpecSchema = z
  .object({
    /** Pods of the binding's namespace whose labels match; absent or empty: every pod there. */
    podSelector: PodSelectorSchema.optional(),
    /** Containers whose `image`, as the pod writes it, matches; absent: every container. */
    image: z
      .string()
      .min(1)
      .max(BINDING_LIMITS.imagePatternChars)
      .regex(new RegExp(IMAGE_PATTERN_ALPHABET), "must not contain white space")
      .optional(),
    seccompProfile: profileName(MAX_SECCOMP_PROFILE_NAME).optional(),
    appArmorProfile: profileName(DNS_SUBDOMAIN_MAX).optional(),
    /** Replace a profile the container (or its pod) sets itself; refused where the namespace forbids it. */
    override: z.boolean().optional(),
  })
  .strict()
  .refine((s) => s.seccompProfile !== undefined || s.appArmorProfile !== undefined, {
    message: "must name a seccompProfile, an appArmorProfile or both",
  });
export type ProfileBindingSpec = z.infer<typeof ProfileBindingSpecSchema>;

/** Why the webhook could not bind a pod (a pod refused because of this binding). */
export const REFUSAL_REASONS = ["ProfileMissing", "ProfileTerminating", "Conflict", "PodRefused"] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export const BindingRefusalSchema = z.object({
  /** namespace/name of the pod, or its generateName followed by `*` before the API server named it. */
  pod: z.string(),
  reason: z.enum(REFUSAL_REASONS),
  message: z.string(),
  time: z.string(),
});
export type BindingRefusal = z.infer<typeof BindingRefusalSchema>;

/** Written by the webhook (binding-status.ts): what it did with the binding at pod CREATE. */
export const ProfileBindingStatusSchema = z.object({
  /** Pods created with this binding applied (counted by the webhook replicas, each adding its own). */
  boundPods: z.number().int().nonnegative().optional(),
  /** Pods refused because of this binding (its profile missing, a conflict, ...). */
  refusedPods: z.number().int().nonnegative().optional(),
  /** The last few refusals, newest first. */
  refusals: z.array(BindingRefusalSchema).optional(),
  lastBoundPod: z.string().optional(),
  lastBoundTime: z.string().optional(),
});
export type ProfileBindingStatus = z.infer<typeof ProfileBindingStatusSchema>;

export const ProfileBindingSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(PROFILE_BINDING_KIND),
  metadata: z.looseObject({
    name: z.string().min(1),
    namespace: z.string().min(1),
    resourceVersion: z.string().optional(),
    deletionTimestamp: z.string().optional(),
  }),
  spec: ProfileBindingSpecSchema,
  status: ProfileBindingStatusSchema.optional(),
});
export type ProfileBinding = z.infer<typeof ProfileBindingSchema>;

/**
 * The webhook's route for pods of a namespace where bindings act, one per mode: the namespace label's
 * value reaches the webhook through the configuration entry that matched (its namespaceSelector), so
 * the webhook needs no watch on Namespaces.
 */
export const BINDINGS_WEBHOOK_PATHS: Readonly<Record<BindingsNamespaceMode, string>> = {
  enabled: "/bind/enabled",
  "no-override": "/bind/no-override",
};

/** The mode a route stands for, or undefined for any other path. */
export function bindingsModeOfPath(path: string): BindingsNamespaceMode | undefined {
  return BINDINGS_NAMESPACE_MODES.find((mode) => BINDINGS_WEBHOOK_PATHS[mode] === path);
}
