// The webhook under a hostile client (issue 23, point 2), beside bench/webhook.bench.ts: for 20 s a
// process on the other core sends the worst AdmissionReviews found (bench/load/hostile.ts) at full rate
// on 64 connections and holds 100 slowloris connections, while this process sends a real review every
// 100 ms on a keep-alive connection, as the API server would. Measured: the webhook's resident memory
// (sampled every 50 ms, and the kernel's high-water mark) against its limit in deploy/ (256 MiB), and
// whether and how fast the real reviews were answered. Only the control plane the webhook's caches
// need: no scheduler, no nodes. Loopback only.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { WEBHOOK_PATH } from "../src/api/constants.ts";
import { installAgentPrerequisites } from "../test/harness/agents.ts";
import { ControlPlane } from "../test/harness/controlplane.ts";
import { processMemory } from "../test/harness/processes.ts";
import { applyProfile } from "../test/harness/profiles.ts";
import { installWebhook, podCreateReview } from "../test/harness/webhook.ts";
import { quantile, type Results } from "./stats.ts";

const WEBHOOK_CORE = "0";
const LOAD_CORE = "1";
const SECONDS = 20;
const CONNECTIONS = 64;
const SLOW = 100;
const REAL_EVERY_MS = 100;

const realReview = podCreateReview(
  {
    metadata: { name: "real", namespace: "bench" },
    spec: {
      containers: [
        {
          name: "c",
          image: "busybox",
          securityContext: {
            seccompProfile: { type: "Localhost", localhostProfile: "lockstep/bench.json" },
          },
        },
      ],
    },
  },
  { uid: "real", namespace: "bench" },
);

/** A real review's latency (ms), or undefined when it was not answered with a patch within 10 s. */
function sendReal(port: number, agent: Agent): Promise<number | undefined> {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request(
      { host: "127.0.0.1", port, path: WEBHOOK_PATH, method: "POST", agent, timeout: 10_000 },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () =>
          resolve(
            res.statusCode === 200 && text.includes('"patch"') ? performance.now() - started : undefined,
          ),
        );
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end(realReview);
  });
}

const peakResidentMiB = (pid: number) =>
  Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN) / 1024;

export async function run(): Promise<Results> {
  const results: Results = {};
  const cp = await ControlPlane.start({ scheduler: false });
  try {
    await installAgentPrerequisites(cp);
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "bench", { baseProfileName: "runtime/default" });
    const webhook = await installWebhook(cp, { logLevel: "info" });
    try {
      await cp
        .kubeConfig()
        .makeApiClient(k8s.CoreV1Api)
        .createNamespace({ body: { metadata: { name: "bench" } } });
      spawnSync("taskset", ["-a", "-pc", WEBHOOK_CORE, String(webhook.process.pid)]);
      const pid = webhook.process.pid;
      const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
      for (let i = 0; i < 50; i++) await sendReal(webhook.port, agent); // warm-up, as the API server's connection
      const idle = processMemory(pid).residentMiB;

      const hostile = spawn(
        "taskset",
        [
          "-c",
          LOAD_CORE,
          process.execPath,
          join(import.meta.dirname, "load/hostile.ts"),
          String(webhook.port),
          String(SECONDS),
          String(CONNECTIONS),
          String(SLOW),
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      let report = "";
      hostile.stdout.setEncoding("utf8");
      hostile.stdout.on("data", (chunk: string) => {
        report += chunk;
      });
      const finished = new Promise<void>((resolve) => hostile.on("exit", () => resolve()));
      let peak = 0;
      const sampler = setInterval(() => {
        if (webhook.process.isRunning()) peak = Math.max(peak, processMemory(pid).residentMiB);
      }, 50);
      const latencies: number[] = [];
      let sent = 0;
      let done = false;
      void finished.then(() => {
        done = true;
      });
      while (!done) {
        const started = performance.now();
        sent++;
        const latency = await sendReal(webhook.port, agent);
        if (latency !== undefined) latencies.push(latency);
        const wait = REAL_EVERY_MS - (performance.now() - started);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      clearInterval(sampler);
      agent.destroy();
      if (!webhook.process.isRunning())
        throw new Error(`the webhook died under the hostile client:\n${webhook.process.tail()}`);
      const { answered, broken } = JSON.parse(report) as {
        answered: Record<string, Record<string, number>>;
        broken: number;
      };
      const byStatus: Record<string, number> = {};
      for (const counts of Object.values(answered))
        for (const [status, n] of Object.entries(counts)) byStatus[status] = (byStatus[status] ?? 0) + n;
      process.stderr.write(`hostile client: ${JSON.stringify({ answered, broken })}\n`);

      results.hostile_webhook_resident_idle = { value: Math.round(idle), unit: "MiB" };
      results.hostile_webhook_resident_peak_sampled = { value: Math.round(peak), unit: "MiB" };
      results.hostile_webhook_resident_high_water_mark = {
        value: Math.round(peakResidentMiB(pid)),
        unit: "MiB",
      };
      for (const [status, n] of Object.entries(byStatus))
        results[`hostile_bodies_answered_${status}_per_s`] = {
          value: Math.round(n / SECONDS),
          unit: "reviews/s",
        };
      results.hostile_connections_broken = { value: broken, unit: "connections" };
      results.real_reviews_sent = { value: sent, unit: "reviews" };
      results.real_reviews_answered = { value: latencies.length, unit: "reviews" };
      results.real_review_latency_p50 = { value: Math.round(quantile(latencies, 0.5) * 10) / 10, unit: "ms" };
      results.real_review_latency_p99 = {
        value: Math.round(quantile(latencies, 0.99) * 10) / 10,
        unit: "ms",
      };
      results.real_review_latency_max = { value: Math.round(quantile(latencies, 1) * 10) / 10, unit: "ms" };
    } finally {
      await webhook.stop();
    }
  } finally {
    await cp.stop();
  }
  return results;
}
