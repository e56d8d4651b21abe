// Every apparmor_parser run of the agent, under limits of its own and tied to the agent's life. A raw
// policy of a few hundred bytes of overlapping globs or self-multiplying variables makes the parser's
// DFA construction run for minutes and take gigabytes (test/fixtures/apparmor-hostile/), and the parser
// runs in the agent's cgroup: unbounded, it would get the whole agent container killed, on every node,
// at every restart. So each run gets
// - an address-space limit (RLIMIT_AS) and a CPU-time limit (RLIMIT_CPU), set by `prlimit` and inherited
//   by the compile worker the parser forks for every policy (apparmor_parser 3.0 always forks one, even
//   with --jobs 1);
// - a wall-clock limit and an output limit, enforced here by killing the run's process group;
// - the agent's death: the run is its own process group under a small sh that `setpriv --pdeathsig`
//   signals when the agent dies (SIGKILL included) and that then kills the whole group. A parent-death
//   signal on the parser alone would not do: it is not inherited across fork, and the compile worker
//   (the one that grows) would run on alone.
// Measured on the 2-core test machine with Debian's apparmor_parser 3.0.8 (docs/adr/0022): the heaviest
// published profile of test/fixtures/apparmor-corpus compiles in 0.02 s of CPU within 8 MiB of address
// space; a profile that includes every one of the node's 111 abstractions takes 0.71 s of CPU and needs
// 30 MiB. The 1.8 KB overlapping-globs fixture, unlimited, reached 1.7 GiB within 60 s and kept growing;
// under these limits it is refused after about 1.2 s.
import { spawn } from "node:child_process";

export interface ParserLimits {
  /** RLIMIT_AS of the parser and its compile worker, in bytes; undefined: none. */
  addressSpaceBytes: number | undefined;
  /** RLIMIT_CPU of each of them, in seconds. */
  cpuSeconds: number;
  /** Wall-clock time for the whole run (the node may be busy, or the parser blocked). */
  wallMs: number;
  /** Standard output kept (a compiled policy); more ends the run. */
  outputBytes: number;
}

export const PARSER_LIMITS: ParserLimits = {
  // Twice the every-abstraction profile's 30 MiB, eight times the corpus's.
  addressSpaceBytes: 64 * 1024 * 1024,
  // Fourteen times the every-abstraction profile's 0.71 s.
  cpuSeconds: 10,
  // Three times the CPU limit: room for a node whose two cores are shared with its pods.
  wallMs: 30_000,
  outputBytes: 16 * 1024 * 1024,
};

/**
 * For the runs that compile nothing: loading bytes already judged (`--replace --binary`), removing a
 * profile by name (`--remove` of an empty profile) and `--version`. The same time limits and the same
 * tie to the agent's life, but no address-space limit: they cannot blow up, and on test machines the
 * kernel's half of them is a Node script (test/harness/fake-kernel-load.ts), which needs 2 GiB of
 * address space just to start.
 */
export const KERNEL_RUN_LIMITS: ParserLimits = { ...PARSER_LIMITS, addressSpaceBytes: undefined };

/** Standard error kept: the parser's complaint is a few lines; a flood of warnings is cut. */
const STDERR_BYTES = 64 * 1024;

/**
 * The guard between setpriv and the parser: it waits for the parser (so the parent-death signal,
 * which setpriv set on this process, reaches a process that is still there) and, on that signal,
 * kills its whole process group: the parser and its compile worker.
 */
const GUARD_SCRIPT = 'trap "kill -KILL 0" TERM; "$@" & wait $!';

/** The command line of one guarded run: setpriv, prlimit, the guard, the parser. Pure. */
export function guardedParserCommand(
  parser: string,
  args: readonly string[],
  limits: ParserLimits = PARSER_LIMITS,
): [string, ...string[]] {
  return [
    "setpriv",
    "--pdeathsig",
    "TERM",
    "--",
    "prlimit",
    ...(limits.addressSpaceBytes === undefined ? [] : [`--as=${limits.addressSpaceBytes}`]),
    `--cpu=${limits.cpuSeconds}`,
    "--",
    "/bin/sh",
    "-c",
    GUARD_SCRIPT,
    "lockstep-parser-guard",
    parser,
    ...args,
  ];
}

/** Which limit a run hit. */
export type ParserLimit = "memory" | "cpu" | "time" | "output";

export interface ParserRun {
  ok: boolean;
  stdout: Buffer;
  stderr: string;
  /** The limit the run hit, if it hit one. */
  exceeded?: ParserLimit;
  /**
   * Why the run says nothing about the policy: it could not start (no setpriv, prlimit or parser on
   * the node: the node's problem, not the policy's), or the agent stopped it.
   */
  notJudged?: string;
}

