// `lockstep record` on real programs with the real strace, the recorded profile enforced by the real
// runc, and the other commands run as real processes. (convert vs. the bytes a real agent writes:
// agent.test.ts, which has the agents running.)
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { RUNTIME_DEFAULT_CAPABILITIES } from "../../src/api/runtime-default.ts";
import { syscallsInTrace } from "../../src/cli/record/seccomp-profile.ts";
import { LINT_RULES } from "../../src/cli/seccomp/lint.ts";
import {
  type ExecCredentialCluster,
  GOOD_PLUGIN,
  startExecCredentialCluster,
} from "../harness/exec-kubeconfig.ts";
import { runInBusybox } from "../harness/runc.ts";

const cli = join(import.meta.dirname, "../../src/cli/main.ts");
const lockstep = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env });

// Reads and writes files and opens a socket (to loopback only; nothing listens, the connect is refused).
const SCRIPT = "echo hello > /tmp/f; cat /tmp/f; busybox nc -w 1 127.0.0.1 9 </dev/null; echo done";

const work = mkdtempSync(join(tmpdir(), "lockstep-cli-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const file = (name: string, content: string | object) => {
  const path = join(work, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
};

/**
 * runInBusybox with process.noNewPrivileges off: what Kubernetes gives a container unless it sets
 * allowPrivilegeEscalation: false. runc then applies the filter before it drops capabilities and
 * switches user, so more of runc's own calls run under the filter.
 */
const runInBusyboxWithoutNoNewPrivileges = (seccompFile: string, args: readonly string[]) =>
  runInBusybox(seccompFile, args, { noNewPrivileges: false });

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

  // One real CLI run per rule; the rules' finer cases are unit-tested in src/cli/seccomp/lint.test.ts.
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
    "conditions-ored": {
      profile: () =>
        profileWith([
          {
            names: ["chmod"],
            action: "SCMP_ACT_ALLOW",
            args: [
              { index: 1, value: 0o700, op: "SCMP_CMP_NE" },
              { index: 1, value: 0o755, op: "SCMP_CMP_NE" },
            ],
          },
        ]),
      severity: "error",
    },
    "conditions-overlap": {
      profile: () =>
        profileWith([
          {
            names: ["chmod"],
            action: "SCMP_ACT_ERRNO",
            errnoRet: 13,
            args: [{ index: 1, value: 0o700, op: "SCMP_CMP_EQ" }],
          },
          {
            names: ["chmod"],
            action: "SCMP_ACT_ALLOW",
            args: [{ index: 1, value: 0o755, op: "SCMP_CMP_NE" }],
          },
        ]),
      severity: "warning",
    },
    "masked-bits-ignored": {
      profile: () =>
        profileWith([
          {
            names: ["ioctl"],
            action: "SCMP_ACT_ALLOW",
            args: [{ index: 1, value: 0x0f, valueTwo: 0x10, op: "SCMP_CMP_MASKED_EQ" }],
          },
        ]),
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

  // Profiles that add chmod rules to runtime/default (so busybox sh runs), and what runc does with
  // `chmod 700`: each finding about how rules match is shown on the real runtime.
  const withChmodRules = (label: string, rules: object[]) =>
    file(
      `chmod-${label}.yaml`,
      stringify({
        apiVersion: "lockstep.dev/v1alpha1",
        kind: "SeccompProfile",
        metadata: { name: `chmod-${label}` },
        spec: { baseProfileName: "runtime/default", syscalls: rules },
      }),
    );
  const chmod700 = async (profile: string) => {
    const converted = lockstep(["convert", profile, "--node-arch", "amd64"]);
    expect(converted.status, converted.stderr).toBe(0);
    const run = await runInBusybox(file(`${basename(profile)}.json`, converted.stdout), [
      "sh",
      "-c",
      "touch /tmp/f && chmod 700 /tmp/f && echo changed",
    ]);
    return run.stdout === "changed\n" ? "allowed" : run.stderr.trim();
  };
  const findingsOf = (profile: string) =>
    JSON.parse(lockstep(["lint", "--output", "json", profile]).stdout).map(
      (f: { rule: string; path: string }) => `${f.rule} ${f.path}`,
    );
  const chmodIf = (action: string, ...args: object[]) => ({
    names: ["chmod"],
    action,
    ...(action === "SCMP_ACT_ERRNO" ? { errnoRet: 13 } : {}),
    args,
  });
  const mode = (op: string, value: number, valueTwo?: number) => ({ index: 1, value, op, valueTwo });

  it("conditions-ored agrees with runc: conditions on one argument are ORed, so the rule matches more", async () => {
    // "chmod to any mode but 0700": one condition, and runc denies chmod 0700.
    const single = withChmodRules("ored-1", [chmodIf("SCMP_ACT_ALLOW", mode("SCMP_CMP_NE", 0o700))]);
    expect(findingsOf(single)).toEqual([]);
    expect(await chmod700(single)).toBe("chmod: /tmp/f: Operation not permitted");
    // "... but 0700 and 0755": two conditions on argument 1, ORed by runc, and chmod 0700 goes through.
    const both = withChmodRules("ored-2", [
      chmodIf("SCMP_ACT_ALLOW", mode("SCMP_CMP_NE", 0o700), mode("SCMP_CMP_NE", 0o755)),
    ]);
    expect(findingsOf(both)).toEqual(["conditions-ored spec.syscalls[0].args"]);
    expect(await chmod700(both)).toBe("allowed");
  });

  it("conditions-overlap agrees with runc: the order of overlapping rules does not decide", async () => {
    const deny700 = chmodIf("SCMP_ACT_ERRNO", mode("SCMP_CMP_EQ", 0o700));
    const allowBut755 = chmodIf("SCMP_ACT_ALLOW", mode("SCMP_CMP_NE", 0o755));
    const denyFirst = withChmodRules("deny-first", [deny700, allowBut755]);
    const allowFirst = withChmodRules("allow-first", [allowBut755, deny700]);
    expect(findingsOf(denyFirst)).toEqual(["conditions-overlap spec.syscalls[1].names[0]"]);
    expect(findingsOf(allowFirst)).toEqual(["conditions-overlap spec.syscalls[1].names[0]"]);
    // libseccomp (2.5 here) lets the allow win on the shared argument, whichever rule comes first.
    expect(await chmod700(denyFirst)).toBe("allowed");
    expect(await chmod700(allowFirst)).toBe("allowed");
  });

  it("MASKED_EQ findings agree with runc: mask 0 matches every mode, valueTwo's bits outside the mask are dropped", async () => {
    const always = withChmodRules("mask-0", [chmodIf("SCMP_ACT_ALLOW", mode("SCMP_CMP_MASKED_EQ", 0, 0o10))]);
    expect(findingsOf(always)).toEqual(["condition-always-true spec.syscalls[0].args[0]"]);
    expect(await chmod700(always)).toBe("allowed");
    // (0700 & 07) == (010 & 07): libseccomp lets chmod 0700 through although 010 has a bit outside 07.
    const outside = withChmodRules("mask-outside", [
      chmodIf("SCMP_ACT_ALLOW", mode("SCMP_CMP_MASKED_EQ", 0o7, 0o10)),
    ]);
    expect(findingsOf(outside)).toEqual(["masked-bits-ignored spec.syscalls[0].args[0]"]);
    expect(await chmod700(outside)).toBe("allowed");
    // The same rule with a bit inside the mask that 0700 lacks: runc denies chmod 0700.
    const inside = withChmodRules("mask-inside", [
      chmodIf("SCMP_ACT_ALLOW", mode("SCMP_CMP_MASKED_EQ", 0o7, 0o1)),
    ]);
    expect(findingsOf(inside)).toEqual([]);
    expect(await chmod700(inside)).toBe("chmod: /tmp/f: Operation not permitted");
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
      `${path} (document 1, SeccompProfile "base"): error: spec.syscalls[0].names[2]: allows ptrace, which inspects and controls other processes [dangerous-syscall]\n${path} (document 2, SeccompProfile "child"): no findings\n`,
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

// Published defaults, stored with their sources (test/fixtures/seccomp/README.md).
const fixture = (name: string) => join(import.meta.dirname, "../fixtures/seccomp", name);
const ENGINE_DEFAULTS = {
  docker: fixture("moby-profiles-seccomp-v0.3.0-default.json"),
  podman: fixture("containers-common-podman-0d27a18a-seccomp.json"),
};
// containerd's default capability set, which `--capabilities default` stands for.
const DEFAULT_CAPS = [...RUNTIME_DEFAULT_CAPABILITIES];

describe.each(Object.entries(ENGINE_DEFAULTS))(
  "lockstep import of %s's published default",
  (engine, path) => {
    const imported = (...flags: string[]) => {
      const result = lockstep(["import", path, "--arch", "amd64", "--output", "json", ...flags]);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr).toMatch(new RegExp(`as ${engine} resolves it for amd64`));
      return file(`${engine}-${randomBytes(3).toString("hex")}.json`, result.stdout);
    };

    it("runs a container, and a CAP_SYS_ADMIN call stays denied without the capability even where the kernel would allow it", async () => {
      const withDefaultCaps = imported("--capabilities", "default");
      const plain = await runInBusybox(withDefaultCaps, ["sh", "-c", "echo hello > /tmp/f && cat /tmp/f"]);
      expect(plain.stdout, plain.stderr).toBe("hello\n");
      // The container really has CAP_SYS_ADMIN, so only seccomp can refuse sethostname(2).
      const admin = { capabilities: [...DEFAULT_CAPS, "CAP_SYS_ADMIN"] };
      const denied = await runInBusybox(withDefaultCaps, ["hostname", "lockstep-test"], admin);
      expect(denied.stderr).toMatch(/hostname: sethostname: Operation not permitted/);
      expect(denied.exitCode).not.toBe(0);
      const withAdmin = imported("--capabilities", "default,CAP_SYS_ADMIN");
      const allowed = await runInBusybox(
        withAdmin,
        ["sh", "-c", "hostname lockstep-test && hostname"],
        admin,
      );
      expect(allowed.stdout, allowed.stderr).toBe("lockstep-test\n");
    });

    it("resolves CAP_SYS_CHROOT's chroot by the capability set it is given", async () => {
      const chroot = ["chroot", "/", "/bin/busybox", "true"];
      const defaults = await runInBusybox(imported(), chroot, { capabilities: DEFAULT_CAPS });
      expect(defaults.exitCode, defaults.stderr).toBe(0);
      const without = await runInBusybox(
        imported("--capabilities", "CAP_CHOWN,CAP_SETUID,CAP_SETGID"),
        chroot,
        {
          capabilities: DEFAULT_CAPS,
        },
      );
      expect(without.stderr).toMatch(/chroot: can't change root directory to '\/': Operation not permitted/);
    });

    it("prints a SeccompProfile the schema accepts, with the engine's architectures and its rules for them", () => {
      const yaml = lockstep([
        "import",
        path,
        "--arch",
        "amd64",
        "--arch",
        "arm64",
        "--name",
        `${engine}-default`,
      ]);
      expect(yaml.status, yaml.stderr).toBe(0);
      const object = parse(yaml.stdout);
      expect(object).toMatchObject({ kind: "SeccompProfile", metadata: { name: `${engine}-default` } });
      expect(object.spec.architectures).toEqual([
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
      ]);
      expect(yaml.stderr).toMatch(/arch_prctl: \w+ keeps this rule only on amd64/);
      const names = object.spec.syscalls.flatMap((rule: { names: string[] }) => rule.names);
      expect(names).toContain("arm_fadvise64_64");
      expect(names).not.toContain("s390_runtime_instr");
      expect(lockstep(["lint", file(`${engine}-default.yaml`, yaml.stdout)]).stderr).toBe("");
    });
  },
);

describe("Docker's default next to runtime/default", () => {
  it("differs on amd64 only where the two projects chose differently (diff renders both for the node)", () => {
    const docker = lockstep(["import", ENGINE_DEFAULTS.docker, "--arch", "amd64", "--kernel", "6.1"]);
    const runtimeDefault = file(
      "runtime-default.yaml",
      "apiVersion: lockstep.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: rd}\nspec: {baseProfileName: runtime/default}\n",
    );
    const diff = lockstep([
      "diff",
      file("docker-default.yaml", docker.stdout),
      runtimeDefault,
      "--node-arch",
      "amd64",
    ]);
    // Docker gates the LSM calls on CAP_SYS_ADMIN; containerd allows them. Docker's riscv_hwprobe exists on
    // riscv64 only, so an amd64 comparison leaves it out.
    expect(diff.stdout).toBe(
      `only ${join(work, "docker-default.yaml")} allows (0): -\nonly ${runtimeDefault} allows (3):\n  lsm_get_self_attr\n  lsm_list_modules\n  lsm_set_self_attr\n`,
    );
  });
});

describe("lockstep import of Docker's conditions", () => {
  const conditional = file("conditional.json", {
    defaultAction: "SCMP_ACT_ERRNO",
    syscalls: [
      { name: "read", action: "SCMP_ACT_ALLOW" },
      { names: ["ptrace"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "4.8" } },
      { names: ["mkdir"], action: "SCMP_ACT_ALLOW", excludes: { arches: ["arm64"] } },
    ],
  });
  const names = (args: string[]) => {
    const result = lockstep(["import", conditional, "--output", "json", ...args]);
    expect(result.status, result.stderr).toBe(0);
    return {
      names: JSON.parse(result.stdout).syscalls.map((r: { names: string[] }) => r.names[0]),
      stderr: result.stderr,
    };
  };

  it("reads the old name field, minKernel against --kernel, and excludes by architecture", () => {
    expect(names(["--kernel", "4.4.0-210-generic", "--arch", "amd64"]).names).toEqual(["read", "mkdir"]);
    expect(names(["--kernel", "6.1", "--arch", "arm64"]).names).toEqual(["read", "ptrace"]);
    const assumed = names(["--arch", "amd64"]);
    expect(assumed.names).toEqual(["read", "ptrace", "mkdir"]);
    expect(assumed.stderr).toMatch(
      /assumed a kernel at least as new as minKernel for syscalls\[1\] \(minKernel 4\.8\)/,
    );
  });
});

describe("plain OCI JSON", () => {
  it("is linted, diffed and wrapped into a SeccompProfile even without syscalls, as the runtime spec allows", () => {
    const none = file("no-syscalls.json", { defaultAction: "SCMP_ACT_ERRNO" });
    const readOnly = file("read-only.json", {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }],
    });
    expect(lockstep(["lint", none]).stdout).toBe(`${none}: no findings\n`);
    const diff = lockstep(["diff", none, readOnly]);
    expect(diff.stdout).toMatch(/only .*read-only\.json allows \(1\):\n {2}read\n/);
    expect(diff.status).toBe(1);
    const wrapped = lockstep(["convert", readOnly, "--name", "read-only"]);
    expect(wrapped.status, wrapped.stderr).toBe(0);
    expect(parse(wrapped.stdout)).toEqual({
      apiVersion: "lockstep.dev/v1alpha1",
      kind: "SeccompProfile",
      metadata: { name: "read-only" },
      spec: { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }] },
    });
    // Back to what the agent writes: the same rules.
    const back = lockstep(["convert", file("read-only.yaml", wrapped.stdout), "--node-arch", "amd64"]);
    expect(JSON.parse(back.stdout).syscalls).toEqual([{ names: ["read"], action: "SCMP_ACT_ALLOW" }]);
  });
});

describe("lockstep lint on a repository's manifests", () => {
  const tree = join(work, "manifests");
  const put = (path: string, content: string) => {
    mkdirSync(dirname(join(tree, path)), { recursive: true });
    writeFileSync(join(tree, path), content);
    return join(tree, path);
  };
  const seccomp = (name: string, names: string[]) =>
    `apiVersion: lockstep.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: ${name}}\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n    - names: [${names.join(", ")}]\n      action: SCMP_ACT_ALLOW\n`;
  const appArmor =
    "apiVersion: lockstep.dev/v1alpha1\nkind: AppArmorProfile\nmetadata: {name: web-aa}\nspec:\n  executables: [/bin/sh]\n  capabilities: [sys_admin]\n  mode: complain\n";
  const deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n";
  put("clean.yaml", seccomp("clean", ["read", "write"]));
  put("apps/web.yml", `${deployment}---\n${seccomp("web", ["read", "ptrace"])}---\n${appArmor}`);
  put(
    "apps/oci.json",
    JSON.stringify({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }],
    }),
  );
  put("package.json", JSON.stringify({ name: "not-a-profile" }));
  put("README.md", "# not read\n");

  it("lints every profile of either kind in a directory tree, lists what it skipped, and fails on the error", () => {
    const result = lockstep(["lint", tree]);
    expect(result.stdout).toBe(
      [
        `${tree}/apps/oci.json: no findings`,
        `${tree}/apps/web.yml (document 2, SeccompProfile "web"): error: spec.syscalls[0].names[1]: allows ptrace, which inspects and controls other processes [dangerous-syscall]`,
        `${tree}/apps/web.yml (document 3, AppArmorProfile "web-aa"): warning: spec.mode: complain mode logs what the policy would deny and denies nothing [apparmor-complain-mode]`,
        `${tree}/apps/web.yml (document 3, AppArmorProfile "web-aa"): warning: spec.capabilities[0]: allows capability sys_admin, which does most of what root does (mounts, namespaces, many device ioctls), whenever the container has it [apparmor-host-capability]`,
        `${tree}/clean.yaml (SeccompProfile "clean"): no findings`,
        "",
      ].join("\n"),
    );
    expect(result.stderr).toBe(
      `lockstep: skipped ${tree}/apps/web.yml (document 1): a Deployment (apps/v1) is not a profile\nlockstep: skipped ${tree}/package.json: no kind and no defaultAction or syscalls: neither a profile object nor OCI seccomp JSON\n`,
    );
    expect(result.status).toBe(1);
  });

  it("reads stdin for -, and exits 0 when nothing reaches --fail-on", () => {
    const result = spawnSync(process.execPath, [cli, "lint", "-"], {
      input: `${deployment}---\n${seccomp("from-stdin", ["read"])}`,
      encoding: "utf8",
    });
    expect(result.stdout).toBe('<stdin> (document 2, SeccompProfile "from-stdin"): no findings\n');
    expect(result.stderr).toBe(
      "lockstep: skipped <stdin> (document 1): a Deployment (apps/v1) is not a profile\n",
    );
    expect(result.status).toBe(0);
  });

  it("exits 2 on a foreign profile or a broken file, naming it, after linting the rest", () => {
    const mixed = join(work, "mixed");
    mkdirSync(mixed, { recursive: true });
    writeFileSync(join(mixed, "a.yaml"), seccomp("fine", ["read"]));
    writeFileSync(
      join(mixed, "b.yaml"),
      "apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata: {name: x}\nspec: {defaultAction: SCMP_ACT_ERRNO}\n",
    );
    writeFileSync(
      join(mixed, "c.json"),
      JSON.stringify({
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [{ name: "read", action: "SCMP_ACT_ALLOW" }],
      }),
    );
    writeFileSync(join(mixed, "d.yaml"), "kind: [\n");
    const result = lockstep(["lint", mixed]);
    expect(result.stdout).toBe(`${mixed}/a.yaml (SeccompProfile "fine"): no findings\n`);
    expect(result.stderr).toMatch(
      /b\.yaml: this is a security-profiles-operator SeccompProfile \(security-profiles-operator\.x-k8s\.io\/v1beta1\): run `lockstep import FILE`/,
    );
    expect(result.stderr).toMatch(
      /c\.json: a Docker or podman seccomp profile .*old single `name`.*: run `lockstep import FILE`/,
    );
    expect(result.stderr).toMatch(/d\.yaml:\d+: not valid YAML or JSON/);
    expect(result.stderr).not.toMatch(/EISDIR|\n\s+at /);
    expect(result.status).toBe(2);
  });

  it("prints SARIF 2.1.0 that code scanning accepts, with lines and relative paths, and JSON with a fix on every finding", () => {
    const sarif = spawnSync(process.execPath, [cli, "lint", "--output", "sarif", "."], {
      cwd: tree,
      encoding: "utf8",
    });
    expect(sarif.status).toBe(1);
    const log = JSON.parse(sarif.stdout);
    expect(log.version).toBe("2.1.0");
    const run = log.runs[0];
    expect(run.tool.driver.name).toBe("lockstep");
    const ids = run.tool.driver.rules.map((r: { id: string }) => r.id);
    expect(
      run.results.map((r: { ruleId: string; level: string; locations: { physicalLocation: object }[] }) => [
        r.ruleId,
        r.level,
        r.locations[0]?.physicalLocation,
      ]),
    ).toEqual([
      [
        "dangerous-syscall",
        "error",
        { artifactLocation: { uri: "apps/web.yml" }, region: { startLine: 11 } },
      ],
      [
        "apparmor-complain-mode",
        "warning",
        { artifactLocation: { uri: "apps/web.yml" }, region: { startLine: 20 } },
      ],
      [
        "apparmor-host-capability",
        "warning",
        { artifactLocation: { uri: "apps/web.yml" }, region: { startLine: 19 } },
      ],
    ]);
    for (const result of run.results) expect(ids[result.ruleIndex]).toBe(result.ruleId);
    const json = JSON.parse(lockstep(["lint", "--output", "json", tree]).stdout);
    expect(json.map((f: { fix: { action: string } }) => f.fix.action)).toEqual([
      "remove-syscall",
      "enforce-mode",
      "remove-capability",
    ]);
    expect(json[0]).toMatchObject({
      file: `${tree}/apps/web.yml`,
      document: 2,
      line: 11,
      fix: { patch: [{ op: "remove", path: "/spec/syscalls/0/names/1" }] },
    });
  });

  it("convert takes a directory and picks a profile by name", () => {
    const converted = lockstep(["convert", tree, "--profile", "web-aa"]);
    expect(converted.status, converted.stderr).toBe(0);
    expect(converted.stdout).toMatch(/profile lockstep\.web-aa flags=\(.*complain/);
    const missing = lockstep(["convert", tree, "--profile", "nope"]);
    expect(missing.stderr).toMatch(
      /--profile nope: no SeccompProfile or AppArmorProfile of that name in the input \(found: web, web-aa, clean\)/,
    );
    expect(missing.status).toBe(2);
  });
});

