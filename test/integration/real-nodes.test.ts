// End to end on real nodes: two kubelets with containerd and runc on this machine, a real agent
// process writing into each kubelet's seccomp root, the controller and the webhook. Pods really run,
// and what the kernel enforces is read back from their logs through the kubelet on 127.0.0.1.
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GROUP, SECCOMP_PROFILE_PLURAL, SYNCED_REVISION_LABEL, VERSION } from "../../src/api/constants.ts";
import { failedLabelKey, selectorSyncedLabelKey } from "../../src/api/labels.ts";
import { POD_NODE_AFFINITY_POLICY } from "../../src/manifests/admission.ts";
import { type ControlPlane, waitFor } from "../harness/controlplane.ts";
import { applyProfile, denyMkdir, EACCES, ENOTSUP, nodeHoldsProfile } from "../harness/profiles.ts";
import { realNodePodSpec } from "../harness/real-node.ts";
import { type RealNodeStack, startRealNodeStack } from "../harness/real-node-stack.ts";

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let apps: k8s.AppsV1Api;
let stack: RealNodeStack;
const NS = "default";
const NODE_NAMES = ["real-1", "real-2"];
/** A tier label only the test sets, for profiles that belong on some nodes only. */
const TIER = "lockstep.test/tier";

/**
 * A container that tries a denied and an allowed call once a second and prints what happened. Its
 * command line carries `marker`, so the test can find its process on the machine.
 */
const probeContainer = (profile: string, marker = "probe"): k8s.V1Container => ({
  name: "probe",
  command: [
    "sh",
    "-c",
    `: ${marker}; while true; do mkdir /tmp/denied 2>&1; echo "mkdir exit=$?"; touch /tmp/allowed && echo "touch ok"; sleep 1; done`,
  ],
  securityContext: { seccompProfile: { type: "Localhost", localhostProfile: `lockstep/${profile}.json` } },
});

const podsOf = async (selector: string) =>
  (await core.listNamespacedPod({ namespace: NS, labelSelector: selector })).items;

const isRunning = (pod: k8s.V1Pod) =>
  pod.status?.phase === "Running" && pod.status.containerStatuses?.every((c) => c.state?.running);

async function logsOf(pod: string, previous = false): Promise<string> {
  return core.readNamespacedPodLog({ name: pod, namespace: NS, container: "probe", previous });
}

const count = (text: string, part: string) => text.split(part).length - 1;

/** The pid of the one process on this machine whose command line contains `marker`. */
function pidOf(marker: string): number {
  const pids = readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`: ${marker};`);
      } catch {
        return false;
      }
    });
  if (pids.length !== 1) throw new Error(`expected one process with ${marker}, found ${pids.length}`);
  return Number(pids[0]);
}

async function nodeLabels(name: string): Promise<Record<string, string>> {
  return (await core.readNode({ name })).metadata?.labels ?? {};
}

/** Whether `node` holds the SeccompProfile `name` by the rule the scheduler applies (ADR 0024). */
const holds = (node: string, name: string) => nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", name, node);

async function waitForProfile(node: string, name: string): Promise<void> {
  await waitFor(`${name} on ${node}`, () => holds(node, name));
}

