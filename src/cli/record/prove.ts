// Finding and proving the capabilities a recorded program needs. First by observation: the program runs
// again under strace with a reduced capability set (setpriv, from util-linux), and each call denied for
// lack of one proposes a capability (capabilities.ts), until no new denial appears. Then by proof under
// runc, in a container shaped like the pod (container.ts), each run traced: with exactly the proposed set
// the program must end as it did when recorded and no call that succeeded then may fail for lack of a
// capability; with each proposed capability removed on its own, a call it lifts must fail (or the program
// end differently). A capability that fails the proof is reported and left out, never added on a guess.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  byKernelOrder,
  type Capability,
  failuresLiftedBy,
  isDenied,
  isProgramStart,
  nextCapabilities,
  type PrivilegeFailure,
  privilegeFailures,
} from "./capabilities.ts";
import { type ContainerSpec, findRunc, runInHostContainer } from "./container.ts";
import { findOnPath, runUnderStrace, TraceFileReader } from "./strace.ts";
import { TraceCalls, type TracedCall } from "./trace-calls.ts";

export interface CapabilityFindings {
  /** Needed: the program ends as recorded with exactly these, and differently without any one of them. */
  proven: Capability[];
  /** Proposed by observation but not proven, with the reason. */
  unproven: { capability: Capability; reason: string }[];
  /** Calls still denied with the proposal whose lack of privilege no capability in the table explains. */
  unexplained: PrivilegeFailure[];
  /** Why nothing was analysed (not root, no runc, the recording was interrupted). */
  skipped?: string;
  /**
   * The container the recording proposes (its seccomp profile, exactly the proposed capabilities) did not
   * run the program as it ran when recorded: what happened. The proposal is then not fit to use.
   */
  containerFails?: string;
}

export interface ProofSetup {
  argv: readonly string[];
  cwd: string;
  /** Calls the recording itself saw denied: a denial that happens with every capability is not about them. */
  deniedWhenRecorded: readonly TracedCall[];
  /** How the recorded program ended: what "runs" means for the proof. */
  recordedExitCode: number;
  timeoutMs: number;
  container: Pick<ContainerSpec, "seccomp" | "readOnlyRoot" | "writable">;
  log: (line: string) => void;
}

/** At most this many reruns with more capabilities each: every round adds one, so it ends well before. */
const MAX_OBSERVATION_ROUNDS = 12;

export async function findCapabilities(setup: ProofSetup): Promise<CapabilityFindings> {
  const none = { proven: [], unproven: [], unexplained: [] };
  if (process.getuid?.() !== 0)
    return { ...none, skipped: "needs root, to run the program with chosen capability sets" };
  if (!findOnPath("setpriv")) return { ...none, skipped: "setpriv not found (apt-get install util-linux)" };
  const runc = findRunc();
  if (!runc) return { ...none, skipped: "runc not found (apt-get install runc): nothing can be proven" };

  const { proposal, unexplained } = await observe(setup);
  const proof = await prove(runc, setup, proposal);
  return { ...proof, unexplained };
}

/** Reruns with more capabilities each round, until no denied call proposes another. */
async function observe(
  setup: ProofSetup,
): Promise<{ proposal: Capability[]; unexplained: PrivilegeFailure[] }> {
  let held: Capability[] = [];
  let failures: PrivilegeFailure[] = [];
  for (let round = 0; round < MAX_OBSERVATION_ROUNDS; round++) {
    failures = privilegeFailures(await deniedCalls(setup, held), setup.deniedWhenRecorded);
    const next = nextCapabilities(failures, held);
    setup.log(
      `with ${describe(held)}: ${failures.length === 0 ? "no call denied" : failures.map((f) => `${f.call} = ${f.errno}`).join("; ")}`,
    );
    if (next.length === 0) break;
    held = [...held, ...next].sort(byKernelOrder);
  }
  // A denial the held set did not lift: the table proposed nothing more for it.
  const unexplained = failures.filter((f) => f.candidates.every((c) => held.includes(c)));
  return { proposal: held, unexplained };
}

