import { describe, expect, it } from "vitest";
import { formatDiff, formatFindings, type LabelledFinding, lintExitCode } from "./report.ts";

const finding = (severity: "error" | "warning", profile = "p.yaml"): LabelledFinding => ({
  profile,
  rule: "socket-family",
  severity,
  path: "spec.syscalls[0].names[1]",
  message: "allows socket for AF_VSOCK (40)",
});

describe("lint report", () => {
  it("prints one line per finding and says which profiles are clean", () => {
    expect(formatFindings([finding("warning")], ["p.yaml", "q.json"])).toBe(
      "p.yaml: warning: spec.syscalls[0].names[1]: allows socket for AF_VSOCK (40) [socket-family]\nq.json: no findings\n",
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
    expect(formatDiff("a.json", "b.json", { onlyA: ["mkdir", "rmdir"], onlyB: [] })).toBe(
      "only a.json allows (2):\n  mkdir\n  rmdir\nonly b.json allows (0): -\n",
    );
  });
});
