// What a recorded program did to files: opened for reading or writing, created, executed. Pure: the
// caller feeds whole calls (trace-calls.ts) and may pass a function that resolves symbolic links, since
// AppArmor decides on the path a link resolves to. Calls that failed are left out: the kernel refuses
// them before AppArmor is asked, so they need no rule.
import { posix } from "node:path";
import type { AppArmorPaths } from "../../api/apparmor.ts";
import { descriptorPaths, stringArgs, type TracedCall } from "./trace-calls.ts";

export type FileAccess = "read" | "write" | "create" | "exec";

export interface FileActivityOptions {
  /** The working directory of the recorded command. */
  cwd: string;
  /** A path with its symbolic links resolved; the identity when it cannot be (the file is gone). */
  canonical?: (path: string) => string;
}

// Calls that change the file named by their path argument(s); the `at` variants take the path after a
// directory descriptor, which strace -y prints as `3</dir>` or `AT_FDCWD</cwd>`.
const CHANGES_PATH = new Set([
  "unlink",
  "unlinkat",
  "rmdir",
  "rename",
  "renameat",
  "renameat2",
  "chmod",
  "fchmodat",
  "fchmodat2",
  "chown",
  "lchown",
  "fchownat",
  "truncate",
  "utimensat",
  "utimes",
  "setxattr",
  "lsetxattr",
  "removexattr",
  "lremovexattr",
]);
const CREATES_PATH = new Set([
  "mkdir",
  "mkdirat",
  "mknod",
  "mknodat",
  "link",
  "linkat",
  "symlink",
  "symlinkat",
]);
const DIRECTORY_CALLS = new Set(["mkdir", "mkdirat", "rmdir"]);
// Calls that change the file behind a descriptor argument.
const CHANGES_DESCRIPTOR = new Set([
  "fchmod",
  "fchown",
  "ftruncate",
  "fsetxattr",
  "fremovexattr",
  "fallocate",
]);
const OPENS = new Set(["open", "openat", "openat2", "creat"]);
const EXECS = new Set(["execve", "execveat"]);
const FORKS = new Set(["clone", "clone3", "fork", "vfork"]);

export class FileActivity {
  /** Each path and what was done to it, as the program named it once links are resolved. */
  readonly accesses = new Map<string, Set<FileAccess>>();
  private readonly cwds = new Map<number, string>();
  private readonly executables = new Map<number, string>();
  private readonly options: FileActivityOptions;

  constructor(options: FileActivityOptions) {
    this.options = options;
  }

  add(call: TracedCall): void {
    if (call.result === undefined || call.result < 0) return;
    const { pid, name } = call;
    if (FORKS.has(name) && call.result > 0) {
      this.cwds.set(call.result, this.cwdOf(pid));
      const executable = this.executables.get(pid);
      if (executable) this.executables.set(call.result, executable);
    } else if (name === "chdir") {
      const [path] = stringArgs(call.args);
      if (path !== undefined) this.cwds.set(pid, this.absolute(pid, path));
    } else if (name === "fchdir") {
      const [path] = descriptorPaths(call.args);
      if (path !== undefined) this.cwds.set(pid, path);
    } else if (EXECS.has(name)) {
      const [path] = stringArgs(call.args);
      if (path === undefined) return;
      // busybox re-executes itself through /proc/self/exe: the file is the one the process runs.
      const file = path === "/proc/self/exe" ? this.executables.get(pid) : this.resolve(pid, call, path);
      if (file === undefined) return;
      this.note(file, "exec");
      this.executables.set(pid, file);
    } else if (OPENS.has(name)) {
      this.addOpen(call);
    } else if (CHANGES_PATH.has(name) || CREATES_PATH.has(name)) {
      const access = CREATES_PATH.has(name) ? "create" : "write";
      // rename and link name two paths, old and new: both change.
      const paths = stringArgs(call.args);
      const targets = name === "symlink" || name === "symlinkat" ? paths.slice(1) : paths;
      // AppArmor names a directory with a trailing slash.
      const slash = DIRECTORY_CALLS.has(name) ? "/" : "";
      for (const path of targets)
        this.note(`${this.resolve(pid, call, path).replace(/\/+$/, "")}${slash}`, access);
    } else if (CHANGES_DESCRIPTOR.has(name)) {
      const [path] = descriptorPaths(call.args);
      if (path?.startsWith("/")) this.note(path, "write");
    }
  }

  private addOpen(call: TracedCall): void {
    const [path] = stringArgs(call.args);
    // strace -y names the file the descriptor refers to, links resolved; the argument is the fallback.
    const file = call.resultPath?.startsWith("/")
      ? call.resultPath
      : path === undefined
        ? undefined
        : this.resolve(call.pid, call, path);
    if (file === undefined) return;
    const flags = call.name === "creat" ? "O_WRONLY|O_CREAT|O_TRUNC" : call.args;
    const directory = /\bO_DIRECTORY\b/.test(flags);
    const target = directory && !file.endsWith("/") ? `${file}/` : file;
    if (/\bO_RDWR\b/.test(flags)) {
      this.note(target, "read");
      this.note(target, "write");
    } else if (/\bO_WRONLY\b/.test(flags)) this.note(target, "write");
    else this.note(target, "read");
    if (/\bO_CREAT\b/.test(flags)) this.note(target, "create");
  }

  private note(path: string, access: FileAccess): void {
    const set = this.accesses.get(path) ?? new Set<FileAccess>();
    set.add(access);
    this.accesses.set(path, set);
  }

