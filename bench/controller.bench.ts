// The controller: how long after the last node label lands every status says Installed, and its
// resident memory with 1,000 profiles and 5,000 Node objects in its caches.
import * as k8s from "@kubernetes/client-node";
import { SYNCED_REVISION_LABEL } from "../src/api/constants.ts";
import { maxRevision } from "../src/api/node-profiles.ts";
import { installControllerPrerequisites, startController } from "../test/harness/controller.ts";
import { ControlPlane, waitFor } from "../test/harness/controlplane.ts";
import { residentMemoryMiB } from "../test/harness/processes.ts";
import type { Results } from "./stats.ts";

const AGENT = { "lockstep.dev/agent": "0.1.0", "lockstep.dev/apparmor": "unavailable" };

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

export async function run(): Promise<Results> {
  const results: Results = {};
  const cp = await ControlPlane.start({ scheduler: false, controllerManager: false });
  try {
    await installControllerPrerequisites(cp);
    const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    const objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    const controller = await startController(cp, 1, { lease: [15, 10, 2] });
    const list = async () =>
      (
        await objects.listClusterCustomObject({
          group: "lockstep.dev",
          version: "v1alpha1",
          plural: "seccompprofiles",
        })
      ).items as {
        metadata: { name: string };
        status?: { phase?: string; version?: string; revision?: string };
      }[];
    const createProfiles = (from: number, to: number) =>
      inBatches(
        Array.from({ length: to - from }, (_, i) => `p-${from + i}`),
        25,
        (name) =>
          objects.createClusterCustomObject({
            group: "lockstep.dev",
            version: "v1alpha1",
            plural: "seccompprofiles",
            body: {
              apiVersion: "lockstep.dev/v1alpha1",
              kind: "SeccompProfile",
              metadata: { name },
              spec: {
                defaultAction: "SCMP_ACT_ERRNO",
                syscalls: [{ names: ["read", "write"], action: "SCMP_ACT_ALLOW" }],
              },
            },
          }),
      );

    // Convergence: 100 profiles on 20 nodes; every node gets all labels in one PATCH, as an agent does.
    const nodes = Array.from({ length: 20 }, (_, i) => `node-${i}`);
    await inBatches(nodes, 10, (n) => core.createNode({ body: { metadata: { name: n, labels: AGENT } } }));
    await createProfiles(0, 100);
    const versions = await waitFor(
      "100 profiles to have a version in status",
      async () => {
        const items = await list();
        return items.length === 100 && items.every((p) => p.status?.revision) ? items : undefined;
      },
      { timeoutMs: 120_000 },
    );
    // What an agent that installed all 100 writes: its revision, at least every profile's (ADR 0024).
    const labels = {
      [SYNCED_REVISION_LABEL.seccomp]: maxRevision(versions.map((p) => p.status?.revision ?? "0")),
    };
    await inBatches(nodes, 10, (n) =>
      core.patchNode(
        { name: n, body: { metadata: { labels } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      ),
    );
    const lastLabel = performance.now();
    // Watched, not polled: listing 100 profiles every few ms would load the same 2 cores the API
    // server and the controller share, and slow down what is being measured.
    const installedAt = await new Promise<number>((resolve, reject) => {
      const phases = new Map<string, string | undefined>();
      const timeout = setTimeout(() => reject(new Error("statuses not Installed within 120 s")), 120_000);
      const informer = k8s.makeInformer<k8s.KubernetesObject & { status?: { phase?: string } }>(
        cp.kubeConfig(),
        "/apis/lockstep.dev/v1alpha1/seccompprofiles",
        () =>
          objects.listClusterCustomObject({
            group: "lockstep.dev",
            version: "v1alpha1",
            plural: "seccompprofiles",
          }),
      );
      const check = (p: k8s.KubernetesObject & { status?: { phase?: string } }) => {
        phases.set(p.metadata?.name ?? "", p.status?.phase);
        if (phases.size === 100 && [...phases.values()].every((phase) => phase === "Installed")) {
          const at = performance.now();
          clearTimeout(timeout);
          void informer.stop();
          resolve(at);
        }
      };
      informer.on("add", check);
      informer.on("update", check);
      informer.start().catch(reject);
    });
    results.status_convergence_100_profiles_20_nodes = {
      value: Math.round(installedAt - lastLabel),
      unit: "ms",
    };

    const baselineRss = residentMemoryMiB(controller.process.pid);
    results.controller_rss_100_profiles_20_nodes = { value: Math.round(baselineRss), unit: "MiB" };

    // Memory at scale: 1,000 profiles and 5,000 Nodes.
    await createProfiles(100, 1000);
    const more = Array.from({ length: 4980 }, (_, i) => `scale-${i}`);
    await inBatches(more, 50, (n) =>
      core.createNode({ body: { metadata: { name: n, labels: { pool: String(Number(n.slice(6)) % 10) } } } }),
    );
    await waitFor(
      "1,000 profiles with a status",
      async () => {
        const items = await list();
        return items.length === 1000 && items.every((p) => p.status?.phase) ? true : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    await new Promise((r) => setTimeout(r, 3000));
    const scaleRss = residentMemoryMiB(controller.process.pid);
    results.controller_rss_1000_profiles_5000_nodes = { value: Math.round(scaleRss), unit: "MiB" };
    // Within one run: how much the 10x profiles and 250x Nodes cost over the small cluster.
    results.controller_rss_scale_over_baseline = {
      value: Math.round((scaleRss / baselineRss) * 100) / 100,
      unit: "ratio",
    };
    await controller.process.stop();
  } finally {
    await cp.stop();
  }
  return results;
}
