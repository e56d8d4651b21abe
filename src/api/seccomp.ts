// The SeccompProfile API. The rule fields mirror the OCI runtime spec's `linux.seccomp`
// (config-linux.md#seccomp) field for field, so what a user writes is what runc enforces
// (DESIGN invariant 7). Docker's and podman's extensions (archMap, includes, excludes, ...) are refused
// with a pointer to `lockstep import`, which resolves them as the engine would (src/cli/seccomp/import.ts).

import * as z from "zod";
import {
  NodeSelectorSchema,
  ObjectMetaSchema,
  oneOf,
  type Parsed,
  ProfileStatusSchema,
  parseObject,
  parseSpec,
} from "./common.ts";
import { API_VERSION, RUNTIME_DEFAULT_PROFILE_NAME, SECCOMP_PROFILE_KIND } from "./constants.ts";
import { isValidProfileObjectName } from "./labels.ts";
import { LIMITS } from "./limits.ts";
import { isKnownSyscall, SCMP_ARCHES } from "./syscalls.ts";

export const SECCOMP_ACTIONS = [
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",
] as const;
export const SeccompActionSchema = oneOf(SECCOMP_ACTIONS, "action");
export type SeccompAction = z.infer<typeof SeccompActionSchema>;

// The OCI spec lets errnoRet modify only these two actions: ERRNO returns it, TRACE passes it to the tracer.
export const ERRNO_ACTIONS = ["SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"] as const satisfies readonly SeccompAction[];

export function actionTakesErrno(action: SeccompAction): boolean {
  return (ERRNO_ACTIONS as readonly SeccompAction[]).includes(action);
}

/** How every message about an errnoRet on an action that takes none words the rule (zod, CEL, the renderer). */
export const ERRNO_ACTIONS_PHRASE = `only allowed with ${ERRNO_ACTIONS.join(" or ")}`;

// The actions that let a call through: LOG allows it and writes an audit record.
const ALLOWING_ACTIONS: ReadonlySet<string> = new Set<SeccompAction>(["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"]);

/** Whether a rule (or a default action) with this action lets the call run. */
export function isAllowingAction(action: string): boolean {
  return ALLOWING_ACTIONS.has(action);
}

export const SECCOMP_OPERATORS = [
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
] as const;
export const SeccompOperatorSchema = oneOf(SECCOMP_OPERATORS, "operator");

export const SECCOMP_FLAGS = [
  "SECCOMP_FILTER_FLAG_TSYNC",
  "SECCOMP_FILTER_FLAG_LOG",
  "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
] as const;
export const SeccompFlagSchema = oneOf(SECCOMP_FLAGS, "flag");

export const SeccompArchSchema = oneOf(SCMP_ARCHES, "architecture");

// Argument values are uint64 in the OCI spec, but a JSON number read by JavaScript is exact only up
// to 2^53; a larger value would be silently rounded and compare against the wrong number.
export const ArgValueSchema = z
  .number()
  .int("must be an integer")
  .min(0, "must not be negative")
  .max(Number.MAX_SAFE_INTEGER, "must be at most 2^53-1 (larger values cannot be represented exactly)");

/**
 * The kernel's errno space ends at 4095 (MAX_ERRNO). 0 is allowed: it makes a denied call look
 * successful, which some profiles use on purpose.
 */
export const MAX_ERRNO = 4095;
/** A syscall has six arguments (seccomp_data.args), at positions 0..5; a rule compares each at most once. */
export const SYSCALL_ARGS = 6;

export const ErrnoSchema = z
  .number()
  .int("must be an integer")
  .min(0)
  .max(MAX_ERRNO, `must be at most ${MAX_ERRNO} (MAX_ERRNO)`);

/**
 * Fields of Docker's (moby profiles/seccomp) and podman's (containers/common pkg/seccomp) JSON that the
 * OCI format lacks. No runtime reads them, and an API server that prunes unknown fields would drop them
 * silently, so the profile would allow more than written: the CRD and the schemas refuse them by name.
 */
export const ENGINE_ONLY_PROFILE_FIELDS = { archMap: "array", defaultErrno: "string" } as const;
export const ENGINE_ONLY_RULE_FIELDS = {
  name: "string",
  includes: "object",
  excludes: "object",
  comment: "string",
  errno: "string",
} as const;
/** The JSON type each of those fields has in Docker's and podman's format. */
export type EngineFieldType = "array" | "object" | "string";

