// What lint reports, for profiles of either kind: a finding names its rule, its severity, where in
// the profile it is, what is wrong and how to fix it (in words, and as a JSON Patch where the change is
// mechanical), so people and programs (CI annotations, SARIF, editors) read the same thing.

export type Severity = "error" | "warning";

export const SECCOMP_LINT_RULES = [
  "unknown-syscall",
  "dangerous-syscall",
  "namespace-creation",
  "personality-unfiltered",
  "socket-family",
  "default-allow",
  "never-matches",
  "condition-always-true",
  "conditions-ored",
  "conditions-overlap",
  "masked-bits-ignored",
] as const;
/** What lint checks in an AppArmorProfile's structured form; its policy text is judged by apparmor_parser on the node. */
export const APPARMOR_LINT_RULES = ["apparmor-complain-mode", "apparmor-host-capability"] as const;
export const ALL_LINT_RULES = [...SECCOMP_LINT_RULES, ...APPARMOR_LINT_RULES] as const;
export type LintRule = (typeof ALL_LINT_RULES)[number];

/** What a fix does, as a code a program can branch on. */
export const FIX_ACTIONS = [
  "remove-syscall",
  "deny-syscall",
  "restrict-arguments",
  "return-enosys",
  "deny-by-default",
  "remove-rule",
  "remove-condition",
  "split-rule",
  "make-conditions-exclusive",
  "clear-masked-bits",
  "enforce-mode",
  "remove-capability",
] as const;
export type FixAction = (typeof FIX_ACTIONS)[number];

/**
 * One RFC 6902 JSON Patch operation on the profile's rules as the finding saw them (`path` is a JSON
 * Pointer into the linted object: `/syscalls/2/names/0`; the CLI prefixes `/spec` for a SeccompProfile).
 */
export interface PatchOperation {
  op: "add" | "remove" | "replace";
  path: string;
  value?: unknown;
}

/**
 * How to resolve a finding: `action` says what kind of change, `description` says it in words, and
 * `patch` carries it out where it is mechanical (applied alone, to the profile as written); it is empty
 * where the change needs the author's judgement (which conditions to keep, which rule should win).
 */
export interface Fix {
  action: FixAction;
  description: string;
  patch: PatchOperation[];
}

export interface Finding {
  rule: LintRule;
  severity: Severity;
  /** Where in the profile, e.g. `syscalls[2].names[0]`. */
  path: string;
  message: string;
  fix: Fix;
}

/** One sentence per rule, for SARIF's rule list and other tools' rule pickers. */
export const RULE_SUMMARIES: Readonly<Record<LintRule, string>> = {
  "unknown-syscall": "A syscall name libseccomp does not know; the runtime silently skips it.",
  "dangerous-syscall":
    "Allows a call that reaches the host: kernel code, mounts, other processes, the keyring.",
  "namespace-creation": "Lets the container create or join namespaces (unshare, setns, clone flags, clone3).",
  "personality-unfiltered": "Allows personality with any persona.",
  "socket-family": "Allows socket for AF_VSOCK, which reaches the hypervisor host.",
  "default-allow": "The default action allows every call no rule names.",
  "never-matches": "A rule, or a name in it, that never decides a call.",
  "condition-always-true": "A SCMP_CMP_MASKED_EQ condition with mask 0 filters nothing.",
  "conditions-ored": "A rule testing one argument more than once: runc ORs its conditions.",
  "conditions-overlap": "Conditional rules with different actions that one call meets together.",
  "masked-bits-ignored": "A SCMP_CMP_MASKED_EQ valueTwo with bits outside the mask, which libseccomp drops.",
  "apparmor-complain-mode": "An AppArmor profile in complain mode denies nothing.",
  "apparmor-host-capability": "An AppArmor profile allows a capability that reaches the host.",
};