describe("lockstep diff", () => {
  const allowAll = file("allow-all.json", { defaultAction: "SCMP_ACT_ALLOW" });

  it("takes runtime/default as an operand, prints JSON, and leaves out other architectures' calls", () => {
    const result = lockstep([
      "diff",
      allowAll,
      "runtime/default",
      "--node-arch",
      "amd64",
      "--output",
      "json",
    ]);
    expect(result.status).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      a: allowAll,
      b: "runtime/default",
      nodeArch: "amd64",
      onlyB: [],
      equal: false,
    });
    expect(report.onlyA).toContain("bpf");
    for (const other of [
      "breakpoint",
      "cacheflush",
      "set_tls",
      "arm_fadvise64_64",
      "arm_sync_file_range",
      "s390_runtime_instr",
      "riscv_hwprobe",
    ])
      expect(report.onlyA).not.toContain(other);
    const arm = JSON.parse(
      lockstep(["diff", allowAll, "runtime/default", "--node-arch", "arm64", "--output", "json"]).stdout,
    );
    expect(arm.onlyA).not.toContain("set_tls");
    expect(arm.onlyA).not.toContain("arch_prctl");
  });

  it("says once that equal profiles allow the same", () => {
    const equal = lockstep(["diff", "runtime/default", "runtime/default", "--node-arch", "amd64"]);
    expect(equal.stdout).toMatch(
      /^runtime\/default and runtime\/default allow the same \d+ syscalls on an amd64 node\n$/,
    );
    expect(equal.status).toBe(0);
  });
});

