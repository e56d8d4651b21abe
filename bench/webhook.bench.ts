// The webhook as the API server sees it: AdmissionReviews sent straight to it from a process on the
// other core (loopback, HTTPS with keep-alive) at a fixed 1,000 per second and at saturation (wrk), with
// the webhook's own server-side histogram beside the client's view; its memory idle and after the load;
// and what it adds to pod CREATE on the real API server (pods with a profile against pods without,
// interleaved in one run, as a ratio).
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import {
  LOCKSTEP_NAMESPACE,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_PATH,
  WEBHOOK_TLS_SECRET,
} from "../src/api/constants.ts";
import { POD_NODE_AFFINITY_POLICY } from "../src/manifests/admission.ts";
import {
  type AgentProcess,
  installAgentPrerequisites,
  startAgent,
  stopAgents,
} from "../test/harness/agents.ts";
import { ControlPlane, freePort, GiveUp, waitFor } from "../test/harness/controlplane.ts";
import { type ManagedProcess, processMemory, startProcess } from "../test/harness/processes.ts";
import { createProfile, nodeHoldsProfile } from "../test/harness/profiles.ts";
import { installWebhook, podCreateReview } from "../test/harness/webhook.ts";
import { httpsText } from "./load/reviews.ts";
import { quantile, type Results } from "./stats.ts";

const WEBHOOK_CORE = "0";
const LOAD_CORE = "1";
const round2 = (n: number) => Math.round(n * 100) / 100;

function tool(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.status !== 0)
    throw new Error(
      `${command} failed (${result.error?.message ?? `exit ${result.status}`}): ${result.stderr}; the webhook benchmark needs taskset (util-linux) and wrk (apt-get install wrk)`,
    );
  return result.stdout;
}

function pin(pid: number, cores: string): void {
  tool("taskset", ["-a", "-pc", cores, String(pid)]);
}

/** The webhook's own latency histogram: cumulative counts per upper bound (seconds). */
async function reviewHistogram(healthPort: number): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
  const buckets = new Map<number, number>();
  for (const line of text.split("\n")) {
    const m = /^lockstep_webhook_review_duration_seconds_bucket\{.*le="([^"]+)".*\} (\d+)$/.exec(line);
    if (!m) continue;
    const bound = m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(m[2]));
  }
  return buckets;
}

/** The API server's own count and total time of its calls to Lockstep's webhook (its /metrics). */
async function apiServerWebhookCalls(cp: ControlPlane): Promise<{ count: number; seconds: number }> {
  const { body } = await cp.rawGet("/metrics");
  const total = (suffix: "count" | "sum") =>
    body
      .split("\n")
      .filter(
        (l) =>
          l.startsWith(`apiserver_admission_webhook_admission_duration_seconds_${suffix}{`) &&
          l.includes('name="pods.lockstep.dev"'),
      )
      .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
  return { count: total("count"), seconds: total("sum") };
}

/** Upper bounds of the quantiles of what was observed between two scrapes (a histogram gives no more). */
function quantilesFromHistogram(before: Map<number, number>, after: Map<number, number>) {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const total = counts.at(-1) ?? 0;
  const upTo = (q: number) => bounds[counts.findIndex((c) => c >= q * total)] ?? Number.NaN;
  return { p50: upTo(0.5), p99: upTo(0.99), p995: upTo(0.995) };
}

/** wrk on the load core, 32 connections for 10 s: the most reviews per second the webhook answers. */
function saturate(port: number, body: string, dir: string): { perSecond: number; p99Ms: number } {
  const script = join(dir, "review.lua");
  writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[${body}]==]\n`,
  );
  const out = tool("taskset", [
    "-c",
    LOAD_CORE,
    "wrk",
    "-t1",
    "-c32",
    "-d10s",
    "--latency",
    "-s",
    script,
    `https://127.0.0.1:${port}${WEBHOOK_PATH}`,
  ]);
  const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const scale = { us: 0.001, ms: 1, s: 1000 } as const;
  const p99Ms = p99 ? Number(p99[1]) * scale[p99[2] as keyof typeof scale] : Number.NaN;
  if (/Non-2xx/.test(out)) throw new Error(`wrk saw refused reviews:\n${out}`);
  return { perSecond, p99Ms };
}

