// A rollout to many nodes with many agent cores (issue 30): N simulated Nodes on the real control plane,
// each with an agent core of its own (NodeAgent from node-agent/agent.ts: its node name, kubelet root,
// client with its node's pod-bound token, and watches), hosted by a few processes
// (bench/load/agent-cores-host.ts), and the shipped controller as a process. Measured at each N:
// - one profile's creation to its status saying Installed on all N nodes (p50 and p99 over the rounds),
//   and to each node's label (p50 and p99 over every node of every round);
// - 35 profiles posted at once: each profile's creation to Installed N/N, and the burst to each node's label
//   holding all 35 (p50 and p99);
// - the API server: resident memory and CPU with the N Nodes before anything of Lockstep exists, against
//   its peak and CPU during the rollouts; requests per rollout (its own apiserver_request_total); open
//   watches (apiserver_longrunning_requests{verb="WATCH"});
// - the controller: memory, and convergence (the last node's label to the status Installed);
// - the webhook: a review's time with the cluster's profiles cached, as a client on loopback sees it.
// LOCKSTEP_BENCH_AGENT_CORES sets the node counts (default "100,1000"), LOCKSTEP_BENCH_AGENT_PROCESSES
// the host processes (default 2: one per core of this machine), LOCKSTEP_BENCH_AGENT_ROUNDS the rounds of
// one profile (default 10); a count that does not fit the machine fails on its own and is left out.
import { existsSync, readdirSync, readlinkSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { API_VERSION, profilePath, WEBHOOK_PATH } from "../src/api/constants.ts";
import {
  nodeHasProfile,
  type PlacementSource,
  type ProfilePlacement,
  placementOf,
} from "../src/api/node-profiles.ts";
import { configFromKubeconfigFiles, KubeClient } from "../src/kube/client.ts";
import { Informer, type KubeObject } from "../src/kube/informer.ts";
import { agentKubeconfig, installAgentPrerequisites } from "../test/harness/agents.ts";
import { installControllerPrerequisites, startController } from "../test/harness/controller.ts";
import { ControlPlane, GiveUp, waitFor } from "../test/harness/controlplane.ts";
import {
  cpuSeconds,
  type ManagedProcess,
  processMemory,
  residentMemoryMiB,
  startProcess,
} from "../test/harness/processes.ts";
import { installWebhook, podCreateReview } from "../test/harness/webhook.ts";
import { ListCondition } from "./list-condition.ts";
import type { CoreList } from "./load/agent-cores-host.ts";
import { apiServerMetrics, goRuntime, openWatches, requestsBetween } from "./load/apiserver-metrics.ts";
import { timeReviews } from "./load/reviews.ts";
import { quantile, type Results } from "./stats.ts";

const BURST = 35;
const BURST_ROUNDS = 2;
/** How long the API server's CPU is counted while nothing happens, with and without Lockstep. */
const IDLE_WINDOW_MS = 10_000;
const REVIEWS = 1000;
const HOST = join(import.meta.dirname, "load", "agent-cores-host.ts");
/**
 * Where the cores' kubelet roots go: a tmpfs, since each real node writes (and fsyncs) to a disk of its own,
 * while here N nodes' writes would queue on the one disk etcd also syncs to. The rollout benchmark times
 * one node's way to its disk.
 */
const CORES_PARENT =
  process.env.LOCKSTEP_BENCH_AGENT_CORES_DIR ?? (existsSync("/dev/shm") ? "/dev/shm" : undefined);

type Profile = KubeObject & { status?: { phase?: string; ready?: string } };

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sockets a process holds open (its client connections, listeners and etcd's), from /proc. */
function openSockets(pid: number): number {
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) count++;
    } catch {
      // Closed meanwhile.
    }
  }
  return count;
}

/** The highest resident memory of a process while sampling runs (every 250 ms), in MiB. */
function peakResident(pid: number): { stop(): number } {
  let peak = residentMemoryMiB(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, residentMemoryMiB(pid));
  }, 250);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, residentMemoryMiB(pid));
    },
  };
}

/**
 * The N cores split evenly over `count` host processes, each added to `hosts` as it starts (so the caller
 * stops them also when starting fails); resolves once every core has started.
 */
