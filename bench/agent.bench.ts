// Rollout of one profile to N real agents (3, and 50 on this 2-core machine): time from `apply` to the
// last Node's label (median, and p99 over 20 rounds), Node PATCH requests per rollout (the agents' own
// counters), and one agent's resident memory.
import { API_VERSION, profilePath } from "../src/api/constants.ts";
import { nodeHasProfile, type PlacementSource, placementOf } from "../src/api/node-profiles.ts";
import { configFromKubeconfigFiles, KubeClient } from "../src/kube/client.ts";
import { Informer, type KubeObject } from "../src/kube/informer.ts";
import {
  type AgentProcess,
  installAgentPrerequisites,
  startAgent,
  stopAgents,
} from "../test/harness/agents.ts";
import { ControlPlane } from "../test/harness/controlplane.ts";
import { residentMemoryMiB } from "../test/harness/processes.ts";
import { ListCondition } from "./list-condition.ts";
import type { Results } from "./stats.ts";

async function patchesSoFar(agents: readonly AgentProcess[]): Promise<number> {
  let total = 0;
  for (const a of agents) {
    const text = await (await fetch(`http://127.0.0.1:${a.healthPort}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith("lockstep_agent_node_patches_total"));
    total += line ? Number(line.split(" ").pop()) : 0;
  }
  return total;
}

async function rollout(agentCount: number, results: Results): Promise<void> {
  const cp = await ControlPlane.start({ scheduler: false });
  const agents: AgentProcess[] = [];
  const client = new KubeClient(await configFromKubeconfigFiles([cp.adminKubeconfigPath]));
  const nodes = new Informer<KubeObject>(client, { path: "/api/v1/nodes", metadataOnly: true });
  const nodesListed = new ListCondition(nodes);
  try {
    await installAgentPrerequisites(cp);
    for (let i = 0; i < agentCount; i++) {
      await cp.addNode(`node-${i}`);
      agents.push(await startAgent(cp, `node-${i}`));
    }
    await nodes.start();
    const rounds = agentCount > 10 ? 20 : 5;
    const times: number[] = [];
    const before = await patchesSoFar(agents);
    for (let round = 0; round < rounds; round++) {
      const name = `bench-${round}`;
      const started = performance.now();
      const created = await client.create<PlacementSource>(profilePath("seccomp"), {
        apiVersion: API_VERSION,
        kind: "SeccompProfile",
        metadata: { name },
        spec: { baseProfileName: "runtime/default" },
      });
      const placement = placementOf("seccomp", created);
      const finished = await nodesListed.until(
        `${name} on all ${agentCount} nodes`,
        (items) =>
          items.filter((n) => nodeHasProfile(placement, n.metadata?.labels ?? {})).length >= agentCount,
      );
      times.push(finished - started);
    }
    const patches = (await patchesSoFar(agents)) - before;
    times.sort((a, b) => a - b);
    results[`rollout_${agentCount}_agents_median`] = {
      value: Math.round(times[Math.floor(rounds / 2)] ?? 0),
      unit: "ms",
    };
    // With 20 rounds the 99th percentile is the slowest round.
    results[`rollout_${agentCount}_agents_p99`] = {
      value: Math.round(times[Math.min(rounds - 1, Math.ceil(0.99 * rounds) - 1)] ?? 0),
      unit: "ms",
    };
    results[`node_patches_per_rollout_${agentCount}_agents`] = { value: patches / rounds, unit: "requests" };
    results[`node_patches_per_node_per_rollout_${agentCount}_agents`] = {
      value: patches / rounds / agentCount,
      unit: "requests",
    };
    if (agents[0])
      results[`agent_rss_${agentCount}_agents`] = {
        value: Math.round(residentMemoryMiB(agents[0].process.pid)),
        unit: "MiB",
      };
  } finally {
    await nodes.stop();
    client.close();
    await stopAgents(agents);
    await cp.stop();
  }
}

export async function run(): Promise<Results> {
  const results: Results = {};
  await rollout(3, results);
  await rollout(50, results);
  return results;
}
