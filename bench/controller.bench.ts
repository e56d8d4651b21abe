// The controller: how long after the last node label lands every status says Installed (median and
// slowest of 5 rounds), and its resident memory with 1,000 profiles and 5,000 Node objects in its caches.
import * as k8s from "@kubernetes/client-node";
import { profilePath, SYNCED_REVISION_LABEL } from "../src/api/constants.ts";
import { maxRevision } from "../src/api/node-profiles.ts";
import { configFromKubeconfigFiles, KubeClient } from "../src/kube/client.ts";
import { Informer, type KubeObject } from "../src/kube/informer.ts";
import { installControllerPrerequisites, startController } from "../test/harness/controller.ts";
import { ControlPlane, waitFor } from "../test/harness/controlplane.ts";
import { residentMemoryMiB } from "../test/harness/processes.ts";
import { createProfile } from "../test/harness/profiles.ts";
import { ListCondition } from "./list-condition.ts";
import { quantile, type Results } from "./stats.ts";

const CONVERGENCE_ROUNDS = 5;

const AGENT = { "lockstep.dev/agent": "0.1.0", "lockstep.dev/apparmor": "unavailable" };

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

export async function run(): Promise<Results> {
  const results: Results = {};
  const cp = await ControlPlane.start({ scheduler: false, controllerManager: false });
  const client = new KubeClient(await configFromKubeconfigFiles([cp.adminKubeconfigPath]));
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
          createProfile(objects, "SeccompProfile", name, {
            defaultAction: "SCMP_ACT_ERRNO",
            syscalls: [{ names: ["read", "write"], action: "SCMP_ACT_ALLOW" }],
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
    const profiles = new Informer<KubeObject & { status?: { phase?: string } }>(client, {
      path: profilePath("seccomp"),
    });
    const profilesListed = new ListCondition(profiles);
    await profiles.start();
    const allIn = (phase: string) =>
      profilesListed.until(
        `all 100 statuses ${phase}`,
        (items) => items.length === 100 && items.every((p) => p.status?.phase === phase),
      );
    const labelNodes = (revision: string) =>
      inBatches(nodes, 10, (n) =>
        core.patchNode(
          { name: n, body: { metadata: { labels: { [SYNCED_REVISION_LABEL.seccomp]: revision } } } },
          k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
        ),
      );
    // What an agent that installed all 100 writes: its revision, at least every profile's (ADR 0024).
    const installedRevision = maxRevision(versions.map((p) => p.status?.revision ?? "0"));
    // Several rounds, since one is at the mercy of whatever else the 2 cores do: the first from the
    // statuses the profiles got at creation, each later one after the nodes lost the profiles again.
    const convergence: number[] = [];
    for (let round = 0; round < CONVERGENCE_ROUNDS; round++) {
      if (round > 0) {
        const installing = allIn("Installing");
        await labelNodes("1");
        await installing;
      }
      const installed = allIn("Installed");
      await labelNodes(installedRevision);
      const lastLabel = performance.now();
      convergence.push((await installed) - lastLabel);
    }
    await profiles.stop();
    results.status_convergence_100_profiles_20_nodes = {
      value: Math.round(quantile(convergence, 0.5)),
      unit: "ms",
    };
    results.status_convergence_100_profiles_20_nodes_max = {
      value: Math.round(Math.max(...convergence)),
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
    client.close();
    await cp.stop();
  }
  return results;
}
