// `lockstep record`'s three policies for real programs from Debian's packages (busybox-static's httpd,
// coreutils' install and sha256sum), recorded with the real strace, capabilities proven by the CLI under
// the real runc, and then checked here from what it printed: both profiles pass Lockstep's schemas, the
// AppArmor profile compiles with the real apparmor_parser, and runc runs each program under the printed
// seccomp profile with exactly the printed capabilities, and fails without each one.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseAppArmorProfile } from "../../src/api/apparmor.ts";
import { type LinuxSeccomp, LinuxSeccompSchema, parseSeccompProfile } from "../../src/api/seccomp.ts";
import type { Capability } from "../../src/cli/record/capabilities.ts";
import { findRunc, runInHostContainer } from "../../src/cli/record/container.ts";
import { foldVolatilePath, writesOutside } from "../../src/cli/record/files.ts";
import {
  type RecordedSecurityContext,
  RecordedSecurityContextSchema,
} from "../../src/cli/record/security-context.ts";

const cli = join(import.meta.dirname, "../../src/cli/main.ts");
const lockstep = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
const work = mkdtempSync(join(tmpdir(), "lockstep-record-test-"));
const runc = findRunc() as string;
// Where the pod of the `install` recording mounts a writable volume.
const volume = mkdtempSync(join(tmpdir(), "lockstep-volume-"));
// Where the script that ignores a failed chown works: a writable volume in its pod too.
const scratch = mkdtempSync(join(tmpdir(), "lockstep-scratch-"));

afterAll(() => {
  for (const dir of [work, volume, scratch]) rmSync(dir, { recursive: true, force: true });
});

interface Recording {
  file: string;
  stderr: string;
  seccomp: ReturnType<typeof parseSeccompProfile>;
  appArmor: ReturnType<typeof parseAppArmorProfile>;
  securityContext: RecordedSecurityContext;
  /** The capabilities the securityContext adds, as AppArmor and the CLI's modules spell them. */
  added: Capability[];
  /** The OCI seccomp JSON the node agent would write, from `lockstep convert` of the printed profile. */
  seccompJson: LinuxSeccomp;
}

/** The securityContext `--only securitycontext` printed. */
function securityContextOf(stdout: string) {
  return RecordedSecurityContextSchema.parse(parseAllDocuments(stdout)[0]?.toJS().securityContext);
}

/** Records with every part printed, and reads back what was printed. */
function record(name: string, options: string[], argv: string[]): Recording {
  const result = lockstep(["record", "--name", name, ...options, "--", ...argv]);
  expect(result.status, result.stderr).toBe(0);
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, result.stdout);
  const documents = parseAllDocuments(result.stdout);
  expect(documents.map((d) => d.errors)).toEqual([[], [], []]);
  const [seccompDoc, appArmorDoc, commentDoc] = documents.map((d) => d.toJS());
  // The securityContext is the third document's comment: kubectl apply skips a document without content.
  expect(commentDoc).toBeNull();
  const only = lockstep(["record", "--name", name, ...options, "--only", "securitycontext", "--", ...argv]);
  expect(only.status, only.stderr).toBe(0);
  const securityContext = securityContextOf(only.stdout);
  expect(result.stdout).toContain(
    only.stdout
      .trimEnd()
      .split("\n")
      .map((line) => `# ${line}`)
      .join("\n"),
  );
  const converted = lockstep(["convert", file]);
  expect(converted.status, converted.stderr).toBe(0);
  return {
    file,
    stderr: result.stderr,
    seccomp: parseSeccompProfile(seccompDoc),
    appArmor: parseAppArmorProfile(appArmorDoc),
    securityContext,
    added: (securityContext.capabilities.add ?? []).map((c) => c.toLowerCase() as Capability),
    seccompJson: LinuxSeccompSchema.parse(JSON.parse(converted.stdout)),
  };
}

/** Compiles the printed AppArmorProfile, as `lockstep convert` renders it, with the real parser (no kernel load). */
function compileAppArmor(recording: Recording): { status: number | null; stderr: string } {
  const only = join(
    work,
    `${recording.appArmor.ok ? recording.appArmor.value.metadata.name : "x"}-apparmor.yaml`,
  );
  const appArmorDoc = parseAllDocuments(readFileSync(recording.file, "utf8"))[1]?.toString() ?? "";
  writeFileSync(only, appArmorDoc);
  const text = lockstep(["convert", only]);
  expect(text.status, text.stderr).toBe(0);
  const policy = join(work, "policy");
  writeFileSync(policy, text.stdout);
  return spawnSync("/usr/sbin/apparmor_parser", ["-Q", "-K", policy], { encoding: "utf8" });
}

