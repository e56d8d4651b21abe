// The Helm chart installed, upgraded and removed with a real helm on three real nodes, from the image
// `make image` builds (imported into each node's containerd). helm renders charts/lockstep; a
// post-renderer applies deploy-overlays/test-local's loopback changes to it, exactly as the deploy/
// tests do (docs/adr/0062-deploy-on-real-nodes.md); nothing about privileges changes.
//
// What docs/adr/0065-upgrade-and-removal.md promises, checked while it happens:
// - install: agents on every node, a profile reaches every node, pods run under it;
// - upgrade (every component's pods replaced): every pod keeps running, every node keeps the profile's
//   file and claims it in its labels throughout, and the webhook refuses no pod that names it;
// - uninstall: no admission configuration is left (nothing to refuse pods), the running pods and the
//   nodes' files stay, the CRDs and profiles stay, and a pod naming the profile is admitted and runs;
// - install again: the new agents adopt what the nodes kept;
// - a release's install.yaml applied with kubectl (the image by digest), then docs/install.md's kubectl
//   removal that keeps the profiles: no pod refused meanwhile, no admission object left.
// Three nodes: each component's rollout starts its new pod before it stops an old one, and on the host
// network a pod's ports are the node's, so the new pod needs a node its component does not run on.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuiltImage } from "../../scripts/image/build.ts";
import {
  GROUP,
  LOCKSTEP_NAMESPACE,
  SECCOMP_PROFILE_PLURAL,
  VERSION,
  WEBHOOK_CONFIGURATION_NAME,
} from "../../src/api/constants.ts";
import { seccompProfileDir, seccompProfileFileName } from "../../src/api/paths.ts";
import { kubeErrorMessage } from "../../src/kube/errors.ts";
import { admissionFiles } from "../../src/manifests/admission.ts";
import { installYaml, packageVersion } from "../../src/manifests/files.ts";
import { IMAGE_REPOSITORY } from "../../src/manifests/workloads.ts";
import { ControlPlane, freePort, kubectlBinary, waitFor } from "../harness/controlplane.ts";
import { componentPodsReady, realNodesWithImage, startWebhookFront } from "../harness/deploy-local.ts";
import { CHART, helm, writeLocalPostRenderer } from "../harness/helm.ts";
import { applyProfile, nodeHoldsProfile } from "../harness/profiles.ts";
import { nodeKubeletRoot, nodesDir, type RealNode, sleepingSeccompPod } from "../harness/real-node.ts";

const NODE_NAMES = ["node-a", "node-b", "node-c"];
const RELEASE = "lockstep";
/** Where helm keeps the release record: not Lockstep's namespace, which the chart itself creates and removes. */
const RELEASE_NAMESPACE = "default";
const PROFILE = "helm-allow-all";
const PODS = ["under-profile-1", "under-profile-2", "under-profile-3"];

let cp: ControlPlane;
const nodes: RealNode[] = [];
let core: k8s.CoreV1Api;
let helmArgs: string[];
let helmEnv: NodeJS.ProcessEnv;
let image: BuiltImage;
let postRenderer: string;
/** The image as a release's install.yaml names it: by its digest. */
let pinned: string;

/** The removal docs/install.md gives for kubectl names these policies (checked against the source below). */
const LOCKSTEP_POLICIES = [
  "lockstep-agent-own-node-labels",
  "lockstep-agent-own-install-reports",
  "lockstep-controller-finalizer-and-status",
  "lockstep-webhook-ca-bundle-only",
  "lockstep-pod-in-use-labels",
  "lockstep-pod-node-affinity",
  "lockstep-profile-bindings",
  "lockstep-profile-recordings",
  "lockstep-agent-own-recording-entry",
];

const kubectl = (...args: string[]) =>
  promisify(execFile)(kubectlBinary(), ["--kubeconfig", cp.adminKubeconfigPath, ...args]);

/** `text` through the post-renderer helm uses here: deploy-overlays/test-local's loopback changes. */
const postRender = (text: string) =>
  new Promise<string>((resolve, reject) => {
    const child = execFile(postRenderer, [], { maxBuffer: 64 << 20 }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    );
    child.stdin?.end(text);
  });

