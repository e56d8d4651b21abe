// What a traced process tree changed in the file system, read from `strace -f -y` output: the paths it
// opened for writing, created, renamed, linked, removed or changed the mode, owner or times of. Used to
// check DESIGN invariant 4 on a real node (the agent in the AppArmor guest, apparmor-node.ts), where the
// kubelet and containerd write beside it and a before/after listing could not tell whose a change is.

/** The syscalls that change a file system entry, for strace's `-e trace=`. */
export const FILE_CHANGING_SYSCALLS = [
  "open",
  "openat",
  "openat2",
  "creat",
  "mkdir",
  "mkdirat",
  "mknod",
  "mknodat",
  "rename",
  "renameat",
  "renameat2",
  "link",
  "linkat",
  "symlink",
  "symlinkat",
  "unlink",
  "unlinkat",
  "rmdir",
  "truncate",
  "chmod",
  "fchmodat",
  "chown",
  "lchown",
  "fchownat",
  "utime",
  "utimes",
  "utimensat",
  "setxattr",
  "lsetxattr",
  "removexattr",
  "lremovexattr",
] as const;

/** The strace arguments that produce what `filesChangedInTrace` reads. */
export const TRACE_ARGS = [
  "-f",
  "-y",
  "-qq",
  "-s",
  "4096",
  "-e",
  `trace=${FILE_CHANGING_SYSCALLS.join(",")}`,
];

const OPEN_SYSCALLS = new Set(["open", "openat", "openat2"]);
/** An open that can change the file: the others only read. */
const WRITING_OPEN = /\bO_(WRONLY|RDWR|CREAT|TRUNC)\b/;
/** `pid name(args` up to the end of the line (an `<unfinished ...>` call carries all its arguments). */
const CALL = /^(?:\d+\s+)?([a-z0-9_]+)\((.*)$/;
/** A path argument, with the directory it is relative to when strace -y decorated that descriptor. */
const PATH_ARGUMENT = /(?:(?:AT_FDCWD|-?\d+)<([^>]*)>,\s*)?"((?:[^"\\]|\\.)*)"/g;

export interface TracedChanges {
  /** Every absolute path a file-changing call named, sorted, each once. */
  paths: string[];
  /** Calls whose relative path has no directory strace named: the test cannot tell where they went. */
  unresolved: string[];
}

/** The file-system entries a traced process tree changed (or tried to), from `strace TRACE_ARGS` output. */
export function filesChangedInTrace(trace: string): TracedChanges {
  const paths = new Set<string>();
  const unresolved: string[] = [];
  for (const line of trace.split("\n")) {
    const call = CALL.exec(line.trim());
    if (call === null) continue;
    const [, name = "", args = ""] = call;
    if (!(FILE_CHANGING_SYSCALLS as readonly string[]).includes(name)) continue;
    if (OPEN_SYSCALLS.has(name) && !WRITING_OPEN.test(args)) continue;
    for (const [, dir, path = ""] of args.matchAll(PATH_ARGUMENT)) {
      if (path.startsWith("/")) paths.add(path);
      else if (dir !== undefined) paths.add(`${dir.replace(/\/$/, "")}/${path}`);
      else unresolved.push(line.trim());
    }
  }
  return { paths: [...paths].sort(), unresolved };
}
