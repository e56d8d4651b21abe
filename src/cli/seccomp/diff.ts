// What one seccomp profile allows that another does not, by syscall name. Pure; `lockstep diff`.

import { isAllowingAction, type LinuxSeccomp } from "../../api/seccomp.ts";
import { KNOWN_SYSCALLS } from "../../api/syscalls.ts";
import { allowedSyscalls } from "../record/seccomp-profile.ts";

export interface SeccompDiff {
  onlyA: string[];
  onlyB: string[];
}

/** The names a profile lets through: its allow rules, or, for an allow-by-default profile, all but its denials. */
export function effectiveAllowSet(seccomp: LinuxSeccomp): Set<string> {
  if (isAllowingAction(seccomp.defaultAction)) {
    const denied = new Set(
      seccomp.syscalls
        .filter((r) => !isAllowingAction(r.action) && !(r.args && r.args.length > 0))
        .flatMap((r) => r.names),
    );
    return new Set([...KNOWN_SYSCALLS].filter((n) => !denied.has(n)));
  }
  return allowedSyscalls(seccomp);
}

export function diffSeccomp(a: LinuxSeccomp, b: LinuxSeccomp): SeccompDiff {
  const [allowA, allowB] = [effectiveAllowSet(a), effectiveAllowSet(b)];
  return {
    onlyA: [...allowA].filter((n) => !allowB.has(n)).sort(),
    onlyB: [...allowB].filter((n) => !allowA.has(n)).sort(),
  };
}