/** A server the webhook configuration can point at, and how many reviews it has answered. */
interface Target {
  name: string;
  port: number;
  answered(): Promise<number>;
}

/** Reference webhooks (bench/load/reference-webhook.ts) on the certificate the API server trusts. */
async function startReferenceWebhooks(
  cp: ControlPlane,
  patches: Record<string, string | undefined>,
): Promise<(Target & { process: ManagedProcess })[]> {
  const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  const secret = await core.readNamespacedSecret({ name: WEBHOOK_TLS_SECRET, namespace: LOCKSTEP_NAMESPACE });
  const files = { cert: join(cp.workDir, "reference-tls.crt"), key: join(cp.workDir, "reference-tls.key") };
  writeFileSync(files.cert, Buffer.from(secret.data?.["tls.crt"] ?? "", "base64"));
  writeFileSync(files.key, Buffer.from(secret.data?.["tls.key"] ?? "", "base64"), { mode: 0o600 });
  const started: (Target & { process: ManagedProcess })[] = [];
  for (const [name, patch] of Object.entries(patches)) {
    const port = await freePort();
    const answered = async () => Number(await httpsText(port, "/count"));
    const script = join(import.meta.dirname, "load/reference-webhook.ts");
    const args = [script, String(port), files.cert, files.key, ...(patch ? [patch] : [])];
    const child = startProcess(
      `reference webhook (${name})`,
      process.execPath,
      args,
      join(cp.workDir, `reference-${port}.log`),
    );
    started.push({ name, port, answered, process: child });
    await waitFor(`the ${name} reference webhook`, async () => {
      if (!child.isRunning()) throw new GiveUp(`the ${name} reference webhook exited:\n${child.tail()}`);
      return answered().then(
        () => true,
        () => false,
      );
    });
  }
  return started;
}

/** Points the webhook configuration at a target and waits until the API server calls it (dry-run pods). */
async function pointWebhookAt(cp: ControlPlane, target: Target): Promise<void> {
  const admission = cp.kubeConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
  const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  await waitFor(`the webhook configuration pointed at ${target.name}`, async () => {
    const config = await admission.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME });
    for (const w of config.webhooks ?? [])
      w.clientConfig.url = `https://127.0.0.1:${target.port}${WEBHOOK_PATH}`;
    // A conflict (the webhook publishing its caBundle) is retried with the configuration read again.
    await admission.replaceMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME, body: config });
    return true;
  });
  await waitFor(`the API server calling ${target.name}`, async () => {
    const before = await target.answered();
    await core.createNamespacedPod({ namespace: "bench", body: podWithProfile("probe"), dryRun: "All" });
    return (await target.answered()) > before;
  });
}

const podWithProfile = (name: string): k8s.V1Pod => ({
  metadata: { name, namespace: "bench" },
  spec: {
    containers: [
      {
        name: "c",
        image: "busybox",
        securityContext: { seccompProfile: { type: "Localhost", localhostProfile: "lockstep/bench.json" } },
      },
    ],
  },
});

