// The controller (2 replicas, leader election) and the webhook (2 replicas) of deploy/, installed through
// deploy-overlays/test-local as pods on two real nodes, from the image `make image` builds, with deploy/'s
// agent's DaemonSet on both. Each real node has a loopback
// address of its own, which the kubelet reports as its hostNetwork pods' IP: the two replicas of each
// component listen on the same ports, each on its own pod IP.
//
// - Pod Security: deploy/'s Deployments as shipped pass "restricted" without a warning; the overlay's
//   pods break it only by the host network (docs/adr/0062-deploy-on-real-nodes.md says why they must).
// - One controller leads; deleting its pod hands the Lease over and status keeps converging.
// - The API server paused past the renew deadline: the leader exits, the kubelet restarts it, status
//   converges again.
// - The API server calls the webhook's pods through a loopback front that stands in for their Service (an
//   EndpointSlice cannot name a loopback address) and the pod comes back with its node affinity; with the
//   first node cordoned at install, so no replica runs there, guarded pods are still admitted.
// - Every write the controller and the webhook make here goes with the token the kubelet mounted, through
//   deploy/'s ValidatingAdmissionPolicies.
// - The scheduling guard with nothing but deploy/'s pods: a pod needing a profile no node has stays
//   Pending until the agents' pods install it, then runs under it.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageReference } from "../../scripts/image/build.ts";
import {
  GROUP,
  LOCKSTEP_NAMESPACE,
  SECCOMP_PROFILE_PLURAL,
  VERSION,
  WEBHOOK_CONFIGURATION_NAME,
} from "../../src/api/constants.ts";
import { localhostProfileFor, profileLabelKey } from "../../src/api/labels.ts";
import { seccompProfileDir, seccompProfileFileName } from "../../src/api/paths.ts";
import { kubeErrorMessage } from "../../src/kube/errors.ts";
import { applyYaml, FIELD_MANAGER } from "../harness/apply.ts";
import { ControlPlane, freePort, kubectlBinary, waitFor } from "../harness/controlplane.ts";
import {
  applyInOrder,
  componentPodsReady,
  componentSelector,
  kustomize,
  realNodesWithImage,
  renderLocalDeploy,
  startWebhookFront,
} from "../harness/deploy-local.ts";
import type { LoopbackService } from "../harness/loopback-service.ts";
import { applyProfile, nodeHoldsProfile, termGuardsProfile } from "../harness/profiles.ts";
import {
  nodeKubeletRoot,
  nodesDir,
  type RealNode,
  realNodePodSpec,
  sleepingSeccompPod,
} from "../harness/real-node.ts";

const run = promisify(execFile);
const root = join(import.meta.dirname, "../..");
const NODE_NAMES = ["node-a", "node-b"];
const LEASE = "lockstep-controller";
let cp: ControlPlane;
const nodes: RealNode[] = [];
let core: k8s.CoreV1Api;
let local: k8s.KubernetesObject[];
let webhookFront: LoopbackService;

type Workload = k8s.KubernetesObject & { spec?: { template?: { spec?: k8s.V1PodSpec } } };
const find = (docs: k8s.KubernetesObject[], kind: string, name: string): Workload => {
  const doc = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  if (!doc) throw new Error(`no ${kind} ${name}`);
  return doc;
};

const ALLOW_ALL = { defaultAction: "SCMP_ACT_ALLOW" };
/** Allows everything but mkdir, which fails with EPERM. */
const DENY_MKDIR = {
  defaultAction: "SCMP_ACT_ALLOW",
  syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
};

/** The profile's status once the controller has written it for the current generation. */
/**
 * Installed on `nodes` nodes. The count matters: "Installed" counts the nodes whose agent is ready, so
 * it may be reached while an agent pod is still starting, with the profile on one node of two.
 */
async function installed(name: string, nodes = NODE_NAMES.length, timeoutMs = 90_000): Promise<void> {
  const objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  await waitFor(
    `SeccompProfile ${name} to be Installed on ${nodes} nodes`,
    async () => {
      const obj = (await objects.getClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: SECCOMP_PROFILE_PLURAL,
        name,
      })) as {
        metadata?: { generation?: number };
        status?: { phase?: string; observedGeneration?: number; nodes?: { installed?: number } };
      };
      return (
        obj.status?.phase === "Installed" &&
        obj.status.observedGeneration === obj.metadata?.generation &&
        obj.status.nodes?.installed === nodes
      );
    },
    { timeoutMs },
  );
}

const componentPods = async (component: string) =>
  (
    await core.listNamespacedPod({
      namespace: LOCKSTEP_NAMESPACE,
      labelSelector: componentSelector(component),
    })
  ).items.filter((p) => !p.metadata?.deletionTimestamp);

