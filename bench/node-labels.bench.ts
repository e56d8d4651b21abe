// What Lockstep's Node labels cost the rest of the cluster (docs/adr/0024-node-labels-that-scale.md):
// 1,000 Node objects on the real control plane, first without Lockstep, then as agents label them
// with 200 profiles installed: the resident memory of kube-scheduler, kube-controller-manager,
// kube-apiserver and etcd (each caches or stores every Node), and the size of one Node object.
//
// Each state (0 and 200 installed profiles) runs on a fresh control plane, because Go does not hand
// memory back: a process that went through one state carries its high-water mark into the next. Both
// states hold the same 1,000 Nodes and 200 profiles and the same two writes per Node (the agent's first
// labels, then its labels for the state), so they differ only in what Lockstep's labels carry. Measuring
// both states in one process, as this benchmark once did, gave the later state one more round of 1,000
// Node writes and charged their cost (the API server's watch cache, a Go heap that does not shrink) to
// the labels. Memory is the median of five readings after the caches settled.
//
// Two schemes: the per-profile labels of agents before ADR 0024, and the labels agents write now. The
// labels are written as the agent computes them (desiredLockstepLabels) for profiles created on the same
// API server, so the revisions are real.
import * as k8s from "@kubernetes/client-node";
import { desiredLockstepLabels } from "../node-agent/node-labels.ts";
import { profileLabelKey, selectorSyncedLabelKey } from "../src/api/labels.ts";
import { installControllerPrerequisites } from "../test/harness/controller.ts";
import { ControlPlane } from "../test/harness/controlplane.ts";
import { residentMemoryMiB } from "../test/harness/processes.ts";
import { applyProfile } from "../test/harness/profiles.ts";
import type { Results } from "./stats.ts";

const NODES = 1_000;
const PROFILES = 200;
const COMPONENTS = ["kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"] as const;
/** The label every profile in this run selects nodes by: what a real cluster's profiles might share. */
const POOL = { pool: "general" };

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(retried(work)));
}

/** Two more tries for a request a loaded machine dropped (a reset connection); the writes are idempotent. */
function retried<T>(work: (item: T) => Promise<unknown>): (item: T) => Promise<unknown> {
  return async (item) => {
    for (let attempt = 1; ; attempt++)
      try {
        return await work(item);
      } catch (error) {
        if (attempt >= 3 || !String(error).includes("fetch failed")) throw error;
        await new Promise((r) => setTimeout(r, 1_000));
      }
  };
}

type Scheme = "per-profile" | "revisions";

