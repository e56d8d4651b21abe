import { describe, expect, it } from "vitest";
import { filesChangedInTrace } from "../harness/traced-writes.ts";

// Lines as strace 6.1 writes them with TRACE_ARGS and -o (the pid first), taken from a guest run.
const trace = [
  '686   openat(AT_FDCWD</tmp/lockstep-uml-femBBx>, "/tmp/x", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 17</tmp/x>',
  '686   openat(AT_FDCWD</>, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 18</etc/passwd>',
  '686   rename("/tmp/x", "/tmp/z")        = 0',
  '690   openat(AT_FDCWD</tmp/lockstep-apparmor-Ab12>, "policy", O_RDONLY) = 3</tmp/lockstep-apparmor-Ab12/policy>',
  '691   openat(AT_FDCWD</tmp/lockstep-apparmor-Ab12>, "out", O_WRONLY|O_CREAT, 0600 <unfinished ...>',
  "691   <... openat resumed>)            = 4</tmp/lockstep-apparmor-Ab12/out>",
  '692   unlinkat(5</var/lib/kubelet/seccomp/lockstep>, ".tmp-1", 0) = 0',
  '693   unlink("relative") = -1 ENOENT (No such file or directory)',
  "693   +++ exited with 0 +++",
].join("\n");

describe("filesChangedInTrace", () => {
  it("names what was opened for writing, renamed or removed, relative paths joined to strace's directory", () => {
    expect(filesChangedInTrace(trace)).toEqual({
      paths: [
        "/tmp/lockstep-apparmor-Ab12/out",
        "/tmp/x",
        "/tmp/z",
        "/var/lib/kubelet/seccomp/lockstep/.tmp-1",
      ],
      unresolved: ['693   unlink("relative") = -1 ENOENT (No such file or directory)'],
    });
  });

  it("leaves out reads and lines that are no call", () => {
    expect(
      filesChangedInTrace('1 openat(AT_FDCWD</>, "/etc/shadow", O_RDONLY) = 3\n--- SIGCHLD ---\n'),
    ).toEqual({
      paths: [],
      unresolved: [],
    });
  });
});
