// ProfileBindings end to end on real nodes (docs/adr/0036-profile-bindings.md): two kubelets with
// containerd and runc, the agents, the controller and the webhook. Workloads are applied with no
// securityContext at all; the profile a binding gives them is enforced by the kernel, read back from the
// pods' logs, and the pods land only where the profile is installed.
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_VERSION, GROUP, VERSION } from "../../src/api/constants.ts";
import {
  BINDINGS_NAMESPACE_LABEL,
  BOUND_BY_ANNOTATION,
  PROFILE_BINDING_KIND,
  PROFILE_BINDING_PLURAL,
  type ProfileBindingSpec,
  type ProfileBindingStatus,
} from "../../src/api/profile-binding.ts";
import { apiErrorMessage, refusal } from "../harness/admission.ts";
import { type ControlPlane, waitFor } from "../harness/controlplane.ts";
import { applyProfile, denyMkdir, EACCES, ENOTSUP, nodeHoldsProfile } from "../harness/profiles.ts";
import { realNodePodSpec } from "../harness/real-node.ts";
import { type RealNodeStack, startRealNodeStack } from "../harness/real-node-stack.ts";

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let apps: k8s.AppsV1Api;
let objects: k8s.CustomObjectsApi;
let stack: RealNodeStack;
const NODE_NAMES = ["real-1", "real-2"];
const TIER = "lockstep.test/tier";
/** Bindings act here with override allowed, there without it; nowhere in PLAIN. */
const SHOP = "shop";
const TEAM_B = "team-b";
const PLAIN = "plain";

/** A container that tries a denied and an allowed call once a second, with no securityContext of its own. */
const probe = (name = "probe"): k8s.V1Container => ({
  name,
  command: [
    "sh",
    "-c",
    `while true; do mkdir /tmp/denied-$$ 2>&1; echo "mkdir exit=$?"; rmdir /tmp/denied-$$ 2>/dev/null; touch /tmp/allowed && echo "touch ok"; sleep 1; done`,
  ],
});

async function createBinding(namespace: string, name: string, spec: ProfileBindingSpec, dryRun = false) {
  await objects.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PROFILE_BINDING_PLURAL,
    body: { apiVersion: API_VERSION, kind: PROFILE_BINDING_KIND, metadata: { name, namespace }, spec },
    ...(dryRun ? { dryRun: "All" } : {}),
  });
}

const probePod = (name: string, labels: Record<string, string>): k8s.V1Pod => ({
  metadata: { name, labels },
  spec: realNodePodSpec([probe()]),
});

/**
 * The webhook acts on a binding once its cache has it: a dry run of the pod (which the webhook reviews,
 * and which counts in no status) until `done` says the answer shows it.
 */
async function dryRunUntil(namespace: string, pod: k8s.V1Pod, done: (answer: k8s.V1Pod | string) => boolean) {
  return waitFor(`the webhook to act on ${namespace}'s bindings`, async () => {
    let answer: k8s.V1Pod | string;
    try {
      answer = await core.createNamespacedPod({ namespace, body: pod, dryRun: "All" });
    } catch (error) {
      answer = apiErrorMessage(error);
    }
    return done(answer) ? answer : undefined;
  });
}

const isBoundBy = (binding: string) => (answer: k8s.V1Pod | string) =>
  typeof answer !== "string" && answer.metadata?.annotations?.[BOUND_BY_ANNOTATION] === binding;
const isRefusedWith = (text: string) => (answer: k8s.V1Pod | string) =>
  typeof answer === "string" && answer.includes(text);

async function bindingStatus(namespace: string, name: string): Promise<ProfileBindingStatus> {
  const o = (await objects.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PROFILE_BINDING_PLURAL,
    name,
  })) as { status?: ProfileBindingStatus };
  return o.status ?? {};
}

const isRunning = (pod: k8s.V1Pod) =>
  pod.status?.phase === "Running" && pod.status.containerStatuses?.every((c) => c.state?.running);

async function logOf(namespace: string, pod: string, container = "probe"): Promise<string> {
  return waitFor(`${namespace}/${pod} ${container} to log a probe`, async () => {
    const text = await core.readNamespacedPodLog({ name: pod, namespace, container });
    return text.includes("touch ok") ? text : undefined;
  });
}