async function startHosts(
  cp: ControlPlane,
  names: string[],
  count: number,
  coresDir: string,
  hosts: ManagedProcess[],
): Promise<void> {
  const kubeconfigs = new Map<string, string>();
  await inBatches(names, 20, async (name) => kubeconfigs.set(name, await agentKubeconfig(cp, name)));
  for (let h = 0; h < count; h++) {
    const list: CoreList = names
      .filter((_, i) => i % count === h)
      .map((nodeName) => ({
        nodeName,
        kubeconfig: kubeconfigs.get(nodeName) ?? "",
        dir: join(coresDir, nodeName),
      }));
    const listFile = join(cp.workDir, `cores-${h}.json`);
    await writeFile(listFile, JSON.stringify(list));
    hosts.push(
      startProcess(
        `agent-cores-${h}`,
        process.execPath,
        [HOST, listFile],
        join(cp.workDir, `cores-${h}.log`),
      ),
    );
  }
  const ready = new Set<ManagedProcess>();
  await waitFor(
    `${names.length} agent cores to start`,
    async () => {
      for (const host of hosts) {
        if (!host.isRunning()) throw new GiveUp(`${host.name} exited:\n${host.tail()}`);
        if (host.tail(50).includes("ready ")) ready.add(host);
      }
      return ready.size === hosts.length ? true : undefined;
    },
    { timeoutMs: 60_000 + names.length * 100, intervalMs: 500 },
  );
}