export async function run(): Promise<Results> {
  const results: Results = {};
  const cp = await ControlPlane.start();
  const agents: AgentProcess[] = [];
  const webhook = await (async () => {
    await cp.addNode("node-1");
    await installAgentPrerequisites(cp);
    agents.push(await startAgent(cp, "node-1"));
    // As it ships (deploy/ sets no LOG_LEVEL): the tests' debug level logs every patched pod.
    return installWebhook(cp, { logLevel: "info" });
  })();
  try {
    const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    const objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    await createProfile(objects, "SeccompProfile", "bench", { baseProfileName: "runtime/default" });
    await waitFor("bench on node-1", () =>
      nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "bench", "node-1"),
    );

    // 1) Direct load, as the API server would send it, from a process on the other core than the
    // webhook's (2 cores: the load generator must not steal the webhook's). Client-side quantiles at a
    // fixed 1,000 reviews/s, the capacity at saturation (wrk), and the webhook's own histogram.
    const body = podCreateReview(podWithProfile("load"), { uid: "u", namespace: "bench" });
    const bodyFile = join(cp.workDir, "review.json");
    writeFileSync(bodyFile, body);
    pin(webhook.process.pid, WEBHOOK_CORE);
    const idle = processMemory(webhook.process.pid);
    const histogramBefore = await reviewHistogram(webhook.healthPort);
    const fixed = JSON.parse(
      tool("taskset", [
        "-c",
        LOAD_CORE,
        process.execPath,
        join(import.meta.dirname, "load/open-loop.ts"),
        String(webhook.port),
        "1000",
        "10",
        bodyFile,
      ]),
    ) as { p50: number; p99: number; achieved: number };
    const serverSide = quantilesFromHistogram(histogramBefore, await reviewHistogram(webhook.healthPort));
    results.review_latency_p50_at_1000rps = { value: round2(fixed.p50), unit: "ms" };
    results.review_latency_p99_at_1000rps = { value: round2(fixed.p99), unit: "ms" };
    results.review_rate_achieved = { value: Math.round(fixed.achieved), unit: "reviews/s" };
    results.review_server_p50_upper_bound_at_1000rps = { value: serverSide.p50 * 1000, unit: "ms" };
    results.review_server_p99_upper_bound_at_1000rps = { value: serverSide.p99 * 1000, unit: "ms" };
    results.review_server_p995_upper_bound_at_1000rps = { value: serverSide.p995 * 1000, unit: "ms" };

    const saturation = saturate(webhook.port, body, cp.workDir);
    results.review_capacity_at_saturation = { value: Math.round(saturation.perSecond), unit: "reviews/s" };
    results.review_latency_p99_at_saturation = { value: round2(saturation.p99Ms), unit: "ms" };
    const loaded = processMemory(webhook.process.pid);
    const metrics = await (await fetch(`http://127.0.0.1:${webhook.healthPort}/metrics`)).text();
    const gauge = (name: string) =>
      Number(new RegExp(`^${name} (\\d+)`, "m").exec(metrics)?.[1] ?? Number.NaN);
    results.webhook_v8_heap_after_load = {
      value: Math.round(gauge("nodejs_heap_size_total_bytes") / 1048576),
      unit: "MiB",
    };
    results.webhook_resident_idle = { value: Math.round(idle.residentMiB), unit: "MiB" };
    results.webhook_anonymous_idle = { value: Math.round(idle.anonymousMiB), unit: "MiB" };
    results.webhook_resident_after_load = { value: Math.round(loaded.residentMiB), unit: "MiB" };
    results.webhook_anonymous_after_load = { value: Math.round(loaded.anonymousMiB), unit: "MiB" };
    // V8's memory reducer gives heap back once the allocation rate has dropped for a few seconds.
    await new Promise((r) => setTimeout(r, 15_000));
    const settled = processMemory(webhook.process.pid);
    results.webhook_resident_15s_after_load = { value: Math.round(settled.residentMiB), unit: "MiB" };
    results.webhook_anonymous_15s_after_load = { value: Math.round(settled.anonymousMiB), unit: "MiB" };
    pin(webhook.process.pid, "0-1");

    // 2) Pod CREATE through the real API server: pods with a profile (the webhook called) against pods
    // without (its matchConditions skip them), interleaved. The same pods also go, in the same run, to two
    // reference webhooks on the same certificate: one that answers "allowed" and nothing else, and one
    // that answers with Lockstep's patch for this pod, fixed; what they add is what any webhook, and any
    // webhook applying this patch, costs pod CREATE before deciding anything.
    await core.createNamespace({ body: { metadata: { name: "bench" } } });
    await waitFor("the bench service account", async () => {
      await core.readNamespacedServiceAccount({ name: "default", namespace: "bench" });
      return true;
    });
    const answer = JSON.parse(await httpsText(webhook.port, WEBHOOK_PATH, body)) as {
      response: { patch?: string };
    };
    const lockstepPatch = answer.response.patch;
    if (!lockstepPatch) throw new Error("the webhook did not patch the benchmark's pod");
    // The reference webhooks add no in-use labels, which lockstep-pod-node-affinity refuses: the pod
    // CREATE comparison is of the webhooks alone, so the policy is off for every target alike (its own
    // cost is not in these figures).
    await cp
      .kubeConfig()
      .makeApiClient(k8s.AdmissionregistrationV1Api)
      .deleteValidatingAdmissionPolicyBinding({ name: POD_NODE_AFFINITY_POLICY });
    const references = await startReferenceWebhooks(cp, { "no-op": undefined, "fixed patch": lockstepPatch });
    try {
      const targets: Target[] = [
        { name: "lockstep", port: webhook.port, answered: () => webhook.reviewCount() },
        ...references.map((r) => ({ name: r.name, port: r.port, answered: r.answered })),
      ];
      const samples = new Map(
        targets.map((t) => [t.name, { with: [] as number[], without: [] as number[] }]),
      );
      const calls = new Map(targets.map((t) => [t.name, { count: 0, seconds: 0 }]));
      let n = 0;
      for (let round = 0; round < 5; round++)
        for (const target of targets) {
          await pointWebhookAt(cp, target);
          const before = await apiServerWebhookCalls(cp);
          const s = samples.get(target.name) ?? { with: [], without: [] };
          for (let i = 0; i < 40; i++, n++) {
            const a = performance.now();
            await core.createNamespacedPod({ namespace: "bench", body: podWithProfile(`with-${n}`) });
            s.with.push(performance.now() - a);
            const b = performance.now();
            await core.createNamespacedPod({
              namespace: "bench",
              body: {
                metadata: { name: `without-${n}` },
                spec: { containers: [{ name: "c", image: "busybox" }] },
              },
            });
            s.without.push(performance.now() - b);
          }
          const after = await apiServerWebhookCalls(cp);
          const c = calls.get(target.name) ?? { count: 0, seconds: 0 };
          c.count += after.count - before.count;
          c.seconds += after.seconds - before.seconds;
        }
      const median = (xs: number[]) =>
        quantile(
          [...xs].sort((x, y) => x - y),
          0.5,
        );
      const ratio = (name: string) => {
        const s = samples.get(name) ?? { with: [], without: [] };
        return {
          with: median(s.with),
          without: median(s.without),
          ratio: median(s.with) / median(s.without),
        };
      };
      // The API server's own timing of the call (encoding the review, the round trip, applying the patch).
      const callMs = (name: string) => {
        const c = calls.get(name) ?? { count: 0, seconds: 0 };
        return round2((c.seconds / c.count) * 1000);
      };
      const lockstep = ratio("lockstep");
      results.pod_create_median_with_webhook = { value: round2(lockstep.with), unit: "ms" };
      results.pod_create_median_without_webhook = { value: round2(lockstep.without), unit: "ms" };
      results.pod_create_with_over_without = { value: Number(lockstep.ratio.toFixed(3)), unit: "ratio" };
      results.pod_create_webhook_call_mean_as_api_server_sees_it = { value: callMs("lockstep"), unit: "ms" };
      results.pod_create_noop_webhook_over_without = {
        value: Number(ratio("no-op").ratio.toFixed(3)),
        unit: "ratio",
      };
      results.pod_create_noop_webhook_call_mean = { value: callMs("no-op"), unit: "ms" };
      results.pod_create_fixed_patch_webhook_over_without = {
        value: Number(ratio("fixed patch").ratio.toFixed(3)),
        unit: "ratio",
      };
      results.pod_create_fixed_patch_webhook_call_mean = { value: callMs("fixed patch"), unit: "ms" };
    } finally {
      await Promise.all(references.map((r) => r.process.stop()));
    }
  } finally {
    await webhook.stop();
    await stopAgents(agents);
    await cp.stop();
  }
  return results;
}