beforeAll(async () => {
  stack = await startRealNodeStack(NODE_NAMES);
  cp = stack.cp;
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  apps = cp.kubeConfig().makeApiClient(k8s.AppsV1Api);
  objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  for (const [name, mode] of [
    [SHOP, "enabled"],
    [TEAM_B, "no-override"],
    [PLAIN, undefined],
  ] as const)
    await core.createNamespace({
      body: { metadata: { name, ...(mode ? { labels: { [BINDINGS_NAMESPACE_LABEL]: mode } } : {}) } },
    });
  // Pods in these namespaces run under the default ServiceAccount, which the API server creates.
  for (const namespace of [SHOP, TEAM_B])
    await waitFor(`the default ServiceAccount of ${namespace}`, async () =>
      (await core.listNamespacedServiceAccount({ namespace })).items.some(
        (s) => s.metadata?.name === "default",
      ),
    );
  // The policy on bindings is compiled a moment after it is created: wait until it refuses.
  await waitFor("lockstep-profile-bindings to refuse a binding in an unlabelled namespace", async () => {
    const message = await refusal(createBinding(PLAIN, "probe-policy", { seccompProfile: "x" }, true)).catch(
      () => undefined,
    );
    return message?.includes("is not labelled") ? message : undefined;
  });
});

afterAll(async () => {
  await stack?.stop();
});