const runHelm = (...args: string[]) => helm([...args, "--kubeconfig", cp.adminKubeconfigPath], helmEnv);

/** A pod on a real node that sleeps under the profile; the webhook gives it the profile's affinity. */
const guardedPod = (name: string): k8s.V1Pod => sleepingSeccompPod(name, PROFILE);

async function installedEverywhere(): Promise<void> {
  const objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  await waitFor(
    `SeccompProfile ${PROFILE} to be Installed on ${NODE_NAMES.length} nodes`,
    async () => {
      const obj = (await objects.getClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: SECCOMP_PROFILE_PLURAL,
        name: PROFILE,
      })) as { status?: { phase?: string; nodes?: { installed?: number } } };
      return obj.status?.phase === "Installed" && obj.status.nodes?.installed === NODE_NAMES.length;
    },
    { timeoutMs: 120_000 },
  );
}

/** Each node's file of the profile on disk, and its claim in the Node's labels. */
async function profileOnEveryNode(): Promise<string[]> {
  const missing: string[] = [];
  for (const node of nodes) {
    if (!existsSync(join(seccompProfileDir(node.kubeletRoot), seccompProfileFileName(PROFILE))))
      missing.push(`${node.name}: no file`);
    if (!(await nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", PROFILE, node.name)))
      missing.push(`${node.name}: labels do not claim it`);
  }
  return missing;
}

/** The guarded pods that are not Running with their container never restarted. */
async function podsNotRunning(): Promise<string[]> {
  const pods = await Promise.all(PODS.map((name) => core.readNamespacedPod({ name, namespace: "default" })));
  return pods
    .filter((p) => p.status?.phase !== "Running" || (p.status.containerStatuses?.[0]?.restartCount ?? 0) > 0)
    .map((p) => `${p.metadata?.name}: ${p.status?.phase}`);
}

/**
 * Watches, until stopped, what must hold while Lockstep is upgraded or removed: a pod naming the
 * profile is admitted (server-side dry run: it passes every webhook and policy, and nothing is
 * created), the guarded pods run, and (when `nodesKeepProfile`) every node keeps the profile.
 */
function watchWhile(nodesKeepProfile: boolean) {
  const failures: string[] = [];
  let admitted = 0;
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      try {
        await core.createNamespacedPod({
          namespace: "default",
          body: guardedPod(`probe-${i}`),
          dryRun: "All",
        });
        admitted++;
      } catch (error) {
        failures.push(`admission: ${kubeErrorMessage(error)}`);
      }
      failures.push(...(await podsNotRunning()));
      if (nodesKeepProfile) failures.push(...(await profileOnEveryNode()));
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { failures, admitted };
    },
  };
}

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  ({ image } = await realNodesWithImage(cp, NODE_NAMES, (node) => nodes.push(node)));
  const webhookFront = await startWebhookFront(cp);
  pinned = `${IMAGE_REPOSITORY}@${image.digest}`;
  postRenderer = await writeLocalPostRenderer(cp.workDir, {
    apiPort: Number(new URL(cp.server).port),
    nodesDir: nodesDir(cp),
    kubeletRootOf: (name) => nodeKubeletRoot(cp, name),
    agentHealthPort: await freePort(),
    webhookFront,
  });
  // helm's own files (repository cache, plugins, registry logins) in this run's folder, not the user's.
  helmEnv = Object.fromEntries(
    ["HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"].map((v) => [v, join(cp.workDir, "helm", v)]),
  );
  helmArgs = ["--namespace", RELEASE_NAMESPACE, "--post-renderer", postRenderer, "--wait", "--timeout", "5m"];
}, 600_000);

afterAll(async () => {
  await cp?.stop();
});