async function deniedCalls(setup: ProofSetup, capabilities: readonly Capability[]): Promise<TracedCall[]> {
  const dir = mkdtempSync(join(tmpdir(), "lockstep-caps-"));
  const tracePath = join(dir, "trace");
  const denied: TracedCall[] = [];
  const calls = new TraceCalls((call) => {
    if (isDenied(call)) denied.push(call);
  });
  try {
    // For uid 0 the kernel gives a new program every capability in the bounding set (file capabilities
    // count as full), so the bounding set alone decides; inheritable ones are cleared so none come back.
    const keep = ["-all", ...capabilities.map((c) => `+${c}`)].join(",");
    await runUnderStrace(
      tracePath,
      ["setpriv", `--bounding-set=${keep}`, "--inh-caps=-all", "--", ...setup.argv],
      { timeoutMs: setup.timeoutMs },
    );
    new TraceFileReader(tracePath, [calls]).readNew();
    calls.finish();
    return denied;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function prove(
  runc: string,
  setup: ProofSetup,
  proposed: readonly Capability[],
): Promise<Pick<CapabilityFindings, "proven" | "unproven" | "containerFails">> {
  const unproven: CapabilityFindings["unproven"] = [];
  let proposal = [...proposed];
  // Each run is traced: a call that succeeded when recorded and fails here, for lack of a capability,
  // shows the capability is needed even when the program carries on and ends as recorded (many log a
  // failed call and go on; a shell script's `;` does).
  const run = async (capabilities: readonly Capability[]) => {
    const dir = mkdtempSync(join(tmpdir(), "lockstep-prove-trace-"));
    const tracePath = join(dir, "trace");
    const program = setup.argv[0] ?? "";
    const denied: TracedCall[] = [];
    // runc's own processes go on making calls after the program starts (some denied): the pids seen
    // before its execve, but for its own, are runc's. (clone's results cannot name the program's
    // children: they are pids of the container's namespace, strace prints the host's.)
    const runcPids = new Set<number>();
    let started = false;
    const calls = new TraceCalls((call) => {
      if (!started) {
        started = isProgramStart(call, program);
        if (!started) runcPids.add(call.pid);
        else runcPids.delete(call.pid);
        return;
      }
      if (!runcPids.has(call.pid) && isDenied(call)) denied.push(call);
    });
    try {
      const outcome = await runInHostContainer(runc, {
        ...setup.container,
        argv: setup.argv,
        cwd: setup.cwd,
        capabilities,
        timeoutMs: setup.timeoutMs,
        tracePath,
      });
      new TraceFileReader(tracePath, [calls]).readNew();
      calls.finish();
      return { ...outcome, failures: privilegeFailures(denied, setup.deniedWhenRecorded) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const calls = (failures: readonly PrivilegeFailure[]) =>
    failures.length === 0 ? "" : `; ${failures.map((f) => `${f.call} = ${f.errno}`).join("; ")}`;
  for (;;) {
    const exact = await run(proposal);
    setup.log(`under runc with exactly ${describe(proposal)}: ${ending(exact)}${calls(exact.failures)}`);
    // Denied calls a capability could lift: the proposal lacks something the recording had.
    const missing = exact.failures.filter((f) => f.candidates.length > 0);
    if (exact.exitCode !== setup.recordedExitCode || exact.timedOut || missing.length > 0) {
      const reason =
        missing.length > 0
          ? `under runc with exactly ${describe(proposal)} calls that succeeded when recorded fail: ${missing.map((f) => `${f.call} = ${f.errno}`).join("; ")}`
          : `under runc with exactly ${describe(proposal)} the program ${ending(exact)}, not exit code ${setup.recordedExitCode} as recorded${lastLine(exact.stderr)}`;
      return {
        proven: [],
        unproven: [...unproven, ...proposal.map((capability) => ({ capability, reason }))],
        containerFails: reason,
      };
    }
    const needed: Capability[] = [];
    for (const capability of proposal) {
      const without = await run(proposal.filter((c) => c !== capability));
      const lifted = failuresLiftedBy(without.failures, capability);
      setup.log(`under runc without ${capability}: ${ending(without)}${calls(lifted)}`);
      if (without.exitCode !== setup.recordedExitCode || without.timedOut || lifted.length > 0)
        needed.push(capability);
      else
        unproven.push({
          capability,
          reason: `the program ends as recorded without it, and no call it lifts fails (under runc with ${describe(proposal.filter((c) => c !== capability))})`,
        });
    }
    // Leaving out what was not needed changes the set the program ran with: prove the smaller one again.
    if (needed.length === proposal.length) return { proven: proposal, unproven };
    proposal = needed;
  }
}

function describe(capabilities: readonly Capability[]): string {
  return capabilities.length === 0 ? "no capabilities" : capabilities.join(", ");
}

function ending(outcome: { exitCode: number; timedOut: boolean }): string {
  return outcome.timedOut ? "did not end in time" : `exited with ${outcome.exitCode}`;
}

function lastLine(stderr: string): string {
  const line = stderr.trim().split("\n").at(-1);
  return line ? ` (its last words: ${JSON.stringify(line.slice(0, 200))})` : "";
}
