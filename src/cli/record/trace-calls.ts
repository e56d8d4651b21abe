// Whole calls out of an `strace -f -y` log: the file, network and capability analyses need each call's
// arguments and result, where the seccomp recording (src/cli/record/seccomp-profile.ts) needs only names. A call another
// thread interrupted is printed in two halves (`<unfinished ...>`, `<... name resumed>`); they are joined
// per pid before the call is handed on.
import * as z from "zod";

export const TracedCallSchema = z.strictObject({
  pid: z.number().int(),
  name: z.string(),
  /** The argument text as strace printed it, without the parentheses. */
  args: z.string(),
  /** The return value; undefined for `?` (exit, execve of a killed process). */
  result: z.number().optional(),
  /** With -y, the path behind a returned descriptor: `3</etc/hostname>` gives `/etc/hostname`. */
  resultPath: z.string().optional(),
  /** `EPERM` for `= -1 EPERM (Operation not permitted)`. */
  errno: z.string().optional(),
});
export type TracedCall = z.infer<typeof TracedCallSchema>;

const PID = /^(?:\[pid\s+(\d+)\]|(\d+))\s+/;
const START = /^([a-z_][a-z0-9_]*)\((.*)$/;
const UNFINISHED = / <unfinished \.\.\.>$/;
const RESUMED = /^<\.\.\. ([a-z_][a-z0-9_]*) resumed>(.*)$/;
// `) = -1 EPERM (Operation not permitted)`, `) = 3</etc/hostname>`, `) = 0x7f00`, `) = ?`: the last `) =`
// of the line, so a path that contains one does not cut the arguments short.
const RETURN =
  /^(.*)\)\s+=\s+(-?\d+|0x[0-9a-f]+|\?)(?:<(.*)>)?(?:\s+(E[A-Z0-9]+)\s+\(.*\))?(?:\s+\(.*\))?\s*$/;

/**
 * Feeds whole calls to `onCall` from an strace log given in arbitrary chunks, and, when given,
 * `onCallStart` with every call's name and first arguments as soon as it starts: a call still
 * `<unfinished ...>` when its process was killed never completes, but it was made.
 */
export class TraceCalls {
  private partial = "";
  private readonly unfinished = new Map<number, { name: string; args: string }>();
  private readonly onCall: (call: TracedCall) => void;
  private readonly onCallStart: ((name: string, args: string) => void) | undefined;

  constructor(onCall: (call: TracedCall) => void, onCallStart?: (name: string, args: string) => void) {
    this.onCall = onCall;
    this.onCallStart = onCallStart;
  }

  add(chunk: string): void {
    const lines = (this.partial + chunk).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.addLine(line);
  }

  finish(): void {
    this.addLine(this.partial);
    this.partial = "";
  }

  private addLine(line: string): void {
    const pidMatch = PID.exec(line);
    const pid = Number(pidMatch?.[1] ?? pidMatch?.[2] ?? 0);
    const rest = pidMatch ? line.slice(pidMatch[0].length) : line;
    const resumed = RESUMED.exec(rest);
    if (resumed?.[1] !== undefined) {
      const first = this.unfinished.get(pid);
      this.unfinished.delete(pid);
      // A second half whose first half the log does not hold still names a call that was made.
      if (first?.name !== resumed[1]) this.onCallStart?.(resumed[1], "");
      const head = first?.name === resumed[1] ? first.args : "";
      this.complete(pid, resumed[1], head + (resumed[2] ?? ""));
      return;
    }
    const start = START.exec(rest);
    if (start?.[1] === undefined) return; // `+++ exited`, `--- SIGCHLD`, strace's own messages
    const text = start[2] ?? "";
    this.onCallStart?.(start[1], text.replace(UNFINISHED, ""));
    if (UNFINISHED.test(text)) {
      this.unfinished.set(pid, { name: start[1], args: text.replace(UNFINISHED, "") });
      return;
    }
    this.complete(pid, start[1], text);
  }

  /** `text` is everything after the opening parenthesis: arguments, `) = `, the result. */
  private complete(pid: number, name: string, text: string): void {
    const returned = RETURN.exec(text);
    if (!returned) {
      this.onCall({ pid, name, args: text });
      return;
    }
    const value = returned[2] ?? "?";
    const call: TracedCall = { pid, name, args: returned[1] ?? "" };
    if (value !== "?") call.result = Number(value);
    if (returned[3] !== undefined) call.resultPath = returned[3];
    if (returned[4] !== undefined) call.errno = returned[4];
    this.onCall(call);
  }
}

/** The calls of a whole log, in order (for tests and small logs). */
export function callsInTrace(log: string): TracedCall[] {
  const calls: TracedCall[] = [];
  const trace = new TraceCalls((call) => calls.push(call));
  trace.add(log);
  trace.finish();
  return calls;
}

/** The `"..."` arguments of a call, in order: the paths of open, execve, rename, mkdir and the like. */
export function stringArgs(args: string): string[] {
  return [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => unescapeStrace(m[1] ?? ""));
}

/** strace prints paths C-escaped: `\"`, `\\`, `\n`, `\x..`/octal for bytes outside printable ASCII. */
function unescapeStrace(text: string): string {
  return text.replace(/\\(x[0-9a-f]{2}|[0-7]{1,3}|.)/g, (_, sequence: string) => {
    if (sequence.startsWith("x")) return String.fromCharCode(Number.parseInt(sequence.slice(1), 16));
    if (/^[0-7]+$/.test(sequence)) return String.fromCharCode(Number.parseInt(sequence, 8));
    return ({ n: "\n", t: "\t", r: "\r", v: "\v", f: "\f" } as Record<string, string>)[sequence] ?? sequence;
  });
}

/** The `<path>` strace -y prints after a descriptor argument: `3</tmp/x>` and `AT_FDCWD</etc>`. */
export function descriptorPaths(args: string): string[] {
  return [...args.matchAll(/(?:\d+|AT_FDCWD)<([^>]*)>/g)].map((m) => m[1] ?? "");
}