/** The Lockstep labels an agent of each scheme puts on a node holding every one of `profiles`. */
function lockstepLabels(scheme: Scheme, profiles: { name: string; version: string }[], revision: string) {
  const base = { "lockstep.dev/agent": "0.1.0", "lockstep.dev/apparmor": "unavailable" };
  if (scheme === "per-profile")
    return {
      ...base,
      ...Object.fromEntries(profiles.map((p) => [profileLabelKey("seccomp", p.name), p.version])),
    };
  // With no profile there is no nodeSelector key to record.
  const selectorSynced = new Map<string, string>(
    profiles.length === 0 ? [] : [[selectorSyncedLabelKey("pool"), POOL.pool]],
  );
  return desiredLockstepLabels({
    revisions: { seccomp: revision, apparmor: revision },
    failed: new Map(),
    selectorSynced,
    appArmor: "unavailable",
    agentVersion: "0.1.0",
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The median of 5 readings 3 s apart, after 10 s for watches to deliver and caches to fill. */
async function settledMemoryMiB(pid: number, first = true): Promise<number> {
  if (first) await sleep(10_000);
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(residentMemoryMiB(pid));
    await sleep(3_000);
  }
  return readings.sort((a, b) => a - b)[2] ?? 0;
}

async function measure(
  cp: ControlPlane,
  core: k8s.CoreV1Api,
  memory = true,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (memory)
    for (const [i, name] of COMPONENTS.entries()) {
      const process = cp.processes.find((p) => p.name === name);
      if (!process) throw new Error(`no ${name} process in the harness`);
      out[name] = await settledMemoryMiB(process.pid, i === 0);
    }
  const node = await core.readNode({ name: "node-0" });
  if (node.metadata) delete node.metadata.managedFields;
  out.nodeBytes = Buffer.byteLength(JSON.stringify(node));
  return out;
}

/** Not Lockstep's: it makes the second write of each Node a real write in both states. */
const ROUND_ANNOTATION = "bench.lockstep.dev/round";

/**
 * One state on a fresh control plane: 1,000 Nodes, 200 profiles, and two writes per Node, the agent's
 * first labels (nothing installed yet) then its labels with `installed` profiles. The second write also
 * sets an annotation that is not Lockstep's, so it is a real write in both states: the two states hold
 * the same objects and the same history of writes, and differ only in what Lockstep's labels carry.
 */
async function runState(scheme: Scheme, installed: number): Promise<Record<string, number>> {
  const cp = await ControlPlane.start();
  try {
    const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    await installControllerPrerequisites(cp);
    const names = Array.from({ length: NODES }, (_, i) => `node-${i}`);
    await inBatches(names, 20, (n) => cp.addNode(n, { labels: POOL }));
    const withoutLockstep = (await measure(cp, core, false)).nodeBytes ?? 0;
    const write = (metadata: { labels: Record<string, string>; annotations?: Record<string, string> }) =>
      inBatches(names, 20, (n) =>
        core.patchNode(
          { name: n, body: { metadata } },
          k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
        ),
      );
    const profiles = Array.from({ length: PROFILES }, (_, i) => ({
      name: `profile-${String(i).padStart(3, "0")}`,
      // A version as the agent writes it: 12 hex digits.
      version: (0x100000000000 + i).toString(16),
    }));
    let revision = "0";
    await inBatches(profiles, 20, async (p) => {
      const created = (await applyProfile(cp.kubeConfig(), "SeccompProfile", p.name, {
        defaultAction: "SCMP_ACT_ALLOW",
        nodeSelector: POOL,
      })) as { metadata: { resourceVersion: string } };
      if (BigInt(created.metadata.resourceVersion) > BigInt(revision))
        revision = created.metadata.resourceVersion;
    });
    await write({ labels: lockstepLabels(scheme, [], revision) });
    const labels = lockstepLabels(scheme, profiles.slice(0, installed), revision);
    await write({ labels, annotations: { [ROUND_ANNOTATION]: "2" } });
    return {
      ...(await measure(cp, core)),
      withoutLockstep,
      lockstepLabels: Object.keys(labels).length,
    };
  } finally {
    await cp.stop();
  }
}

async function runScheme(scheme: Scheme, results: Results): Promise<void> {
  // A fresh control plane per state: Go does not hand memory back, so a process that went through the
  // first state would carry its high-water mark into the second.
  const before = await runState(scheme, 0);
  const after = await runState(scheme, PROFILES);
  for (const name of COMPONENTS) {
    const [b, a] = [before[name] ?? 0, after[name] ?? 0];
    results[`${scheme}.${name}_0_profiles`] = { value: b, unit: "MiB" };
    results[`${scheme}.${name}_${PROFILES}_profiles`] = { value: a, unit: "MiB" };
    results[`${scheme}.${name}_growth`] = { value: b === 0 ? 0 : ((a - b) / b) * 100, unit: "%" };
  }
  const withoutLockstep = after.withoutLockstep ?? 0;
  results[`${scheme}.node_bytes_without_lockstep`] = { value: withoutLockstep, unit: "bytes" };
  results[`${scheme}.node_bytes_over_without_lockstep`] = {
    value: (after.nodeBytes ?? 0) - withoutLockstep,
    unit: "bytes",
  };
  results[`${scheme}.node_bytes_0_profiles`] = { value: before.nodeBytes ?? 0, unit: "bytes" };
  results[`${scheme}.node_bytes_${PROFILES}_profiles`] = { value: after.nodeBytes ?? 0, unit: "bytes" };
  results[`${scheme}.node_bytes_growth`] = {
    value: (after.nodeBytes ?? 0) - (before.nodeBytes ?? 0),
    unit: "bytes",
  };
  results[`${scheme}.lockstep_labels_per_node`] = { value: after.lockstepLabels ?? 0, unit: "labels" };
}

export async function run(): Promise<Results> {
  const results: Results = {};
  // `LOCKSTEP_BENCH_LABEL_SCHEMES=revisions` measures one scheme alone.
  const schemes = (process.env.LOCKSTEP_BENCH_LABEL_SCHEMES?.split(",") ?? [
    "per-profile",
    "revisions",
  ]) as Scheme[];
  for (const scheme of schemes) await runScheme(scheme, results);
  return results;
}