/**
 * Creates a pod that sleeps under seccomp profile `profile` through the webhook, and checks the webhook
 * put the profile's requirement into every node-selector term.
 */
async function createGuardedPod(name: string, profile: string): Promise<k8s.V1Pod> {
  const pod = await core.createNamespacedPod({
    namespace: "default",
    body: sleepingSeccompPod(name, profile),
  });
  const terms =
    pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  expect(terms?.length).toBeGreaterThan(0);
  for (const term of terms ?? [])
    expect(termGuardsProfile(term, "seccomp", profile), JSON.stringify(term)).toBe(true);
  return pod;
}

/** Marks a Node (un)schedulable, as `kubectl cordon` / `uncordon` do. */
const setUnschedulable = (name: string, unschedulable: boolean) =>
  core.patchNode(
    { name, body: { spec: { unschedulable } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );

/** Both replicas of `component` Ready (one on each real node). */
const bothReady = (component: string) => componentPodsReady(cp.kubeConfig(), component, 2);

const leaseHolder = async () =>
  (
    await cp
      .kubeConfig()
      .makeApiClient(k8s.CoordinationV1Api)
      .readNamespacedLease({ name: LEASE, namespace: LOCKSTEP_NAMESPACE })
  ).spec?.holderIdentity ?? "";

/** The controller pod whose name the Lease's holder starts with (holder: `<pod name>_<uuid>`). */
const leaderPod = (pods: k8s.V1Pod[], holder: string) =>
  pods.find((p) => holder.startsWith(`${p.metadata?.name}_`));

/** A replica's /metrics, from its health port on its own pod IP (a loopback address). */
const isLeaderGauge = async (pod: k8s.V1Pod) => {
  const text = await (await fetch(`http://${pod.status?.podIP}:8081/metrics`)).text();
  return text.match(/^lockstep_controller_is_leader (\d)/m)?.[1];
};

/**
 * A copy of `doc` under a new name in `namespace`: a CREATE, which PodSecurity checks (an update that
 * leaves the pod template as it is is not checked again).
 */
const copyNamed = (doc: Workload, namespace: string): Workload => ({
  ...structuredClone(doc),
  metadata: { ...doc.metadata, name: `${doc.metadata?.name}-check`, namespace },
});

/** The API server's warnings for a server-side dry-run apply of `doc`, as kubectl prints them. */
async function dryRunWarnings(doc: k8s.KubernetesObject): Promise<string[]> {
  const file = join(cp.workDir, `dry-run-${doc.metadata?.namespace}-${doc.metadata?.name}.yaml`);
  await writeFile(file, k8s.dumpYaml(doc));
  const { stderr } = await run(kubectlBinary(), [
    `--kubeconfig=${cp.adminKubeconfigPath}`,
    "apply",
    "--server-side",
    "--dry-run=server",
    "--field-manager=dry-run-check",
    "-f",
    file,
  ]);
  return stderr
    .split("\n")
    .filter((line) => line.startsWith("Warning:"))
    .map((line) => line.replace(/^Warning: /, ""));
}

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  await realNodesWithImage(cp, NODE_NAMES, (node) => nodes.push(node));
  // The first node is cordoned while deploy/ is installed, so no webhook replica can start there (the
  // DaemonSet's agent still does): before the loopback front, a URL naming that node's address left the
  // webhook unreachable whenever the scheduler put both replicas elsewhere. Uncordoned in the first test.
  await setUnschedulable(NODE_NAMES[0] ?? "", true);
  webhookFront = await startWebhookFront(cp);
  local = await renderLocalDeploy(cp.workDir, {
    apiPort: Number(new URL(cp.server).port),
    nodesDir: nodesDir(cp),
    kubeletRootOf: (name) => nodeKubeletRoot(cp, name),
    agentHealthPort: await freePort(),
    webhookFront,
  });
  await applyInOrder(cp.kubeConfig(), local);
}, 300_000);

afterAll(async () => {
  await cp?.stop();
});