/** What the user reads when a profile carries Docker or podman fields: the one home of that message. */
export function engineFieldsMessage(fields: readonly string[]): string {
  const named = fields.map((field) => JSON.stringify(field)).join(", ");
  return `${named}: ${fields.length === 1 ? "a Docker/podman field" : "Docker/podman fields"} that no OCI runtime reads; \`lockstep import FILE\` turns a Docker or podman profile into the OCI rules that engine would enforce`;
}

/** An unrecognized-keys message that names the Docker/podman fields among the keys and points at import. */
function engineFieldsError(engineFields: Readonly<Record<string, EngineFieldType>>) {
  return (issue: z.core.$ZodRawIssue): string | undefined => {
    if (issue.code !== "unrecognized_keys") return undefined;
    const keys = issue.keys as string[];
    const engine = keys.filter((key) => Object.hasOwn(engineFields, key));
    if (engine.length === 0) return undefined;
    const others = keys.filter((key) => !Object.hasOwn(engineFields, key));
    return `${engineFieldsMessage(engine)}${others.length > 0 ? `; also unknown: ${others.join(", ")}` : ""}`;
  };
}

export const SeccompArgSchema = z.strictObject({
  index: z
    .number()
    .int()
    .min(0)
    .max(SYSCALL_ARGS - 1, `a syscall has ${SYSCALL_ARGS} arguments: index must be 0..${SYSCALL_ARGS - 1}`),
  value: ArgValueSchema,
  valueTwo: ArgValueSchema.optional(),
  op: SeccompOperatorSchema,
});
export type SeccompArg = z.infer<typeof SeccompArgSchema>;

const NOTIFY_UNSUPPORTED =
  "SCMP_ACT_NOTIFY needs a seccomp notify listener (listenerPath) and Lockstep runs none; use SCMP_ACT_ERRNO, SCMP_ACT_LOG or a kill action";

const SyscallNameSchema = z
  .string()
  .refine(isKnownSyscall, { error: (issue) => `unknown syscall ${JSON.stringify(issue.input)}` });

const SeccompSyscallFields = z.strictObject(
  {
    names: z
      .array(SyscallNameSchema)
      .min(1, "must list at least one syscall")
      .max(LIMITS.namesPerRule, `at most ${LIMITS.namesPerRule} names`),
    action: SeccompActionSchema,
    errnoRet: ErrnoSchema.optional(),
    args: z
      .array(SeccompArgSchema)
      .max(SYSCALL_ARGS, `at most ${SYSCALL_ARGS} argument conditions`)
      .optional(),
  },
  { error: engineFieldsError(ENGINE_ONLY_RULE_FIELDS) },
);

function checkErrnoRet(rule: { action: SeccompAction; errnoRet?: number | undefined }, ctx: z.RefinementCtx) {
  if (rule.errnoRet !== undefined && !actionTakesErrno(rule.action))
    ctx.addIssue({
      code: "custom",
      path: ["errnoRet"],
      message: `errnoRet is ${ERRNO_ACTIONS_PHRASE}, not ${rule.action}`,
    });
}

/** One `linux.seccomp.syscalls[]` rule as Lockstep installs it. */
export const SeccompSyscallSchema = SeccompSyscallFields.superRefine((rule, ctx) => {
  if (rule.action === "SCMP_ACT_NOTIFY")
    ctx.addIssue({ code: "custom", path: ["action"], message: NOTIFY_UNSUPPORTED });
  checkErrnoRet(rule, ctx);
});
export type SeccompSyscall = z.infer<typeof SeccompSyscallSchema>;

/**
 * A complete `linux.seccomp` object without the notify-listener fields: what the renderer produces
 * and what the built-in runtime/default is.
 */
export const LinuxSeccompSchema = z.strictObject({
  defaultAction: SeccompActionSchema,
  defaultErrnoRet: ErrnoSchema.optional(),
  architectures: z.array(SeccompArchSchema).optional(),
  flags: z.array(SeccompFlagSchema).optional(),
  syscalls: z.array(SeccompSyscallSchema),
});
export type LinuxSeccomp = z.infer<typeof LinuxSeccompSchema>;

/**
 * `linux.seccomp` as the OCI runtime spec allows it: syscalls optional, notify actions and the listener
 * fields included. What lint, diff and convert read from a plain JSON file.
 */
export const OciSeccompSchema = z.strictObject(
  {
    ...LinuxSeccompSchema.shape,
    listenerPath: z.string().optional(),
    listenerMetadata: z.string().optional(),
    syscalls: z.array(SeccompSyscallFields.superRefine(checkErrnoRet)).optional(),
  },
  { error: engineFieldsError(ENGINE_ONLY_PROFILE_FIELDS) },
);
export type OciSeccomp = z.infer<typeof OciSeccompSchema>;

