// Schemas shared by both profile kinds: object metadata, status, node selectors, and the one way
// validation errors are turned into text a user can act on.

import * as z from "zod";
import { isValidLabelNamePart, isValidLabelValue } from "./labels.ts";
import { LIMITS } from "./limits.ts";
import { DNS_SUBDOMAIN, DNS_SUBDOMAIN_MAX, REVISION_PATTERN } from "./patterns.ts";

/**
 * An enum whose error names the rejected value and the allowed ones; zod's default message omits
 * the value, which makes "spec.syscalls[7].action" errors hard to fix in a long profile.
 */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T, what: string) {
  return z.enum(values, {
    error: (issue) => `unknown ${what} ${JSON.stringify(issue.input)}; expected one of ${values.join(", ")}`,
  });
}

/** A label key as the API server accepts it: `[prefix/]name`, prefix a DNS subdomain <= 253. */
export function isValidLabelKey(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash === -1) return isValidLabelNamePart(key);
  const prefix = key.slice(0, slash);
  return (
    prefix.length <= DNS_SUBDOMAIN_MAX &&
    DNS_SUBDOMAIN.test(prefix) &&
    isValidLabelNamePart(key.slice(slash + 1))
  );
}

/** Which nodes a profile goes to; the same matching as a pod's `spec.nodeSelector`. */
// Checked entry by entry rather than with a key schema: zod reports a bad record key only as
// "Invalid key in record", which does not say what is wrong with it.
export const NodeSelectorSchema = z.record(z.string(), z.string()).superRefine((selector, ctx) => {
  if (Object.keys(selector).length > LIMITS.nodeSelectorEntries)
    ctx.addIssue({ code: "custom", path: [], message: `at most ${LIMITS.nodeSelectorEntries} entries` });
  for (const [key, value] of Object.entries(selector)) {
    if (!isValidLabelKey(key))
      ctx.addIssue({ code: "custom", path: [key], message: `invalid label key ${JSON.stringify(key)}` });
    if (!isValidLabelValue(value))
      ctx.addIssue({ code: "custom", path: [key], message: `invalid label value ${JSON.stringify(value)}` });
  }
});
export type NodeSelector = z.infer<typeof NodeSelectorSchema>;

/**
 * The metadata fields Lockstep reads. Loose: the API server adds more (managedFields, ...) and
 * rejecting them would make every watch event fail to parse.
 */
export const ObjectMetaSchema = z.looseObject({
  name: z.string().min(1),
  uid: z.string().optional(),
  generation: z.number().int().optional(),
  resourceVersion: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMetaSchema>;

/** metav1.Condition's lengths, as Kubernetes declares them (the CRD's status schema says the same). */
export const CONDITION_LIMITS = { type: 316, reason: 1024, message: 32768 } as const;
export const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;

/** metav1.Condition. */
export const ConditionSchema = z.object({
  type: z.string().min(1).max(CONDITION_LIMITS.type),
  status: z.enum(CONDITION_STATUSES),
  observedGeneration: z.number().int().nonnegative().optional(),
  lastTransitionTime: z.string(),
  reason: z.string().max(CONDITION_LIMITS.reason),
  message: z.string().max(CONDITION_LIMITS.message),
});
export type Condition = z.infer<typeof ConditionSchema>;

export const PROFILE_PHASES = [
  "Pending",
  "Installing",
  "Installed",
  "Degraded",
  "Invalid",
  "Terminating",
] as const;
export const ProfilePhaseSchema = z.enum(PROFILE_PHASES);
export type ProfilePhase = z.infer<typeof ProfilePhaseSchema>;

/** Status lists at most this many missing nodes: a 5000-node cluster must not bloat the object. */
export const MAX_MISSING_NODES = 20;

/**
 * Status of either profile kind, written only by the controller from node labels. The CRD's status
 * schema (crd.ts) is written from the same constants; src/api/status-schema.test.ts holds the two to
 * the same fields and limits. Both kinds are
 * rolled out the same way, so they share one status type.
 */
export const ProfileStatusSchema = z.object({
  phase: ProfilePhaseSchema.optional(),
  observedGeneration: z.number().int().nonnegative().optional(),
  /** profileRevision's number for observedGeneration (node-profiles.ts): fixed for the generation. */
  revision: z.string().regex(new RegExp(REVISION_PATTERN)).optional(),
  /** The version label value nodes carry when they hold the current content. */
  version: z.string().optional(),
  /** What a pod writes in `localhostProfile` to use this profile. */
  localhostProfile: z.string().optional(),
  /** installed/desired, e.g. "2/3": what `kubectl get` prints in the READY column. */
  ready: z.string().optional(),
  nodes: z
    .object({
      installed: z.number().int().nonnegative(),
      desired: z.number().int().nonnegative(),
    })
    .optional(),
  missingNodes: z
    .array(z.object({ node: z.string(), reason: z.string() }))
    .max(MAX_MISSING_NODES)
    .optional(),
  conditions: z.array(ConditionSchema).optional(),
});
export type ProfileStatus = z.infer<typeof ProfileStatusSchema>;

/** `spec.syscalls[3].names[0]`: a zod path the way it is written in YAML-minded error messages. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else if (typeof part === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(part))
      text += text === "" ? part : `.${part}`;
    else text += `[${JSON.stringify(String(part))}]`;
  }
  return text;
}

/**
 * One line naming the object, each field and what is wrong, e.g.
 * `SeccompProfile "web": spec.syscalls[3].names[0]: unknown syscall "opn"`.
 * `root` is prepended to every path when only part of the object (say its spec) was parsed.
 */
export function formatZodIssues(
  kind: string,
  name: string,
  error: z.ZodError,
  root: readonly PropertyKey[] = [],
): string {
  const problems = error.issues.map((issue) => {
    const where = formatIssuePath([...root, ...issue.path]);
    return where === "" ? issue.message : `${where}: ${issue.message}`;
  });
  return `${kind} ${JSON.stringify(name)}: ${problems.join("; ")}`;
}

/** The result of parsing untrusted input at an edge: the value, or the message for the user. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** Parses a profile's spec, with the message the user sees (Event, condition, CLI) naming the object. */
export function parseSpec<S extends z.ZodType>(
  schema: S,
  kind: string,
  name: string,
  input: unknown,
): Parsed<z.infer<S>> {
  const result = schema.safeParse(input);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, message: formatZodIssues(kind, name, result.error, ["spec"]) };
}

/** Parses a whole object (as received from a watch or a file), naming it in the message. */
export function parseObject<S extends z.ZodType>(
  schema: S,
  kind: string,
  input: unknown,
): Parsed<z.infer<S>> {
  const result = schema.safeParse(input);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, message: formatZodIssues(kind, objectNameOf(input), result.error) };
}

/** Parses a JSON document of the agent's own (its record, its memo): bad JSON and a bad shape alike are a message. */
export function parseJsonDocument<S extends z.ZodType>(schema: S, text: string): Parsed<z.infer<S>> {
  try {
    const result = schema.safeParse(JSON.parse(text));
    return result.success
      ? { ok: true, value: result.data }
      : {
          ok: false,
          message: result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
        };
  } catch (error) {
    return { ok: false, message: String(error) };
  }
}

/** metadata.name of an object that may not have parsed, for naming it in the error. */
export function objectNameOf(input: unknown): string {
  const metadata = (input as { metadata?: { name?: unknown } } | null)?.metadata;
  return typeof metadata?.name === "string" ? metadata.name : "<unnamed>";
}
