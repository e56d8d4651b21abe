// The SeccompProfile API. The rule fields mirror the OCI runtime spec's `linux.seccomp`
// (config-linux.md#seccomp) field for field, so what a user writes is what runc enforces
// (DESIGN invariant 7); Docker's extensions (archMap, includes, excludes, comment) are rejected.

import * as z from "zod";
import {
  formatZodIssues,
  NodeSelectorSchema,
  ObjectMetaSchema,
  objectNameOf,
  oneOf,
  type Parsed,
  ProfileStatusSchema,
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
const ERRNO_ACTIONS: ReadonlySet<SeccompAction> = new Set(["SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"]);

export function actionTakesErrno(action: SeccompAction): boolean {
  return ERRNO_ACTIONS.has(action);
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
const ArgValueSchema = z
  .number()
  .int("must be an integer")
  .min(0, "must not be negative")
  .max(Number.MAX_SAFE_INTEGER, "must be at most 2^53-1 (larger values cannot be represented exactly)");

// The kernel's errno space ends at 4095 (MAX_ERRNO). 0 is allowed: it makes a denied call look
// successful, which some profiles use on purpose.
const ErrnoSchema = z.number().int("must be an integer").min(0).max(4095, "must be at most 4095 (MAX_ERRNO)");

export const SeccompArgSchema = z.strictObject({
  index: z.number().int().min(0).max(5, "a syscall has 6 arguments: index must be 0..5"),
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

/** One `linux.seccomp.syscalls[]` rule. */
export const SeccompSyscallSchema = z
  .strictObject({
    names: z
      .array(SyscallNameSchema)
      .min(1, "must list at least one syscall")
      .max(LIMITS.namesPerRule, `at most ${LIMITS.namesPerRule} names`),
    action: SeccompActionSchema,
    errnoRet: ErrnoSchema.optional(),
    args: z.array(SeccompArgSchema).max(6, "at most 6 argument conditions").optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.action === "SCMP_ACT_NOTIFY")
      ctx.addIssue({ code: "custom", path: ["action"], message: NOTIFY_UNSUPPORTED });
    if (rule.errnoRet !== undefined && !actionTakesErrno(rule.action))
      ctx.addIssue({
        code: "custom",
        path: ["errnoRet"],
        message: `errnoRet is only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${rule.action}`,
      });
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

/** `runtime/default` or the name of another SeccompProfile. */
const BaseProfileNameSchema = z
  .string()
  .refine((name) => name === RUNTIME_DEFAULT_PROFILE_NAME || isValidProfileObjectName(name), {
    error: (issue) =>
      `invalid base profile ${JSON.stringify(issue.input)}: must be "${RUNTIME_DEFAULT_PROFILE_NAME}" or the name of a SeccompProfile`,
  });

export const SeccompProfileSpecSchema = z
  .strictObject({
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
  })
  .superRefine((spec, ctx) => {
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
  const result = SeccompProfileSpecSchema.safeParse(input);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, message: formatZodIssues(SECCOMP_PROFILE_KIND, name, result.error, ["spec"]) };
}

/** Parse a whole object (as received from a watch). */
export function parseSeccompProfile(input: unknown): Parsed<SeccompProfile> {
  const result = SeccompProfileSchema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, message: formatZodIssues(SECCOMP_PROFILE_KIND, objectNameOf(input), result.error) };
}
