// `make test`: lint, type check, unit tests, integration tests, in that order, and a closing line
// `N passed, N failed, N skipped` that CI reads. A lint or type error counts as one failure.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import * as z from "zod";

const VitestReport = z.object({
  numPassedTests: z.number(),
  numFailedTests: z.number(),
  numPendingTests: z.number(),
  numTodoTests: z.number(),
  success: z.boolean(),
});

const totals = { passed: 0, failed: 0, skipped: 0 };
const failures: string[] = [];

function run(step: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): boolean {
  process.stdout.write(`\n=== ${step}: ${command} ${args.join(" ")}\n`);
  const result = spawnSync(command, args, { stdio: "inherit", env: { ...process.env, ...env } });
  return result.status === 0;
}

function check(step: string, command: string, args: string[]): void {
  if (run(step, command, args)) totals.passed += 1;
  else {
    totals.failed += 1;
    failures.push(step);
  }
}

function vitest(project: "unit" | "integration", env: NodeJS.ProcessEnv = {}): void {
  mkdirSync(".tmp", { recursive: true });
  const report = `.tmp/vitest-${project}.json`;
  const ok = run(
    `${project} tests`,
    "npx",
    [
      "vitest",
      "run",
      "--project",
      project,
      "--reporter=default",
      "--reporter=json",
      `--outputFile.json=${report}`,
    ],
    env,
  );
  let parsed: z.infer<typeof VitestReport> | undefined;
  try {
    parsed = VitestReport.parse(JSON.parse(readFileSync(report, "utf8")));
  } catch {
    parsed = undefined;
  }
  if (!parsed) {
    totals.failed += 1;
    failures.push(`${project} tests (no report: the runner crashed before finishing)`);
    return;
  }
  totals.passed += parsed.numPassedTests;
  totals.failed += parsed.numFailedTests;
  totals.skipped += parsed.numPendingTests + parsed.numTodoTests;
  if (!ok || !parsed.success) {
    failures.push(`${project} tests`);
    // A suite that fails outside any test (a crashing beforeAll, an unhandled error) has no failed test to count.
    if (parsed.numFailedTests === 0) totals.failed += 1;
  }
}

const controlPlaneBin = process.env.LOCKSTEP_CONTROLPLANE_BIN ?? buildControlPlane();

function buildControlPlane(): string {
  const result = spawnSync("tools/controlplane/build.sh", [], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (result.status !== 0) {
    process.stderr.write("the control plane could not be built: see the message above (make controlplane)\n");
    process.exit(1);
  }
  return result.stdout.trim();
}

check("lint", "npx", ["biome", "check", "."]);
check("Dockerfile lint", "node", ["scripts/lint-dockerfile.ts"]);
check("workflow lint", "node", ["scripts/lint-workflows.ts"]);
check("typecheck", "npx", ["tsc", "--noEmit"]);
vitest("unit");
vitest("integration", { LOCKSTEP_CONTROLPLANE_BIN: controlPlaneBin });

if (failures.length > 0) process.stdout.write(`\nfailed: ${failures.join(", ")}\n`);
process.stdout.write(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`);
process.exit(totals.failed > 0 ? 1 : 0);
