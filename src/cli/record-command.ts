// `lockstep record`: runs a command under strace and prints the least-privilege picture of it: the
// SeccompProfile src/cli/record/seccomp-profile.ts builds from the syscalls, an AppArmorProfile from the files and sockets
// it used (src/cli/record/), and a container securityContext with the capabilities it was proven to need
// (src/cli/record/prove.ts). The trace file is read while strace writes it (for the progress line, and so
// a long recording never has to fit in memory), then removed.
import { spawnSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseAppArmorProfile } from "../api/apparmor.ts";
import { APPARMOR_PROFILE_KIND, SECCOMP_PROFILE_KIND } from "../api/constants.ts";
import { isValidProfileObjectName } from "../api/labels.ts";
import { renderSeccompForNode, serializeSeccomp } from "../api/render-seccomp.ts";
import { effectiveSeccomp, hostNodeArch, readDocuments, UserError } from "./profile-files.ts";
import { recordedAppArmor } from "./record/apparmor-profile.ts";
import { isDenied } from "./record/capabilities.ts";
import { FileActivity, writesOutside } from "./record/files.ts";
import { NetworkActivity } from "./record/network.ts";
import {
  formatRecording,
  formatSeccompProfile,
  RECORDING_PARTS,
  type RecordingPart,
} from "./record/output.ts";
import { type CapabilityFindings, findCapabilities } from "./record/prove.ts";
import { profileFromSyscalls, recordedSyscalls, TraceSyscalls } from "./record/seccomp-profile.ts";
import { recordedSecurityContext } from "./record/security-context.ts";
import { findOnPath, runUnderStrace, TraceFileReader } from "./record/strace.ts";
import { TraceCalls, type TracedCall } from "./record/trace-calls.ts";
import { clusterRecordCommand, RECORD_CLUSTER_HELP } from "./record-cluster.ts";

export const RECORD_HELP = `usage: lockstep record [--name N] [--only seccomp|apparmor|securitycontext] [--output yaml|json]
                      [--writable DIR...] [--merge FILE...] [--skip-capabilities] [--progress] -- COMMAND [ARGS...]

Runs COMMAND under strace (following every thread and child) and prints, as one multi-document YAML
for kubectl apply, the least privilege it showed it needs:
- a SeccompProfile allowing exactly the syscalls it made plus the few the container runtime (runc)
  makes after it applies the filter, denying everything else with EPERM. clone is allowed only without
  namespace flags and clone3 returns ENOSYS (libc then uses clone), unless the program created
  namespaces. Names strace prints that the syscall table lacks are kept and reported on stderr;
- an AppArmorProfile (structured form) allowing the files it read, wrote, created and executed (volatile
  names such as /proc/<pid> and temporary files folded into globs), the socket families and protocols
  it used, and the capabilities proven below;
- a container securityContext (a comment, to paste into the pod): drop ALL capabilities and add the
  proven ones, allowPrivilegeEscalation false, readOnlyRootFilesystem when it wrote nothing outside the
  --writable directories, and references to both profiles.
Capabilities are observed, then proven: the program runs again with fewer capabilities, each call
denied for lack of one proposes it, and runc must show that the program ends as recorded with exactly
the proposed set and differently without each one. What cannot be proven is reported, never added.
That needs root, setpriv and runc, and a program that ends by itself (not by Ctrl-C) and may run
several more times (with fewer capabilities under strace, then under runc).

The command's own output goes to stderr; the profiles go to stdout. Ctrl-C stops the command and
still prints what was recorded. Exit code 0 when the profiles were printed (the command's exit code is
reported on stderr), 2 on bad input.

  --name N             metadata.name of both profiles (default: recorded)
  --only PART          print only seccomp, apparmor or securitycontext
  --output yaml        YAML for kubectl apply (default); json: with --only seccomp, plain OCI
                       linux.seccomp for this machine's architecture, as the node agent would write it
  --writable DIR       a directory the pod mounts a writable volume at (emptyDir); repeatable
  --merge FILE         also allow what an earlier recording (its YAML, or OCI seccomp JSON) allows;
                       repeatable, for several runs or containers
  --skip-capabilities  do not analyse capabilities (the securityContext then adds none)
  --progress           a progress line on stderr every second (default when stderr is a terminal)

${RECORD_CLUSTER_HELP.replace("usage: ", "In the cluster: ")}`;

/**
 * Earlier recordings: what their SeccompProfile (or OCI JSON) and their AppArmorProfiles allow. A file
 * may hold either or both (`--only apparmor` prints an AppArmorProfile alone).
 */
