import { describe, expect, it } from "vitest";
import {
  diffReport,
  formatDiffReport,
  formatFindings,
  type LabelledFinding,
  lintExitCode,
} from "./report.ts";

const finding = (severity: "error" | "warning", profile = "p.yaml"): LabelledFinding => ({
  profile,
  file: profile,
  document: 1,
  rule: "socket-family",
  severity,
  path: "spec.syscalls[0].names[1]",
  message: "allows socket for AF_VSOCK (40)",
  fix: {
    action: "restrict-arguments",
    description: "allow socket only for families other than 40",
    patch: [],
  },
});

describe("lint report", () => {
  it("prints one line per finding and says which profiles are clean, and what is left to another judge", () => {
    expect(
      formatFindings([
        { label: "p.yaml", findings: [finding("warning")] },
        { label: "q.json", findings: [] },
        { label: "aa.yaml", findings: [], note: "checked elsewhere" },
      ]),
    ).toBe(
      "p.yaml: warning: spec.syscalls[0].names[1]: allows socket for AF_VSOCK (40) [socket-family]\nq.json: no findings\naa.yaml: no findings (checked elsewhere)\n",
    );
  });

  it("fails on errors, and on warnings only when asked", () => {
    expect(lintExitCode([], "warning")).toBe(0);
    expect(lintExitCode([finding("warning")], "error")).toBe(0);
    expect(lintExitCode([finding("warning")], "warning")).toBe(1);
    expect(lintExitCode([finding("error")], "error")).toBe(1);
  });
});

describe("diff report", () => {
  it("lists each side's extra syscalls", () => {
    const report = diffReport("a.json", "b.json", "amd64", { onlyA: ["mkdir", "rmdir"], onlyB: [], both: 3 });
    expect(formatDiffReport(report)).toBe(
      "only a.json allows (2):\n  mkdir\n  rmdir\nonly b.json allows (0): -\n",
    );
    expect(report.equal).toBe(false);
  });

  it("says once that equal profiles allow the same, instead of two empty lists", () => {
    const report = diffReport("a.json", "a.json", "arm64", { onlyA: [], onlyB: [], both: 7 });
    expect(formatDiffReport(report)).toBe("a.json and a.json allow the same 7 syscalls on an arm64 node\n");
  });
});
