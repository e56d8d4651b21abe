// One node, its agent and the controller, as a cluster admin sees a rollout:
// - a single profile: created -> file on the node's disk, and created -> status Installed (30 rounds);
// - API requests per rollout (agent + controller, from their own request counters);
// - CPU for 15 rollouts, agent and controller (from /proc);
// - 35 profiles posted at once -> all Installed, and how many Node PATCHes that took;
// - agent and controller memory, idle and after a burst of 100 more profiles (resident and anonymous);
// - requests a minute while idle, agent and controller (watches aside: each is one long request).
import { watch } from "node:fs";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { API_VERSION, profilePath } from "../src/api/constants.ts";
import { configFromKubeconfigFiles, KubeClient } from "../src/kube/client.ts";
import { Informer, type KubeObject } from "../src/kube/informer.ts";
import {
  type AgentProcess,
  installAgentPrerequisites,
  startAgent,
  stopAgents,
} from "../test/harness/agents.ts";
import { installControllerPrerequisites, startController } from "../test/harness/controller.ts";
import { ControlPlane } from "../test/harness/controlplane.ts";
import { cpuSeconds, processMemory } from "../test/harness/processes.ts";
import { quantile, type Results } from "./stats.ts";

type Profile = KubeObject & { status?: { phase?: string } };

const ROUNDS = 30;
const CPU_ROUNDS = 15;
const BURST = 35;
const BIG_BURST = 100;
/** How long the idle request rate is counted: ten of the controller's 2 s lease renewals. */
const IDLE_WINDOW_MS = 20_000;

/** Sum of a Prometheus counter over all its label sets, scraped from a component's /metrics. */
async function counter(port: number, name: string, exclude?: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name) && !(exclude?.test(l) ?? false))
    .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
}

const profileBody = (name: string) => ({
  apiVersion: API_VERSION,
  kind: "SeccompProfile",
  metadata: { name },
  spec: { baseProfileName: "runtime/default", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] },
});

function fileAppears(dir: string, file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const watcher = watch(dir, (_event, name) => {
      if (name === file) {
        watcher.close();
        resolve(performance.now());
      }
    });
    watcher.on("error", reject);
    // Already there (the watch started late): a rollout faster than this process.
    access(join(dir, file)).then(
      () => {
        watcher.close();
        resolve(performance.now());
      },
      () => undefined,
    );
  });
}