// security-profiles-operator's published examples, stored with their sources (test/fixtures/spo/README.md).
const spoFixture = (name: string) => join(import.meta.dirname, "../fixtures/spo", name);

describe("lockstep import of security-profiles-operator manifests", () => {
  it("turns SPO's SeccompProfiles, with their base, into SeccompProfiles that lint and convert take", () => {
    const imported = lockstep([
      "import",
      spoFixture("seccompprofile.yaml"),
      spoFixture("profile-with-base.yaml"),
      spoFixture("baseprofile-runc.yaml"),
    ]);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stderr).toMatch(/lockstep: imported 7 of 7 security-profiles-operator objects\n$/);
    expect(imported.stderr).toMatch(
      /profile-with-base\.yaml \(document 2, SeccompProfile "profile2" in namespace my-namespace\): namespace my-namespace: .*lockstep\/profile2\.json instead of operator\/my-namespace\/profile2\.json/,
    );
    expect(imported.stderr).toMatch(/baseProfileName runc-v1\.5\.1: not in the input/);
    const objects = imported.stdout.split(/^---$/m).map((d) => parse(d));
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      "SeccompProfile/profile-block-all",
      "SeccompProfile/profile-complain-unsafe",
      "SeccompProfile/profile-allow-unsafe",
      "SeccompProfile/profile-complain-block-high-risk",
      "SeccompProfile/profile1",
      "SeccompProfile/profile2",
      "SeccompProfile/runc-v1.2.3",
    ]);
    const lint = spawnSync(process.execPath, [cli, "lint", "--output", "json", "-"], {
      input: imported.stdout,
      encoding: "utf8",
    });
    expect(lint.stderr).toBe("");
    // SPO's own "allow everything" example is what lint is for.
    expect(
      JSON.parse(lint.stdout)
        .filter((f: { rule: string }) => f.rule === "default-allow")
        .map((f: { profile: string }) => f.profile),
    ).toEqual([
      '<stdin> (document 2, SeccompProfile "profile-complain-unsafe")',
      '<stdin> (document 3, SeccompProfile "profile-allow-unsafe")',
      '<stdin> (document 4, SeccompProfile "profile-complain-block-high-risk")',
    ]);
    // profile2 inherits the imported runc base: the agent's file has both sets of rules.
    const out = file("spo-imported.yaml", imported.stdout);
    const converted = lockstep(["convert", out, "--profile", "profile2", "--node-arch", "amd64"]);
    expect(converted.status, converted.stderr).toBe(0);
    const names = JSON.parse(converted.stdout).syscalls.flatMap((r: { names: string[] }) => r.names);
    expect(names).toEqual(expect.arrayContaining(["exit_group", "openat", "execve"]));
  });

  it("turns SPO's AppArmorProfiles (raw policy, abstract form, complain mode) into AppArmorProfiles apparmor_parser compiles", () => {
    const imported = lockstep([
      "import",
      spoFixture("apparmorprofile.yaml"),
      spoFixture("apparmorprofile-sleep-complain-mode.yaml"),
      spoFixture("apparmorprofile-v1.yaml"),
    ]);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stderr).toMatch(/sleep-v1.*: spec\.abstract\.ptrace: not carried over/);
    const out = file("spo-apparmor.yaml", imported.stdout);
    for (const name of ["test-profile", "test-recording-test-pod", "sleep-v1"]) {
      const policy = lockstep(["convert", out, "--profile", name]);
      expect(policy.status, policy.stderr).toBe(0);
      const compiled = spawnSync("apparmor_parser", ["-Q", "-K", file(`${name}.apparmor`, policy.stdout)], {
        encoding: "utf8",
      });
      expect(compiled.status, `${name}: ${compiled.stderr}`).toBe(0);
    }
  });

  it("exits 2 naming what it could not carry over, and still prints the rest", () => {
    const input = `${readFileSync(spoFixture("seccompprofile.yaml"), "utf8")}\n---\napiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SeccompProfile\nmetadata: {name: notify}\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  listenerPath: /var/run/security-profiles-operator/a.sock\n`;
    const result = spawnSync(process.execPath, [cli, "import", "-"], { input, encoding: "utf8" });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(
      /<stdin> \(document 5, SeccompProfile "notify"\): not imported: listenerPath: a seccomp notify listener/,
    );
    expect(result.stdout.split(/^---$/m)).toHaveLength(4);
  });
});

