import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProfilePathSchema } from "../../api/apparmor.ts";
import {
  type FileAccess,
  FileActivity,
  fileRules,
  foldToFit,
  foldVolatilePath,
  writesOutside,
} from "./files.ts";
import { callsInTrace } from "./trace-calls.ts";

function activity(trace: string, canonical?: (path: string) => string): Record<string, FileAccess[]> {
  const files = new FileActivity({ cwd: "/work", ...(canonical ? { canonical } : {}) });
  for (const call of callsInTrace(trace)) files.add(call);
  return Object.fromEntries([...files.accesses].map(([path, kinds]) => [path, [...kinds].sort()]));
}

describe("FileActivity", () => {
  it("sorts opens by their flags, and takes the descriptor's resolved path when strace -y gives one", () => {
    expect(
      activity(`1 openat(AT_FDCWD</work>, "/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 3</usr/lib/libc.so.6>
1 openat(AT_FDCWD</work>, "out", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</work/out>
1 openat(AT_FDCWD</work>, "db", O_RDWR) = 4</work/db>
1 openat(AT_FDCWD</work>, "/etc", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3</etc>
1 open("/dev/null", O_WRONLY) = 3</dev/null>
1 creat("/work/new", 0644) = 5</work/new>
1 openat(AT_FDCWD</work>, "/missing", O_RDONLY) = -1 ENOENT (No such file or directory)
`),
    ).toEqual({
      "/usr/lib/libc.so.6": ["read"],
      "/work/out": ["create", "write"],
      "/work/db": ["read", "write"],
      "/etc/": ["read"],
      "/dev/null": ["write"],
      "/work/new": ["create", "write"],
    });
  });

  it("follows the working directory and the running executable through chdir, clone and exec", () => {
    expect(
      activity(
        `1 execve("/bin/busybox", [...], 0x7f /* 3 vars */) = 0
1 chdir("sub") = 0
1 clone(child_stack=NULL, flags=SIGCHLD) = 2
2 execve("/proc/self/exe", [...], 0x7f /* 3 vars */) = 0
2 mkdir("d", 0777) = 0
2 unlinkat(AT_FDCWD</elsewhere>, "f", 0) = 0
2 renameat2(AT_FDCWD</work/sub>, "a", AT_FDCWD</work/sub>, "b", RENAME_NOREPLACE) = 0
2 symlink("/target", "link") = 0
2 fchown(3</work/sub/owned>, 1, 1) = 0
2 chown("/gone", 1, 1) = -1 EPERM (Operation not permitted)
`,
        (path) => path.replace(/^\/bin\//, "/usr/bin/"),
      ),
    ).toEqual({
      "/usr/bin/busybox": ["exec"],
      "/work/sub/d/": ["create"],
      "/elsewhere/f": ["write"],
      "/work/sub/a": ["write"],
      "/work/sub/b": ["write"],
      "/work/sub/link": ["create"],
      "/work/sub/owned": ["write"],
    });
  });
});

describe("foldVolatilePath", () => {
  it("folds process ids, terminals and mkstemp-style names, and leaves ordinary names alone", () => {
    const cases: Record<string, string> = {
      "/proc/1234/status": "/proc/*/status",
      "/proc/self/maps": "/proc/*/maps",
      "/proc/thread-self/attr/current": "/proc/*/attr/current",
      "/proc/1234/task/1240/stat": "/proc/*/task/*/stat",
      "/proc/sys/kernel/ngroups_max": "/proc/sys/kernel/ngroups_max",
      "/dev/pts/3": "/dev/pts/*",
      "/tmp/tmp.Ab12Cd": "/tmp/tmp.*",
      "/tmp/tmpk2j3h4_x/data": "/tmp/tmp*/data",
      "/tmp/lockstep-record-Xy7Q2a/trace": "/tmp/lockstep-record-*/trace",
      "/usr/lib/x86_64-linux-gnu/libc.so.6": "/usr/lib/x86_64-linux-gnu/libc.so.6",
      "/usr/lib/locale/C.utf8/LC_IDENTIFICATION": "/usr/lib/locale/C.utf8/LC_IDENTIFICATION",
      "/usr/lib/python3.11/site-packages/__pycache__": "/usr/lib/python3.11/site-packages/__pycache__",
      "/etc/ld.so.cache": "/etc/ld.so.cache",
    };
    for (const [path, folded] of Object.entries(cases)) expect(foldVolatilePath(path), path).toBe(folded);
  });

  it("is idempotent and keeps a path AppArmor's structured form accepts acceptable", () => {
    const component = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/);
    fc.assert(
      fc.property(fc.array(component, { minLength: 1, maxLength: 5 }), (components) => {
        const path = `/${components.join("/")}`;
        const folded = foldVolatilePath(path);
        expect(foldVolatilePath(folded)).toBe(folded);
        expect(ProfilePathSchema.safeParse(folded).success).toBe(true);
      }),
    );
  });
});