export async function run(): Promise<Results> {
  const results: Results = {};
  const cp = await ControlPlane.start({ scheduler: false, controllerManager: false });
  const agents: AgentProcess[] = [];
  const client = new KubeClient(await configFromKubeconfigFiles([cp.adminKubeconfigPath]));
  const profiles = new Informer<Profile>(client, {
    path: profilePath("seccomp"),
  });
  try {
    await installAgentPrerequisites(cp);
    await installControllerPrerequisites(cp);
    await cp.addNode("node-1");
    const agent = await startAgent(cp, "node-1");
    agents.push(agent);
    const controller = await startController(cp, 1);
    // Who waits for which profile to be Installed: one watch for all of them.
    const waiting = new Map<string, (at: number) => void>();
    const check = (p: Profile) => {
      const name = p.metadata?.name ?? "";
      if (p.status?.phase !== "Installed") return;
      waiting.get(name)?.(performance.now());
      waiting.delete(name);
    };
    profiles.on("add", check);
    profiles.on("update", check);
    await profiles.start();
    const installed = (name: string) => new Promise<number>((resolve) => waiting.set(name, resolve));
    const create = (name: string) => client.create(profilePath("seccomp"), profileBody(name));

    // Idle: both started, caches synced, nothing to do.
    await new Promise((r) => setTimeout(r, 3000));
    const idle = {
      agent: processMemory(agent.process.pid),
      controller: processMemory(controller.process.pid),
    };

    const componentRequests = (port: number) => counter(port, "lockstep_api_requests_total", /verb="WATCH"/);
    const idleBefore = [
      await componentRequests(agent.healthPort),
      await componentRequests(controller.healthPort),
    ];
    await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
    const perMinute = (now: number, before = 0) => Math.round(((now - before) * 60_000) / IDLE_WINDOW_MS);
    results.agent_requests_per_minute_idle = {
      value: perMinute(await componentRequests(agent.healthPort), idleBefore[0]),
      unit: "requests",
    };
    results.controller_requests_per_minute_idle = {
      value: perMinute(await componentRequests(controller.healthPort), idleBefore[1]),
      unit: "requests",
    };

    // Single-profile rollouts, one at a time.
    const requests = async () =>
      (await componentRequests(agent.healthPort)) + (await componentRequests(controller.healthPort));
    const requestsBefore = await requests();
    const cpuBefore = {
      agent: cpuSeconds(agent.process.pid),
      controller: cpuSeconds(controller.process.pid),
    };
    let cpuAfter15 = cpuBefore;
    const toFile: number[] = [];
    const toInstalled: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const name = `single-${round}`;
      const onDisk = fileAppears(agent.seccompDir, `${name}.json`);
      const done = installed(name);
      const started = performance.now();
      await create(name);
      toFile.push((await onDisk) - started);
      toInstalled.push((await done) - started);
      if (round + 1 === CPU_ROUNDS)
        cpuAfter15 = { agent: cpuSeconds(agent.process.pid), controller: cpuSeconds(controller.process.pid) };
      // Let the controller's own follow-up (the Installed Event) finish inside this round's count.
      await new Promise((r) => setTimeout(r, 100));
    }
    const requestsPerRollout = ((await requests()) - requestsBefore) / ROUNDS;
    results.single_profile_to_disk_median = { value: Math.round(quantile(toFile, 0.5)), unit: "ms" };
    results.single_profile_to_disk_p90 = { value: Math.round(quantile(toFile, 0.9)), unit: "ms" };
    results.single_profile_to_installed_median = {
      value: Math.round(quantile(toInstalled, 0.5)),
      unit: "ms",
    };
    results.single_profile_to_installed_p90 = { value: Math.round(quantile(toInstalled, 0.9)), unit: "ms" };
    results.api_requests_per_rollout = { value: Math.round(requestsPerRollout * 10) / 10, unit: "requests" };
    results.agent_cpu_15_rollouts = {
      value: Math.round((cpuAfter15.agent - cpuBefore.agent) * 100) / 100,
      unit: "s",
    };
    results.controller_cpu_15_rollouts = {
      value: Math.round((cpuAfter15.controller - cpuBefore.controller) * 100) / 100,
      unit: "s",
    };

    // A burst, as a GitOps tool applies a folder: all posted at once.
    const patchesBefore = await counter(agent.healthPort, "lockstep_agent_node_patches_total");
    const burstNames = Array.from({ length: BURST }, (_, i) => `burst-${i}`);
    const burstDone = Promise.all(burstNames.map(installed));
    const burstStart = performance.now();
    await Promise.all(burstNames.map(create));
    const burstEnd = Math.max(...(await burstDone));
    results.burst_35_to_installed = { value: Math.round(burstEnd - burstStart), unit: "ms" };
    results.burst_35_node_patches = {
      value: (await counter(agent.healthPort, "lockstep_agent_node_patches_total")) - patchesBefore,
      unit: "requests",
    };

    // A bigger burst, then memory while the caches hold every profile.
    const bigNames = Array.from({ length: BIG_BURST }, (_, i) => `big-${i}`);
    const bigDone = Promise.all(bigNames.map(installed));
    for (let i = 0; i < bigNames.length; i += 25) await Promise.all(bigNames.slice(i, i + 25).map(create));
    await bigDone;
    await new Promise((r) => setTimeout(r, 1000));
    const after = {
      agent: processMemory(agent.process.pid),
      controller: processMemory(controller.process.pid),
    };
    for (const [component, idleMemory, afterMemory] of [
      ["agent", idle.agent, after.agent],
      ["controller", idle.controller, after.controller],
    ] as const) {
      results[`${component}_resident_idle`] = { value: Math.round(idleMemory.residentMiB), unit: "MiB" };
      results[`${component}_anonymous_idle`] = { value: Math.round(idleMemory.anonymousMiB), unit: "MiB" };
      results[`${component}_resident_after_burst`] = {
        value: Math.round(afterMemory.residentMiB),
        unit: "MiB",
      };
      results[`${component}_anonymous_after_burst`] = {
        value: Math.round(afterMemory.anonymousMiB),
        unit: "MiB",
      };
    }
    await controller.process.stop();
  } finally {
    await profiles.stop();
    client.close();
    await stopAgents(agents);
    await cp.stop();
  }
  return results;
}