describe("helm install", () => {
  it("runs an agent on every node and both Deployments; a profile reaches every node and pods run under it", async () => {
    await runHelm("install", RELEASE, CHART, ...helmArgs);
    const agents = await componentPodsReady(cp.kubeConfig(), "agent", NODE_NAMES.length);
    expect(agents.map((p) => p.spec?.nodeName).sort()).toEqual(NODE_NAMES);
    await componentPodsReady(cp.kubeConfig(), "webhook", 2);
    await componentPodsReady(cp.kubeConfig(), "controller", 2);

    await applyProfile(cp.kubeConfig(), "SeccompProfile", PROFILE, { defaultAction: "SCMP_ACT_ALLOW" });
    await installedEverywhere();
    expect(await profileOnEveryNode()).toEqual([]);
    for (const name of PODS) {
      const pod = await core.createNamespacedPod({ namespace: "default", body: guardedPod(name) });
      // The webhook ran: the pod carries the profile's node affinity.
      expect(pod.spec?.affinity?.nodeAffinity).toBeDefined();
    }
    await waitFor(
      "the guarded pods to run",
      async () => ((await podsNotRunning()).length === 0 ? true : undefined),
      {
        timeoutMs: 90_000,
      },
    );
  }, 600_000);
});

describe("helm upgrade", () => {
  it("replaces every component's pods while every pod keeps running, every node keeps the profile and no pod is refused", async () => {
    const before = await componentPodNames();
    const watch = watchWhile(true);
    await runHelm("upgrade", RELEASE, CHART, ...helmArgs, "--reuse-values", "--set", "logLevel=debug");
    // Past the rollout: the last old pods stop after helm saw the new ones Ready.
    await waitFor(
      "only new pods of every component",
      async () => {
        const now = await componentPodNames();
        return now.every((name) => !before.includes(name)) ? true : undefined;
      },
      { timeoutMs: 120_000 },
    );
    const { failures, admitted } = await watch.stop();
    expect(failures).toEqual([]);
    expect(admitted).toBeGreaterThan(10);
    for (const component of ["agent", "controller", "webhook"]) {
      const pods = await componentPodsReady(
        cp.kubeConfig(),
        component,
        component === "agent" ? NODE_NAMES.length : 2,
      );
      for (const pod of pods)
        expect(pod.spec?.containers[0]?.env?.find((e) => e.name === "LOG_LEVEL")?.value, component).toBe(
          "debug",
        );
    }
    expect(await runHelm("history", RELEASE, "--namespace", RELEASE_NAMESPACE)).toMatch(/^2\s.*deployed/m);
  }, 600_000);
});

describe("helm uninstall", () => {
  it("leaves no admission configuration, keeps running pods, their nodes' files, the CRDs and the profiles", async () => {
    const watch = watchWhile(false);
    await runHelm("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait", "--timeout", "5m");
    const { failures } = await watch.stop();
    expect(failures).toEqual([]);

    const admission = cp.kubeConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
    const webhooks = (await admission.listMutatingWebhookConfiguration()).items.map((w) => w.metadata?.name);
    expect(webhooks).not.toContain(WEBHOOK_CONFIGURATION_NAME);
    const policies = (await admission.listValidatingAdmissionPolicy()).items.map(
      (p) => p.metadata?.name ?? "",
    );
    expect(policies.filter((name) => name.startsWith("lockstep-"))).toEqual([]);
    await namespaceGone();

    // Node state stays (no agent cleans up): running pods keep their profile, and the files are there for
    // a container that restarts.
    expect(await podsNotRunning()).toEqual([]);
    for (const node of nodes)
      expect(
        existsSync(join(seccompProfileDir(node.kubeletRoot), seccompProfileFileName(PROFILE))),
        node.name,
      ).toBe(true);
    const extensions = cp.kubeConfig().makeApiClient(k8s.ApiextensionsV1Api);
    for (const plural of ["seccompprofiles", "apparmorprofiles"])
      await extensions.readCustomResourceDefinition({ name: `${plural}.${GROUP}` });
    const objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    await objects.getClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: SECCOMP_PROFILE_PLURAL,
      name: PROFILE,
    });

    // Nothing left to refuse a pod: one naming the profile is created as written, and runs from the file.
    const after = await core.createNamespacedPod({
      namespace: "default",
      body: guardedPod("after-uninstall"),
    });
    expect(after.spec?.affinity).toBeUndefined();
    await waitFor(
      "the pod created after uninstall to run",
      async () => {
        const p = await core.readNamespacedPod({ name: "after-uninstall", namespace: "default" });
        return p.status?.phase === "Running" ? true : undefined;
      },
      { timeoutMs: 90_000 },
    );
  }, 600_000);
});

