// Rollout of one profile to N real agents (3, and 50 on this 2-core machine): time from `apply` to the
// last Node's label (median, and p99 over 20 rounds), Node PATCH requests per rollout (the agents' own
// counters), and one agent's resident memory.
import * as k8s from "@kubernetes/client-node";
import { nodeHasProfile, type PlacementSource, placementOf } from "../src/api/node-profiles.ts";
import {
  type AgentProcess,
  installAgentPrerequisites,
  startAgent,
  stopAgents,
} from "../test/harness/agents.ts";
import { ControlPlane, waitFor } from "../test/harness/controlplane.ts";
import { residentMemoryMiB } from "../test/harness/processes.ts";
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
  try {
    await installAgentPrerequisites(cp);
    for (let i = 0; i < agentCount; i++) {
      await cp.addNode(`node-${i}`);
      agents.push(await startAgent(cp, `node-${i}`));
    }
    const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    const objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    const rounds = agentCount > 10 ? 20 : 5;
    const times: number[] = [];
    const before = await patchesSoFar(agents);
    for (let round = 0; round < rounds; round++) {
      const name = `bench-${round}`;
      const started = performance.now();
      const created = (await objects.createClusterCustomObject({
        group: "lockstep.dev",
        version: "v1alpha1",
        plural: "seccompprofiles",
        body: {
          apiVersion: "lockstep.dev/v1alpha1",
          kind: "SeccompProfile",
          metadata: { name },
          spec: { baseProfileName: "runtime/default" },
        },
      })) as PlacementSource;
      const placement = placementOf("seccomp", created);
      await waitFor(
        `${name} on all ${agentCount} nodes`,
        async () =>
          (await core.listNode()).items.filter((n) => nodeHasProfile(placement, n.metadata?.labels ?? {}))
            .length === agentCount,
        { timeoutMs: 120_000, intervalMs: 20 },
      );
      times.push(performance.now() - started);
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
