// Findings about a seccomp profile that a reviewer should see before it reaches a cluster: allowances
// that undo container isolation, names no kernel knows, and rules that can never match. Pure; the CLI
// prints them and turns them into an exit code.
import type { LinuxSeccomp, SeccompSyscall } from "./seccomp.ts";
import { isKnownSyscall } from "./syscalls.ts";

export type Severity = "error" | "warning";

export interface Finding {
  rule: string;
  severity: Severity;
  /** Where in the profile, e.g. `syscalls[2].names[0]`. */
  path: string;
  message: string;
}

const ALLOWING = new Set(["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"]);

/** Calls that give a container the host: kernel code, mounts, other processes, the kernel keyring. */
const DANGEROUS: Readonly<Record<string, string>> = {
  bpf: "loads programs into the kernel",
  mount: "mounts file systems",
  umount2: "unmounts file systems",
  fsopen: "mounts file systems (new mount API)",
  fsmount: "mounts file systems (new mount API)",
  fsconfig: "configures mounts (new mount API)",
  fspick: "reconfigures mounts (new mount API)",
  move_mount: "moves mounts",
  open_tree: "clones mount trees",
  ptrace: "inspects and controls other processes",
  kexec_load: "replaces the running kernel",
  kexec_file_load: "replaces the running kernel",
  init_module: "loads kernel modules",
  finit_module: "loads kernel modules",
  delete_module: "unloads kernel modules",
  keyctl: "reaches the kernel keyring, which is not namespaced",
  add_key: "reaches the kernel keyring, which is not namespaced",
  request_key: "reaches the kernel keyring, which is not namespaced",
  userfaultfd: "is a common kernel-exploit primitive",
};

/** Namespace creation: without argument filters a container can build new namespaces (and escalate in them). */
const NAMESPACE_CREATION = new Set(["unshare", "setns"]);

const AF_VSOCK = 40;

function allowedWithoutArgs(rule: SeccompSyscall): boolean {
  return ALLOWING.has(rule.action) && (rule.args === undefined || rule.args.length === 0);
}

export function lintSeccomp(seccomp: LinuxSeccomp): Finding[] {
  const findings: Finding[] = [];
  const add = (rule: string, severity: Severity, path: string, message: string) =>
    findings.push({ rule, severity, path, message });
  const unconditional = new Map<string, number>();

  seccomp.syscalls.forEach((rule, r) => {
    rule.names.forEach((name, n) => {
      const path = `syscalls[${r}].names[${n}]`;
      if (!isKnownSyscall(name))
        add("unknown-syscall", "error", path, `unknown syscall "${name}": no supported kernel has it`);
      if (!ALLOWING.has(rule.action)) return;
      if (DANGEROUS[name] && allowedWithoutArgs(rule))
        add("dangerous-syscall", "error", path, `allows ${name}, which ${DANGEROUS[name]}`);
      if (NAMESPACE_CREATION.has(name) && allowedWithoutArgs(rule))
        add(
          "namespace-creation",
          "error",
          path,
          `allows ${name} without argument filters: the container can create namespaces`,
        );
      if ((name === "clone" || name === "clone3") && allowedWithoutArgs(rule))
        add(
          "namespace-creation",
          "warning",
          path,
          name === "clone"
            ? "allows clone without a filter on its flags: CLONE_NEW* flags create namespaces (the runtime default filters them)"
            : "allows clone3, whose flags cannot be filtered (they are behind a pointer): return ENOSYS so libc falls back to clone",
        );
      if (name === "personality" && allowedWithoutArgs(rule))
        add(
          "personality-unfiltered",
          "warning",
          path,
          "allows personality with any persona (the runtime default allows only a few)",
        );
      if (name === "socket") {
        const familyFilter = rule.args?.some((a) => a.index === 0);
        if (!familyFilter)
          add(
            "socket-family",
            "warning",
            path,
            `allows socket for every address family, AF_VSOCK (${AF_VSOCK}) included, which the runtime default blocks`,
          );
      }
    });

    if (
      rule.action === seccomp.defaultAction &&
      (rule.errnoRet ?? seccomp.defaultErrnoRet) === seccomp.defaultErrnoRet
    )
      add(
        "never-matches",
        "warning",
        `syscalls[${r}]`,
        `rule does the same as defaultAction (${seccomp.defaultAction}): it changes nothing`,
      );
    rule.args?.forEach((arg, a) => {
      // MASKED_EQ matches when (arg & value) == valueTwo: impossible when valueTwo has bits outside the
      // mask. BigInt, because JavaScript's bitwise operators work on 32 bits.
      if (arg.op === "SCMP_CMP_MASKED_EQ" && (BigInt(arg.valueTwo ?? 0) & ~BigInt(arg.value)) !== 0n)
        add(
          "never-matches",
          "warning",
          `syscalls[${r}].args[${a}]`,
          `(arg & ${arg.value}) can never equal ${arg.valueTwo}: the condition never matches`,
        );
    });
    if (rule.args === undefined || rule.args.length === 0)
      rule.names.forEach((name, n) => {
        const earlier = unconditional.get(name);
        if (earlier !== undefined)
          add(
            "never-matches",
            "warning",
            `syscalls[${r}].names[${n}]`,
            `${name} already has an unconditional rule at syscalls[${earlier}]: this one never applies`,
          );
        else unconditional.set(name, r);
      });
  });
  return findings;
}