describe("the webhook with no replica on the first node", () => {
  it("admits a guarded pod through the loopback front, then gets its second replica once the node is uncordoned", async () => {
    const [first, second] = NODE_NAMES;
    const runningOn = await waitFor(
      "a webhook replica to be Ready",
      async () => {
        const ready = (await componentPods("webhook")).filter((p) =>
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return ready.length === 1 ? ready.map((p) => p.spec?.nodeName) : undefined;
      },
      { timeoutMs: 120_000 },
    );
    expect(runningOn).toEqual([second]);
    expect((await componentPods("webhook")).map((p) => p.spec?.nodeName)).not.toContain(first);
    await webhookFront.routesTo(1);
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "first-node-cordoned", ALLOW_ALL);
    await installed("first-node-cordoned", 2);
    await createGuardedPod("admitted-while-cordoned", "first-node-cordoned");
    const running = await waitFor("the pod admitted while cordoned to run", async () => {
      const p = await core.readNamespacedPod({ name: "admitted-while-cordoned", namespace: "default" });
      return p.status?.phase === "Running" ? p : undefined;
    });
    expect(running.spec?.nodeName).toBe(second);

    await setUnschedulable(first ?? "", false);
    await bothReady("webhook");
    await webhookFront.routesTo(2);
  }, 240_000);
});

describe("Pod Security of the controller and the webhook", () => {
  it("admits deploy/'s Deployments as shipped under restricted with no warning", async () => {
    const shipped = await kustomize(join(root, "deploy"));
    await core.createNamespace({
      body: {
        metadata: {
          name: "restricted-check",
          labels: {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
          },
        },
      },
    });
    for (const name of ["lockstep-controller", "lockstep-webhook"]) {
      // Only the namespace moves: PodSecurity checks a Deployment's pod template against the namespace's
      // levels and answers with warnings (it refuses Pods, not their controllers).
      expect(
        await dryRunWarnings(copyNamed(find(shipped, "Deployment", name), "restricted-check")),
        name,
      ).toEqual([]);
    }
  });

  it("finds in the overlay's pods no violation of restricted but the host network's", async () => {
    // lockstep-system warns at "restricted" (deploy/namespace.yaml).
    for (const [name, container, ports] of [
      ["lockstep-controller", "controller", "hostPort 8081"],
      ["lockstep-webhook", "webhook", "hostPorts 8082, 8443"],
    ] as const) {
      const deployment = find(local, "Deployment", name);
      expect(await dryRunWarnings(copyNamed(deployment, LOCKSTEP_NAMESPACE)), name).toEqual([
        'would violate PodSecurity "restricted:latest": host namespaces (hostNetwork=true)',
      ]);
      // The Pod its ReplicaSet creates: on the host network the API server sets each container port's
      // hostPort to it, which "restricted" (and "baseline") also refuse: a consequence of hostNetwork.
      const pod: Workload = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `${name}-check`, namespace: LOCKSTEP_NAMESPACE },
        spec: deployment.spec?.template?.spec,
      } as Workload;
      expect(await dryRunWarnings(pod), name).toEqual([
        `would violate PodSecurity "restricted:latest": host namespaces (hostNetwork=true), hostPort (container "${container}" uses ${ports})`,
      ]);
    }
  });
});

