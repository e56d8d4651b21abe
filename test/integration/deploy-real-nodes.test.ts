// deploy/ installed the way a user installs it, through deploy-overlays/test-local, onto a real node: the
// image `make image` builds, imported into the node's containerd, runs the agent as a DaemonSet pod with
// exactly deploy/'s privileges. It writes a profile into the real kubelet's seccomp root and labels its
// Node with the pod-bound token the kubelet mounted (the one the agent's ValidatingAdmissionPolicy
// checks), and a pod naming that profile then runs there under it.
//
// Last, the scheduling guard with that agent pod: a pod needing a profile its node lacks stays Pending
// until the agent's pod installs it there, then runs under it.
//
// Not yet here (docs/adr/0062-deploy-on-real-nodes.md says why): the controller and the webhook as pods
// (the webhook runs as a harness process for the guard).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageReference } from "../../scripts/image/build.ts";
import { SYNCED_REVISION_LABEL } from "../../src/api/constants.ts";
import { localhostProfileFor } from "../../src/api/labels.ts";
import { seccompProfileDir, seccompProfileFileName } from "../../src/api/paths.ts";
import { applyYaml } from "../harness/apply.ts";
import { ControlPlane, freePort, waitFor } from "../harness/controlplane.ts";
import {
  applyInOrder,
  kustomize,
  realNodesWithImage,
  renderLocalDeploy,
  TEST_OVERLAY,
  WEBHOOK_PORT,
} from "../harness/deploy-local.ts";
import { applyProfile, nodeHoldsProfile } from "../harness/profiles.ts";
import { nodeKubeletRoot, nodesDir, type RealNode, realNodePodSpec } from "../harness/real-node.ts";
import { installWebhook } from "../harness/webhook.ts";

const root = join(import.meta.dirname, "../..");
const NODE = "node-a";
const PROFILE = "deploy-deny-mkdir";
let cp: ControlPlane;
let node: RealNode;
let core: k8s.CoreV1Api;
/** The agent's DaemonSet as the overlay rendered it for this run. */
let agentDaemonSet: Obj;

type Obj = k8s.KubernetesObject & { spec?: { template?: { spec?: k8s.V1PodSpec } } };
const find = (docs: Obj[], kind: string, name: string) => {
  const doc = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  if (!doc) throw new Error(`no ${kind} ${name}`);
  return doc;
};
const podSpec = (doc: Obj): k8s.V1PodSpec => doc.spec?.template?.spec ?? { containers: [] };

/** The agent's part of deploy/ (plus the namespace and the CRDs): what this test installs. */
const agentPart = (doc: Obj) =>
  ["Namespace", "CustomResourceDefinition"].includes(doc.kind ?? "") ||
  (doc.metadata?.name ?? "").startsWith("lockstep-agent");

const applySeccompProfile = (name: string, spec: object) =>
  applyProfile(cp.kubeConfig(), "SeccompProfile", name, spec);

/** A profile that allows everything but mkdir, which fails with EPERM. */
const DENY_MKDIR = {
  defaultAction: "SCMP_ACT_ALLOW",
  syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
};

/** A pod on the host network that tries a mkdir under seccomp profile `profile` and logs the result. */
const createMkdirPod = (name: string, profile: string, extra: Partial<k8s.V1PodSpec> = {}) =>
  core.createNamespacedPod({
    namespace: "default",
    body: {
      metadata: { name },
      spec: {
        ...realNodePodSpec([
          {
            name: "app",
            command: ["sh", "-c", 'mkdir /tmp/x; echo "mkdir exit=$?"; exec sleep 3600'],
            securityContext: {
              seccompProfile: {
                type: "Localhost",
                localhostProfile: localhostProfileFor("seccomp", profile),
              },
            },
          },
        ]),
        ...extra,
      },
    },
  });

/** The log of a pod from createMkdirPod, once it has tried its mkdir. */
const mkdirLog = (name: string, timeoutMs: number) =>
  waitFor(
    `${name} to run and log its mkdir`,
    async () => {
      const text = await core.readNamespacedPodLog({ name, namespace: "default" }).catch(() => "");
      return text.includes("mkdir exit=") ? text : undefined;
    },
    { timeoutMs },
  );

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  const { nodes } = await realNodesWithImage(cp, [NODE]);
  [node] = nodes as [RealNode];
  const docs = await renderLocalDeploy(cp.workDir, {
    apiPort: Number(new URL(cp.server).port),
    nodesDir: nodesDir(cp),
    kubeletRootOf: (name) => nodeKubeletRoot(cp, name),
    agentHealthPort: await freePort(),
    // deploy/'s webhook is rendered, not applied (the webhook here is a harness process): no front needed.
    webhookFront: { host: "127.0.0.1", port: WEBHOOK_PORT },
  });
  await applyInOrder(cp.kubeConfig(), docs.filter(agentPart));
  agentDaemonSet = find(docs, "DaemonSet", "lockstep-agent");
}, 300_000);

