// Child processes the harness owns. Every process is started under `setpriv --pdeathsig KILL`, so the
// kernel kills it if the test runner dies without running its clean-up (SIGKILL, OOM); a normal stop
// sends SIGTERM and escalates to SIGKILL, and an exit hook catches whatever a failing test left.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, readdirSync, readFileSync } from "node:fs";

export interface ManagedProcess {
  readonly name: string;
  readonly logPath: string;
  readonly pid: number;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  isRunning(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once, the way a crash or an OOM kill ends a process. */
  kill(): Promise<void>;
  /** The last lines of its log, for error messages. */
  tail(lines?: number): string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

const pdeathsig = existsSync("/usr/bin/setpriv") ? ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] : [];

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  logPath: string,
  options: StartOptions = {},
): ManagedProcess {
  installExitHook();
  const log = createWriteStream(logPath, { flags: "a" });
  const argv = [...pdeathsig, command, ...args];
  const [program, ...rest] = argv as [string, ...string[]];
  const child = spawn(program, rest, {
    stdio: ["ignore", "pipe", "pipe"],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  live.add(child);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? "unknown");
    });
  });
  // Close the log only after both pipes have drained, so the last lines of a crash are kept.
  void exited.then(() => setTimeout(() => log.end(), 50));
  let running = true;
  void exited.then(() => {
    running = false;
  });

  const signalAndWait = async (signal: NodeJS.Signals, graceMs: number) => {
    if (!running) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };

  return {
    name,
    logPath,
    pid: child.pid,
    exited,
    isRunning: () => running,
    stop: (graceMs = 10_000) => signalAndWait("SIGTERM", graceMs),
    kill: () => signalAndWait("SIGKILL", 0),
    tail: (lines = 30) => {
      try {
        return readFileSync(logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
      } catch {
        return "(no log)";
      }
    },
  };
}

/** A process's resident memory (VmRSS) in MiB, read from /proc. */
export function residentMemoryMiB(pid: number): number {
  return processMemory(pid).residentMiB;
}

/**
 * Resident memory, and the anonymous part of it (heap, stacks: what the process itself allocated, as
 * opposed to pages of the node binary and libraries, which the page cache shares), in MiB.
 */
export function processMemory(pid: number): { residentMiB: number; anonymousMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  return { residentMiB: kib("VmRSS") / 1024, anonymousMiB: kib("RssAnon") / 1024 };
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticksPerSecond = 100; // USER_HZ, 100 on every Linux architecture Kubernetes supports.
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** A process on this machine as /proc tells it: its parent, its state (Z for a zombie) and its name. */
export interface ProcessEntry {
  pid: number;
  ppid: number;
  state: string;
  comm: string;
}

export function processTable(): ProcessEntry[] {
  const out: ProcessEntry[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const [state = "", ppid = "0"] = stat.slice(close + 2).split(" ");
      out.push({
        pid: Number(entry),
        ppid: Number(ppid),
        state,
        comm: stat.slice(stat.indexOf("(") + 1, close),
      });
    } catch {
      // Exited meanwhile.
    }
  }
  return out;
}

/** Every live (not zombie) descendant of `pid`. */
export function liveDescendants(
  pid: number,
  table: readonly ProcessEntry[] = processTable(),
): ProcessEntry[] {
  const found: ProcessEntry[] = [];
  let parents = new Set([pid]);
  while (parents.size > 0) {
    const children = table.filter((p) => parents.has(p.ppid) && p.state !== "Z");
    found.push(...children);
    parents = new Set(children.map((p) => p.pid));
  }
  return found;
}

/** Resident memory of a process and all its live descendants, in MiB (a container's cgroup counts them all). */
export function treeResidentMiB(pid: number): number {
  let total = 0;
  for (const p of [{ pid }, ...liveDescendants(pid)]) {
    try {
      total += residentMemoryMiB(p.pid);
    } catch {
      // Exited meanwhile.
    }
  }
  return total;
}