  private cwdOf(pid: number): string {
    return this.cwds.get(pid) ?? this.options.cwd;
  }

  private absolute(pid: number, path: string): string {
    return posix.resolve(this.cwdOf(pid), path);
  }

  /** A path argument, made absolute against the call's directory descriptor or the process's cwd. */
  private resolve(pid: number, call: TracedCall, path: string): string {
    const [directory] = descriptorPaths(call.args);
    const absolute =
      path.startsWith("/") || directory === undefined
        ? this.absolute(pid, path)
        : posix.resolve(directory, path);
    return this.options.canonical ? this.options.canonical(absolute) : absolute;
  }
}

// Names a program cannot know in advance: /proc/<pid>, terminals, and mkstemp-style random suffixes
// (`tmp.Ab12Cd`, `tmpk2j3h4_x`, `lockstep-record-Xy7Q2a`). A suffix counts as random when it has six
// or more characters mixing digits and letters or upper and lower case, which ordinary names
// (`libc.so.6`, `LC_IDENTIFICATION`, `x86_64-linux-gnu`) do not.
const PROC_PROCESS = /^\/proc\/(?:\d+|self|thread-self)(?=\/|$)/;
const PROC_TASK = /^\/proc\/\*\/task\/\d+(?=\/|$)/;
const TERMINAL = /^\/dev\/pts\/\d+$/;
const RANDOM_SUFFIX = /^(tmp|.*[._-])([A-Za-z0-9_]{6,})$/;

function isRandom(text: string): boolean {
  const digits = /\d/.test(text);
  const letters = /[A-Za-z]/.test(text);
  return (digits && letters) || (/[a-z]/.test(text) && /[A-Z]/.test(text));
}

/** A path with its volatile parts replaced by AppArmor globs (`*` stays within one path component). */
export function foldVolatilePath(path: string): string {
  let folded = path.replace(PROC_PROCESS, "/proc/*").replace(PROC_TASK, "/proc/*/task/*");
  if (TERMINAL.test(folded)) return "/dev/pts/*";
  if (folded.startsWith("/proc/")) return folded;
  folded = folded
    .split("/")
    .map((component) => {
      const match = RANDOM_SUFFIX.exec(component);
      return match?.[2] !== undefined && isRandom(match[2]) ? `${match[1]}*` : component;
    })
    .join("/");
  return folded;
}

export interface FileRules {
  executables: string[];
  paths: AppArmorPaths;
}

/**
 * The structured AppArmor rules for the recorded accesses: executables (`rix`), then each other path
 * by what was done to it; creating a file is writing to it for AppArmor. Volatile names are folded,
 * and when a list would be longer than `maxPerList` the paths are folded into their directories
 * (`dir/*`, then `dir/**` at shallower levels) until it fits.
 */
export function fileRules(
  accesses: ReadonlyMap<string, ReadonlySet<FileAccess>>,
  maxPerList: number,
): FileRules {
  const folded = new Map<string, Set<FileAccess>>();
  for (const [path, kinds] of accesses) {
    const key = foldVolatilePath(path);
    const set = folded.get(key) ?? new Set<FileAccess>();
    for (const kind of kinds) set.add(kind);
    folded.set(key, set);
  }
  const executables: string[] = [];
  const readOnly: string[] = [];
  const readWrite: string[] = [];
  const writeOnly: string[] = [];
  for (const [path, kinds] of folded) {
    if (kinds.has("exec")) executables.push(path);
    const writes = kinds.has("write") || kinds.has("create");
    if (writes && kinds.has("read")) readWrite.push(path);
    else if (writes) writeOnly.push(path);
    else if (kinds.has("read") && !kinds.has("exec")) readOnly.push(path);
  }
  const paths: AppArmorPaths = {};
  const lists = { readOnly, readWrite, writeOnly };
  for (const [list, entries] of Object.entries(lists))
    if (entries.length > 0) paths[list as keyof AppArmorPaths] = foldToFit(entries, maxPerList);
  return { executables: foldToFit(executables, maxPerList), paths };
}

/**
 * `paths` sorted, folded into ever shallower directories until at most `max` are left (or, when even
 * that is too many, each top-level directory as itself and everything below it).
 */
export function foldToFit(paths: readonly string[], max: number): string[] {
  let current = [...new Set(paths)].sort();
  const deepest = Math.max(0, ...current.map((p) => p.split("/").length - 1));
  for (let depth = deepest - 1; current.length > max && depth >= 1; depth--) {
    current = [
      ...new Set(
        current.map((path) => {
          const components = path.split("/");
          if (components.length - 1 <= depth) return path;
          const glob = components.length - 1 === depth + 1 ? "*" : "**";
          return `${components.slice(0, depth + 1).join("/")}/${glob}`;
        }),
      ),
    ].sort();
    // `dir/**` covers `dir/*`.
    const deep = new Set(current.filter((p) => p.endsWith("/**")).map((p) => p.slice(0, -1)));
    current = current.filter((p) => !deep.has(p));
  }
  return current;
}

/** Paths written or created outside `writable` (and outside /dev, /proc, /sys, which are not the image's). */
export function writesOutside(paths: AppArmorPaths, writable: readonly string[]): string[] {
  const roots = [...writable.map(foldVolatilePath), "/dev", "/proc", "/sys"].map((p) =>
    p.replace(/\/+$/, ""),
  );
  const written = [...(paths.readWrite ?? []), ...(paths.writeOnly ?? [])];
  return written.filter((path) => !roots.some((root) => path === root || path.startsWith(`${root}/`)));
}