afterAll(async () => {
  await cp?.stop();
});

/** Flags that say only where a component listens: the overlay may change these, and no other argument. */
const LISTEN_FLAG = /^--(host|health-host|health-port)=/;

describe("deploy-overlays/test-local", () => {
  it("changes only what this machine forces: nothing about privileges", async () => {
    const [deploy, local] = await Promise.all([kustomize(join(root, "deploy")), kustomize(TEST_OVERLAY)]);
    expect(local.map((d) => `${d.kind}/${d.metadata?.name}`)).toEqual(
      deploy.map((d) => `${d.kind}/${d.metadata?.name}`),
    );
    const compared: string[] = [];
    for (const doc of deploy) {
      const changed = find(local, doc.kind ?? "", doc.metadata?.name ?? "");
      if (podSpec(doc).containers.length === 0) {
        expect(changed, `${doc.kind}/${doc.metadata?.name}`).toEqual(doc);
        continue;
      }
      compared.push(`${doc.kind}/${doc.metadata?.name}`);
      const before = podSpec(doc);
      const after = podSpec(changed);
      expect(after.securityContext).toEqual(before.securityContext);
      expect(after.serviceAccountName).toEqual(before.serviceAccountName);
      expect(after.automountServiceAccountToken).toEqual(before.automountServiceAccountToken);
      expect(after.volumes).toEqual(before.volumes);
      const unchanged = (c: k8s.V1Container) => [
        c.image,
        c.command,
        c.args?.filter((a) => !LISTEN_FLAG.test(a)),
        c.securityContext,
        c.volumeMounts,
        c.resources,
      ];
      expect(after.containers.map(unchanged)).toEqual(before.containers.map(unchanged));
    }
    expect(compared.sort()).toEqual([
      "DaemonSet/lockstep-agent",
      "Deployment/lockstep-controller",
      "Deployment/lockstep-webhook",
    ]);
    for (const [kind, name] of [
      ["DaemonSet", "lockstep-agent"],
      ["Deployment", "lockstep-controller"],
      ["Deployment", "lockstep-webhook"],
    ] as const) {
      const spec = podSpec(find(local, kind, name));
      expect(spec.hostNetwork, name).toBe(true);
      expect(spec.containers[0]?.imagePullPolicy, name).toBe("Never");
      expect(spec.containers[0]?.env, name).toContainEqual({
        name: "KUBERNETES_SERVICE_HOST",
        value: "127.0.0.1",
      });
    }
    // Every component listens on its pod's IP (each real node's own loopback address).
    for (const [kind, name] of [
      ["DaemonSet", "lockstep-agent"],
      ["Deployment", "lockstep-controller"],
      ["Deployment", "lockstep-webhook"],
    ] as const) {
      const container = podSpec(find(local, kind, name)).containers[0];
      expect(container?.env, name).toContainEqual({
        name: "POD_IP",
        valueFrom: { fieldRef: { fieldPath: "status.podIP" } },
      });
      expect(container?.args, name).toContain("--health-host=$(POD_IP)");
    }
    const webhook = podSpec(find(local, "Deployment", "lockstep-webhook")).containers[0];
    expect(webhook?.args).toContain("--host=$(POD_IP)");
    expect(webhook?.args?.filter((a) => a.startsWith("--health-port="))).toEqual(["--health-port=8082"]);
    expect(webhook?.ports?.find((p) => p.name === "health")?.containerPort).toBe(8082);
  });
});