describe("the lockstep launcher (bin/lockstep.js, package.json's bin)", () => {
  const launcher = join(import.meta.dirname, "../../bin/lockstep.js");
  const packageJson = JSON.parse(readFileSync(join(import.meta.dirname, "../../package.json"), "utf8"));

  it("prints package.json's version", () => {
    const result = spawnSync(process.execPath, [launcher, "--version"], { encoding: "utf8" });
    expect(result.stdout).toBe(`lockstep ${packageJson.version}\n`);
    expect(result.status).toBe(0);
    expect(packageJson.bin.lockstep).toBe("bin/lockstep.js");
  });

  // Debian's nodejs (Node 20) is on these machines; where it is not, there is no older Node to ask.
  it.runIf(
    existsSync("/usr/bin/node") &&
      !/^v2[2-9]\./.test(execFileSync("/usr/bin/node", ["--version"], { encoding: "utf8" })),
  )("says in one line that an older Node cannot run it, with exit code 2", () => {
    const result = spawnSync("/usr/bin/node", [launcher, "lint", "x.yaml"], { encoding: "utf8" });
    expect(result.stderr).toMatch(
      new RegExp(
        `^lockstep: needs Node\\.js ${packageJson.engines.node.replace(/^>=/, "").replace(/\./g, "\\.")} or newer, and this is Node\\.js 20\\.[\\d.]+: install a newer Node\\.js \\(https://nodejs\\.org\\) or put it first in PATH\\n$`,
      ),
    );
    expect(result.stdout).toBe("");
    expect(result.status).toBe(2);
  });
});