/** Whether an AppArmor glob (`*` within a component, `**` across them) matches `path`. */
function globMatches(glob: string, path: string): boolean {
  const pattern = glob
    .split(/(\*\*|\*)/)
    .map((part) =>
      part === "**" ? ".*" : part === "*" ? "[^/]*" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"),
    )
    .join("");
  return new RegExp(`^${pattern}$`).test(path);
}

describe("foldToFit", () => {
  it("folds into directories until the list fits, and every path stays allowed", () => {
    const path = fc
      .array(fc.constantFrom("a", "b", "c", "lib", "x.so"), { minLength: 1, maxLength: 5 })
      .map((c) => `/${c.join("/")}`);
    fc.assert(
      fc.property(fc.array(path, { maxLength: 40 }), fc.integer({ min: 5, max: 20 }), (paths, max) => {
        const folded = foldToFit(paths, max);
        const topLevel = new Set(paths.map((p) => p.split("/")[1])).size;
        expect(folded.length).toBeLessThanOrEqual(Math.max(max, 2 * topLevel));
        for (const p of paths)
          expect(
            folded.some((glob) => globMatches(glob, p)),
            p,
          ).toBe(true);
      }),
    );
  });

  it("keeps a list that fits as it is, sorted", () => {
    expect(foldToFit(["/b", "/a", "/b"], 5)).toEqual(["/a", "/b"]);
  });
});

describe("fileRules and writesOutside", () => {
  const accesses = new Map<string, Set<FileAccess>>([
    ["/usr/bin/app", new Set<FileAccess>(["exec", "read"])],
    ["/etc/app.conf", new Set<FileAccess>(["read"])],
    ["/proc/42/status", new Set<FileAccess>(["read"])],
    ["/proc/43/status", new Set<FileAccess>(["read"])],
    ["/data/db", new Set<FileAccess>(["read", "write"])],
    ["/tmp/tmp.Ab12Cd", new Set<FileAccess>(["create", "write"])],
    ["/dev/null", new Set<FileAccess>(["write"])],
  ]);

  it("lists executables apart and each other path by what was done to it, volatile names folded", () => {
    expect(fileRules(accesses, 256)).toEqual({
      executables: ["/usr/bin/app"],
      paths: {
        readOnly: ["/etc/app.conf", "/proc/*/status"],
        readWrite: ["/data/db"],
        writeOnly: ["/dev/null", "/tmp/tmp.*"],
      },
    });
  });

  it("finds the writes outside the writable directories, /dev and /proc not counted", () => {
    const { paths } = fileRules(accesses, 256);
    expect(writesOutside(paths, [])).toEqual(["/data/db", "/tmp/tmp.*"]);
    expect(writesOutside(paths, ["/data", "/tmp/"])).toEqual([]);
    expect(writesOutside(paths, ["/dat"])).toEqual(["/data/db", "/tmp/tmp.*"]);
  });
});
