// What the CLI prints and which exit code it returns, as pure functions of the findings and diffs.
import type { SeccompDiff } from "./seccomp/diff.ts";
import type { Finding, Severity } from "./seccomp/lint.ts";

export interface LabelledFinding extends Finding {
  /** The file (and profile) the finding is about. */
  profile: string;
}

/** One line per finding, `file (SeccompProfile "x"): error: spec.syscalls[0].names[3]: ... [rule]`. */
export function formatFindings(findings: readonly LabelledFinding[], profiles: readonly string[]): string {
  const lines = findings.map((f) => `${f.profile}: ${f.severity}: ${f.path}: ${f.message} [${f.rule}]`);
  const clean = profiles.filter((p) => !findings.some((f) => f.profile === p));
  return [...lines, ...clean.map((p) => `${p}: no findings`)].map((l) => `${l}\n`).join("");
}

/** 0 when no finding reaches `failOn`, 1 when one does (usage and input errors are 2, elsewhere). */
export function lintExitCode(findings: readonly Finding[], failOn: Severity): 0 | 1 {
  return findings.some((f) => f.severity === "error" || failOn === "warning") ? 1 : 0;
}

export function formatDiff(a: string, b: string, diff: SeccompDiff): string {
  const side = (file: string, names: readonly string[]) =>
    `only ${file} allows (${names.length}):${names.length === 0 ? " -" : names.map((n) => `\n  ${n}`).join("")}\n`;
  return side(a, diff.onlyA) + side(b, diff.onlyB);
}