describe("lockstep node with the kubeconfigs of managed clusters", () => {
  // A real API server (no scheduler, no nodes: `lockstep node` reads a Node object and the profiles).
  let cluster: ExecCredentialCluster;
  beforeAll(async () => {
    cluster = await startExecCredentialCluster();
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  const execKubeconfig = (plugin: string) => cluster.execKubeconfig(work, plugin);

  it("takes --kubeconfig and --context, and gets its token from an exec credential plugin", () => {
    const { path, ran } = execKubeconfig(GOOD_PLUGIN);
    const env = { PATH: process.env.PATH, HOME: work };
    const result = spawnSync(
      process.execPath,
      [cli, "node", "worker-1", "--kubeconfig", path, "--context", "eks", "--output", "json"],
      {
        encoding: "utf8",
        env,
      },
    );
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toContainEqual(
      expect.objectContaining({ kind: "seccomp", name: "web" }),
    );
    expect(existsSync(ran)).toBe(true);
    // The same file through KUBECONFIG.
    const viaEnv = spawnSync(process.execPath, [cli, "node", "worker-1", "--context", "eks"], {
      encoding: "utf8",
      env: { ...env, KUBECONFIG: path },
    });
    expect(viaEnv.stdout, viaEnv.stderr).toMatch(/^node worker-1: /);
  });

  it("says what is wrong with a context, a kubeconfig or a plugin, in one line", () => {
    const { path } = execKubeconfig("#!/bin/sh\necho 'token expired: run aws sso login' >&2\nexit 1\n");
    const env = { PATH: process.env.PATH, HOME: work };
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [cli, "node", "worker-1", ...args], { encoding: "utf8", env });
    const cases: [string[], RegExp][] = [
      [
        ["--kubeconfig", path, "--context", "gke"],
        /^lockstep: --context gke: no such context in the kubeconfig \(it has: eks, nowhere\)\n$/,
      ],
      [
        ["--kubeconfig", join(work, "none.kubeconfig")],
        /^lockstep: --kubeconfig .*none\.kubeconfig: no such file\n$/,
      ],
      [[], /^lockstep: no Kubernetes configuration: give --kubeconfig FILE/],
      [["--kubeconfig", path, "--context", "eks"], /^lockstep: .*token expired: run aws sso login/],
    ];
    for (const [args, message] of cases) {
      const result = run(...args);
      expect(result.stderr, args.join(" ")).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.status, args.join(" ")).toBe(2);
    }
  });
});