describe("ProfileBinding on real nodes", () => {
  it("runs a Deployment applied with no securityContext with its binding's profile, only on the node that has it", async () => {
    await applyProfile(
      cp.kubeConfig(),
      "SeccompProfile",
      "gold-deny",
      denyMkdir(ENOTSUP.errno, { [TIER]: "gold" }),
    );
    await core.patchNode(
      { name: "real-2", body: { metadata: { labels: { [TIER]: "gold" } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await waitFor("gold-deny on real-2", () =>
      nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "gold-deny", "real-2"),
    );
    expect(await nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "gold-deny", "real-1")).toBe(false);
    await createBinding(SHOP, "probe", {
      podSelector: { matchLabels: { app: "probe" } },
      seccompProfile: "gold-deny",
    });

    const labels = { app: "probe" };
    await dryRunUntil(SHOP, probePod("dry", labels), isBoundBy("probe"));
    await apps.createNamespacedDeployment({
      namespace: SHOP,
      body: {
        metadata: { name: "probe" },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: realNodePodSpec([probe()]) },
        },
      },
    });
    const pods = await waitFor(
      "2 probe pods Running",
      async () => {
        const list = (await core.listNamespacedPod({ namespace: SHOP, labelSelector: "app=probe" })).items;
        return list.length === 2 && list.every(isRunning) ? list : undefined;
      },
      { timeoutMs: 90_000 },
    );
    for (const pod of pods) {
      expect(pod.spec?.nodeName).toBe("real-2");
      expect(pod.metadata?.annotations?.[BOUND_BY_ANNOTATION]).toBe("probe");
      // The guard came in the same patch: the profile's nodeSelector is required in every term, so
      // the scheduler could never have chosen real-1.
      const terms =
        pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
      expect(terms?.length).toBeGreaterThan(0);
      for (const term of terms ?? [])
        expect(term.matchExpressions).toContainEqual({ key: TIER, operator: "In", values: ["gold"] });
      expect(pod.spec?.containers[0]?.securityContext?.seccompProfile).toEqual({
        type: "Localhost",
        localhostProfile: "lockstep/gold-deny.json",
      });
      const log = await logOf(SHOP, pod.metadata?.name ?? "");
      expect(log).toContain(`can't create directory '/tmp/denied-`);
      expect(log).toContain(ENOTSUP.text);
      expect(log).not.toContain("mkdir exit=0");
    }
    const status = await waitFor("the binding's status to count both pods", async () => {
      const s = await bindingStatus(SHOP, "probe");
      return (s.boundPods ?? 0) >= 2 ? s : undefined;
    });
    expect(status.lastBoundPod).toMatch(/^shop\/probe-/);
  });

  it("binds a kubectl debug container by the same rules, and the kernel enforces it", async () => {
    const [pod] = (await core.listNamespacedPod({ namespace: SHOP, labelSelector: "app=probe" })).items;
    const name = pod?.metadata?.name ?? "";
    const current = await core.readNamespacedPod({ name, namespace: SHOP });
    current.spec = {
      ...(current.spec as k8s.V1PodSpec),
      ephemeralContainers: [
        { ...probe("debugger"), image: current.spec?.containers[0]?.image ?? "", imagePullPolicy: "Never" },
      ],
    };
    const updated = await core.replaceNamespacedPodEphemeralcontainers({
      name,
      namespace: SHOP,
      body: current,
    });
    expect(updated.spec?.ephemeralContainers?.[0]?.securityContext?.seccompProfile).toEqual({
      type: "Localhost",
      localhostProfile: "lockstep/gold-deny.json",
    });
    const log = await logOf(SHOP, name, "debugger");
    expect(log).toContain(ENOTSUP.text);
    expect(log).not.toContain("mkdir exit=0");
  });

  it("gives every container of a second namespace its default, while a pod's own profile wins", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "deny-eacces", denyMkdir(EACCES.errno));
    for (const node of NODE_NAMES)
      await waitFor(`deny-eacces on ${node}`, () =>
        nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "deny-eacces", node),
      );
    await createBinding(TEAM_B, "default", { seccompProfile: "deny-eacces" });
    await dryRunUntil(TEAM_B, probePod("dry", {}), isBoundBy("default"));
    await core.createNamespacedPod({ namespace: TEAM_B, body: probePod("plain-pod", {}) });
    await core.createNamespacedPod({
      namespace: TEAM_B,
      body: {
        metadata: { name: "own-profile" },
        spec: realNodePodSpec([
          { ...probe(), securityContext: { seccompProfile: { type: "RuntimeDefault" } } },
        ]),
      },
    });
    for (const name of ["plain-pod", "own-profile"])
      await waitFor(
        `${name} to run`,
        async () => isRunning(await core.readNamespacedPod({ name, namespace: TEAM_B })),
        { timeoutMs: 90_000 },
      );
    expect(await logOf(TEAM_B, "plain-pod")).toContain(EACCES.text);
    const own = await core.readNamespacedPod({ name: "own-profile", namespace: TEAM_B });
    expect(own.metadata?.annotations?.[BOUND_BY_ANNOTATION]).toBeUndefined();
    expect(await logOf(TEAM_B, "own-profile")).toContain("mkdir exit=0");
    // This namespace forbids override: a binding that asks for it is refused.
    const message = await refusal(
      createBinding(TEAM_B, "force", { seccompProfile: "deny-eacces", override: true }),
    );
    expect(message).toContain("spec.override is not allowed there");
  });

  it("refuses a pod two equally specific bindings disagree on, and reports it on both bindings", async () => {
    await createBinding(SHOP, "clash-a", {
      podSelector: { matchLabels: { app: "clash" } },
      seccompProfile: "gold-deny",
    });
    await createBinding(SHOP, "clash-b", {
      podSelector: { matchLabels: { app: "clash" } },
      seccompProfile: "deny-eacces",
    });
    await dryRunUntil(SHOP, probePod("clash", { app: "clash" }), isRefusedWith("equally specifically"));
    const message = await refusal(
      core.createNamespacedPod({ namespace: SHOP, body: probePod("clash", { app: "clash" }) }),
    );
    expect(message).toContain(
      'ProfileBinding "clash-a" (SeccompProfile "gold-deny") and ProfileBinding "clash-b" (SeccompProfile "deny-eacces")',
    );
    for (const binding of ["clash-a", "clash-b"]) {
      const status = await waitFor(`${binding}'s status to report the conflict`, async () => {
        const s = await bindingStatus(SHOP, binding);
        return (s.refusedPods ?? 0) >= 1 ? s : undefined;
      });
      expect(status.refusals?.[0]).toMatchObject({ pod: "shop/clash", reason: "Conflict" });
    }
  });

  it("refuses a pod bound to a profile that does not exist, as a pod naming it, and says so on the binding", async () => {
    await createBinding(SHOP, "ghost", {
      podSelector: { matchLabels: { app: "ghost" } },
      seccompProfile: "nope",
    });
    await dryRunUntil(SHOP, probePod("ghost", { app: "ghost" }), isRefusedWith("does not exist"));
    const message = await refusal(
      core.createNamespacedPod({ namespace: SHOP, body: probePod("ghost", { app: "ghost" }) }),
    );
    expect(message).toContain(
      'is bound by ProfileBinding "ghost" to SeccompProfile "nope", which does not exist',
    );
    const status = await waitFor("ghost's status to report it", async () => {
      const s = await bindingStatus(SHOP, "ghost");
      return (s.refusedPods ?? 0) >= 1 ? s : undefined;
    });
    expect(status.refusals?.[0]?.reason).toBe("ProfileMissing");
  });
});