function expectProfilesValid(recording: Recording): void {
  expect(recording.seccomp.ok, recording.seccomp.ok ? "" : recording.seccomp.message).toBe(true);
  expect(recording.appArmor.ok, recording.appArmor.ok ? "" : recording.appArmor.message).toBe(true);
  const compiled = compileAppArmor(recording);
  expect(compiled.status, compiled.stderr).toBe(0);
}

/**
 * Runs the program in a container like the pod's (the CLI's host-view container, so dynamically linked
 * programs find their libraries) with the printed seccomp profile and a capability set.
 */
function runAsPod(
  recording: Recording,
  argv: string[],
  capabilities: readonly Capability[],
  writable: string[] = [],
) {
  return runInHostContainer(runc, {
    argv,
    seccomp: recording.seccompJson,
    capabilities,
    readOnlyRoot: recording.securityContext.readOnlyRootFilesystem,
    writable,
    cwd: "/",
    timeoutMs: 30_000,
  });
}

// Each run of the suite gets its own port below 1024, so a rerun never meets a port still in TIME_WAIT.
const port = 700 + Math.floor(Math.random() * 250);
// busybox httpd serves busybox itself to busybox wget, then stops: a server exercised by a client,
// ending by itself so that the proof can run it again. Its exit code is wget's; wget tries a few times,
// because a loaded machine (or strace) can make httpd slow to start listening.
const HTTPD = `busybox httpd -f -p 127.0.0.1:${port} -h /bin & server=$!; for try in 1 2 3 4 5 6 7 8; do sleep 0.25; busybox wget -q -O /dev/null http://127.0.0.1:${port}/busybox && break; done; status=$?; kill $server; exit $status`;

describe("lockstep record: a server binding a port below 1024 (busybox httpd)", () => {
  let web: Recording;
  beforeAll(() => {
    web = record("web", [], ["busybox", "sh", "-c", HTTPD]);
  });

  it("proves NET_BIND_SERVICE and nothing else, from the denied bind", () => {
    expect(web.stderr).toMatch(
      new RegExp(`with no capabilities: bind\\(.*sin_port=htons\\(${port}\\).* = EACCES`),
    );
    expect(web.stderr).toMatch(/under runc with exactly net_bind_service: exited with 0/);
    expect(web.stderr).toMatch(/under runc without net_bind_service: exited with 1/);
    expect(web.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] },
      readOnlyRootFilesystem: true,
      seccompProfile: { type: "Localhost", localhostProfile: "lockstep/web.json" },
      appArmorProfile: { type: "Localhost", localhostProfile: "lockstep.web" },
    });
  });

  it("prints profiles that pass Lockstep's schemas, an AppArmor profile apparmor_parser compiles", () => {
    expectProfilesValid(web);
    if (!web.appArmor.ok) return;
    expect(web.appArmor.value.spec).toMatchObject({
      executables: ["/usr/bin/busybox"],
      network: { families: ["inet"], protocols: ["tcp"] },
      capabilities: ["net_bind_service"],
    });
    // The file httpd served is busybox itself, already readable through its rix rule; wget wrote to /dev/null.
    expect(web.appArmor.value.spec.paths?.readOnly ?? []).not.toContain("/usr/bin/busybox");
    expect(writesOutside(web.appArmor.value.spec.paths ?? {}, [])).toEqual([]);
  });

  it("runs under runc with the recorded seccomp profile and NET_BIND_SERVICE, and not without it", async () => {
    const argv = ["/usr/bin/busybox", "sh", "-c", HTTPD];
    expect((await runAsPod(web, argv, web.added)).exitCode).toBe(0);
    const without = await runAsPod(web, argv, []);
    expect(without.stderr).toMatch(/httpd: bind: Permission denied/);
    expect(without.exitCode).not.toBe(0);
  });
});

