// What profiles log, visible (issue 27 point 3, docs/adr/0038), on real nodes: two kubelets with
// containerd and runc on this machine, one kernel. A pod runs under a SeccompProfile whose rule logs
// mkdir; its node's agent starts its audit reader, maps the kernel's records to the pod through the
// process's cgroup and containerd's bundle, and shows them as lockstep_profile_calls_total and as an
// Event on the pod. A pod under a profile that refuses mkdir without logging shows nothing (the kernel
// writes no record for it), and the other node's agent, whose reader sees the same records, ignores
// the container that is not its node's. Before any profile logs, no agent runs a reader.
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CALLS_METRIC } from "../../node-agent/call-reports.ts";
import { buildNative, HOST_ARCH } from "../../scripts/native.ts";
import { type AgentProcess, installAgentPrerequisites, startAgent, stopAgents } from "../harness/agents.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { applyProfile, denyMkdir, ENOTSUP, nodeHoldsProfile } from "../harness/profiles.ts";
import { addRealNode, realNodePodSpec } from "../harness/real-node.ts";

let cp: ControlPlane;
let core: k8s.CoreV1Api;
const agents: AgentProcess[] = [];
const NS = "default";
const NODE_NAMES = ["audit-1", "audit-2"];

const logMkdir = {
  baseProfileName: "runtime/default",
  syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_LOG" }],
};

/** A pod on `node` under `profile` that makes a directory and removes it again, once a second. */
const mkdirPod = (name: string, node: string, profile: string): k8s.V1Pod => ({
  metadata: { name },
  spec: {
    ...realNodePodSpec([
      {
        name: "probe",
        command: [
          "sh",
          "-c",
          "while true; do mkdir /tmp/d 2>&1; rmdir /tmp/d 2>/dev/null; echo tick; sleep 1; done",
        ],
        securityContext: {
          seccompProfile: { type: "Localhost", localhostProfile: `lockstep/${profile}.json` },
        },
      },
    ]),
    nodeName: node,
  },
});

async function metrics(agent: AgentProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${agent.healthPort}/metrics`)).text();
}

/** The series of the calls metric for `pod`, as "syscall action value" lines. */
const seriesOf = (text: string, pod: string) =>
  text.split("\n").filter((line) => line.startsWith(`${CALLS_METRIC}{`) && line.includes(`pod="${pod}"`));

const agentOn = (node: string) => agents.find((a) => a.nodeName === node) as AgentProcess;

beforeAll(async () => {
  buildNative(HOST_ARCH);
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  for (const name of NODE_NAMES) await addRealNode(cp, name);
  await installAgentPrerequisites(cp);
  for (const name of NODE_NAMES)
    agents.push(await startAgent(cp, name, { extraArgs: ["--call-events-interval=3"] }));
}, 300_000);

afterAll(async () => {
  await stopAgents(agents);
  await cp?.stop();
});

describe("what profiles log, on real nodes", () => {
  it("runs no audit reader while no installed profile logs calls", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "deny-mkdir", denyMkdir(ENOTSUP.errno));
    for (const node of NODE_NAMES)
      await waitFor(`deny-mkdir on ${node}`, () =>
        nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "deny-mkdir", node),
      );
    for (const agent of agents) expect(await metrics(agent)).toContain("lockstep_audit_reader_running 0");
  });

  it("counts a logged call per pod, container, syscall and action, and says so on the pod", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "log-mkdir", logMkdir);
    for (const node of NODE_NAMES)
      await waitFor(`log-mkdir on ${node}`, () =>
        nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "log-mkdir", node),
      );
    await core.createNamespacedPod({ namespace: NS, body: mkdirPod("logged", "audit-1", "log-mkdir") });
    await core.createNamespacedPod({ namespace: NS, body: mkdirPod("denied", "audit-1", "deny-mkdir") });
    const logged = agentOn("audit-1");
    const series = await waitFor(
      "the logged pod's mkdir in the agent's metrics",
      async () => {
        const found = seriesOf(await metrics(logged), "logged");
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(series[0]).toMatch(
      new RegExp(
        `^${CALLS_METRIC}\\{namespace="default",pod="logged",container="probe",syscall="mkdir(at)?",action="log"\\} [1-9]`,
      ),
    );
    const pod = await core.readNamespacedPod({ name: "logged", namespace: NS });
    const event = await waitFor(
      "an Event on the logged pod",
      async () => {
        const list = await core.listNamespacedEvent({
          namespace: NS,
          fieldSelector: `involvedObject.uid=${pod.metadata?.uid},reason=SeccompCallsLogged`,
        });
        return list.items[0];
      },
      { timeoutMs: 60_000 },
    );
    expect(event.type).toBe("Normal");
    expect(event.involvedObject).toMatchObject({ kind: "Pod", name: "logged", namespace: NS });
    expect(event.message).toMatch(
      /^container probe: \d+ calls logged \(allowed\) by its seccomp profile in the last 3 s: mkdir(at)? \(\d+\)/,
    );
    expect(event.reportingComponent).toBeTruthy();
  });

  it("shows nothing for a pod whose profile refuses without logging, nor on the other node", async () => {
    const denied = await core.readNamespacedPodLog({ name: "denied", namespace: NS, container: "probe" });
    expect(denied).toContain(ENOTSUP.text);
    const here = await metrics(agentOn("audit-1"));
    expect(seriesOf(here, "denied")).toEqual([]);
    const events = await core.listNamespacedEvent({
      namespace: NS,
      fieldSelector: "involvedObject.name=denied",
    });
    expect(events.items.filter((e) => e.reason?.startsWith("SeccompCalls"))).toEqual([]);
    // The other node's reader sees the same kernel's records and finds no bundle for the container.
    const other = await metrics(agentOn("audit-2"));
    expect(other).toContain("lockstep_audit_reader_running 1");
    expect(seriesOf(other, "logged")).toEqual([]);
    expect(other).toMatch(/lockstep_audit_records_ignored_total\{reason="other-node"\} [1-9]/);
  });
});