// How the parser says an allocation failed: C++'s bad_alloc (the DFA code), its own messages (the
// variable expansion, the lexer).
const OUT_OF_MEMORY = /bad_alloc|Failed to allocate memory|Memory allocation error|out of memory/i;
// apparmor_parser's exit code when its compile worker did not exit normally (ECHILD): killed by a signal.
const WORKER_KILLED = 10;
// The guard's (sh's) exit codes for a parser it could not find or execute.
const NOT_RUN = new Set([126, 127]);

/**
 * The limit a finished run hit, from what the agent saw: its own kills (time, output), the parser's
 * allocation failure, or a compile worker killed without a word (SIGXCPU, or SIGKILL at the hard limit). Pure.
 */
export function limitExceeded(run: {
  code: number | null;
  stderr: string;
  killedFor?: "time" | "output";
}): ParserLimit | undefined {
  if (run.killedFor) return run.killedFor;
  if (OUT_OF_MEMORY.test(run.stderr)) return "memory";
  const ownLines = run.stderr
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("Cache read/write disabled"));
  if (run.code === WORKER_KILLED && ownLines.length === 0) return "cpu";
  return undefined;
}

/** The refusal for a run that hit a limit: what happened and what to change. */
export function limitMessage(limit: ParserLimit, limits: ParserLimits = PARSER_LIMITS): string {
  const simplify =
    "simplify the policy: fewer overlapping globs (such as /**a*b**), fewer alternatives, variables that expand to fewer values";
  switch (limit) {
    case "memory":
      return `apparmor_parser exceeded its memory limit (${(limits.addressSpaceBytes ?? 0) / 1024 / 1024} MiB) compiling the policy: ${simplify}`;
    case "cpu":
      return `apparmor_parser exceeded its CPU-time limit (${limits.cpuSeconds} s) compiling the policy (its compile worker was stopped): ${simplify}`;
    case "time":
      return `apparmor_parser exceeded its time limit (${limits.wallMs / 1000} s) compiling the policy: ${simplify}`;
    case "output":
      return `apparmor_parser's output exceeded its limit (${limits.outputBytes / 1024 / 1024} MiB): ${simplify}`;
  }
}

export interface ParserRunOptions {
  cwd: string;
  limits?: ParserLimits;
  /** Ends the run (its whole process group) at once, as the agent stops. */
  signal?: AbortSignal;
}

/** Runs apparmor_parser guarded (see the top of this file); never throws. */
export function runParser(
  parser: string,
  args: readonly string[],
  options: ParserRunOptions,
): Promise<ParserRun> {
  const limits = options.limits ?? PARSER_LIMITS;
  const [command, ...rest] = guardedParserCommand(parser, args, limits);
  return new Promise((resolve) => {
    // detached: a process group (and session) of its own, which the agent can kill as one.
    const child = spawn(command, rest, {
      cwd: options.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = "";
    let killedFor: "time" | "output" | undefined;
    let closed = false;
    const killGroup = () => {
      // Only until 'close': every process of the group holds the output pipes until it exits, so before
      // then the group exists and its id (the guard's pid) cannot have been given to anyone else.
      if (closed || child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    };
    const timer = setTimeout(() => {
      killedFor ??= "time";
      killGroup();
    }, limits.wallMs);
    const onAbort = () => killGroup();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > limits.outputBytes) {
        killedFor ??= "output";
        killGroup();
      } else stdout.push(chunk);
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      if (stderr.length < STDERR_BYTES) stderr += chunk.slice(0, STDERR_BYTES - stderr.length);
    });
    let finished = false;
    const finish = (run: ParserRun) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve(run);
    };
    child.on("error", (error) => {
      closed = true;
      finish({
        ok: false,
        stdout: Buffer.alloc(0),
        stderr: "",
        notJudged: `could not run apparmor_parser: ${error.message}`,
      });
    });
    child.on("close", (code) => {
      closed = true;
      if (code !== null && NOT_RUN.has(code) && killedFor === undefined) {
        finish({
          ok: false,
          stdout: Buffer.alloc(0),
          stderr,
          notJudged: `could not run ${parser}: ${stderr.trim()}`,
        });
        return;
      }
      const exceeded = limitExceeded({ code, stderr, killedFor });
      finish({
        ok: code === 0 && exceeded === undefined,
        stdout: Buffer.concat(stdout),
        stderr,
        ...(exceeded ? { exceeded } : {}),
        ...(options.signal?.aborted ? { notJudged: "the agent stopped the run" } : {}),
      });
    });
  });
}
