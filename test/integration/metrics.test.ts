// docs/metrics.md's table is what the components really serve: a real agent, controller and webhook
// (the bundles that ship) against a real API server, each given some work (a profile to install and
// reconcile, a pod to review), each one's /metrics scraped on loopback and compared with the table:
// the same metric names, the same types, and the documented label names on every series served.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Component } from "../../scripts/build.ts";
import { EVENT_LOOP_RESOLUTION_MS } from "../../src/kube/metrics.ts";
import { type AgentProcess, installAgentPrerequisites, startAgent } from "../harness/agents.ts";
import {
  type ControllerProcess,
  installControllerPrerequisites,
  startController,
} from "../harness/controller.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { applyProfile, nodeHoldsProfile } from "../harness/profiles.ts";
import { installWebhook, type WebhookProcess } from "../harness/webhook.ts";

const DOC = join(import.meta.dirname, "../../docs/metrics.md");
const SHORT_NAMES: Record<string, Component> = {
  agent: "lockstep-agent",
  controller: "lockstep-controller",
  webhook: "lockstep-webhook",
};

interface DocumentedMetric {
  type: string;
  labels: string[];
  servedBy: Component[];
}

/** The rows of docs/metrics.md's table: | `name` | type | `label`, ... | agent, controller | words |. */
function documentedMetrics(): Map<string, DocumentedMetric> {
  const rows = new Map<string, DocumentedMetric>();
  for (const line of readFileSync(DOC, "utf8").split("\n")) {
    const cells = /^\| `([a-z0-9_:]+)` \|([^|]*)\|([^|]*)\|([^|]*)\|/.exec(line);
    if (!cells) {
      if (line.startsWith("| `")) throw new Error(`docs/metrics.md: a row this test cannot read: ${line}`);
      continue;
    }
    const [, name = "", type = "", labels = "", servedBy = ""] = cells;
    if (rows.has(name)) throw new Error(`docs/metrics.md lists ${name} twice`);
    rows.set(name, {
      type: type.trim(),
      labels: [...labels.matchAll(/`([a-z_]+)`/g)].map((m) => m[1] ?? "").sort(),
      servedBy: servedBy
        .split(",")
        .map((s) => s.trim())
        .map((short) => {
          const component = SHORT_NAMES[short];
          if (!component) throw new Error(`docs/metrics.md: ${name} is served by "${short}", no component`);
          return component;
        }),
    });
  }
  return rows;
}

interface ServedMetric {
  type: string;
  /** Each series' label names, sorted and joined (a histogram's `le` left out). */
  labelSets: Set<string>;
}

/** Prometheus text exposition, read back: each metric's TYPE and the label names of its series. */
function servedMetrics(text: string): Map<string, ServedMetric> {
  const metrics = new Map<string, ServedMetric>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      if (metrics.has(type[1] ?? "")) throw new Error(`${type[1]} has two TYPE lines`);
      metrics.set(type[1] ?? "", { type: type[2] ?? "", labelSets: new Set() });
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const series = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? \S+$/.exec(line);
    if (!series) throw new Error(`not a sample line: ${line}`);
    const sample = series[1] ?? "";
    const name = metrics.has(sample) ? sample : sample.replace(/_(bucket|sum|count)$/, "");
    const metric = metrics.get(name);
    if (!metric) throw new Error(`${sample} has no TYPE line`);
    const labels = [...(series[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)]
      .map((m) => m[1] ?? "")
      .filter((label) => !(metric.type === "histogram" && label === "le"))
      .sort();
    metric.labelSets.add(labels.join(","));
  }
  return metrics;
}

let cp: ControlPlane;
let agent: AgentProcess;
let controller: ControllerProcess;
let webhook: WebhookProcess;

