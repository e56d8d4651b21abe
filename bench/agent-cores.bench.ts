// A rollout to many nodes with many agent cores in one process (issue 30): N simulated Nodes on the real
// control plane, each with an agent core of its own (NodeAgent from node-agent/agent.ts: its node name,
// kubelet root, client with its node's pod-bound token, and watches) in this process, and the shipped
// controller as a process. A profile's creation to its status saying Installed on all N nodes (p50 and
// p99 over the rounds), and to each node's label (p50 and p99 over every node of every round).
// LOCKSTEP_BENCH_AGENT_CORES sets the node counts (default "100,1000"); a count that does not fit the
// machine fails on its own and is left out of the results.
import { randomUUID } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { NodeAgent } from "../node-agent/agent.ts";
import { API_VERSION, profilePath } from "../src/api/constants.ts";
import { nodeHasProfile, type PlacementSource, placementOf } from "../src/api/node-profiles.ts";
import { configFromKubeconfigFiles, KubeClient } from "../src/kube/client.ts";
import { Informer, type KubeObject } from "../src/kube/informer.ts";
import { createLogger } from "../src/kube/logger.ts";
import { MetricsRegistry } from "../src/kube/metrics.ts";
import { agentKubeconfig, installAgentPrerequisites } from "../test/harness/agents.ts";
import { installControllerPrerequisites, startController } from "../test/harness/controller.ts";
import { ControlPlane } from "../test/harness/controlplane.ts";
import { residentMemoryMiB } from "../test/harness/processes.ts";
import { ListCondition } from "./list-condition.ts";
import { quantile, type Results } from "./stats.ts";

const ROUNDS = 10;
type Profile = KubeObject & { status?: { phase?: string; ready?: string } };

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

/** One agent core for `nodeName`, as the DaemonSet's pod would run it, but in this process. */
async function agentCore(
  cp: ControlPlane,
  nodeName: string,
): Promise<{ agent: NodeAgent; client: KubeClient }> {
  const dir = join(cp.workDir, "cores", nodeName);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "apparmor-enabled"), "N\n");
  await writeFile(join(dir, "boot_id"), `${randomUUID()}\n`);
  const client = new KubeClient(await configFromKubeconfigFiles([await agentKubeconfig(cp, nodeName)]));
  const agent = new NodeAgent({
    client,
    nodeName,
    kubeletRoot: join(dir, "kubelet"),
    appArmor: {
      securityfs: join(dir, "no-securityfs"),
      enabledParameter: join(dir, "apparmor-enabled"),
      parser: "apparmor_parser",
      bootId: join(dir, "boot_id"),
    },
    version: "0.0.0-bench",
    log: createLogger("agent", "warn").child({ node: nodeName }),
    metrics: new MetricsRegistry(),
  });
  return { agent, client };
}

async function rollout(nodeCount: number, results: Results): Promise<void> {
  const cp = await ControlPlane.start({ scheduler: false, controllerManager: false });
  const agents: NodeAgent[] = [];
  const clients: KubeClient[] = [];
  let controller: Awaited<ReturnType<typeof startController>> | undefined;
  const admin = new KubeClient(await configFromKubeconfigFiles([cp.adminKubeconfigPath]));
  const nodes = new Informer<KubeObject>(admin, { path: "/api/v1/nodes", metadataOnly: true });
  const profiles = new Informer<Profile>(admin, { path: profilePath("seccomp") });
  const installed: number[] = [];
  const labelled: number[] = [];
  // Each node's label, as the informer sees it arrive (the first time it holds the round's profile);
  // registered before the ListCondition's own handler, which then sees this node counted.
  let current: { placement: ReturnType<typeof placementOf>; seen: Set<string>; started: number } | undefined;
  const sawNode = (node: KubeObject) => {
    const nodeName = node.metadata?.name ?? "";
    if (!current || current.seen.has(nodeName)) return;
    if (!nodeHasProfile(current.placement, node.metadata?.labels ?? {})) return;
    current.seen.add(nodeName);
    labelled.push(performance.now() - current.started);
  };
  nodes.on("update", sawNode);
  const nodesListed = new ListCondition(nodes);
  const profilesListed = new ListCondition(profiles);
  try {
    await installAgentPrerequisites(cp);
    await installControllerPrerequisites(cp);
    const names = Array.from({ length: nodeCount }, (_, i) => `node-${i}`);
    await inBatches(names, 20, (name) => cp.addNode(name));
    await inBatches(names, 20, async (name) => {
      const core = await agentCore(cp, name);
      agents.push(core.agent);
      clients.push(core.client);
    });
    await inBatches(agents, 50, (agent) => agent.start());
    controller = await startController(cp, 1);

    await Promise.all([nodes.start(), profiles.start()]);
    for (let round = 0; round < ROUNDS; round++) {
      const name = `cores-${round}`;
      const started = performance.now();
      const done = profilesListed.until(`${name} Installed on ${nodeCount} nodes`, (items) =>
        items.some(
          (p) =>
            p.metadata?.name === name &&
            p.status?.phase === "Installed" &&
            p.status.ready === `${nodeCount}/${nodeCount}`,
        ),
      );
      const created = await admin.create<PlacementSource>(profilePath("seccomp"), {
        apiVersion: API_VERSION,
        kind: "SeccompProfile",
        metadata: { name },
        spec: { baseProfileName: "runtime/default" },
      });
      const thisRound = { placement: placementOf("seccomp", created), seen: new Set<string>(), started };
      current = thisRound;
      // Agents in this process may have labelled their Node before the create's answer was read.
      for (const node of nodes.list()) sawNode(node);
      await nodesListed.until(`${name} on all ${nodeCount} nodes`, () => thisRound.seen.size >= nodeCount);
      installed.push((await done) - started);
    }
    const ms = (v: number) => ({ value: Math.round(v), unit: "ms" });
    results[`create_to_installed_${nodeCount}_nodes_p50`] = ms(quantile(installed, 0.5));
    results[`create_to_installed_${nodeCount}_nodes_p99`] = ms(quantile(installed, 0.99));
    results[`create_to_node_label_${nodeCount}_nodes_p50`] = ms(quantile(labelled, 0.5));
    results[`create_to_node_label_${nodeCount}_nodes_p99`] = ms(quantile(labelled, 0.99));
    results[`process_rss_${nodeCount}_agent_cores`] = {
      value: Math.round(residentMemoryMiB(process.pid)),
      unit: "MiB",
    };
  } finally {
    await Promise.all([nodes.stop(), profiles.stop()]);
    await controller?.process.stop();
    await inBatches(agents, 100, (a) => a.stop());
    for (const c of clients) c.close();
    admin.close();
    await cp.stop();
  }
}

export async function run(): Promise<Results> {
  const results: Results = {};
  const counts = (process.env.LOCKSTEP_BENCH_AGENT_CORES ?? "100,1000").split(",").map(Number);
  for (const count of counts) {
    try {
      await rollout(count, results);
    } catch (error) {
      process.stderr.write(
        `agent-cores: ${count} nodes failed: ${error instanceof Error ? error.message : error}\n`,
      );
    }
  }
  return results;
}
