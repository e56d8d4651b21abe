// How `lockstep record` runs strace, for the recording and for the runs with fewer capabilities alike,
// and how it reads the trace file while strace writes it (so a long recording never has to fit in memory).
import { spawn } from "node:child_process";
import { accessSync, closeSync, constants, openSync, readSync } from "node:fs";
import { delimiter, join } from "node:path";

/**
 * -f: every thread and child; -qq: no attach/exit notices; -y: the path behind every descriptor (the
 * file analysis reads it, links resolved); -s 0: no string contents (smaller, faster traces; paths are
 * printed whole regardless); signal=none: no `--- SIG` lines. Every syscall is traced (strace's default).
 */
export function straceArgs(tracePath: string, argv: readonly string[]): string[] {
  return ["-f", "-qq", "-y", "-s", "0", "-e", "signal=none", "-o", tracePath, "--", ...argv];
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findOnPath(command: string): string | undefined {
  if (command.includes("/")) return isExecutable(command) ? command : undefined;
  return (process.env.PATH ?? "")
    .split(delimiter)
    .map((dir) => join(dir || ".", command))
    .find(isExecutable);
}

/** Feeds what strace appended to the trace file since the last call. */
export class TraceFileReader {
  private offset = 0;
  private readonly decoder = new TextDecoder();
  private readonly buffer = Buffer.alloc(1 << 20);
  private readonly path: string;
  private readonly consumers: readonly { add(chunk: string): void }[];

  constructor(path: string, consumers: readonly { add(chunk: string): void }[]) {
    this.path = path;
    this.consumers = consumers;
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
        const text = this.decoder.decode(this.buffer.subarray(0, n), { stream: true });
        for (const consumer of this.consumers) consumer.add(text);
      }
    } finally {
      closeSync(fd);
    }
  }
}

export interface TracedRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs `argv` under strace writing to `tracePath`. The recording shares the terminal (Ctrl-C reaches the
 * program); a rerun with fewer capabilities gets no stdio, its own process group, and is killed with
 * everything it started after `timeoutMs`, so it cannot hang the recording.
 */
export function runUnderStrace(
  tracePath: string,
  argv: readonly string[],
  rerun?: { timeoutMs: number },
): Promise<TracedRun> {
  const child = spawn("strace", straceArgs(tracePath, argv), {
    stdio: rerun ? "ignore" : ["inherit", process.stderr, process.stderr],
    detached: rerun !== undefined,
  });
  const timer = rerun
    ? setTimeout(() => {
        try {
          process.kill(-(child.pid as number), "SIGKILL");
        } catch {
          // already gone
        }
      }, rerun.timeoutMs)
    : undefined;
  return new Promise<TracedRun>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (exitCode, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ exitCode, signal });
    });
  });
}
