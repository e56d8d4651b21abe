// A real agent on a simulated AppArmor node (the real apparmor_parser; the kernel's half is
// fake-apparmor-parser.sh's securityfs) given the parser bombs of test/fixtures/apparmor-hostile/: how
// long it takes to refuse each, the resident memory of the agent and its parsers meanwhile (the agent
// container's cgroup counts them all), and how long a normal AppArmor profile and a seccomp profile
// applied with the bomb take to be held, against a normal profile alone.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { profilePath } from "../src/api/constants.ts";
import { appArmorKernelName, failedLabelKey } from "../src/api/labels.ts";
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
import { residentMemoryMiB, treeResidentMiB } from "../test/harness/processes.ts";
import { applyProfile } from "../test/harness/profiles.ts";
import { ListCondition } from "./list-condition.ts";
import type { Results } from "./stats.ts";

const repo = join(import.meta.dirname, "..");
const NODE = "hostile-bench";
const hostile = (file: string, name: string) =>
  readFileSync(join(repo, "test/fixtures/apparmor-hostile", file), "utf8").replace(
    "profile hostile {",
    `profile ${appArmorKernelName(name)} {`,
  );
const dockerDefault = (name: string) =>
  readFileSync(join(repo, "test/fixtures/apparmor-corpus/docker-default.apparmor"), "utf8").replace(
    `profile ${appArmorKernelName("docker-default")}`,
    `profile ${appArmorKernelName(name)}`,
  );

export async function run(): Promise<Results> {
  const results: Results = {};
  const cp = await ControlPlane.start({ scheduler: false });
  const client = new KubeClient(await configFromKubeconfigFiles([cp.adminKubeconfigPath]));
  const nodes = new Informer<KubeObject>(client, { path: "/api/v1/nodes", metadataOnly: true });
  const nodesListed = new ListCondition(nodes);
  let agent: AgentProcess | undefined;
  let peak = 0;
  const sampler = setInterval(() => {
    if (agent?.process.isRunning()) peak = Math.max(peak, treeResidentMiB(agent.process.pid));
  }, 25);
  const kc = cp.kubeConfig();
  const labels = (items: readonly KubeObject[]) =>
    items.find((n) => n.metadata?.name === NODE)?.metadata?.labels ?? {};
  const held = async (kind: "seccomp" | "apparmor", name: string, started: number) => {
    const obj = await client.get<PlacementSource>(profilePath(kind, name));
    const placement = placementOf(kind, obj);
    return (
      (await nodesListed.until(`${name} held`, (items) => nodeHasProfile(placement, labels(items)))) - started
    );
  };
  const refused = async (name: string, started: number) =>
    (await nodesListed.until(
      `${name} refused`,
      (items) => labels(items)[failedLabelKey("apparmor", name)] === "InvalidPolicy",
    )) - started;
  try {
    await installAgentPrerequisites(cp);
    await cp.addNode(NODE);
    agent = await startAgent(cp, NODE, { appArmor: true });
    await nodes.start();

    // A normal AppArmor profile alone, for comparison.
    let started = performance.now();
    await applyProfile(kc, "AppArmorProfile", "normal-alone", { rawPolicy: dockerDefault("normal-alone") });
    results.normal_apparmor_alone_ms = {
      value: Math.round(await held("apparmor", "normal-alone", started)),
      unit: "ms",
    };
    const idle = residentMemoryMiB(agent.process.pid);
    results.agent_rss_before_bombs = { value: Math.round(idle), unit: "MiB" };

    // The bomb, and right after it a normal AppArmor profile and a seccomp profile.
    peak = 0;
    started = performance.now();
    await applyProfile(kc, "AppArmorProfile", "bomb", {
      rawPolicy: hostile("overlapping-globs.apparmor", "bomb"),
    });
    await applyProfile(kc, "AppArmorProfile", "normal-with-bomb", {
      rawPolicy: dockerDefault("normal-with-bomb"),
    });
    await applyProfile(kc, "SeccompProfile", "seccomp-with-bomb", { defaultAction: "SCMP_ACT_ALLOW" });
    const placement = async (kind: "seccomp" | "apparmor", name: string) =>
      placementOf(kind, await client.get<PlacementSource>(profilePath(kind, name)));
    const normal = await placement("apparmor", "normal-with-bomb");
    const seccomp = await placement("seccomp", "seccomp-with-bomb");
    // ListCondition waits for one condition at a time: the first moment each of the three holds.
    const reached = new Map<string, number>();
    await nodesListed.until("the bomb refused and the other two held", (items) => {
      const now = performance.now();
      const conditions: [string, boolean][] = [
        ["bomb", labels(items)[failedLabelKey("apparmor", "bomb")] === "InvalidPolicy"],
        ["normal", nodeHasProfile(normal, labels(items))],
        ["seccomp", nodeHasProfile(seccomp, labels(items))],
      ];
      for (const [what, holds] of conditions)
        if (holds && !reached.has(what)) reached.set(what, now - started);
      return reached.size === conditions.length;
    });
    const [bombMs = 0, normalMs = 0, seccompMs = 0] = ["bomb", "normal", "seccomp"].map((w) =>
      reached.get(w),
    );
    results.overlapping_globs_refused_ms = { value: Math.round(bombMs), unit: "ms" };
    results.normal_apparmor_with_bomb_ms = { value: Math.round(normalMs), unit: "ms" };
    results.seccomp_with_bomb_ms = { value: Math.round(seccompMs), unit: "ms" };
    results.agent_tree_peak_rss_overlapping_globs = { value: Math.round(peak), unit: "MiB" };

    for (const [file, name] of [
      ["overlapping-globs-small.apparmor", "bomb-small"],
      ["variable-expansion.apparmor", "bomb-variables"],
    ] as const) {
      peak = 0;
      started = performance.now();
      await applyProfile(kc, "AppArmorProfile", name, { rawPolicy: hostile(file, name) });
      const ms = await refused(name, started);
      const key = name.replace("-", "_");
      results[`${key}_refused_ms`] = { value: Math.round(ms), unit: "ms" };
      results[`agent_tree_peak_rss_${key}`] = { value: Math.round(peak), unit: "MiB" };
    }

    // A restart: the three refusals come from the memo, not from the parser, so the agent is ready as
    // fast as without them.
    started = performance.now();
    await agent.restart();
    results.restart_to_ready_with_3_refusals_ms = {
      value: Math.round(performance.now() - started),
      unit: "ms",
    };
    return results;
  } finally {
    clearInterval(sampler);
    await nodes.stop();
    client.close();
    if (agent) await stopAgents([agent]);
    await cp.stop();
  }
}