describe("the controller's pods", () => {
  it("run two replicas, one on each node at its own address, and exactly one holds the Lease", async () => {
    const pods = await bothReady("controller");
    expect(pods.map((p) => p.spec?.nodeName).sort()).toEqual(NODE_NAMES);
    for (const pod of pods) {
      const node = nodes.find((n) => n.name === pod.spec?.nodeName);
      expect(pod.status?.podIP).toBe(node?.address);
      expect(pod.spec?.containers[0]?.image).toBe(imageReference());
    }
    const holder = await waitFor("a controller to hold the Lease", async () =>
      leaderPod(pods, await leaseHolder()),
    );
    expect(await Promise.all(pods.map(isLeaderGauge))).toEqual(pods.map((p) => (p === holder ? "1" : "0")));
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "leader-first", ALLOW_ALL);
    await installed("leader-first");
  });

  it("has deploy/'s agent on both nodes, each writing into its own kubelet's seccomp root", async () => {
    const agents = await componentPods("agent");
    expect(agents.map((p) => p.spec?.nodeName).sort()).toEqual(NODE_NAMES);
    for (const node of nodes) {
      expect(agents.find((p) => p.spec?.nodeName === node.name)?.status?.podIP).toBe(node.address);
      expect(
        existsSync(join(seccompProfileDir(node.kubeletRoot), seccompProfileFileName("leader-first"))),
      ).toBe(true);
      expect(await nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "leader-first", node.name)).toBe(true);
    }
  });

  it("hands the Lease over when the leader's pod is deleted, and status keeps converging", async () => {
    const pods = await bothReady("controller");
    const leader = leaderPod(pods, await leaseHolder());
    const leaderName = leader?.metadata?.name ?? "";
    expect(leaderName).not.toBe("");
    await core.deleteNamespacedPod({ name: leaderName, namespace: LOCKSTEP_NAMESPACE });
    // The leader gives the Lease up as it stops, so another replica takes it at once, not after the lease
    // duration: the standby, or the pod the Deployment starts in its place if that one asks first.
    const holder = await waitFor(
      "another controller pod to take the Lease",
      async () => {
        const identity = await leaseHolder();
        return identity !== "" && !identity.startsWith(`${leaderName}_`) ? identity : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const others = (await componentPods("controller")).filter((p) => p.metadata?.name !== leaderName);
    expect(leaderPod(others, holder), holder).toBeDefined();
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "after-handover", ALLOW_ALL);
    await installed("after-handover");
    // The Deployment replaces the deleted pod.
    await bothReady("controller");
  });

  it("exits when the API server pauses past the renew deadline; the kubelet restarts it and status converges", async () => {
    const pods = await bothReady("controller");
    const leader = leaderPod(pods, await leaseHolder());
    const name = leader?.metadata?.name ?? "";
    const restartsBefore = leader?.status?.containerStatuses?.[0]?.restartCount ?? 0;
    const apiServer = cp.processes.find((p) => p.name === "kube-apiserver");
    if (!apiServer) throw new Error("no kube-apiserver process");
    // Stopped, not killed: every connection stays open and no request is answered, as when the API
    // server hangs or a network partition drops packets. 16 s: past the renew deadline (10 s) and a
    // retry period (2 s).
    process.kill(apiServer.pid, "SIGSTOP");
    let resumedAt: Date;
    try {
      await new Promise((r) => setTimeout(r, 16_000));
    } finally {
      resumedAt = new Date();
      process.kill(apiServer.pid, "SIGCONT");
    }
    const restarted = await waitFor(
      `the kubelet to restart ${name}`,
      async () => {
        const pod = await core.readNamespacedPod({ name, namespace: LOCKSTEP_NAMESPACE });
        const status = pod.status?.containerStatuses?.[0];
        return (status?.restartCount ?? 0) > restartsBefore ? status : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(restarted.lastState?.terminated?.exitCode).toBe(1);
    // It stepped down while the API server was still paused, at its renew deadline: not only once the
    // API server answered again and showed it a new holder (a renewal left unanswered must not keep it
    // leading). The runtime's timestamp is in whole seconds; the deadline falls 4-6 s before the resume.
    const exitedAt = new Date(restarted.lastState?.terminated?.finishedAt ?? 0);
    expect(resumedAt.getTime() - exitedAt.getTime()).toBeGreaterThanOrEqual(2_000);
    const previous = await core.readNamespacedPodLog({ name, namespace: LOCKSTEP_NAMESPACE, previous: true });
    expect(previous).toContain("lost the lease");
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "after-pause", ALLOW_ALL);
    await installed("after-pause");
    expect(leaderPod(await bothReady("controller"), await leaseHolder())).toBeDefined();
  }, 240_000);
});

describe("the webhook's pods", () => {
  it("are called by the API server through the loopback front, and add the profile's node affinity to a pod", async () => {
    const pods = await bothReady("webhook");
    expect(pods.map((p) => p.spec?.nodeName).sort()).toEqual(NODE_NAMES);
    const configuration = await cp
      .kubeConfig()
      .makeApiClient(k8s.AdmissionregistrationV1Api)
      .readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME });
    const clientConfig = configuration.webhooks?.[0]?.clientConfig;
    expect(clientConfig?.service).toBeUndefined();
    expect(clientConfig?.url).toBe(`https://${webhookFront.host}:${webhookFront.port}/mutate`);
    // Written by a webhook pod (--cert-mode=self), through lockstep-webhook-ca-bundle-only.
    expect(clientConfig?.caBundle).toBeTruthy();

    // On node-b only: the scheduler may place the pod there and nowhere else.
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "webhook-guarded", {
      ...ALLOW_ALL,
      nodeSelector: { "kubernetes.io/hostname": "node-b" },
    });
    await installed("webhook-guarded", 1);
    const pod = await createGuardedPod("guarded-by-webhook-pod", "webhook-guarded");
    const key = profileLabelKey("seccomp", "webhook-guarded");
    expect(pod.metadata?.labels?.[key]).toBeDefined();
    const running = await waitFor("the guarded pod to run", async () => {
      const p = await core.readNamespacedPod({ name: "guarded-by-webhook-pod", namespace: "default" });
      return p.status?.phase === "Running" ? p : undefined;
    });
    expect(running.spec?.nodeName).toBe("node-b");
    expect(await nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "webhook-guarded", "node-a")).toBe(
      false,
    );
  });

  it("cannot be reached through its Service here: an EndpointSlice may not name a loopback address", async () => {
    const [node] = nodes;
    const slice: k8s.V1EndpointSlice = {
      metadata: { name: "lockstep-webhook-loopback", namespace: LOCKSTEP_NAMESPACE },
      addressType: "IPv4",
      endpoints: [{ addresses: [node?.address ?? ""] }],
      ports: [{ name: "https", port: 8443 }],
    };
    const refused = await cp
      .kubeConfig()
      .makeApiClient(k8s.DiscoveryV1Api)
      .createNamespacedEndpointSlice({ namespace: LOCKSTEP_NAMESPACE, body: slice, dryRun: "All" })
      .then(
        () => "admitted",
        (error: unknown) => kubeErrorMessage(error),
      );
    expect(refused).toContain("may not be in the loopback range (127.0.0.0/8, ::1/128)");
  });
});

