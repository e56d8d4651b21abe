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
  type AgentProcess,
  installAgentPrerequisites,
  startAgent,
  stopAgents,
} from "../test/harness/agents.ts";
import { ControlPlane, waitFor } from "../test/harness/controlplane.ts";
import { processMemory } from "../test/harness/processes.ts";
import { nodeHoldsProfile } from "../test/harness/profiles.ts";
import { installWebhook } from "../test/harness/webhook.ts";
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
    `https://127.0.0.1:${port}/mutate`,
  ]);
  const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const scale = { us: 0.001, ms: 1, s: 1000 } as const;
  const p99Ms = p99 ? Number(p99[1]) * scale[p99[2] as keyof typeof scale] : Number.NaN;
  if (/Non-2xx/.test(out)) throw new Error(`wrk saw refused reviews:\n${out}`);
  return { perSecond, p99Ms };
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
    await objects.createClusterCustomObject({
      group: "lockstep.dev",
      version: "v1alpha1",
      plural: "seccompprofiles",
      body: {
        apiVersion: "lockstep.dev/v1alpha1",
        kind: "SeccompProfile",
        metadata: { name: "bench" },
        spec: { baseProfileName: "runtime/default" },
      },
    });
    await waitFor("bench on node-1", () =>
      nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "bench", "node-1"),
    );

    // 1) Direct load, as the API server would send it, from a process on the other core than the
    // webhook's (2 cores: the load generator must not steal the webhook's). Client-side quantiles at a
    // fixed 1,000 reviews/s, the capacity at saturation (wrk), and the webhook's own histogram.
    const body = JSON.stringify({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      // As the API server sends it: the webhook routes on resource and operation.
      request: {
        uid: "u",
        kind: { group: "", version: "v1", kind: "Pod" },
        resource: { group: "", version: "v1", resource: "pods" },
        operation: "CREATE",
        namespace: "bench",
        object: podWithProfile("load"),
      },
    });
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

    // 2) Pod CREATE through the real API server, with and without the webhook in the path, interleaved.
    await core.createNamespace({ body: { metadata: { name: "bench" } } });
    await waitFor("the bench service account", async () => {
      await core.readNamespacedServiceAccount({ name: "default", namespace: "bench" });
      return true;
    });
    const webhookCallsBefore = await apiServerWebhookCalls(cp);
    const withHook: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < 300; i++) {
      const a = performance.now();
      await core.createNamespacedPod({ namespace: "bench", body: podWithProfile(`with-${i}`) });
      withHook.push(performance.now() - a);
      const b = performance.now();
      await core.createNamespacedPod({
        namespace: "bench",
        body: { metadata: { name: `without-${i}` }, spec: { containers: [{ name: "c", image: "busybox" }] } },
      });
      without.push(performance.now() - b);
    }
    withHook.sort((x, y) => x - y);
    without.sort((x, y) => x - y);
    const [medWith, medWithout] = [quantile(withHook, 0.5), quantile(without, 0.5)];
    results.pod_create_median_with_webhook = { value: Number(medWith.toFixed(2)), unit: "ms" };
    results.pod_create_median_without_webhook = { value: Number(medWithout.toFixed(2)), unit: "ms" };
    results.pod_create_with_over_without = {
      value: Number((medWith / medWithout).toFixed(3)),
      unit: "ratio",
    };
    // What of the difference is the call itself (encoding the review, the round trip, applying the
    // patch), as the API server times it, and what is the API server's own work on a mutated pod.
    const webhookCallsAfter = await apiServerWebhookCalls(cp);
    results.pod_create_webhook_call_mean_as_api_server_sees_it = {
      value: round2(
        ((webhookCallsAfter.seconds - webhookCallsBefore.seconds) /
          (webhookCallsAfter.count - webhookCallsBefore.count)) *
          1000,
      ),
      unit: "ms",
    };
  } finally {
    await webhook.stop();
    await stopAgents(agents);
    await cp.stop();
  }
  return results;
}
