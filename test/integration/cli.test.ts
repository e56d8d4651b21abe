// `lockstep record` on real programs with the real strace, the recorded profile enforced by the real
// runc, and the other commands run as real processes. (convert vs. the bytes a real agent writes:
// agent.test.ts, which has the agents running.)
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { LINT_RULES } from "../../src/api/lint-seccomp.ts";
import { syscallsInTrace } from "../../src/api/record.ts";
import { type ContainerResult, runInBusybox } from "../harness/runc.ts";

const cli = join(import.meta.dirname, "../../src/cli/main.ts");
const lockstep = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env });

// Reads and writes files and opens a socket (to loopback only; nothing listens, the connect is refused).
const SCRIPT = "echo hello > /tmp/f; cat /tmp/f; busybox nc -w 1 127.0.0.1 9 </dev/null; echo done";

const work = mkdtempSync(join(tmpdir(), "lockstep-cli-"));
const file = (name: string, content: string | object) => {
  const path = join(work, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
};

/**
 * runInBusybox with process.noNewPrivileges off: what Kubernetes gives a container unless it sets
 * allowPrivilegeEscalation: false. runc then applies the filter before it drops capabilities and
 * switches user, so more of runc's own calls run under the filter. (The shared harness keeps runc's
 * default, noNewPrivileges on.)
 */
async function runInBusyboxWithoutNoNewPrivileges(
  seccompFile: string,
  args: readonly string[],
): Promise<ContainerResult> {
  const bundle = mkdtempSync(join(tmpdir(), "lockstep-cli-runc-"));
  const id = `lockstep-cli-${randomBytes(4).toString("hex")}`;
  try {
    mkdirSync(join(bundle, "rootfs", "bin"), { recursive: true });
    mkdirSync(join(bundle, "rootfs", "tmp"), { recursive: true });
    copyFileSync("/usr/bin/busybox", join(bundle, "rootfs", "bin", "busybox"));
    execFileSync("runc", ["spec", "--bundle", bundle]);
    const config = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
    config.process.args = ["/bin/busybox", ...args];
    config.process.terminal = false;
    config.process.noNewPrivileges = false;
    config.root.readonly = false;
    config.linux.seccomp = JSON.parse(readFileSync(seccompFile, "utf8"));
    writeFileSync(join(bundle, "config.json"), JSON.stringify(config));
    return await new Promise((resolve) => {
      execFile("runc", ["run", "--bundle", bundle, id], { timeout: 30_000 }, (error, stdout, stderr) => {
        resolve({ exitCode: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
      });
    });
  } finally {
    spawnSync("runc", ["delete", "--force", id], { stdio: "ignore" });
    rmSync(bundle, { recursive: true, force: true });
  }
}

describe("lockstep record", () => {
  let profile: string;
  beforeAll(() => {
    const recorded = lockstep(["record", "--output", "json", "--", "busybox", "sh", "-c", SCRIPT]);
    expect(recorded.status, recorded.stderr).toBe(0);
    expect(recorded.stderr).toMatch(
      /lockstep: busybox exited with 0; \d+ distinct syscalls recorded, \d+ allowed/,
    );
    profile = file("recorded.json", recorded.stdout);
  });

  it("records a program that runc then runs under the profile; a syscall it never made fails with EPERM", async () => {
    const run = await runInBusybox(profile, ["sh", "-c", SCRIPT]);
    expect(run.stderr).toMatch(/nc: can't connect to remote host \(127\.0\.0\.1\): Connection refused/);
    expect(run.stdout).toBe("hello\ndone\n");
    expect(run.exitCode).toBe(0);

    const mkdir = await runInBusybox(profile, ["mkdir", "/tmp/new-dir"]);
    expect(mkdir.stderr).toMatch(/can't create directory '\/tmp\/new-dir': Operation not permitted/);
    expect(mkdir.exitCode).not.toBe(0);
  });

  it("covers what runc calls after the filter without noNewPrivileges too (the Kubernetes default)", async () => {
    const run = await runInBusyboxWithoutNoNewPrivileges(profile, ["sh", "-c", SCRIPT]);
    expect(run.stdout, run.stderr).toBe("hello\ndone\n");
    expect(run.exitCode).toBe(0);
    const mkdir = await runInBusyboxWithoutNoNewPrivileges(profile, ["mkdir", "/tmp/new-dir"]);
    expect(mkdir.stderr).toMatch(/Operation not permitted/);
  });

  it("needs the runtime's calls: the program's own syscalls alone do not get the container started", async () => {
    const trace = join(work, "own.trace");
    execFileSync("strace", ["-f", "-qq", "-o", trace, "busybox", "sh", "-c", SCRIPT], { stdio: "ignore" });
    const own = file("own-only.json", {
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 1,
      syscalls: [{ names: syscallsInTrace(readFileSync(trace, "utf8")).sort(), action: "SCMP_ACT_ALLOW" }],
    });
    const run = await runInBusybox(own, ["sh", "-c", SCRIPT]);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/operation not permitted/);
    expect(run.exitCode).not.toBe(0);
  });

  it("lint's never-matches agrees with runc: the rule it flags has no effect on what runc enforces", async () => {
    const recorded = JSON.parse(readFileSync(profile, "utf8"));
    const mkdirRules = {
      // The conditional allow comes first, but the unconditional EACCES decides every mkdir.
      conditionalFirst: [
        { names: ["mkdir"], action: "SCMP_ACT_ALLOW", args: [{ index: 1, value: 0, op: "SCMP_CMP_GE" }] },
        { names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
      ],
      // Of two unconditional rules the first decides.
      allowFirst: [
        { names: ["mkdir"], action: "SCMP_ACT_ALLOW" },
        { names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
      ],
    };
    const first = recorded.syscalls.length;
    for (const [name, rules] of Object.entries(mkdirRules)) {
      const path = file(`${name}.json`, { ...recorded, syscalls: [...recorded.syscalls, ...rules] });
      const flagged = JSON.parse(lockstep(["lint", "--output", "json", path]).stdout).filter(
        (f: { rule: string }) => f.rule === "never-matches",
      );
      const ignored = name === "conditionalFirst" ? first : first + 1;
      expect(flagged.map((f: { path: string }) => f.path)).toEqual([`syscalls[${ignored}].names[0]`]);
      const run = await runInBusybox(path, ["mkdir", "/tmp/new-dir"]);
      if (name === "conditionalFirst") expect(run.stderr).toMatch(/Permission denied/);
      else expect(run.exitCode, run.stderr).toBe(0);
    }
  });

  it("prints a SeccompProfile that lint accepts, and merges earlier recordings", () => {
    const first = lockstep([
      "record",
      "--name",
      "cat-only",
      "--only",
      "seccomp",
      "--",
      "busybox",
      "cat",
      "/etc/hostname",
    ]);
    expect(first.status, first.stderr).toBe(0);
    const object = parse(first.stdout);
    expect(object).toMatchObject({
      apiVersion: "lockstep.dev/v1alpha1",
      kind: "SeccompProfile",
      metadata: { name: "cat-only" },
      spec: { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1 },
    });
    const catNames: string[] = object.spec.syscalls[0].names;
    expect(catNames).toEqual([...catNames].sort());
    const catFile = file("cat.yaml", first.stdout);
    expect(lockstep(["lint", catFile]).status).toBe(0);

    const merged = lockstep([
      "record",
      "--output",
      "json",
      "--merge",
      catFile,
      "--",
      "busybox",
      "mkdir",
      join(work, "d"),
    ]);
    expect(merged.status, merged.stderr).toBe(0);
    const mergedNames: string[] = JSON.parse(merged.stdout).syscalls[0].names;
    for (const name of catNames) expect(mergedNames).toContain(name);
    expect(mergedNames).toContain("mkdir");
    expect(catNames).not.toContain("mkdir");
  });

  it("names a syscall newer than strace, and keeps and reports a number nobody knows", () => {
    // perl's syscall(): 462 is mseal (Linux 6.10), which strace 6.1 prints as syscall_0x1ce; 999 is no syscall.
    const recorded = lockstep([
      "record",
      "--output",
      "json",
      "--",
      "perl",
      "-e",
      "syscall(462, 0, 0, 0); syscall(999)",
    ]);
    expect(recorded.status, recorded.stderr).toBe(0);
    const names: string[] = JSON.parse(recorded.stdout).syscalls[0].names;
    expect(names).toContain("mseal");
    expect(names).toContain("syscall_0x3e7");
    expect(recorded.stderr).toMatch(/kept syscalls missing from the syscall table .*: syscall_0x3e7/);
    // lint reports it as well, instead of refusing the file.
    const lint = lockstep(["lint", file("unknown.json", recorded.stdout)]);
    expect(lint.status).toBe(1);
    expect(lint.stdout).toMatch(
      /error: syscalls\[0\]\.names\[\d+\]: unknown syscall "syscall_0x3e7".*\[unknown-syscall\]/,
    );
  });

  it("on Ctrl-C stops the command and still prints what it recorded", async () => {
    // Its own process group, as a shell gives a foreground job: Ctrl-C signals the whole group.
    const child = spawn(
      process.execPath,
      [cli, "record", "--progress", "--only", "seccomp", "--", "busybox", "sleep", "60"],
      {
        detached: true,
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    const recording = new Promise<void>((resolve) =>
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
        if (stderr.includes("distinct syscalls so far")) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    await recording;
    process.kill(-(child.pid as number), "SIGINT");
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/lockstep: busybox was killed by SIGINT; \d+ distinct syscalls recorded/);
    expect(parse(stdout).spec.syscalls[0].names).toContain("set_tid_address"); // the program's, not the runtime's
  });

  it("prints a progress line when asked", () => {
    const recorded = lockstep(["record", "--progress", "--", "busybox", "sleep", "2"]);
    expect(recorded.status).toBe(0);
    expect(recorded.stderr).toMatch(/recording busybox: \ds, \d+ distinct syscalls so far/);
  });
});

const DENIED_BY_ALLOW_ALL = [
  ...[
    "bpf",
    "mount",
    "umount",
    "umount2",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "move_mount",
    "open_tree",
  ],
  ...[
    "mount_setattr",
    "ptrace",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
  ],
  ...[
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "unshare",
    "setns",
    "clone",
    "clone3",
    "personality",
    "socket",
  ],
];

describe("lockstep lint", () => {
  const profileWith = (syscalls: object[], extra: object = {}) =>
    file(`lint-${randomBytes(3).toString("hex")}.json`, {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls,
      ...extra,
    });

  // One real CLI run per rule; the rules' finer cases are unit-tested in src/api/lint-seccomp.test.ts.
  const cases: Record<(typeof LINT_RULES)[number], { profile: () => string; severity: string }> = {
    "unknown-syscall": {
      profile: () => profileWith([{ names: ["opn"], action: "SCMP_ACT_ALLOW" }]),
      severity: "error",
    },
    "dangerous-syscall": {
      profile: () => profileWith([{ names: ["bpf"], action: "SCMP_ACT_ALLOW" }]),
      severity: "error",
    },
    "namespace-creation": {
      profile: () => profileWith([{ names: ["unshare"], action: "SCMP_ACT_ALLOW" }]),
      severity: "error",
    },
    "personality-unfiltered": {
      profile: () => profileWith([{ names: ["personality"], action: "SCMP_ACT_ALLOW" }]),
      severity: "warning",
    },
    "socket-family": {
      profile: () => profileWith([{ names: ["socket"], action: "SCMP_ACT_ALLOW" }]),
      severity: "warning",
    },
    "default-allow": {
      // Allows by default but denies every call the other rules are about: only this finding is left.
      profile: () =>
        profileWith([{ names: DENIED_BY_ALLOW_ALL, action: "SCMP_ACT_ERRNO" }], {
          defaultAction: "SCMP_ACT_ALLOW",
        }),
      severity: "warning",
    },
    "never-matches": {
      profile: () => profileWith([{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }]),
      severity: "warning",
    },
    "condition-always-true": {
      profile: () =>
        profileWith([
          {
            names: ["ioctl"],
            action: "SCMP_ACT_ALLOW",
            args: [{ index: 1, value: 0, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }],
          },
        ]),
      severity: "warning",
    },
  };

  it.each(LINT_RULES)("reports %s, with the exit code its severity calls for", (rule) => {
    const { profile, severity } = cases[rule];
    const path = profile();
    const json = lockstep(["lint", "--output", "json", path]);
    expect(json.stderr).toBe("");
    expect(
      JSON.parse(json.stdout).map((f: { rule: string; severity: string }) => `${f.rule}:${f.severity}`),
    ).toEqual([`${rule}:${severity}`]);
    expect(json.status).toBe(severity === "error" ? 1 : 0);
    const text = lockstep(["lint", "--fail-on", "warning", path]);
    expect(text.stdout).toMatch(
      new RegExp(`^${path.replace(/[.]/g, "\\.")}: ${severity}: .*\\[${rule}\\]\\n$`),
    );
    expect(text.status).toBe(1);
  });

  it("lints every profile of a multi-document file and names each", () => {
    const path = file(
      "two.yaml",
      `apiVersion: lockstep.dev/v1alpha1
kind: SeccompProfile
metadata: {name: base}
spec:
  defaultAction: SCMP_ACT_ERRNO
  syscalls: [{names: [read, write, ptrace], action: SCMP_ACT_ALLOW}]
---
apiVersion: lockstep.dev/v1alpha1
kind: SeccompProfile
metadata: {name: child}
spec:
  baseProfileName: base
  syscalls: [{names: [ptrace], action: SCMP_ACT_ERRNO}]
`,
    );
    const result = lockstep(["lint", path]);
    expect(result.stdout).toBe(
      `${path} (SeccompProfile "base"): error: spec.syscalls[0].names[2]: allows ptrace, which inspects and controls other processes [dangerous-syscall]\n${path} (SeccompProfile "child"): no findings\n`,
    );
    expect(result.status).toBe(1);
  });
});

describe("lockstep diff and convert", () => {
  it("diff shows what each profile allows that the other does not, through inheritance", () => {
    const a = file("a.json", {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["read", "mkdir"], action: "SCMP_ACT_ALLOW" }],
    });
    const b = file(
      "b.yaml",
      "apiVersion: lockstep.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: b}\nspec:\n  baseProfileName: runtime/default\n  syscalls: [{names: [mkdir], action: SCMP_ACT_ERRNO}]\n",
    );
    const result = lockstep(["diff", a, b]);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(
      new RegExp(`^only ${a.replace(/[.]/g, "\\.")} allows \\(1\\):\\n  mkdir\\n`),
    );
    expect(result.stdout).toMatch(/only .*b\.yaml allows \(\d+\):\n(.*\n)* {2}accept\n/);
    expect(lockstep(["diff", a, a]).status).toBe(0);
  });

  it("convert renders inheritance from a --base file, for the node's architecture", () => {
    const base = file(
      "base.yaml",
      "apiVersion: lockstep.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: base}\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  syscalls: [{names: [read], action: SCMP_ACT_ALLOW}]\n",
    );
    const child = file(
      "child.yaml",
      "apiVersion: lockstep.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: child}\nspec:\n  baseProfileName: base\n  syscalls: [{names: [write], action: SCMP_ACT_ALLOW}]\n",
    );
    const missing = lockstep(["convert", child]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/base profile "base" not found .*--base FILE/);
    const converted = lockstep(["convert", child, "--base", base, "--node-arch", "arm64"]);
    expect(converted.status, converted.stderr).toBe(0);
    expect(JSON.parse(converted.stdout)).toEqual({
      defaultAction: "SCMP_ACT_ERRNO",
      architectures: ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
      syscalls: [
        { names: ["read"], action: "SCMP_ACT_ALLOW" },
        { names: ["write"], action: "SCMP_ACT_ALLOW" },
      ],
    });
  });
});

describe("bad input", () => {
  it("says what is wrong, without a stack trace", () => {
    const noStrace = { ...process.env, PATH: dirname(process.execPath) };
    const cases: [string[], RegExp, NodeJS.ProcessEnv?][] = [
      [
        ["record", "--", "busybox", "true"],
        /^lockstep: strace not found: install it \(apt-get install strace\)\n$/,
        noStrace,
      ],
      [["record", "--", "no-such-command-xyz"], /^lockstep: command not found: no-such-command-xyz\n$/],
      [["record", "--output", "xml", "--", "true"], /--output xml: must be yaml or json/],
      [["record", "--merge", "/nonexistent.yaml", "--", "true"], /\/nonexistent\.yaml: no such file/],
      [["lint", "/nonexistent/profile.yaml"], /no such file/],
      [["lint", "/etc/hostname"], /\/etc\/hostname: not a seccomp profile/],
      [
        ["lint", file("syntax.yaml", "kind: SeccompProfile\nspec:\n  syscalls: [\n")],
        /syntax\.yaml:4: not valid YAML or JSON/,
      ],
      [
        [
          "lint",
          file("typo.json", {
            defaultAction: "SCMP_ACT_ERRNO",
            syscalls: [{ names: ["read"], action: "SCMP_ACT_ALOW" }],
          }),
        ],
        /typo\.json: not a seccomp profile: syscalls\[0\]\.action: unknown action "SCMP_ACT_ALOW"/,
      ],
      [
        [
          "convert",
          file(
            "spec-typo.yaml",
            "apiVersion: lockstep.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: x}\nspec: {defaultAction: SCMP_ACT_ERRNO, sycalls: []}\n",
          ),
        ],
        /SeccompProfile "x": spec: Unrecognized key: "sycalls"/,
      ],
      [["lint", file("pod.yaml", "apiVersion: v1\nkind: Pod\n")], /a Pod is not a profile/],
      [["lint", "--fail-on", "info", "x"], /--fail-on info: must be error or warning/],
      [["lint", "--frobnicate", "x"], /Unknown option '--frobnicate'/],
      [["convert"], /usage: lockstep convert FILE/],
      [["diff", "only-one"], /usage: lockstep diff A B/],
      [
        ["convert", file("plain.json", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [] })],
        /plain OCI seccomp JSON is already what the agent writes/,
      ],
      [["frobnicate"], /unknown command "frobnicate"/],
    ];
    for (const [args, message, env] of cases) {
      const result = lockstep(args, env);
      expect(result.stderr, args.join(" ")).toMatch(message);
      expect(result.status, args.join(" ")).toBe(2);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("has --help on every command, and leaves a recorded command's --help alone", () => {
    for (const command of ["record", "convert", "lint", "diff"]) {
      const help = lockstep([command, "--help"]);
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^usage: lockstep ${command} `));
    }
    expect(lockstep(["--help"]).stdout).toMatch(/^lockstep: record, convert, lint and diff/);
    const recorded = lockstep(["record", "--only", "seccomp", "--", "busybox", "--help"]);
    expect(recorded.status).toBe(0);
    expect(recorded.stdout).toMatch(/^apiVersion: lockstep\.dev\/v1alpha1/);
  });
});