async function setTier(node: string, tier: string | null) {
  await core.patchNode(
    { name: node, body: { metadata: { labels: { [TIER]: tier } } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
}

beforeAll(async () => {
  stack = await startRealNodeStack(NODE_NAMES);
  cp = stack.cp;
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  apps = cp.kubeConfig().makeApiClient(k8s.AppsV1Api);
});

afterAll(async () => {
  await stack?.stop();
});

describe("real nodes", () => {
  it("run every pod of a Deployment with its Lockstep seccomp profile enforced by the kernel", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "deny-mkdir", denyMkdir(ENOTSUP.errno));
    for (const node of NODE_NAMES) await waitForProfile(node, "deny-mkdir");
    const labels = { app: "enforced" };
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: "enforced" },
        spec: {
          replicas: 3,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: realNodePodSpec([probeContainer("deny-mkdir")]) },
        },
      },
    });
    const pods = await waitFor(
      "3 enforced pods Running",
      async () => {
        const list = await podsOf("app=enforced");
        return list.length === 3 && list.every(isRunning) ? list : undefined;
      },
      { timeoutMs: 90_000 },
    );
    for (const pod of pods) {
      const node = pod.spec?.nodeName ?? "";
      expect(NODE_NAMES).toContain(node);
      expect(await holds(node, "deny-mkdir")).toBe(true);
      const name = pod.metadata?.name ?? "";
      const log = await waitFor(`${name} to log a probe`, async () => {
        const text = await logsOf(name);
        return text.includes("touch ok") ? text : undefined;
      });
      expect(log).toContain(`mkdir: can't create directory '/tmp/denied': ${ENOTSUP.text}`);
      expect(log).toContain("mkdir exit=1");
    }
  });

  it("keeps a pod off a node lacking its profile until that node's agent installs it, then runs it there", async () => {
    await applyProfile(
      cp.kubeConfig(),
      "SeccompProfile",
      "gold-only",
      denyMkdir(ENOTSUP.errno, { [TIER]: "gold" }),
    );
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "gold", labels: { app: "gold" } },
        spec: realNodePodSpec([probeContainer("gold-only")]),
      },
    });
    const pending = await waitFor("the scheduler to report gold unschedulable", async () => {
      const pod = await core.readNamespacedPod({ name: "gold", namespace: NS });
      const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
      return scheduled?.status === "False" ? { pod, scheduled } : undefined;
    });
    expect(pending.pod.status?.phase).toBe("Pending");
    expect(pending.pod.spec?.nodeName).toBeUndefined();
    expect(pending.scheduled.reason).toBe("Unschedulable");
    expect(pending.scheduled.message).toMatch(/2 node\(s\) didn't match Pod's node affinity\/selector/);
    // The requirements the scheduler could not meet were put there by the webhook: the profile's
    // nodeSelector and the agent's record of it, its revision, and no failure label for it.
    const terms =
      pending.pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
        ?.nodeSelectorTerms;
    expect(terms?.[0]?.matchExpressions).toEqual(
      expect.arrayContaining([
        { key: TIER, operator: "In", values: ["gold"] },
        { key: selectorSyncedLabelKey(TIER), operator: "In", values: ["gold"] },
        { key: SYNCED_REVISION_LABEL.seccomp, operator: "Gt", values: [expect.any(String)] },
        { key: failedLabelKey("seccomp", "gold-only"), operator: "DoesNotExist" },
      ]),
    );
    for (const node of NODE_NAMES) expect(await holds(node, "gold-only")).toBe(false);

    await setTier("real-2", "gold");
    await waitForProfile("real-2", "gold-only");
    const running = await waitFor(
      "gold to run",
      async () => {
        const pod = await core.readNamespacedPod({ name: "gold", namespace: NS });
        return isRunning(pod) ? pod : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(running.spec?.nodeName).toBe("real-2");
    const log = await waitFor("gold to log a probe", async () => {
      const text = await logsOf("gold");
      return text.includes("touch ok") ? text : undefined;
    });
    expect(log).toContain(ENOTSUP.text);
  });

  it("shows the failure Lockstep prevents: without the webhook, a pod bound to a node lacking the file ends in CreateContainerError", async () => {
    const admission = cp.kubeConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
    const saved = await admission.readMutatingWebhookConfiguration({ name: "lockstep-webhook" });
    // Without Lockstep at all: the webhook and the policy that refuses a pod its affinity does not guard
    // (lockstep-pod-node-affinity, which would otherwise refuse this very pod).
    const binding = await admission.readValidatingAdmissionPolicyBinding({ name: POD_NODE_AFFINITY_POLICY });
    await admission.deleteMutatingWebhookConfiguration({ name: "lockstep-webhook" });
    await admission.deleteValidatingAdmissionPolicyBinding({ name: POD_NODE_AFFINITY_POLICY });
    try {
      // gold-only is installed on real-2 only (previous test); pin the pod to real-1.
      expect(await holds("real-1", "gold-only")).toBe(false);
      const unguarded = {
        metadata: { name: "unguarded" },
        spec: { ...realNodePodSpec([probeContainer("gold-only")]), nodeName: "real-1" },
      };
      // The API server drops a deleted binding from admission in the background.
      await waitFor("the final-pod policy to stop refusing", () =>
        core.createNamespacedPod({ namespace: NS, body: unguarded, dryRun: "All" }).then(
          () => true,
          () => false,
        ),
      );
      await core.createNamespacedPod({ namespace: NS, body: unguarded });
      const waiting = await waitFor(
        "unguarded to fail creating its container",
        async () => {
          const pod = await core.readNamespacedPod({ name: "unguarded", namespace: NS });
          const state = pod.status?.containerStatuses?.[0]?.state?.waiting;
          return state?.reason === "CreateContainerError" ? state : undefined;
        },
        { timeoutMs: 90_000 },
      );
      expect(waiting.message).toMatch(/seccomp.*lockstep\/gold-only\.json.*no such file or directory/);
    } finally {
      const { metadata, ...rest } = saved;
      await admission.createMutatingWebhookConfiguration({
        body: { ...rest, metadata: { name: metadata?.name, labels: metadata?.labels } },
      });
      await admission.createValidatingAdmissionPolicyBinding({
        body: { ...binding, metadata: { name: POD_NODE_AFFINITY_POLICY, labels: binding.metadata?.labels } },
      });
      // Not there when its creation failed: that failure is the one to report, not this one.
      await core
        .deleteNamespacedPod({ name: "unguarded", namespace: NS, gracePeriodSeconds: 0 })
        .catch(() => undefined);
    }
  });

  it("keeps a running container on the profile it started with; a restarted container gets the updated one", async () => {
    // Unique on the machine, where another run's pods may be running too.
    const marker = `evolving-${randomBytes(4).toString("hex")}`;
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "evolving", denyMkdir(ENOTSUP.errno));
    for (const node of NODE_NAMES) await waitForProfile(node, "evolving");
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "evolving" },
        spec: realNodePodSpec([probeContainer("evolving", marker)]),
      },
    });
    const pod = await waitFor("evolving to run", async () => {
      const p = await core.readNamespacedPod({ name: "evolving", namespace: NS });
      return isRunning(p) ? p : undefined;
    });
    const node = pod.spec?.nodeName ?? "";
    const before = await waitFor("evolving to log a probe", async () => {
      const text = await logsOf("evolving");
      return text.includes(ENOTSUP.text) ? text : undefined;
    });
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "evolving", denyMkdir(EACCES.errno));
    // The update has a newer revision: the node holds it again once its agent installed the new version.
    await waitForProfile(node, "evolving");
    // Three more probes after the new file is on disk: the kernel filter of a running process never changes.
    const after = await waitFor(
      "three probes after the update",
      async () => {
        const text = await logsOf("evolving");
        return count(text, "mkdir exit=") >= count(before, "mkdir exit=") + 3 ? text : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(after).not.toContain(EACCES.text);

    // A crash (here: SIGKILL from outside, as the OOM killer would) restarts the container, which
    // the runtime creates from the file now on disk.
    process.kill(pidOf(marker), "SIGKILL");
    await waitFor(
      "evolving to restart",
      async () => {
        const p = await core.readNamespacedPod({ name: "evolving", namespace: NS });
        return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && isRunning(p);
      },
      { timeoutMs: 60_000 },
    );
    const restarted = await waitFor("the restarted container to log a probe", async () => {
      const text = await logsOf("evolving");
      return text.includes("mkdir exit=") ? text : undefined;
    });
    expect(restarted).toContain(`mkdir: can't create directory '/tmp/denied': ${EACCES.text}`);
    expect(restarted).not.toContain(ENOTSUP.text);
    expect(await logsOf("evolving", true)).not.toContain(EACCES.text);
  });

  it("comes back from a reboot of kubelet and containerd with labels equal to the disk and its pods running", async () => {
    const [node, agent] = [stack.nodes[0], stack.agents[0]];
    if (!node || !agent) throw new Error("real-1 and its agent are not running");
    const onNode = async () =>
      (await podsOf("app=enforced")).filter((p) => p.spec?.nodeName === node.name && isRunning(p));
    const containerIds = async () =>
      (await onNode()).map((p) => p.status?.containerStatuses?.[0]?.containerID ?? "").sort();
    const idsBefore = await containerIds();
    expect(idsBefore.length).toBeGreaterThan(0);

    // What the node holds before the power cut: files in its seccomp root, and by its labels exactly
    // the profiles of those files.
    const filesOnDisk = () =>
      Object.fromEntries(
        readdirSync(agent.seccompDir)
          .filter((f) => f.endsWith(".json"))
          .map((f) => [f.slice(0, -".json".length), readFileSync(join(agent.seccompDir, f), "utf8")]),
      );
    const heldProfiles = async () => {
      const list = (await cp
        .kubeConfig()
        .makeApiClient(k8s.CustomObjectsApi)
        .listClusterCustomObject({ group: GROUP, version: VERSION, plural: SECCOMP_PROFILE_PLURAL })) as {
        items: { metadata: { name: string } }[];
      };
      const held: string[] = [];
      for (const p of list.items) if (await holds(node.name, p.metadata.name)) held.push(p.metadata.name);
      return held.sort();
    };
    const filesBefore = filesOnDisk();
    const labelsBefore = await heldProfiles();
    expect(labelsBefore).toEqual(Object.keys(filesBefore).sort());

    await node.reboot();
    await agent.restart();

    // The restarted agent reads the disk again: the same files, and the node holds exactly those.
    expect(filesOnDisk()).toEqual(filesBefore);
    const labelsAfter = await heldProfiles();
    expect(labelsAfter).toEqual(Object.keys(filesOnDisk()).sort());
    expect(labelsAfter).toEqual(labelsBefore);
    expect(labelsAfter).toContain("deny-mkdir");
    expect(Object.keys(await nodeLabels(node.name)).filter((k) => k.startsWith("failed."))).toEqual([]);

    const idsAfter = await waitFor(
      "the enforced pods on real-1 to run in new containers",
      async () => {
        const ids = await containerIds();
        return ids.length === idsBefore.length && ids.every((id) => !idsBefore.includes(id))
          ? ids
          : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(idsAfter).toHaveLength(idsBefore.length);
    for (const pod of await onNode()) {
      const name = pod.metadata?.name ?? "";
      const log = await waitFor(`${name} to log a probe after the reboot`, async () => {
        const text = await logsOf(name);
        return text.includes("mkdir exit=") ? text : undefined;
      });
      expect(log).toContain(ENOTSUP.text);
    }
  });
});
