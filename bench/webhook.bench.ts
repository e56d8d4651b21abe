// The webhook: latency of AdmissionReviews sent straight to it at 1,000 per second (loopback, HTTPS
// with keep-alive, measured at the client, so an upper bound of the server-side time), and what it
// adds to pod CREATE on the real API server: pods with a profile against pods without, interleaved in
// one run, as a ratio.
import { Agent, request as httpsRequest } from "node:https";
import * as k8s from "@kubernetes/client-node";
import {
  type AgentProcess,
  installAgentPrerequisites,
  startAgent,
  stopAgents,
} from "../test/harness/agents.ts";
import { ControlPlane, waitFor } from "../test/harness/controlplane.ts";
import { nodeHoldsProfile } from "../test/harness/profiles.ts";
import { installWebhook } from "../test/harness/webhook.ts";

type Results = Record<string, { value: number; unit: string }>;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
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
    return installWebhook(cp);
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

    // 1) Direct load: 1,000 reviews/s for 10 s, open loop (sent on schedule, not after the previous answer).
    const agent = new Agent({ keepAlive: true, maxSockets: 64, rejectUnauthorized: false });
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
    const send = () =>
      new Promise<number>((resolve, reject) => {
        const started = performance.now();
        const req = httpsRequest(
          {
            host: "127.0.0.1",
            port: webhook.port,
            path: "/mutate",
            method: "POST",
            agent,
            headers: { "Content-Type": "application/json" },
          },
          (res) => {
            res.resume();
            res.on("end", () =>
              res.statusCode === 200
                ? resolve(performance.now() - started)
                : reject(new Error(`HTTP ${res.statusCode}`)),
            );
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    for (let i = 0; i < 200; i++) await send(); // warm-up: TLS sessions, JIT
    const rate = 1000;
    const seconds = 10;
    const latencies: Promise<number>[] = [];
    const loadStart = performance.now();
    for (let i = 0; i < rate * seconds; i++) {
      const due = loadStart + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      latencies.push(send());
    }
    const done = (await Promise.all(latencies)).sort((a, b) => a - b);
    const achieved = done.length / ((performance.now() - loadStart) / 1000);
    results.review_latency_p50_at_1000rps = { value: Number(quantile(done, 0.5).toFixed(2)), unit: "ms" };
    results.review_latency_p99_at_1000rps = { value: Number(quantile(done, 0.99).toFixed(2)), unit: "ms" };
    results.review_rate_achieved = { value: Math.round(achieved), unit: "reviews/s" };
    agent.destroy();

    // 2) Pod CREATE through the real API server, with and without the webhook in the path, interleaved.
    await core.createNamespace({ body: { metadata: { name: "bench" } } });
    await waitFor("the bench service account", async () => {
      await core.readNamespacedServiceAccount({ name: "default", namespace: "bench" });
      return true;
    });
    const withHook: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < 150; i++) {
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
  } finally {
    await webhook.stop();
    await stopAgents(agents);
    await cp.stop();
  }
  return results;
}