async function rollout(nodeCount: number, processCount: number, rounds: number, results: Results) {
  const cp = await ControlPlane.start({ scheduler: false, controllerManager: false });
  const coresDir = CORES_PARENT
    ? await mkdtemp(join(CORES_PARENT, "lockstep-cores-"))
    : join(cp.workDir, "cores");
  const hosts: ManagedProcess[] = [];
  let controller: Awaited<ReturnType<typeof startController>> | undefined;
  let webhook: Awaited<ReturnType<typeof installWebhook>> | undefined;
  const admin = new KubeClient(await configFromKubeconfigFiles([cp.adminKubeconfigPath]));
  const nodes = new Informer<KubeObject>(admin, { path: "/api/v1/nodes", metadataOnly: true });
  const profiles = new Informer<Profile>(admin, { path: profilePath("seccomp") });
  const at = `${nodeCount}_nodes`;
  const put = (name: string, value: number, unit: string, digits = 0) => {
    const scale = 10 ** digits;
    results[`${name}_${at}`] = { value: Math.round(value * scale) / scale, unit };
  };
  // What is being waited for: the profiles' placements, when it started, and each node's first label
  // that holds them all (registered before the ListCondition's own handler, which then sees it counted).
  let current: { placements: ProfilePlacement[]; seen: Map<string, number>; started: number } | undefined;
  const sawNode = (node: KubeObject) => {
    const nodeName = node.metadata?.name ?? "";
    if (!current || current.seen.has(nodeName)) return;
    const labels = node.metadata?.labels ?? {};
    if (!current.placements.every((p) => nodeHasProfile(p, labels))) return;
    current.seen.set(nodeName, performance.now());
  };
  nodes.on("update", sawNode);
  // When each profile's status first said Installed on every node.
  const installedAt = new Map<string, number>();
  const sawProfile = (p: Profile) => {
    const name = p.metadata?.name ?? "";
    if (installedAt.has(name)) return;
    if (p.status?.phase === "Installed" && p.status.ready === `${nodeCount}/${nodeCount}`)
      installedAt.set(name, performance.now());
  };
  profiles.on("update", sawProfile);
  const nodesListed = new ListCondition(nodes);
  const profilesListed = new ListCondition(profiles);
  const timeoutMs = 120_000 + nodeCount * 60;
  const apiserver = cp.processes.find((p) => p.name === "kube-apiserver");
  if (!apiserver) throw new Error("the control plane has no kube-apiserver process");
  const create = (name: string) =>
    admin.create<PlacementSource>(profilePath("seccomp"), {
      apiVersion: API_VERSION,
      kind: "SeccompProfile",
      metadata: { name },
      spec: { baseProfileName: "runtime/default" },
    });
  /** Creates the profiles at once; resolves with each node's time to hold all of them, from `started`. */
  const roll = async (names: string[]): Promise<{ started: number; nodeTimes: number[] }> => {
    const started = performance.now();
    const created = await Promise.all(names.map(create));
    const round = {
      placements: created.map((p) => placementOf("seccomp", p)),
      seen: new Map<string, number>(),
      started,
    };
    current = round;
    // Agents may have labelled their Node before the creates' answers were read.
    for (const node of nodes.list()) sawNode(node);
    await nodesListed.until(
      `${names.join(",")} on ${nodeCount} nodes`,
      () => round.seen.size >= nodeCount,
      timeoutMs,
    );
    await profilesListed.until(
      `${names.length} profiles Installed on ${nodeCount} nodes`,
      () => names.every((n) => installedAt.has(n)),
      timeoutMs,
    );
    return { started, nodeTimes: [...round.seen.values()].map((t) => t - started) };
  };

  try {
    const names = Array.from({ length: nodeCount }, (_, i) => `node-${i}`);
    await inBatches(names, 50, (name) => cp.addNode(name));

    // The same N Nodes without anything of Lockstep: the API server's memory and CPU while idle.
    await sleep(5000);
    const bare = await apiServerMetrics(cp);
    const bareCpu = cpuSeconds(apiserver.pid);
    const bareSockets = openSockets(apiserver.pid);
    const barePeak = peakResident(apiserver.pid);
    await sleep(IDLE_WINDOW_MS);
    const bareResident = barePeak.stop();
    const bareCpuPerMinute = ((cpuSeconds(apiserver.pid) - bareCpu) * 60_000) / IDLE_WINDOW_MS;

    await installAgentPrerequisites(cp);
    await installControllerPrerequisites(cp);
    // Lockstep's CRDs, RBAC and policies alone, before any agent: what does not grow with N.
    await sleep(5000);
    const withDefinitions = residentMemoryMiB(apiserver.pid);
    await startHosts(cp, names, Math.min(processCount, nodeCount), coresDir, hosts);
    controller = await startController(cp, 1);
    await Promise.all([nodes.start(), profiles.start()]);

    // Single profiles, one at a time.
    const apiserverPeak = peakResident(apiserver.pid);
    const before = await apiServerMetrics(cp);
    const cpuBefore = { apiserver: cpuSeconds(apiserver.pid), hosts: hosts.map((h) => cpuSeconds(h.pid)) };
    const installed: number[] = [];
    const labelled: number[] = [];
    const convergence: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const name = `cores-${round}`;
      const { started, nodeTimes } = await roll([name]);
      labelled.push(...nodeTimes);
      const done = (installedAt.get(name) ?? Number.NaN) - started;
      installed.push(done);
      convergence.push(done - Math.max(...nodeTimes));
    }
    const after = await apiServerMetrics(cp);
    const hostsCpu = hosts.reduce((sum, h, i) => sum + cpuSeconds(h.pid) - (cpuBefore.hosts[i] ?? 0), 0);
    const apiserverCpu = cpuSeconds(apiserver.pid) - cpuBefore.apiserver;
    put("create_to_installed_p50", quantile(installed, 0.5), "ms");
    put("create_to_installed_p99", quantile(installed, 0.99), "ms");
    put("create_to_node_label_p50", quantile(labelled, 0.5), "ms");
    put("create_to_node_label_p99", quantile(labelled, 0.99), "ms");
    put("controller_convergence_p50", quantile(convergence, 0.5), "ms");
    put("controller_convergence_p99", quantile(convergence, 0.99), "ms");
    // The benchmark's own creation of each round's profile is not Lockstep's.
    const moved = requestsBetween(before, after);
    const total = [...moved.values()].reduce((a, b) => a + b, 0) - rounds;
    put("api_requests_per_rollout", total / rounds, "requests", 1);
    put("node_patches_per_rollout", (moved.get("PATCH nodes") ?? 0) / rounds, "requests", 1);
    const refused = [...moved].filter(([kind]) => /\s\d+$/.test(kind)).reduce((sum, [, n]) => sum + n, 0);
    put("api_requests_refused_per_rollout", refused / rounds, "requests", 1);
    process.stderr.write(
      `agent-cores ${nodeCount}: requests in ${rounds} rollouts: ${JSON.stringify(Object.fromEntries(moved))}\n`,
    );
    put("apiserver_cpu_per_rollout", apiserverCpu / rounds, "s", 2);
    put("agent_cores_cpu_per_node_per_rollout", (hostsCpu * 1000) / rounds / nodeCount, "ms", 2);

    // 35 profiles at once, as a GitOps tool applies a folder.
    const perProfile: number[] = [];
    const perNode: number[] = [];
    for (let round = 0; round < BURST_ROUNDS; round++) {
      const burst = Array.from({ length: BURST }, (_, i) => `burst-${round}-${i}`);
      const { started, nodeTimes } = await roll(burst);
      perNode.push(...nodeTimes);
      for (const name of burst) perProfile.push((installedAt.get(name) ?? Number.NaN) - started);
    }
    const rolloutPeak = apiserverPeak.stop();
    put("burst_35_to_installed_p50", quantile(perProfile, 0.5), "ms");
    put("burst_35_to_installed_p99", quantile(perProfile, 0.99), "ms");
    put("burst_35_to_node_label_p50", quantile(perNode, 0.5), "ms");
    put("burst_35_to_node_label_p99", quantile(perNode, 0.99), "ms");

    // The API server with Lockstep idle: every agent's and the controller's watches open.
    const idle = await apiServerMetrics(cp);
    const idleCpu = cpuSeconds(apiserver.pid);
    await sleep(IDLE_WINDOW_MS);
    const idleCpuPerMinute = ((cpuSeconds(apiserver.pid) - idleCpu) * 60_000) / IDLE_WINDOW_MS;
    const idleResident = residentMemoryMiB(apiserver.pid);
    put("apiserver_resident_without_lockstep", bareResident, "MiB");
    put("apiserver_resident_with_lockstep_definitions", withDefinitions, "MiB");
    put("apiserver_resident_peak_with_lockstep", rolloutPeak, "MiB");
    put("apiserver_resident_idle_with_lockstep", idleResident, "MiB");
    put("apiserver_resident_growth", ((rolloutPeak - bareResident) / bareResident) * 100, "%", 1);
    put("apiserver_cpu_per_minute_idle_without_lockstep", bareCpuPerMinute, "s", 2);
    put("apiserver_cpu_per_minute_idle_with_lockstep", idleCpuPerMinute, "s", 2);
    put("apiserver_watches_without_lockstep", openWatches(bare), "watches");
    put("apiserver_watches_with_lockstep", openWatches(idle), "watches");
    // Where the API server's memory goes: connections (a watch over HTTP/1.1 is one), goroutines, heap.
    const [bareGo, idleGo] = [goRuntime(bare), goRuntime(idle)];
    put("apiserver_goroutines_without_lockstep", bareGo.goroutines, "goroutines");
    put("apiserver_goroutines_with_lockstep", idleGo.goroutines, "goroutines");
    put("apiserver_go_heap_without_lockstep", bareGo.heapMiB, "MiB");
    put("apiserver_go_heap_with_lockstep", idleGo.heapMiB, "MiB");
    put("apiserver_go_stacks_with_lockstep", idleGo.stackMiB, "MiB");
    put("apiserver_open_sockets_without_lockstep", bareSockets, "sockets");
    put("apiserver_open_sockets_with_lockstep", openSockets(apiserver.pid), "sockets");

    const controllerMemory = processMemory(controller.process.pid);
    put("controller_resident", controllerMemory.residentMiB, "MiB");
    put("controller_anonymous", controllerMemory.anonymousMiB, "MiB");
    put(
      "agent_cores_resident",
      hosts.reduce((sum, h) => sum + residentMemoryMiB(h.pid), 0),
      "MiB",
    );

    // The webhook with the cluster's profiles cached: a pod naming one of them, and one naming 35.
    webhook = await installWebhook(cp, { logLevel: "info" });
    const container = (i: number, profile: string) => ({
      name: `c-${i}`,
      image: "registry.example/app:1.0",
      securityContext: {
        seccompProfile: { type: "Localhost", localhostProfile: `lockstep/${profile}.json` },
      },
    });
    const pod = (profileNames: string[]) =>
      podCreateReview(
        {
          metadata: { generateName: "app-" },
          spec: { containers: profileNames.map((p, i) => container(i, p)) },
        },
        { uid: "u", namespace: "default" },
      );
    const one = pod(["cores-0"]);
    await waitFor("the webhook to know the profiles", async () => {
      await timeReviews(webhook?.port ?? 0, WEBHOOK_PATH, one, 1);
      return true;
    });
    const reviewOne = await timeReviews(webhook.port, WEBHOOK_PATH, one, REVIEWS);
    const burstPod = pod(Array.from({ length: BURST }, (_, i) => `burst-0-${i}`));
    const reviewBurst = await timeReviews(webhook.port, WEBHOOK_PATH, burstPod, REVIEWS);
    put("webhook_review_1_profile_p50", quantile(reviewOne, 0.5), "ms", 3);
    put("webhook_review_1_profile_p99", quantile(reviewOne, 0.99), "ms", 3);
    put("webhook_review_35_profiles_p50", quantile(reviewBurst, 0.5), "ms", 3);
    put("webhook_review_35_profiles_p99", quantile(reviewBurst, 0.99), "ms", 3);
  } finally {
    await Promise.all([nodes.stop(), profiles.stop()]);
    await webhook?.stop();
    await controller?.process.stop();
    await Promise.all(hosts.map((h) => h.stop(30_000)));
    admin.close();
    await cp.stop();
    await rm(coresDir, { recursive: true, force: true });
  }
}

export async function run(): Promise<Results> {
  const results: Results = {};
  const counts = (process.env.LOCKSTEP_BENCH_AGENT_CORES ?? "100,1000").split(",").map(Number);
  const processCount = Number(process.env.LOCKSTEP_BENCH_AGENT_PROCESSES ?? 2);
  const rounds = Number(process.env.LOCKSTEP_BENCH_AGENT_ROUNDS ?? 10);
  for (const count of counts) {
    try {
      await rollout(count, processCount, rounds, results);
    } catch (error) {
      process.stderr.write(
        `agent-cores: ${count} nodes failed: ${error instanceof Error ? error.message : error}\n`,
      );
    }
  }
  return results;
}