/** `runtime/default` or the name of another SeccompProfile. */
const BaseProfileNameSchema = z
  .string()
  .refine((name) => name === RUNTIME_DEFAULT_PROFILE_NAME || isValidProfileObjectName(name), {
    error: (issue) =>
      `invalid base profile ${JSON.stringify(issue.input)}: must be "${RUNTIME_DEFAULT_PROFILE_NAME}" or the name of a SeccompProfile`,
  });

export const SeccompProfileSpecSchema = z
  .strictObject(
    {
      baseProfileName: BaseProfileNameSchema.optional(),
      defaultAction: SeccompActionSchema.optional(),
      defaultErrnoRet: ErrnoSchema.optional(),
      architectures: z.array(SeccompArchSchema).max(LIMITS.architectures).optional(),
      flags: z.array(SeccompFlagSchema).optional(),
      syscalls: z
        .array(SeccompSyscallSchema)
        .max(LIMITS.syscallRules, `at most ${LIMITS.syscallRules} rules: merge rules with the same action`)
        .optional(),
      nodeSelector: NodeSelectorSchema.optional(),
      /** Remove the profile from every node (pods that need it stay pending) without deleting it. */
      disabled: z.boolean().optional(),
    },
    { error: engineFieldsError(ENGINE_ONLY_PROFILE_FIELDS) },
  )
  .superRefine((spec, ctx) => {
    const rules = spec.syscalls ?? [];
    if (rules.reduce((n, rule) => n + rule.names.length, 0) > LIMITS.syscallNamesTotal)
      ctx.addIssue({
        code: "custom",
        path: ["syscalls"],
        message: `at most ${LIMITS.syscallNamesTotal} syscall names in all rules together: merge rules with the same action, or split the profile with baseProfileName`,
      });
    if (rules.reduce((n, rule) => n + (rule.args?.length ?? 0), 0) > LIMITS.syscallArgsTotal)
      ctx.addIssue({
        code: "custom",
        path: ["syscalls"],
        message: `at most ${LIMITS.syscallArgsTotal} argument conditions in all rules together`,
      });
    if (spec.defaultAction === undefined && spec.baseProfileName === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["defaultAction"],
        message: `required unless baseProfileName is set (for example "${RUNTIME_DEFAULT_PROFILE_NAME}")`,
      });
    if (spec.defaultAction === "SCMP_ACT_NOTIFY")
      ctx.addIssue({ code: "custom", path: ["defaultAction"], message: NOTIFY_UNSUPPORTED });
    // With no defaultAction of its own the inherited one decides; the resolver checks that case.
    if (
      spec.defaultErrnoRet !== undefined &&
      spec.defaultAction !== undefined &&
      !actionTakesErrno(spec.defaultAction)
    )
      ctx.addIssue({
        code: "custom",
        path: ["defaultErrnoRet"],
        message: `defaultErrnoRet is only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${spec.defaultAction}`,
      });
  });
export type SeccompProfileSpec = z.infer<typeof SeccompProfileSpecSchema>;

export const SeccompProfileStatusSchema = ProfileStatusSchema;
export type SeccompProfileStatus = z.infer<typeof SeccompProfileStatusSchema>;

/** "<name>.json" must fit in a file name (NAME_MAX, 255 bytes); the CRD caps metadata.name the same way. */
export const MAX_SECCOMP_PROFILE_NAME = 250;

export const SeccompProfileSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(SECCOMP_PROFILE_KIND),
  metadata: ObjectMetaSchema.extend({
    name: z
      .string()
      .min(1)
      .max(
        MAX_SECCOMP_PROFILE_NAME,
        `at most ${MAX_SECCOMP_PROFILE_NAME} characters, so that <name>.json fits in a file name`,
      ),
  }),
  spec: SeccompProfileSpecSchema,
  status: SeccompProfileStatusSchema.optional(),
});
export type SeccompProfile = z.infer<typeof SeccompProfileSchema>;

/** Parse one profile's spec, with the error message the user sees (Event, condition, CLI). */
export function parseSeccompProfileSpec(name: string, input: unknown): Parsed<SeccompProfileSpec> {
  return parseSpec(SeccompProfileSpecSchema, SECCOMP_PROFILE_KIND, name, input);
}

/** Parse a whole object (as received from a watch). */
export function parseSeccompProfile(input: unknown): Parsed<SeccompProfile> {
  return parseObject(SeccompProfileSchema, SECCOMP_PROFILE_KIND, input);
}
