// The agent's audit path under the heaviest load one process can make (docs/adr/0038): native/log-storm
// answers every one of its getppid(2) calls with SECCOMP_RET_LOG for 60 s, so each call is one audit
// record, as fast as the kernel writes them. It runs in a cgroup whose path ends in a container id, and a
// containerd state folder holds that id's bundle with a pod's CRI annotations, so the agent's real
// AuditCollector (reader process, parser, resolver, batcher) maps every record to that pod, exactly as
// on a node. Reported:
// - produced: the calls the storm counted; received: the calls of that pod the collector handed out;
//   lost: the difference (the target is 0); overruns: times the kernel found the reader's buffer full;
// - the storm's calls per second alone (unfiltered: the calls themselves; logged without a collector:
//   what writing the records costs) and with the collector running: what recording costs the workload.
// AUDIT_BENCH_SECONDS shortens each run for a quick check.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { AuditCollector } from "../node-agent/audit-collector.ts";
import { CRI_ANNOTATIONS } from "../node-agent/audit-events.ts";
import { buildNative, HOST_ARCH, nativeBinary } from "../scripts/native.ts";
import { CRI_BUNDLES } from "../src/api/paths.ts";
import { createLogger } from "../src/kube/logger.ts";
import { MetricsRegistry } from "../src/kube/metrics.ts";
import type { Results } from "./stats.ts";

const SECONDS = Number(process.env.AUDIT_BENCH_SECONDS ?? 60);
const CONTAINER_ID = "be0c4a11".repeat(8);
const POD = { namespace: "bench", pod: "storm", podUID: "uid-storm", container: "storm" };

interface StormResult {
  calls: number;
  seconds: number;
}

/** A cgroup whose path ends in CONTAINER_ID (cgroup v2, else v1's pids hierarchy); removed by `remove`. */
function containerCgroup(): { dir: string; remove: () => void } {
  const root = existsSync("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup" : "/sys/fs/cgroup/pids";
  const parent = join(root, "lockstep-bench");
  const dir = join(parent, CONTAINER_ID);
  mkdirSync(dir, { recursive: true });
  return {
    dir,
    remove: () => {
      for (const d of [dir, parent]) if (existsSync(d)) rmdirSync(d);
    },
  };
}

/** A containerd state folder with the bundle config.json of CONTAINER_ID, as the CRI writes it. */
function containerdState(): string {
  const state = mkdtempSync(join(tmpdir(), "lockstep-bench-containerd-"));
  const bundle = join(state, CRI_BUNDLES, CONTAINER_ID);
  mkdirSync(bundle, { recursive: true });
  const annotations = {
    [CRI_ANNOTATIONS.type]: "container",
    [CRI_ANNOTATIONS.namespace]: POD.namespace,
    [CRI_ANNOTATIONS.pod]: POD.pod,
    [CRI_ANNOTATIONS.podUID]: POD.podUID,
    [CRI_ANNOTATIONS.container]: POD.container,
  };
  writeFileSync(join(bundle, "config.json"), JSON.stringify({ ociVersion: "1.2.0", annotations }));
  return state;
}

/**
 * Runs the storm for SECONDS, inside `cgroup` when given (the shell moves itself in, then execs it).
 * Asynchronously: the collector in this process must go on reading its reader's lines meanwhile.
 */
async function storm(filter: boolean, cgroup?: string): Promise<StormResult> {
  const args = [`--duration=${SECONDS}s`, `--filter=${filter}`];
  const binary = nativeBinary("logStorm", HOST_ARCH);
  const [file, ...rest] = cgroup
    ? ["sh", "-c", `echo $$ > ${cgroup}/cgroup.procs && exec "$0" "$@"`, binary, ...args]
    : [binary, ...args];
  const { stdout } = await promisify(execFile)(file ?? binary, rest, { encoding: "utf8" });
  return JSON.parse(stdout) as StormResult;
}

export async function run(): Promise<Results> {
  buildNative(HOST_ARCH);
  const cgroup = containerCgroup();
  const state = containerdState();
  const metrics = new MetricsRegistry();
  const collector = new AuditCollector({
    reader: nativeBinary("auditReader", HOST_ARCH),
    containerdState: state,
    procRoot: "/proc",
    log: createLogger("bench", "warn"),
    metrics,
  });
  let received = 0;
  collector.onCalls((calls) => {
    for (const call of calls)
      if (call.podUID === POD.podUID && call.syscall === "getppid") received += call.count;
  });
  try {
    const unfiltered = await storm(false);
    const alone = await storm(true, cgroup.dir);
    collector.follow([JSON.stringify({ defaultAction: "SCMP_ACT_LOG" })]);
    await new Promise((r) => setTimeout(r, 1_000));
    const recorded = await storm(true, cgroup.dir);
    // The last records are in the reader's buffer and the last batch in the collector's.
    await new Promise((r) => setTimeout(r, 3_000));
    await collector.stop();
    const overruns = metrics.render().match(/^lockstep_audit_overruns_total (\d+)/m)?.[1] ?? "0";
    const perSecond = (r: StormResult) => Math.round(r.calls / r.seconds);
    return {
      produced_calls: { value: recorded.calls, unit: "calls" },
      received_calls: { value: received, unit: "calls" },
      lost_calls: { value: recorded.calls - received, unit: "calls" },
      reader_overruns: { value: Number(overruns), unit: "ENOBUFS" },
      storm_seconds: { value: SECONDS, unit: "s" },
      unfiltered_calls_per_s: { value: perSecond(unfiltered), unit: "calls/s" },
      logged_calls_per_s_without_collector: { value: perSecond(alone), unit: "calls/s" },
      logged_calls_per_s_with_collector: { value: perSecond(recorded), unit: "calls/s" },
    };
  } finally {
    await collector.stop();
    cgroup.remove();
    rmSync(state, { recursive: true, force: true });
  }
}
