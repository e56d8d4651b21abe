import { describe, expect, it } from "vitest";
import { ALL_LINT_RULES } from "./findings.ts";
import type { LabelledFinding } from "./report.ts";
import { artifactUri, sarifLog } from "./sarif.ts";
import { CLI_VERSION } from "./version.ts";

const finding = (over: Partial<LabelledFinding> = {}): LabelledFinding => ({
  profile: 'profiles/web.yaml (SeccompProfile "web")',
  file: "profiles/web.yaml",
  document: 1,
  line: 12,
  rule: "dangerous-syscall",
  severity: "error",
  path: "spec.syscalls[0].names[2]",
  message: "allows ptrace",
  fix: {
    action: "remove-syscall",
    description: "remove ptrace",
    patch: [{ op: "remove", path: "/spec/syscalls/0/names/2" }],
  },
  ...over,
});

/**
 * What GitHub code scanning requires of an uploaded SARIF 2.1.0 file (its "SARIF support" page): the
 * version, runs[].tool.driver.name and rules, and for each result a ruleId, a level, message.text and
 * a physical location with artifactLocation.uri (relative) and, where known, region.startLine >= 1.
 */
function expectCodeScanningShape(log: ReturnType<typeof sarifLog>) {
  expect(log.version).toBe("2.1.0");
  expect(log.$schema).toMatch(/sarif-2\.1\.0/);
  for (const run of log.runs) {
    expect(run.tool.driver.name).toBe("lockstep");
    const ids = run.tool.driver.rules.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const rule of run.tool.driver.rules) expect(rule.shortDescription.text.length).toBeGreaterThan(0);
    for (const result of run.results) {
      expect(ids).toContain(result.ruleId);
      expect(run.tool.driver.rules[result.ruleIndex as number]?.id).toBe(result.ruleId);
      expect(["error", "warning", "note", "none"]).toContain(result.level);
      expect(result.message.text.length).toBeGreaterThan(0);
      expect(result.locations.length).toBeGreaterThan(0);
      for (const location of result.locations) {
        const uri = location.physicalLocation.artifactLocation.uri;
        expect(uri).not.toMatch(/^\/|\\|^[a-z]+:/i);
        const region = (location.physicalLocation as { region?: { startLine: number } }).region;
        if (region) expect(region.startLine).toBeGreaterThanOrEqual(1);
      }
    }
  }
}

describe("sarifLog", () => {
  it("has what code scanning requires, every rule listed, and the fix in the result's properties", () => {
    const log = sarifLog([
      finding(),
      finding({ rule: "apparmor-complain-mode", severity: "warning", line: undefined }),
    ]);
    expectCodeScanningShape(log);
    const run = log.runs[0];
    expect(run?.tool.driver.version).toBe(CLI_VERSION);
    expect(run?.tool.driver.rules.map((r) => r.id)).toEqual([...ALL_LINT_RULES]);
    expect(run?.results[0]).toMatchObject({
      ruleId: "dangerous-syscall",
      level: "error",
      message: { text: "spec.syscalls[0].names[2]: allows ptrace" },
      locations: [
        { physicalLocation: { artifactLocation: { uri: "profiles/web.yaml" }, region: { startLine: 12 } } },
      ],
      properties: { fix: { action: "remove-syscall" } },
    });
    expect(run?.results[1]?.locations[0]?.physicalLocation).not.toHaveProperty("region");
  });

  it("writes file names as relative URI references", () => {
    expect(artifactUri("./a dir/p#1.yaml")).toBe("a%20dir/p%231.yaml");
    expect(artifactUri("<stdin>")).toBe("stdin");
    expect(artifactUri("/repo/profiles/web.yaml", "/repo")).toBe("profiles/web.yaml");
  });

  it("is a valid log with no results", () => {
    const log = sarifLog([]);
    expectCodeScanningShape(log);
    expect(log.runs[0]?.results).toEqual([]);
  });
});