describe("the CI recipe (docs/examples/lint-profiles.yml)", () => {
  it("runs its lint step's command on this repository's examples and writes SARIF code scanning takes", () => {
    const root = join(import.meta.dirname, "../..");
    const workflow = parse(readFileSync(join(root, "docs/examples/lint-profiles.yml"), "utf8"));
    const steps: { id?: string; run?: string }[] = workflow.jobs.lint.steps;
    const command = steps.find((step) => step.id === "lint")?.run;
    expect(command).toMatch(
      /^# shellcheck disable=SC2086\nlockstep lint --output sarif \$PROFILES > lockstep\.sarif\n$/,
    );
    // `lockstep` as npm installs it: a command on PATH that runs the package's bin.
    const binDir = join(work, "ci-bin");
    mkdirSync(binDir, { recursive: true });
    writeFileSync(
      join(binDir, "lockstep"),
      `#!/bin/sh\nexec "${process.execPath}" "${join(root, "bin/lockstep.js")}" "$@"\n`,
      { mode: 0o755 },
    );
    const ciDir = mkdtempSync(join(work, "ci-"));
    execFileSync("cp", ["-r", join(root, "examples"), ciDir]);
    const result = spawnSync("sh", ["-c", command as string], {
      cwd: ciDir,
      encoding: "utf8",
      env: { PATH: `${binDir}:${process.env.PATH}`, PROFILES: workflow.env.PROFILES },
    });
    expect(result.stderr).toMatch(/^(lockstep: skipped examples\/[^\n]+: [^\n]+ is not a profile\n)+$/);
    expect(result.status).toBe(0);
    const log = JSON.parse(readFileSync(join(ciDir, "lockstep.sarif"), "utf8"));
    expect(log.version).toBe("2.1.0");
    expect(log.runs[0].tool.driver.name).toBe("lockstep");
    expect(log.runs[0].results).toEqual([]);
    // A finding fails the step, and code scanning gets it with its file and line.
    writeFileSync(
      join(ciDir, "examples", "loose.json"),
      JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW" }, null, 2),
    );
    const failing = spawnSync("sh", ["-c", command as string], {
      cwd: ciDir,
      encoding: "utf8",
      env: { PATH: `${binDir}:${process.env.PATH}`, PROFILES: workflow.env.PROFILES },
    });
    expect(failing.status).toBe(1);
    const results = JSON.parse(readFileSync(join(ciDir, "lockstep.sarif"), "utf8")).runs[0].results;
    expect(results[0].locations[0].physicalLocation).toEqual({
      artifactLocation: { uri: "examples/loose.json" },
      region: { startLine: 2 },
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
      [["lint", "/etc/hostname"], /skipped \/etc\/hostname: a string, not a profile\n.*no profile to lint/],
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
      [["lint", file("pod.yaml", "apiVersion: v1\nkind: Pod\n")], /a Pod \(v1\) is not a profile/],
      [["lint", "--fail-on", "info", "x"], /--fail-on info: must be error or warning/],
      [
        ["lint", "--frobnicate", "x"],
        /^lockstep: lint: unknown option --frobnicate \(lockstep lint --help lists the options\)\n$/,
      ],
      [["diff", "a", "b", "--frobnicate"], /^lockstep: diff: unknown option --frobnicate/],
      [["diff", "a", "b", "--output"], /^lockstep: diff: option --output needs a value/],
      [["diff", work, "runtime/default"], /: is a directory, and this command reads one file\n$/],
      [
        ["diff", "runtime/default", "runtime/default", "--output", "xml"],
        /--output xml: must be text or json/,
      ],
      [["lint", work, "--output", "html"], /--output html: must be text, json or sarif/],
      [["convert"], /usage: lockstep convert INPUT/],
      [["diff", "only-one"], /usage: lockstep diff A B/],
      [
        ["convert", file("plain.json", { defaultAction: "SCMP_ACT_ALLOW", syscalls: [] })],
        /plain OCI seccomp JSON is already what the agent writes/,
      ],
      [["frobnicate"], /unknown command "frobnicate"/],
      [
        ["lint", file("docker.json", { defaultAction: "SCMP_ACT_ERRNO", archMap: [], syscalls: [] })],
        /docker\.json: a Docker or podman seccomp profile .*: run `lockstep import FILE`/,
      ],
      [
        [
          "convert",
          file("listener.json", { defaultAction: "SCMP_ACT_ERRNO", listenerPath: "/run/l.sock" }),
          "--name",
          "l",
        ],
        /listener\.json: listenerPath: names a seccomp notify listener, which Lockstep does not run/,
      ],
      [
        ["convert", file("oci.json", { defaultAction: "SCMP_ACT_ERRNO" }), "--name", "Bad_Name"],
        /--name "Bad_Name": not a valid object name/,
      ],
      [["import", "/nonexistent.json"], /\/nonexistent\.json: no such file/],
      [
        ["import", ENGINE_DEFAULTS.docker, "--arch", "sparc"],
        /--arch sparc: must be one of amd64, arm64, ppc64le, s390x, riscv64/,
      ],
      [["import", ENGINE_DEFAULTS.docker, "--engine", "rkt"], /--engine rkt: must be docker or podman/],
      [
        ["import", ENGINE_DEFAULTS.docker, "--capabilities", "default,CAP_FLY"],
        /--capabilities: unknown capability "CAP_FLY"/,
      ],
      [
        ["import", ENGINE_DEFAULTS.docker, "--kernel", "latest"],
        /--kernel latest: expected a version like 6\.1/,
      ],
      [
        [
          "import",
          file("both.json", {
            defaultAction: "SCMP_ACT_ERRNO",
            architectures: ["SCMP_ARCH_X86_64"],
            archMap: [{ architecture: "SCMP_ARCH_X86_64" }],
          }),
        ],
        /both\.json: architectures and archMap: both given/,
      ],
      [
        ["import", file("engine-typo.json", { defaultAction: "SCMP_ACT_ERRNO", sycalls: [] })],
        /engine-typo\.json: not a Docker or podman seccomp profile: Unrecognized key: "sycalls"/,
      ],
    ];
    for (const [args, message, env] of cases) {
      const result = lockstep(args, env);
      expect(result.stderr, args.join(" ")).toMatch(message);
      expect(result.status, args.join(" ")).toBe(2);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("has --help on every command, and leaves a recorded command's --help alone", () => {
    for (const command of ["record", "convert", "import", "lint", "diff", "node"]) {
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
