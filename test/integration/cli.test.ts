// `lockstep record` on a real program with the real strace, and the recorded profile enforced by runc.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runInBusybox } from "../harness/runc.ts";

const cli = join(import.meta.dirname, "../../src/cli/main.ts");
const lockstep = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });

// Reads and writes files and opens a socket (to loopback only; nothing listens, the connect is refused).
const SCRIPT = "echo hello > /tmp/f; cat /tmp/f; busybox nc -w 1 127.0.0.1 9 </dev/null; echo done";

describe("lockstep record", () => {
  it("records a real program into a profile runc enforces: the program runs, a syscall it never made fails with EPERM", async () => {
    const recorded = lockstep("record", "--output", "json", "--", "busybox", "sh", "-c", SCRIPT);
    expect(recorded.status, recorded.stderr).toBe(0);
    expect(recorded.stderr).toMatch(/busybox exited with \d+; \d+ syscalls recorded/);
    const dir = mkdtempSync(join(tmpdir(), "lockstep-cli-"));
    const profile = join(dir, "recorded.json");
    writeFileSync(profile, recorded.stdout);

    const run = await runInBusybox(profile, ["sh", "-c", SCRIPT]);
    expect(run.stdout).toBe("hello\ndone\n");
    expect(run.exitCode).toBe(0);

    const mkdir = await runInBusybox(profile, ["mkdir", "/tmp/new-dir"]);
    expect(mkdir.exitCode).not.toBe(0);
    expect(mkdir.stderr).toMatch(/Operation not permitted/);
  });

  it("prints a SeccompProfile that lint accepts and merges earlier recordings", () => {
    const dir = mkdtempSync(join(tmpdir(), "lockstep-cli-"));
    const first = lockstep("record", "--name", "cat-only", "--", "busybox", "cat", "/etc/hostname");
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(
      /^apiVersion: lockstep.dev\/v1alpha1\nkind: SeccompProfile\nmetadata:\n {2}name: cat-only/,
    );
    writeFileSync(join(dir, "first.yaml"), first.stdout);
    const merged = lockstep(
      "record",
      "--output",
      "json",
      "--merge",
      join(dir, "first.yaml"),
      "--",
      "busybox",
      "true",
    );
    const names: string[] = JSON.parse(merged.stdout).syscalls[0].names;
    expect(names).toContain("read");
    writeFileSync(join(dir, "merged.json"), merged.stdout);
    expect(lockstep("lint", join(dir, "merged.json")).status).toBe(0);
  });

  it("says what is wrong, without a stack trace, for bad input", () => {
    const cases: [string[], RegExp][] = [
      [["record", "--", "no-such-command-xyz"], /command not found: no-such-command-xyz/],
      [["lint", "/nonexistent/profile.yaml"], /no such file/],
      [["lint", "/etc/hostname"], /not a seccomp profile/],
      [["convert"], /usage: lockstep convert FILE/],
      [["frobnicate"], /unknown command "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      const result = lockstep(...args);
      expect(result.status, args.join(" ")).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
    }
    for (const command of ["record", "convert", "lint", "diff"])
      expect(lockstep(command, "--help").stdout).toMatch(/^usage: lockstep /);
  });
});