describe("lockstep record: a program that changes file ownership (coreutils install -o)", () => {
  const argv = ["/usr/bin/install", "-o", "1", "-g", "1", "/etc/hostname", join(volume, "owned")];
  let owned: Recording;
  beforeAll(() => {
    owned = record("owned", ["--writable", volume], argv);
  });

  it("proves CHOWN from the denied fchownat, and FOWNER for the chmod of a file it no longer owns", () => {
    expect(owned.stderr).toMatch(
      /with no capabilities: fchownat\(.*"\/tmp\/lockstep-volume-\w+\/owned", 1, 1.* = EPERM/,
    );
    // Once it may chown, the file belongs to uid 1, and root without CAP_FOWNER may not chmod it.
    expect(owned.stderr).toMatch(/with chown: fchmodat\(.*\/owned", 0755\) = EPERM/);
    expect(owned.added).toEqual(["chown", "fowner"]);
    expect(owned.securityContext.readOnlyRootFilesystem).toBe(true);
    expectProfilesValid(owned);
    if (owned.appArmor.ok)
      expect(owned.appArmor.value.spec.paths?.writeOnly).toEqual([`${foldVolatilePath(volume)}/owned`]);
  });

  it("runs under runc with exactly CHOWN and FOWNER and the recorded seccomp profile, and fails without either", async () => {
    expect((await runAsPod(owned, argv, owned.added, [volume])).exitCode).toBe(0);
    for (const capability of owned.added) {
      const without = await runAsPod(
        owned,
        argv,
        owned.added.filter((c) => c !== capability),
        [volume],
      );
      expect(without.stderr, capability).toMatch(/Operation not permitted/);
      expect(without.exitCode, capability).not.toBe(0);
    }
  });

  it("says readOnlyRootFilesystem false, and where it wrote, without --writable", () => {
    const result = lockstep(["record", "--only", "securitycontext", "--skip-capabilities", "--", ...argv]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/readOnlyRootFilesystem: false/);
    expect(result.stderr).toContain(
      `written outside --writable, so readOnlyRootFilesystem is false: ${foldVolatilePath(volume)}/owned`,
    );
    expect(result.stderr).toMatch(/capabilities: not analysed \(--skip-capabilities\)/);
  });
});

describe("lockstep record: a program that needs no capability (coreutils sha256sum)", () => {
  const argv = ["/usr/bin/sha256sum", "/etc/hostname"];
  let sum: Recording;
  beforeAll(() => {
    sum = record("sum", [], argv);
  });

  it("adds no capability, proven by runc running it with none, under the recorded seccomp profile", async () => {
    expect(sum.stderr).toMatch(/with no capabilities: no call denied/);
    expect(sum.stderr).toMatch(/under runc with exactly no capabilities: exited with 0/);
    expect(sum.stderr).toMatch(/capabilities: none needed/);
    expect(sum.securityContext.capabilities).toEqual({ drop: ["ALL"] });
    expectProfilesValid(sum);
    if (sum.appArmor.ok) {
      expect(sum.appArmor.value.spec.capabilities).toBeUndefined();
      expect(sum.appArmor.value.spec.paths?.readOnly).toContain("/etc/hostname");
    }
    expect((await runAsPod(sum, argv, [])).exitCode).toBe(0);
    // The recorded seccomp profile is enforced: a syscall it never made fails with EPERM.
    const mkdir = await runAsPod(sum, ["/usr/bin/busybox", "mkdir", "/tmp/d"], []);
    expect(mkdir.stderr).toMatch(/Operation not permitted/);
  });

  it("--merge unions all three parts of earlier recordings", () => {
    const earlier = join(work, "owned.yaml");
    const merged = lockstep([
      "record",
      "--name",
      "both",
      "--merge",
      earlier,
      "--skip-capabilities",
      "--",
      ...argv,
    ]);
    expect(merged.status, merged.stderr).toBe(0);
    const [seccompDoc, appArmorDoc] = parseAllDocuments(merged.stdout).map((d) => d.toJS());
    expect(seccompDoc.spec.syscalls[0].names).toContain("fchownat"); // install's, not sha256sum's
    expect(appArmorDoc.spec).toMatchObject({
      executables: ["/usr/bin/install", "/usr/bin/sha256sum"],
      paths: { writeOnly: [`${foldVolatilePath(volume)}/owned`] },
      capabilities: ["chown", "fowner"],
    });
    // The merged profile still writes outside any --writable of this run: the securityContext says so.
    expect(merged.stdout).toMatch(/# {3}readOnlyRootFilesystem: false/);
    expect(merged.stdout).toMatch(/# {5}add:\n# {7}- CHOWN\n# {7}- FOWNER/);
  });
});

describe("lockstep record: what cannot be proven is reported, not added", () => {
  it("proves a capability by the call that fails without it, though the program exits 0 either way", () => {
    // The script ignores chown's failure and exits 0 either way (issue 29): the runc runs are traced, and
    // without CHOWN the fchownat that succeeded when recorded fails with EPERM, so CHOWN is needed.
    // A fresh file each run: the one the recording left behind already belongs to uid 1.
    const script = `rm -f ${scratch}/f; touch ${scratch}/f; /usr/bin/chown 1 ${scratch}/f 2>/dev/null; exit 0`;
    const result = lockstep([
      "record",
      "--only",
      "securitycontext",
      "--writable",
      scratch,
      "--",
      "busybox",
      "sh",
      "-c",
      script,
    ]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/with no capabilities: fchownat\(.* = EPERM/);
    expect(result.stderr).toMatch(/under runc with exactly chown: exited with 0/);
    expect(result.stderr).toMatch(/under runc without chown: exited with 0; fchownat\(.*\) = EPERM/);
    expect(result.stderr).toMatch(/capabilities: proven needed: chown\n/);
    expect(securityContextOf(result.stdout).capabilities).toEqual({ drop: ["ALL"], add: ["CHOWN"] });
  });

  it("adds nothing when the container cannot reproduce the recording, says so loudly and exits 1", () => {
    // The file is in a directory the proof container does not have (/tmp starts empty, as in an image).
    const file = join(work, "elsewhere");
    writeFileSync(file, "");
    const result = lockstep(["record", "--only", "securitycontext", "--", "/usr/bin/chown", "1", file]);
    expect(result.status, result.stderr).toBe(1);
    expect(result.stderr).toMatch(
      /lockstep: ERROR: the proposed container does not run the program as recorded: under runc with exactly chown the program exited with 1/,
    );
    expect(result.stderr).not.toMatch(/capabilities: none needed/);
    expect(result.stderr).toMatch(
      /chown not proven, left out: under runc with exactly chown the program exited with 1, not exit code 0 as recorded \(its last words: .*No such file or directory/,
    );
    expect(result.stdout).not.toMatch(/add:/);
  });
});

describe("lockstep record: a program that does not end by itself", () => {
  it("gets no capability analysis, and the securityContext adds none", () => {
    // What Ctrl-C does to a server: a signal ends it, so there is no exit code for a proof to compare.
    const result = lockstep([
      "record",
      "--only",
      "securitycontext",
      "--",
      "busybox",
      "sh",
      "-c",
      "kill -TERM $$",
    ]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /capabilities: not analysed \(the program was killed by SIGTERM: a proof needs a program that ends by itself\); the securityContext drops all and adds none/,
    );
    expect(securityContextOf(result.stdout).capabilities).toEqual({ drop: ["ALL"] });
  });
});

describe("lockstep record: bad input", () => {
  it("says what is wrong in one line, exit code 2", () => {
    const cases: [string[], RegExp][] = [
      [
        ["record", "--only", "selinux", "--", "true"],
        /--only selinux: must be one of seccomp, apparmor, securitycontext/,
      ],
      [["record", "--writable", "tmp", "--", "true"], /--writable tmp: must be an absolute path/],
      [
        ["record", "--output", "json", "--only", "apparmor", "--", "true"],
        /--output json prints OCI seccomp JSON/,
      ],
    ];
    const raw = join(work, "raw.yaml");
    writeFileSync(
      raw,
      "apiVersion: lockstep.dev/v1alpha1\nkind: AppArmorProfile\nmetadata: {name: raw}\nspec:\n  rawPolicy: 'profile lockstep.raw {}'\n",
    );
    cases.push([
      ["record", "--merge", raw, "--", "true"],
      /raw\.yaml: an AppArmorProfile with rawPolicy cannot be merged/,
    ]);
    for (const [args, message] of cases) {
      const result = lockstep(args);
      expect(result.stderr, args.join(" ")).toMatch(message);
      expect(result.stderr.trimEnd().split("\n"), args.join(" ")).toHaveLength(1);
      expect(result.status, args.join(" ")).toBe(2);
    }
  });
});