describe("deploy/ on a real node", () => {
  it("runs the agent as a DaemonSet pod from the image make image builds, with deploy/'s privileges", async () => {
    const pod = await waitFor(
      "the agent's pod to be Ready",
      async () => {
        const list = await core.listNamespacedPod({
          namespace: "lockstep-system",
          labelSelector: "app.kubernetes.io/component=agent",
        });
        const ready = list.items.find((p) =>
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return ready;
      },
      { timeoutMs: 120_000 },
    );
    expect(pod.spec?.nodeName).toBe(NODE);
    expect(pod.spec?.containers[0]?.image).toBe(imageReference());
    expect(pod.spec?.containers[0]?.securityContext?.capabilities).toEqual({
      drop: ["ALL"],
      add: ["MAC_ADMIN", "AUDIT_READ"],
    });
    expect(pod.spec?.containers[0]?.securityContext?.privileged).toBe(false);
    // The kubelet mounted the service account's pod-bound token: the agent ran on it, nothing handed in.
    expect(pod.spec?.volumes?.some((v) => v.projected?.sources?.some((s) => s.serviceAccountToken))).toBe(
      true,
    );
  });

  it("installs a profile into the real kubelet's seccomp root and labels its Node through the admission policy", async () => {
    await applySeccompProfile(PROFILE, DENY_MKDIR);
    const file = join(seccompProfileDir(node.kubeletRoot), seccompProfileFileName(PROFILE));
    await waitFor(`${file} to be written by the agent's pod`, async () => existsSync(file), {
      timeoutMs: 60_000,
    });
    expect(JSON.parse(readFileSync(file, "utf8")).defaultAction).toBe("SCMP_ACT_ALLOW");
    // The Node's labels say so, as the scheduler reads them (the agent's revision label, ADR 0024),
    // written with the pod-bound token the kubelet mounted, through the admission policy.
    await waitFor(
      `Node ${NODE} to hold ${PROFILE} by its labels`,
      () => nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", PROFILE, NODE),
      { timeoutMs: 60_000 },
    );
    const labels = (await core.readNode({ name: NODE })).metadata?.labels ?? {};
    expect(labels[SYNCED_REVISION_LABEL.seccomp]).toMatch(/^\d+$/);
    // The agent's pod wrote the profile and nothing else but its ownership record (docs/adr/0023).
    expect(readdirSync(seccompProfileDir(node.kubeletRoot)).filter((f) => !f.startsWith("."))).toEqual([
      seccompProfileFileName(PROFILE),
    ]);
  });

  it("runs a pod under that profile on the node: the kernel refuses the denied call", async () => {
    await createMkdirPod("uses-deploy-profile", PROFILE, { nodeName: NODE });
    const log = await mkdirLog("uses-deploy-profile", 90_000);
    expect(log).toContain("mkdir exit=1");
    expect(log).toContain("Operation not permitted");
  });
});

/** The agent's DaemonSet with one grant taken out of its manifest. */
function without(grant: "runAsUser" | "hostPath"): Obj {
  const copy = structuredClone(agentDaemonSet);
  const spec = podSpec(copy);
  const container = spec.containers[0];
  if (!container) throw new Error("the agent's DaemonSet has no container");
  if (grant === "runAsUser") delete container.securityContext?.runAsUser;
  else {
    spec.volumes = spec.volumes?.filter((v) => v.name !== "seccomp-lockstep");
    container.volumeMounts = container.volumeMounts?.filter((m) => m.name !== "seccomp-lockstep");
  }
  return copy;
}

/** The agent's log once a pod that `matches` runs (the current or the crashed container's). */
async function agentLogMatching(matches: (pod: k8s.V1Pod) => boolean, pattern: RegExp): Promise<string> {
  let seen = "no agent pod";
  try {
    return await waitFor(
      `the agent's pod to log ${pattern}`,
      async () => {
        const pods = await core.listNamespacedPod({
          namespace: "lockstep-system",
          labelSelector: "app.kubernetes.io/component=agent",
        });
        seen = "";
        for (const pod of pods.items.filter((p) => !p.metadata?.deletionTimestamp && matches(p)))
          for (const previous of [false, true]) {
            const name = pod.metadata?.name ?? "";
            const text = await core
              .readNamespacedPodLog({ name, namespace: "lockstep-system", previous })
              .catch(() => "");
            if (pattern.test(text)) return text;
            seen += `${name} ${JSON.stringify(pod.status?.containerStatuses?.[0]?.state)} previous=${previous}:\n${text.slice(-1500)}\n`;
          }
        return undefined;
      },
      { timeoutMs: 90_000 },
    );
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${seen}`);
  }
}

// Each grant deploy/ gives the agent, taken away from the manifest, keeps a profile off the node: so each
// is needed. (CAP_MAC_ADMIN, securityfs and appArmorProfile Unconfined serve AppArmor, which these
// kernels lack: they cannot be shown needed here; docs/adr/0062-deploy-on-real-nodes.md. CAP_AUDIT_READ,
// the host's /proc and containerd's bundles serve the audit reader, which runs only while a profile logs
// calls: test/integration/audit-reader.test.ts shows the reader refused without CAP_AUDIT_READ.)
describe("each grant of the agent's DaemonSet is needed", () => {
  it.each([
    {
      grant: "runAsUser" as const,
      why: "root: the kubelet's seccomp folder on the node is root's",
      runs: (pod: k8s.V1Pod) => pod.spec?.containers[0]?.securityContext?.runAsUser === undefined,
      error: /EACCES|permission denied/i,
    },
    {
      grant: "hostPath" as const,
      why: "the hostPath of the kubelet's seccomp folder: without it the folder is not in the agent's read-only root, nor can be made there",
      runs: (pod: k8s.V1Pod) => !pod.spec?.volumes?.some((v) => v.name === "seccomp-lockstep"),
      error: /(EROFS|ENOENT)[^"]*mkdir '\/var\/lib[^"]*","msg":"could not start"/,
    },
  ])("without $grant ($why), no profile reaches the node", async ({ grant, runs, error }) => {
    const profile = `without-${grant.toLowerCase()}`;
    try {
      await applyYaml(cp.kubeConfig(), k8s.dumpYaml(without(grant)));
      // The profile only once every agent pod is one without the grant: a pod of the previous manifest,
      // still terminating, would install it.
      await waitFor(`every agent pod to run without ${grant}`, async () => {
        const pods = await core.listNamespacedPod({
          namespace: "lockstep-system",
          labelSelector: "app.kubernetes.io/component=agent",
        });
        return pods.items.length > 0 && pods.items.every(runs);
      });
      await applySeccompProfile(profile, { defaultAction: "SCMP_ACT_ALLOW" });
      const log = await agentLogMatching(runs, error);
      expect(log).toMatch(error);
      expect(existsSync(join(seccompProfileDir(node.kubeletRoot), seccompProfileFileName(profile)))).toBe(
        false,
      );
      expect(await nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", profile, NODE)).toBe(false);
    } finally {
      // deploy/'s manifest again: the next case starts from an agent with every grant.
      await applyYaml(cp.kubeConfig(), k8s.dumpYaml(agentDaemonSet));
      await cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi).deleteClusterCustomObject({
        group: "lockstep.dev",
        version: "v1alpha1",
        plural: "seccompprofiles",
        name: profile,
      });
    }
  });
});

describe("the scheduling guard, with deploy/'s agent as a pod", () => {
  it("keeps a pod off the node until the agent's pod installs its profile there, then runs it under it", async () => {
    const guarded = "guarded-deny-mkdir";
    await installWebhook(cp);
    const listAgents = () =>
      core.listNamespacedPod({
        namespace: "lockstep-system",
        labelSelector: "app.kubernetes.io/component=agent",
      });
    // The agent's pods leave the node for a while: the profile then exists and reaches no node.
    const away = structuredClone(agentDaemonSet);
    podSpec(away).nodeSelector = { ...podSpec(away).nodeSelector, "lockstep.test/no-such-node": "true" };
    await applyYaml(cp.kubeConfig(), k8s.dumpYaml(away));
    await waitFor("the agent's pod to leave the node", async () => (await listAgents()).items.length === 0);
    await applySeccompProfile(guarded, DENY_MKDIR);
    await createMkdirPod("guarded", guarded);
    const refused = await waitFor("the scheduler to keep the pod off the node", async () => {
      const pod = await core.readNamespacedPod({ name: "guarded", namespace: "default" });
      return pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False")?.message;
    });
    expect(refused).toMatch(/node affinity/);
    expect(existsSync(join(seccompProfileDir(node.kubeletRoot), seccompProfileFileName(guarded)))).toBe(
      false,
    );

    // deploy/'s agent back on the node: it installs the profile, and the pod follows.
    await applyYaml(cp.kubeConfig(), k8s.dumpYaml(agentDaemonSet));
    const log = await mkdirLog("guarded", 120_000);
    expect(log).toContain("mkdir exit=1");
    expect((await core.readNamespacedPod({ name: "guarded", namespace: "default" })).spec?.nodeName).toBe(
      NODE,
    );
  }, 240_000);
});