beforeAll(async () => {
  cp = await ControlPlane.start({ scheduler: false });
  await cp.addNode("node-metrics");
  await installAgentPrerequisites(cp);
  await installControllerPrerequisites(cp);
  agent = await startAgent(cp, "node-metrics");
  controller = await startController(cp, 0);
  webhook = await installWebhook(cp, { logLevel: "info" });
  // Work for each: a profile to install and reconcile, one whose base is missing (an install error),
  // and a pod that uses the first to review.
  await applyProfile(cp.kubeConfig(), "SeccompProfile", "metered", { baseProfileName: "runtime/default" });
  await applyProfile(cp.kubeConfig(), "SeccompProfile", "orphan", { baseProfileName: "no-such-base" });
  await waitFor("the profile on the node", () =>
    nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "metered", "node-metrics"),
  );
  const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: "metered" } } });
  await waitFor("the webhook to patch a pod", async () => {
    const pod = await core.createNamespacedPod({
      namespace: "metered",
      dryRun: "All",
      body: {
        metadata: { name: "web" },
        spec: {
          containers: [
            {
              name: "web",
              image: "busybox",
              securityContext: {
                seccompProfile: { type: "Localhost", localhostProfile: "lockstep/metered.json" },
              },
            },
          ],
        },
      },
    });
    return pod.spec?.affinity !== undefined;
  });
}, 180_000);

afterAll(async () => {
  await Promise.all([agent?.process.stop(5_000), controller?.process.stop(5_000), webhook?.stop()]);
  await cp?.stop();
});

const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

describe("docs/metrics.md", () => {
  it("lists exactly what each component serves, with its type and label names", async () => {
    const documented = documentedMetrics();
    const ports: Record<Component, number> = {
      "lockstep-agent": agent.healthPort,
      "lockstep-controller": controller.healthPort,
      "lockstep-webhook": webhook.healthPort,
    };
    for (const [component, port] of Object.entries(ports) as [Component, number][]) {
      const served = servedMetrics(await scrape(port));
      const expected = [...documented].filter(([, m]) => m.servedBy.includes(component));
      expect([...served.keys()].sort(), component).toEqual(expected.map(([name]) => name).sort());
      for (const [name, doc] of expected) {
        const metric = served.get(name);
        expect(metric?.type, `${component}: ${name}'s type`).toBe(doc.type);
        for (const labels of metric?.labelSets ?? [])
          expect(labels, `${component}: ${name}'s labels`).toBe(doc.labels.join(","));
      }
    }
  });

  it("has series for the work each component did: requests, syncs, reconciles, reviews, process figures", async () => {
    const series = (text: string, prefix: string) => text.split("\n").filter((l) => l.startsWith(prefix));
    // The event-loop delay covers the time since the previous scrape (the test above): let its 100 ms
    // timer (EVENT_LOOP_RESOLUTION_MS) fire a few times.
    await new Promise((resolve) => setTimeout(resolve, 5 * EVENT_LOOP_RESOLUTION_MS));
    const agentText = await scrape(agent.healthPort);
    expect(series(agentText, 'lockstep_agent_syncs_total{result="ok"}')).toHaveLength(1);
    expect(series(agentText, "lockstep_agent_install_errors_total{")).not.toHaveLength(0);
    expect(series(agentText, 'lockstep_api_requests_total{verb="PATCH"')).not.toHaveLength(0);
    // The leader recounts profiles by phase every 5 s.
    const controllerText = await waitFor("the controller's recount of profiles by phase", async () => {
      const text = await scrape(controller.healthPort);
      return series(text, "lockstep_controller_profiles{").length > 0 ? text : undefined;
    });
    expect(series(controllerText, 'lockstep_controller_reconciles_total{kind="seccomp"')).not.toHaveLength(0);
    expect(series(controllerText, "lockstep_controller_profiles{")).not.toHaveLength(0);
    const webhookText = await scrape(webhook.healthPort);
    expect(series(webhookText, 'lockstep_webhook_reviews_total{result="patched"}')).toHaveLength(1);
    for (const text of [agentText, controllerText, webhookText]) {
      const resident = Number(series(text, "process_resident_memory_bytes ")[0]?.split(" ")[1]);
      expect(resident).toBeGreaterThan(10 << 20);
      expect(series(text, "nodejs_heap_space_size_used_bytes{space=")).not.toHaveLength(0);
      expect(series(text, "nodejs_gc_duration_seconds_count{kind=")).not.toHaveLength(0);
      expect(series(text, "nodejs_eventloop_lag_p99_seconds ")).toHaveLength(1);
    }
  });
});
