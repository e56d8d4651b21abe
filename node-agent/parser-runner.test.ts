// The guarded parser run, with the real apparmor_parser and the hostile policies of
// test/fixtures/apparmor-hostile/: each limit ends the run, names itself, and leaves no process behind.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  guardedParserCommand,
  limitExceeded,
  limitMessage,
  PARSER_LIMITS,
  type ParserLimits,
  runParser,
} from "./parser-runner.ts";

const PARSER = "/usr/sbin/apparmor_parser";
const hostile = (file: string) =>
  readFileSync(join(import.meta.dirname, "../test/fixtures/apparmor-hostile", file), "utf8");
const COMPILE = ["--skip-kernel-load", "--skip-cache", "--stdout", "policy"];
// Room for the bomb to grow: only the limit under test stops it.
const ROOMY: ParserLimits = {
  ...PARSER_LIMITS,
  addressSpaceBytes: 2 * 1024 ** 3,
  cpuSeconds: 120,
  wallMs: 120_000,
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lockstep-parser-runner-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function compile(text: string, limits: ParserLimits = PARSER_LIMITS, signal?: AbortSignal) {
  await writeFile(join(dir, "policy"), text);
  return runParser(PARSER, COMPILE, { cwd: dir, limits, signal });
}

/** Processes (not zombies) whose command line names the parser, for "nothing left behind". */
function liveParsers(): number[] {
  const out: number[] = [];
  for (const pid of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (state !== "Z" && cmd.startsWith(PARSER) && readlinkSync(`/proc/${pid}/cwd`) === dir)
        out.push(Number(pid));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

describe("guardedParserCommand", () => {
  it("puts the parser under setpriv's parent-death signal, prlimit's limits and the group-killing guard", () => {
    const limits = { ...PARSER_LIMITS, addressSpaceBytes: 1024, cpuSeconds: 3 };
    const argv = guardedParserCommand("/usr/sbin/apparmor_parser", ["-Q", "x y"], limits);
    expect(argv.slice(0, 8)).toEqual([
      "setpriv",
      "--pdeathsig",
      "TERM",
      "--",
      "prlimit",
      "--as=1024",
      "--cpu=3",
      "--",
    ]);
    // Arguments reach the parser as separate words, never through the shell's parsing.
    expect(argv.slice(-3)).toEqual(["/usr/sbin/apparmor_parser", "-Q", "x y"]);
  });
});

describe("limitExceeded", () => {
  it("names the agent's own kills first", () => {
    expect(limitExceeded({ code: null, stderr: "std::bad_alloc", killedFor: "time" })).toBe("time");
    expect(limitExceeded({ code: null, stderr: "", killedFor: "output" })).toBe("output");
  });
  it("reads the parser's allocation failures as the memory limit", () => {
    expect(
      limitExceeded({ code: 10, stderr: "terminate called after throwing an instance of 'std::bad_alloc'" }),
    ).toBe("memory");
    expect(limitExceeded({ code: 10, stderr: "Failed to allocate memory: Cannot allocate memory" })).toBe(
      "memory",
    );
  });
  it("reads a compile worker killed without a word as the CPU-time limit", () => {
    const cache =
      "Cache read/write disabled: interface file missing. (Kernel needs AppArmor 2.4 compatibility patch.)\n";
    expect(limitExceeded({ code: 10, stderr: cache })).toBe("cpu");
    expect(limitExceeded({ code: 10, stderr: `${cache}AppArmor parser error for policy at line 3: x` })).toBe(
      undefined,
    );
    expect(limitExceeded({ code: 1, stderr: "AppArmor parser error for policy at line 3: x" })).toBe(
      undefined,
    );
    expect(limitExceeded({ code: 0, stderr: "" })).toBe(undefined);
  });
  it("says what to change", () => {
    expect(limitMessage("memory")).toMatch(
      /^apparmor_parser exceeded its memory limit \(64 MiB\).*simplify the policy/,
    );
    expect(limitMessage("cpu")).toMatch(/CPU-time limit \(10 s\)/);
    expect(limitMessage("time")).toMatch(/time limit \(30 s\)/);
  });
});

// The parser runs for seconds on a busy 2-core machine before it reaches a limit.
describe("runParser with the real apparmor_parser", { timeout: 60_000 }, () => {
  it("compiles a published profile well within the limits", async () => {
    const text = readFileSync(
      join(import.meta.dirname, "../test/fixtures/apparmor-corpus/docker-default.apparmor"),
      "utf8",
    );
    const run = await compile(text);
    expect(run).toMatchObject({ ok: true });
    expect(run.exceeded).toBeUndefined();
    expect(run.stdout.length).toBeGreaterThan(0);
  });

  it.each([
    ["overlapping-globs.apparmor"],
    ["overlapping-globs-small.apparmor"],
    ["variable-expansion.apparmor"],
  ])("stops %s at the memory limit", async (file) => {
    const run = await compile(hostile(file));
    expect(run).toMatchObject({ ok: false, exceeded: "memory" });
    expect(liveParsers()).toEqual([]);
  });

  it("stops a policy at the CPU-time limit, compile worker included", async () => {
    const run = await compile(hostile("overlapping-globs-small.apparmor"), { ...ROOMY, cpuSeconds: 1 });
    expect(run).toMatchObject({ ok: false, exceeded: "cpu" });
    expect(liveParsers()).toEqual([]);
  });

  it("kills the whole process group at the wall-clock limit", async () => {
    const run = await compile(hostile("overlapping-globs.apparmor"), { ...ROOMY, wallMs: 500 });
    expect(run).toMatchObject({ ok: false, exceeded: "time" });
    expect(liveParsers()).toEqual([]);
  });

  it("kills the whole process group when the agent aborts the run", async () => {
    const abort = new AbortController();
    const running = compile(hostile("overlapping-globs.apparmor"), ROOMY, abort.signal);
    await new Promise((r) => setTimeout(r, 300));
    abort.abort();
    const run = await running;
    expect(run).toMatchObject({ ok: false, notJudged: "the agent stopped the run" });
    expect(liveParsers()).toEqual([]);
  });

  it("says it could not judge when the parser is missing (the node's problem, not the policy's)", async () => {
    await writeFile(join(dir, "policy"), "profile x {}\n");
    const run = await runParser("/nonexistent/apparmor_parser", COMPILE, { cwd: dir });
    expect(run.ok).toBe(false);
    expect(run.notJudged).toMatch(/^could not run \/nonexistent\/apparmor_parser/);
  });

  it("ends a run whose output passes the output limit", async () => {
    const text = readFileSync(
      join(import.meta.dirname, "../test/fixtures/apparmor-corpus/docker-default.apparmor"),
      "utf8",
    );
    const run = await compile(text, { ...PARSER_LIMITS, outputBytes: 100 });
    expect(run).toMatchObject({ ok: false, exceeded: "output" });
  });
});