describe("helm install again", () => {
  it("adopts what the nodes kept: the profile is Installed on every node again, the pods never stopped", async () => {
    await runHelm("install", RELEASE, CHART, ...helmArgs);
    await installedEverywhere();
    expect(await profileOnEveryNode()).toEqual([]);
    expect(await podsNotRunning()).toEqual([]);
    await componentPodsReady(cp.kubeConfig(), "agent", NODE_NAMES.length);
  }, 600_000);
});

describe("kubectl apply -f install.yaml, and the documented removal that keeps the profiles", () => {
  it("installs the release's one file (the image by digest), then removes all but the CRDs without refusing a pod", async () => {
    await runHelm("uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait", "--timeout", "5m");
    await namespaceGone();
    // The release's file, through the same loopback changes as helm's output (the post-renderer).
    const file = join(cp.workDir, "install-local.yaml");
    await writeFile(file, await postRender(installYaml(packageVersion(), image.digest)));
    for (const node of nodes) await node.tagImage(image.reference, pinned);
    await kubectl("apply", "--server-side", "-f", file);
    for (const [component, count] of [
      ["agent", NODE_NAMES.length],
      ["controller", 2],
      ["webhook", 2],
    ] as const) {
      const pods = await componentPodsReady(cp.kubeConfig(), component, count);
      for (const pod of pods) expect(pod.spec?.containers[0]?.image, component).toBe(pinned);
    }
    await installedEverywhere();
    const created = await core.createNamespacedPod({
      namespace: "default",
      body: guardedPod("from-install-yaml"),
    });
    expect(created.spec?.affinity?.nodeAffinity).toBeDefined();

    // docs/install.md, "Uninstall": with kubectl, everything but the CRDs, the webhook configuration first.
    const policies = Object.values(admissionFiles())
      .flatMap((f) => f.docs as k8s.KubernetesObject[])
      .filter((d) => d.kind === "ValidatingAdmissionPolicy")
      .map((d) => d.metadata?.name);
    expect([...LOCKSTEP_POLICIES].sort()).toEqual(policies.sort());
    const watch = watchWhile(false);
    await kubectl("delete", "mutatingwebhookconfiguration", WEBHOOK_CONFIGURATION_NAME);
    await kubectl(
      "delete",
      "validatingadmissionpolicybinding,validatingadmissionpolicy",
      ...LOCKSTEP_POLICIES,
    );
    await kubectl("delete", "namespace", LOCKSTEP_NAMESPACE);
    await kubectl(
      "delete",
      "clusterrolebinding,clusterrole",
      "lockstep-agent",
      "lockstep-controller",
      "lockstep-webhook",
    );
    await kubectl(
      "-n",
      "default",
      "delete",
      "rolebinding,role",
      "lockstep-agent-events",
      "lockstep-controller-events",
    );
    const { failures } = await watch.stop();
    expect(failures).toEqual([]);
    await namespaceGone();
    const admission = cp.kubeConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
    const left = [
      ...(await admission.listMutatingWebhookConfiguration()).items,
      ...(await admission.listValidatingAdmissionPolicy()).items,
      ...(await admission.listValidatingAdmissionPolicyBinding()).items,
    ].map((o) => o.metadata?.name ?? "");
    expect(left.filter((name) => name.startsWith("lockstep-"))).toEqual([]);
    expect(await podsNotRunning()).toEqual([]);
    expect(await profileOnEveryNode()).toEqual([]);
  }, 600_000);
});

const namespaceGone = () =>
  waitFor(
    `namespace ${LOCKSTEP_NAMESPACE} to be gone`,
    async () =>
      (await core.listNamespace()).items.some((n) => n.metadata?.name === LOCKSTEP_NAMESPACE)
        ? undefined
        : true,
    { timeoutMs: 120_000 },
  );

/** The names of every Lockstep pod (not being deleted). */
async function componentPodNames(): Promise<string[]> {
  const pods = await core.listNamespacedPod({ namespace: LOCKSTEP_NAMESPACE });
  return pods.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata?.name ?? "");
}