function readEarlierRecording(file: string) {
  const documents = readDocuments(file);
  const kinds = documents.map((doc) => (doc as { kind?: unknown } | null)?.kind);
  const appArmor = documents
    .filter((_, i) => kinds[i] === APPARMOR_PROFILE_KIND)
    .map((doc) => {
      const parsed = parseAppArmorProfile(doc);
      if (!parsed.ok) throw new UserError(`${file}: ${parsed.message}`);
      if (parsed.value.spec.rawPolicy !== undefined)
        throw new UserError(
          `${file}: an AppArmorProfile with rawPolicy cannot be merged into a recording (${JSON.stringify(parsed.value.metadata.name)})`,
        );
      return parsed.value.spec;
    });
  const hasSeccomp = appArmor.length === 0 || kinds.includes(SECCOMP_PROFILE_KIND);
  const seccomp = hasSeccomp
    ? recordedSyscalls(effectiveSeccomp(file))
    : { syscalls: new Set<string>(), namespaceCreating: new Set<string>(), widened: [] };
  if (seccomp.widened.length > 0)
    process.stderr.write(
      `lockstep: ${file}: allowed whole, without its argument conditions: ${seccomp.widened.join(", ")}\n`,
    );
  return { seccomp, appArmor };
}

/** A path with its symbolic links resolved, as AppArmor sees it; for a file since removed, its directory's. */
function canonicalPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    try {
      return join(realpathSync(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}

export async function recordCommand(argv: string[]): Promise<number> {
  // In the cluster (docs/adr/0039-profile-recording.md), before anything of the local mode.
  const local = argv.indexOf("--");
  if ((local === -1 ? argv : argv.slice(0, local)).includes("--cluster")) return clusterRecordCommand(argv);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: "string", default: "recorded" },
      only: { type: "string" },
      output: { type: "string", default: "yaml" },
      writable: { type: "string", multiple: true, default: [] },
      merge: { type: "string", multiple: true, default: [] },
      "skip-capabilities": { type: "boolean", default: false },
      progress: { type: "boolean", default: Boolean(process.stderr.isTTY) },
    },
  });
  if (values.output !== "yaml" && values.output !== "json")
    throw new UserError(`--output ${values.output}: must be yaml or json`);
  if (values.only !== undefined && !(RECORDING_PARTS as readonly string[]).includes(values.only))
    throw new UserError(`--only ${values.only}: must be one of ${RECORDING_PARTS.join(", ")}`);
  const only = values.only as RecordingPart | undefined;
  if (values.output === "json" && only !== undefined && only !== "seccomp")
    throw new UserError(
      `--output json prints OCI seccomp JSON: it goes with --only seccomp, not --only ${only}`,
    );
  if (!isValidProfileObjectName(values.name))
    throw new UserError(
      `--name ${JSON.stringify(values.name)}: not a valid object name (lower-case letters, digits, '-' and '.')`,
    );
  const notAbsolute = values.writable.find((dir) => !isAbsolute(dir));
  if (notAbsolute !== undefined)
    throw new UserError(
      `--writable ${notAbsolute}: must be an absolute path (where the pod mounts a volume)`,
    );
  if (positionals.length === 0)
    throw new UserError("nothing to record: lockstep record [options] -- COMMAND [ARGS...]");
  const [command, ...args] = positionals as [string, ...string[]];
  if (spawnSync("strace", ["-V"], { stdio: "ignore" }).error)
    throw new UserError("strace not found: install it (apt-get install strace)");
  const program = findOnPath(command);
  if (!program) throw new UserError(`command not found: ${command}`);
  // Read the earlier recordings first: a bad --merge file should fail before a long recording, not after.
  const merged = values.merge.map(readEarlierRecording);
  const writable = values.writable.map((dir) => resolve(dir));

  const dir = mkdtempSync(join(tmpdir(), "lockstep-record-"));
  const tracePath = join(dir, "trace");
  const trace = new TraceSyscalls();
  const cwd = process.cwd();
  const files = new FileActivity({ cwd, canonical: canonicalPath });
  const network = new NetworkActivity();
  const denied: TracedCall[] = [];
  const calls = new TraceCalls((call) => {
    files.add(call);
    network.add(call);
    if (isDenied(call)) denied.push(call);
  });
  const reader = new TraceFileReader(tracePath, [trace, calls]);
  // Ctrl-C reaches the recorded command (same process group); we keep running to print what it did.
  const ignoreSignal = () => {};
  process.on("SIGINT", ignoreSignal);
  try {
    const started = Date.now();
    const running = runUnderStrace(tracePath, [command, ...args]);
    const timer = values.progress
      ? setInterval(() => {
          reader.readNew();
          const seconds = Math.round((Date.now() - started) / 1000);
          process.stderr.write(
            `\rlockstep: recording ${command}: ${seconds}s, ${trace.size} distinct syscalls so far`,
          );
        }, 1000)
      : undefined;
    const ended = await running.catch((error: Error) => {
      throw new UserError(`cannot run strace: ${error.message}`);
    });
    // From here on Ctrl-C is for lockstep itself: the capability proof may take a while.
    process.off("SIGINT", ignoreSignal);
    const elapsedMs = Date.now() - started;
    const outcome = ended.signal ? `was killed by ${ended.signal}` : `exited with ${ended.exitCode}`;
    if (timer) {
      clearInterval(timer);
      process.stderr.write("\n");
    }
    reader.readNew();
    const recorded = trace.finish();
    calls.finish();
    if (recorded.length === 0) throw new UserError(`strace recorded no syscalls of ${command} (${outcome})`);
    const namespaceCreating = new Set([
      ...trace.namespaceCreating,
      ...merged.flatMap((m) => [...m.seccomp.namespaceCreating]),
    ]);
    const { seccomp, unknown } = profileFromSyscalls(
      [...recorded, ...merged.flatMap((m) => [...m.seccomp.syscalls])],
      { namespaceCreating },
    );
    if (unknown.length > 0)
      process.stderr.write(
        `lockstep: kept syscalls missing from the syscall table (newer than it, or unnamed numbers): ${unknown.join(", ")}\n`,
      );
    if (namespaceCreating.size > 0)
      process.stderr.write(
        `lockstep: the program created namespaces with ${[...namespaceCreating].join(", ")}: allowed without filters\n`,
      );
    const allowed = new Set(
      seccomp.syscalls.filter((r) => r.action === "SCMP_ACT_ALLOW").flatMap((r) => r.names),
    );
    process.stderr.write(
      `lockstep: ${command} ${outcome}; ${recorded.length} distinct syscalls recorded, ${allowed.size} allowed\n`,
    );
    const seccompJson = renderSeccompForNode(seccomp, hostNodeArch());

    if (only === "seccomp" || values.output === "json") {
      process.stdout.write(
        values.output === "json" ? serializeSeccomp(seccompJson) : formatSeccompProfile(values.name, seccomp),
      );
      return 0;
    }

    const activity = { files: files.accesses, families: network.families, protocols: network.protocols };
    // This run's own writes decide the proof container's root: the pod's, if the proposal holds.
    const ownWrites = writesOutside(
      recordedAppArmor({ ...activity, capabilities: [] }).spec.paths ?? {},
      writable,
    );
    const capabilities = values["skip-capabilities"]
      ? notAnalysed("--skip-capabilities")
      : ended.exitCode === null
        ? notAnalysed(`the program ${outcome}: a proof needs a program that ends by itself`)
        : await findCapabilities({
            argv: [resolve(program), ...args],
            cwd,
            deniedWhenRecorded: denied,
            recordedExitCode: ended.exitCode,
            timeoutMs: Math.max(10_000, 3 * elapsedMs),
            container: { seccomp: seccompJson, readOnlyRoot: ownWrites.length === 0, writable },
            log: (line) => process.stderr.write(`lockstep: capabilities: ${line}\n`),
          });
    for (const line of capabilityReport(capabilities)) process.stderr.write(`${line}\n`);
    if (network.unsupported.size > 0)
      process.stderr.write(
        `lockstep: socket families the AppArmorProfile's structured form cannot name (use rawPolicy): ${[...network.unsupported].join(", ")}\n`,
      );
    const appArmor = recordedAppArmor(
      { ...activity, capabilities: capabilities.proven },
      merged.flatMap((m) => m.appArmor),
    );
    if (appArmor.leftOut.length > 0)
      process.stderr.write(
        `lockstep: paths the AppArmorProfile's structured form cannot hold, left out (use rawPolicy): ${appArmor.leftOut.join(", ")}\n`,
      );
    const securityContext = recordedSecurityContext({ name: values.name, appArmor: appArmor.spec, writable });
    const writtenOutside = writesOutside(appArmor.spec.paths ?? {}, writable);
    if (writtenOutside.length > 0)
      process.stderr.write(
        `lockstep: written outside --writable, so readOnlyRootFilesystem is false: ${writtenOutside.join(", ")}\n`,
      );
    process.stdout.write(
      formatRecording({ name: values.name, seccomp, appArmor: appArmor.spec, securityContext }, only),
    );
    // Printed for inspection, but a proposal its own container cannot run must not pass a script.
    return capabilities.containerFails === undefined ? 0 : 1;
  } finally {
    process.off("SIGINT", ignoreSignal);
    rmSync(dir, { recursive: true, force: true });
  }
}

function notAnalysed(reason: string): CapabilityFindings {
  return { proven: [], unproven: [], unexplained: [], skipped: reason };
}

/** What record says about capabilities on stderr, one line each; a failing container first and loudest. */
export function capabilityReport(findings: CapabilityFindings): string[] {
  const say = (line: string) => `lockstep: capabilities: ${line}`;
  if (findings.skipped !== undefined)
    return [say(`not analysed (${findings.skipped}); the securityContext drops all and adds none`)];
  const lines: string[] = [];
  if (findings.containerFails !== undefined)
    lines.push(
      `lockstep: ERROR: the proposed container does not run the program as recorded: ${findings.containerFails}. The profiles and securityContext below are printed for inspection only; exit code 1`,
    );
  else
    lines.push(
      say(findings.proven.length === 0 ? "none needed" : `proven needed: ${findings.proven.join(", ")}`),
    );
  for (const { capability, reason } of findings.unproven)
    lines.push(say(`${capability} not proven, left out: ${reason}`));
  for (const failure of findings.unexplained)
    lines.push(
      say(
        `denied for lack of a privilege no capability is known to grant: ${failure.call} = ${failure.errno}`,
      ),
    );
  return lines;
}