describe("the tokens deploy/'s admission policies check", () => {
  it("are the ones the kubelet mounted into the controller's and the webhook's pods", async () => {
    for (const component of ["controller", "webhook"]) {
      for (const pod of await componentPods(component)) {
        expect(pod.spec?.serviceAccountName).toBe(`lockstep-${component}`);
        // No kubeconfig, no token handed in: the projected service-account token is the only credential.
        expect(pod.spec?.volumes?.some((v) => v.projected?.sources?.some((s) => s.serviceAccountToken))).toBe(
          true,
        );
        expect(pod.spec?.containers[0]?.env?.some((e) => e.name === "KUBECONFIG")).toBe(false);
      }
    }
    // Their writes went through the policies keyed on those tokens' users: the controller's status
    // (lockstep-controller-finalizer-and-status) and the webhook's caBundle (lockstep-webhook-ca-bundle-only).
    const objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    const profile = (await objects.getClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: SECCOMP_PROFILE_PLURAL,
      name: "leader-first",
    })) as k8s.KubernetesObject;
    const statusWriters = (profile.metadata?.managedFields ?? []).filter((f) => f.subresource === "status");
    expect(statusWriters.length).toBeGreaterThan(0);
    const configuration = await cp
      .kubeConfig()
      .makeApiClient(k8s.AdmissionregistrationV1Api)
      .readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME });
    expect(statusWriters.every((f) => f.manager !== "test")).toBe(true);
    expect(configuration.metadata?.managedFields?.some((f) => f.manager !== FIELD_MANAGER)).toBe(true);
  });
});

describe("the scheduling guard with every part of deploy/ as pods", () => {
  it("keeps a pod off both nodes until the agents' pods install its profile, then runs it under it", async () => {
    const agentDaemonSet = find(local, "DaemonSet", "lockstep-agent");
    // The agents' pods leave the nodes for a while: the profile then exists and reaches no node.
    const away = structuredClone(agentDaemonSet);
    const spec = away.spec?.template?.spec;
    if (!spec) throw new Error("the agent's DaemonSet has no pod template");
    spec.nodeSelector = { ...spec.nodeSelector, "lockstep.test/no-such-node": "true" };
    await applyYaml(cp.kubeConfig(), k8s.dumpYaml(away));
    await waitFor(
      "the agents' pods to leave the nodes",
      async () => (await componentPods("agent")).length === 0,
    );
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "guarded-deny-mkdir", DENY_MKDIR);
    await core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "guarded-deny-mkdir" },
        spec: realNodePodSpec([
          {
            name: "app",
            command: ["sh", "-c", 'mkdir /tmp/x; echo "mkdir exit=$?"; exec sleep 3600'],
            securityContext: {
              seccompProfile: {
                type: "Localhost",
                localhostProfile: localhostProfileFor("seccomp", "guarded-deny-mkdir"),
              },
            },
          },
        ]),
      },
    });
    const refused = await waitFor("the scheduler to keep the pod off both nodes", async () => {
      const pod = await core.readNamespacedPod({ name: "guarded-deny-mkdir", namespace: "default" });
      return pod.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False")?.message;
    });
    expect(refused).toMatch(/0\/2 nodes are available: 2 node\(s\) didn't match Pod's node affinity/);

    // deploy/'s agents back: they install the profile and label their Nodes, and the pod follows.
    await applyYaml(cp.kubeConfig(), k8s.dumpYaml(agentDaemonSet));
    const log = await waitFor(
      "the guarded pod to run and log its mkdir",
      async () => {
        const text = await core
          .readNamespacedPodLog({ name: "guarded-deny-mkdir", namespace: "default" })
          .catch(() => "");
        return text.includes("mkdir exit=") ? text : undefined;
      },
      { timeoutMs: 120_000 },
    );
    expect(log).toContain("mkdir exit=1");
    expect(log).toContain("Operation not permitted");
  }, 240_000);
});
