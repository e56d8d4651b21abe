// `lockstep record`: runs a command under strace and prints the profile src/api/record.ts builds from
// the trace. The trace file is read while strace writes it (for the progress line, and so a long
// recording never has to fit in memory), then removed.
import { spawn, spawnSync } from "node:child_process";
import { accessSync, closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { API_VERSION, SECCOMP_PROFILE_KIND } from "../api/constants.ts";
import { isValidProfileObjectName } from "../api/labels.ts";
import { profileFromSyscalls, recordedSyscalls, TraceSyscalls } from "../api/record.ts";
import { renderSeccompForNode, serializeSeccomp } from "../api/render-seccomp.ts";
import { effectiveSeccomp, hostNodeArch, UserError } from "./profile-files.ts";

export const RECORD_HELP = `usage: lockstep record [--name N] [--output yaml|json] [--merge FILE...] [--progress] -- COMMAND [ARGS...]

Runs COMMAND under strace (following every thread and child), collects the syscalls it makes, adds
the few the container runtime (runc) makes after it applies the filter, and prints a profile that
allows exactly those and denies everything else with EPERM. clone is allowed only without namespace
flags and clone3 returns ENOSYS (libc then uses clone), unless the program created namespaces.
Names strace prints that the syscall table lacks are kept and reported on stderr.

The command's own output goes to stderr; the profile goes to stdout. Ctrl-C stops the command and
still prints what was recorded. Exit code 0 when a profile was printed (the command's exit code is
reported on stderr), 2 on bad input.

  --name N          metadata.name of the SeccompProfile (default: recorded)
  --output yaml     a SeccompProfile for kubectl apply (default); json: plain OCI linux.seccomp
                    for this machine's architecture, as the node agent would write it
  --merge FILE      also allow what an earlier recording (SeccompProfile YAML or OCI JSON) allows;
                    repeatable, for several runs or containers
  --progress        a progress line on stderr every second (default when stderr is a terminal)`;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(command: string): string | undefined {
  if (command.includes("/")) return isExecutable(command) ? command : undefined;
  return (process.env.PATH ?? "")
    .split(delimiter)
    .map((dir) => join(dir || ".", command))
    .find(isExecutable);
}

/** Feeds what strace appended to the trace file since the last call. */
class TraceFileReader {
  private offset = 0;
  private readonly decoder = new TextDecoder();
  private readonly buffer = Buffer.alloc(1 << 20);
  private readonly path: string;
  private readonly trace: TraceSyscalls;

  constructor(path: string, trace: TraceSyscalls) {
    this.path = path;
    this.trace = trace;
  }

  readNew(): void {
    let fd: number;
    try {
      fd = openSync(this.path, "r");
    } catch {
      return; // strace has not created it yet
    }
    try {
      for (;;) {
        const n = readSync(fd, this.buffer, 0, this.buffer.length, this.offset);
        if (n === 0) break;
        this.offset += n;
        this.trace.add(this.decoder.decode(this.buffer.subarray(0, n), { stream: true }));
      }
    } finally {
      closeSync(fd);
    }
  }
}

export async function recordCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: "string", default: "recorded" },
      output: { type: "string", default: "yaml" },
      merge: { type: "string", multiple: true, default: [] },
      progress: { type: "boolean", default: Boolean(process.stderr.isTTY) },
    },
  });
  if (values.output !== "yaml" && values.output !== "json")
    throw new UserError(`--output ${values.output}: must be yaml or json`);
  if (!isValidProfileObjectName(values.name))
    throw new UserError(
      `--name ${JSON.stringify(values.name)}: not a valid object name (lower-case letters, digits, '-' and '.')`,
    );
  if (positionals.length === 0)
    throw new UserError("nothing to record: lockstep record [options] -- COMMAND [ARGS...]");
  const [command, ...args] = positionals as [string, ...string[]];
  if (spawnSync("strace", ["-V"], { stdio: "ignore" }).error)
    throw new UserError("strace not found: install it (apt-get install strace)");
  if (!findOnPath(command)) throw new UserError(`command not found: ${command}`);
  // Read the earlier recordings first: a bad --merge file should fail before a long recording, not after.
  const merged = values.merge.map((file) => {
    const earlier = recordedSyscalls(effectiveSeccomp(file));
    if (earlier.widened.length > 0)
      process.stderr.write(
        `lockstep: ${file}: allowed whole, without its argument conditions: ${earlier.widened.join(", ")}\n`,
      );
    return earlier;
  });

  const dir = mkdtempSync(join(tmpdir(), "lockstep-record-"));
  const tracePath = join(dir, "trace");
  const trace = new TraceSyscalls();
  const reader = new TraceFileReader(tracePath, trace);
  // Ctrl-C reaches the recorded command (same process group); we keep running to print what it did.
  const ignoreSignal = () => {};
  process.on("SIGINT", ignoreSignal);
  try {
    const started = Date.now();
    // -f: every thread and child; -qq: no attach/exit notices; -s 0: no string contents (smaller, faster
    // traces); signal=none: no `--- SIG` lines. Every syscall is traced (trace=all is strace's default).
    const child = spawn(
      "strace",
      ["-f", "-qq", "-s", "0", "-e", "signal=none", "-o", tracePath, "--", command, ...args],
      {
        stdio: ["inherit", process.stderr, process.stderr],
      },
    );
    const timer = values.progress
      ? setInterval(() => {
          reader.readNew();
          const seconds = Math.round((Date.now() - started) / 1000);
          process.stderr.write(
            `\rlockstep: recording ${command}: ${seconds}s, ${trace.size} distinct syscalls so far`,
          );
        }, 1000)
      : undefined;
    const outcome = await new Promise<string>((resolve, reject) => {
      child.on("error", (error) => reject(new UserError(`cannot run strace: ${error.message}`)));
      child.on("exit", (code, signal) => resolve(signal ? `was killed by ${signal}` : `exited with ${code}`));
    });
    if (timer) {
      clearInterval(timer);
      process.stderr.write("\n");
    }
    reader.readNew();
    const recorded = trace.finish();
    if (recorded.length === 0) throw new UserError(`strace recorded no syscalls of ${command} (${outcome})`);
    const namespaceCreating = new Set([
      ...trace.namespaceCreating,
      ...merged.flatMap((m) => [...m.namespaceCreating]),
    ]);
    const { seccomp, unknown } = profileFromSyscalls(
      [...recorded, ...merged.flatMap((m) => [...m.syscalls])],
      {
        namespaceCreating,
      },
    );
    if (unknown.length > 0)
      process.stderr.write(
        `lockstep: kept syscalls missing from the syscall table (newer than it, or unnamed numbers): ${unknown.join(", ")}\n`,
      );
    if (namespaceCreating.size > 0)
      process.stderr.write(
        `lockstep: the program created namespaces with ${[...namespaceCreating].join(", ")}: allowed without filters\n`,
      );
    const allowed = new Set(
      seccomp.syscalls.filter((r) => r.action === "SCMP_ACT_ALLOW").flatMap((r) => r.names),
    );
    process.stderr.write(
      `lockstep: ${command} ${outcome}; ${recorded.length} distinct syscalls recorded, ${allowed.size} allowed\n`,
    );
    process.stdout.write(
      values.output === "json"
        ? serializeSeccomp(renderSeccompForNode(seccomp, hostNodeArch()))
        : stringify({
            apiVersion: API_VERSION,
            kind: SECCOMP_PROFILE_KIND,
            metadata: { name: values.name },
            spec: seccomp,
          }),
    );
    return 0;
  } finally {
    process.off("SIGINT", ignoreSignal);
    rmSync(dir, { recursive: true, force: true });
  }
}
