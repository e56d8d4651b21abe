// What the CLI prints and which exit code it returns, as pure functions of the findings and diffs.
import type { Finding, Severity } from "./findings.ts";
import type { SeccompDiff } from "./seccomp/diff.ts";

export interface LabelledFinding extends Finding {
  /** The file (and document, and object) the finding is about, as messages name it. */
  profile: string;
  /** The file as named or found (`<stdin>` for `-`). */
  file: string;
  /** 1-based document index in the file. */
  document: number;
  /** The line of `path` in the file, when it could be found. */
  line?: number;
}

/** One profile linted: what to call it, and its findings. */
export interface LintedProfile {
  label: string;
  findings: LabelledFinding[];
  /** Said after "no findings" (what lint leaves to another judge). */
  note?: string;
}

/** One line per finding, `file (SeccompProfile "x"): error: spec.syscalls[0].names[3]: ... [rule]`. */
export function formatFindings(profiles: readonly LintedProfile[]): string {
  return profiles
    .flatMap((p) =>
      p.findings.length === 0
        ? [`${p.label}: no findings${p.note === undefined ? "" : ` (${p.note})`}`]
        : p.findings.map((f) => `${f.profile}: ${f.severity}: ${f.path}: ${f.message} [${f.rule}]`),
    )
    .map((l) => `${l}\n`)
    .join("");
}

/** 0 when no finding reaches `failOn`, 1 when one does (usage and input errors are 2, elsewhere). */
export function lintExitCode(findings: readonly Finding[], failOn: Severity): 0 | 1 {
  return findings.some((f) => f.severity === "error" || failOn === "warning") ? 1 : 0;
}

/** `lockstep diff`'s result as data (its --output json) and the source of its text. */
export interface DiffReport {
  a: string;
  b: string;
  nodeArch: string;
  onlyA: string[];
  onlyB: string[];
  /** How many syscalls both allow. */
  both: number;
  equal: boolean;
}

export function diffReport(a: string, b: string, nodeArch: string, diff: SeccompDiff): DiffReport {
  return { a, b, nodeArch, ...diff, equal: diff.onlyA.length + diff.onlyB.length === 0 };
}

/** Each side's extra syscalls; one line when they allow the same. */
export function formatDiffReport(report: DiffReport): string {
  if (report.equal)
    return `${report.a} and ${report.b} allow the same ${report.both} syscalls on an ${report.nodeArch} node\n`;
  const side = (file: string, names: readonly string[]) =>
    `only ${file} allows (${names.length}):${names.length === 0 ? " -" : names.map((n) => `\n  ${n}`).join("")}\n`;
  return side(report.a, report.onlyA) + side(report.b, report.onlyB);
}
