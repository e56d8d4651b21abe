// `make demo`: the whole of Lockstep on one machine, installed the way a user installs it. A real control
// plane and three real nodes (a kubelet and containerd each, on a loopback address of its own); the image
// `make image` builds, imported into each node's containerd; deploy/ applied through
// deploy-overlays/test-local, so the agent runs as a DaemonSet pod on every node, the controller and the
// webhook as two pods each (docs/adr/0062-deploy-on-real-nodes.md). Then the examples in examples/ and a
// seccomp-only Deployment whose pods really run. The host's kernel has no AppArmor: where User-Mode Linux is
// installed (tools/prerequisites.sh installs it), a fourth node runs in a guest kernel that has it
// (test/harness/apparmor-node.ts), and the AppArmor example's pods run there and only there; without it, they
// are kept off every node and the demo says why. Last, a busybox Deployment is recorded by a ProfileRecording
// from the kernel's audit records and run again under the profile it wrote (demo-recording.ts). It keeps
// running for kubectl until Ctrl-C.
import { cpSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { LOCKSTEP_NAMESPACE } from "../../src/api/constants.ts";
import { seccompProfileDir } from "../../src/api/paths.ts";
import { type AppArmorNode, addAppArmorNode } from "../harness/apparmor-node.ts";
import { applyYaml } from "../harness/apply.ts";
import { ControlPlane, freePort, kubectlBinary, waitFor } from "../harness/controlplane.ts";
import {
  applyInOrder,
  componentPodsReady,
  realNodesWithImage,
  renderLocalDeploy,
  startWebhookFront,
} from "../harness/deploy-local.ts";
import { BUSYBOX_IMAGE } from "../harness/images.ts";
import { nodeKubeletRoot, nodesDir, realNodePodSpec } from "../harness/real-node.ts";
import { UML_KERNEL } from "../harness/uml.ts";
import { demoFailureCause } from "./demo-diagnosis.ts";
import { demoRecording, RECORDED_PROFILE, RECORDING_NAMESPACE } from "./demo-recording.ts";

const repo = join(import.meta.dirname, "../..");
const started = Date.now();
const step = (text: string) =>
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${text}\n`);

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("   ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** Why this machine cannot run the AppArmor node, or undefined when it can. */
function appArmorNodeUnavailable(): string | undefined {
  if (!existsSync(UML_KERNEL))
    return `${UML_KERNEL} is missing (tools/prerequisites.sh installs Debian's user-mode-linux, as root)`;
  if (process.getuid?.() !== 0) return "a User-Mode Linux node needs root (a PID namespace of its own)";
  return undefined;
}

/** The AppArmor node, where this machine can run one (the image imported there too). */
async function startAppArmorNode(archive: string): Promise<AppArmorNode | undefined> {
  const unavailable = appArmorNodeUnavailable();
  if (unavailable) {
    step(`no AppArmor node: ${unavailable}`);
    return undefined;
  }
  const node = await addAppArmorNode(cp, APPARMOR_NODE, {
    kubeletRoot: nodeKubeletRoot(cp, APPARMOR_NODE),
    images: [archive],
  });
  step(`${APPARMOR_NODE} Ready: kubelet and containerd in a User-Mode Linux guest whose kernel has AppArmor`);
  return node;
}

/**
 * examples/deployment.yaml as this machine can run it: no registry (the nodes' own busybox image, never
 * pulled) and no pod network (the host network, docs/adr/0050), so one replica (several would share httpd's
 * port on the one AppArmor node). Its profiles, securityContext and command are the example's own.
 */
function runnableHere(file: string): k8s.V1Deployment {
  const deployment = k8s.loadYaml<k8s.V1Deployment>(readFileSync(file, "utf8"));
  const spec = deployment.spec?.template.spec;
  if (!deployment.spec || !spec) throw new Error(`${file} has no pod template`);
  deployment.spec.replicas = 1;
  spec.hostNetwork = true;
  for (const container of spec.containers) {
    container.image = BUSYBOX_IMAGE;
    container.imagePullPolicy = "Never";
  }
  return deployment;
}

interface WebOutcome {
  explanation: string[];
}

/** The web pod Running on the AppArmor node, confined by web-readonly as the guest kernel lists it. */
async function webPodRunning(node: AppArmorNode): Promise<WebOutcome> {
  const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  const pod = await waitFor(
    `the web pod to run on ${node.name}`,
    async () => {
      const list = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=web" });
      return list.items.find((p) => p.status?.phase === "Running");
    },
    { timeoutMs: 180_000 },
  );
  const loaded = node.kernelProfiles().filter((p) => p.startsWith("lockstep."));
  return {
    explanation: [
      `The web pods need AppArmor profile web-readonly as well: only ${node.name}'s kernel has AppArmor (a`,
      "User-Mode Linux guest), its agent pod loaded the profile there, and the webhook's node affinity put",
      `${pod.metadata?.name} on ${pod.spec?.nodeName} and nowhere else. ${node.name}'s kernel lists:`,
      ...loaded.map((line) => `  ${line}`),
    ],
  };
}

/** Without an AppArmor node, the web pods stay Pending: the scheduler's reason. */
async function webPodsKeptOff(): Promise<WebOutcome> {
  const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  const unschedulable = await waitFor(
    "the scheduler to keep the web pods off every node",
    async () => {
      const list = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=web" });
      const reasons = list.items.map(
        (p) => p.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False")?.message,
      );
      return list.items.length > 0 && reasons.every(Boolean) ? reasons[0] : undefined;
    },
    { timeoutMs: 60_000 },
  );
  return {
    explanation: [
      "The web pods also need AppArmor profile web-readonly, and these nodes' kernels have no AppArmor",
      "(lockstep.dev/apparmor=unavailable): the profile is Pending 0/0 (reason AppArmorUnavailable), no node",
      "holds it, and the webhook's node affinity keeps the pods Pending instead of failing with",
      `CreateContainerError (no AppArmor node here: ${appArmorNodeUnavailable()}). The scheduler says:`,
      `  ${unschedulable}`,
    ],
  };
}

const APPARMOR_NODE = "node-aa";

step("starting etcd, kube-apiserver, kube-scheduler and kube-controller-manager ...");
const cp = await ControlPlane.start();
let stopping = false;
const stop = async (code = 0) => {
  if (stopping) return;
  stopping = true;
  process.stdout.write("\nstopping every process the demo started and removing its folder ...\n");
  await cp.stop();
  process.exit(code);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());

try {
  const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  const apps = cp.kubeConfig().makeApiClient(k8s.AppsV1Api);
  step("building the image the Dockerfile describes (make image) ...");
  // The AppArmor node starts beside the host nodes: most of its start is importing the image in its guest.
  const { nodes, alongside: appArmorNode } = await realNodesWithImage(
    cp,
    ["node-1", "node-2", "node-3"],
    (node) => step(`${node.name} Ready: kubelet and containerd on ${node.address}, the image imported`),
    (image) => startAppArmorNode(image.archive),
  );
  const [firstNode] = nodes;
  if (!firstNode) throw new Error("no real node");
  // The webhook's replicas run wherever the scheduler puts them; the API server reaches them through one
  // loopback address in front of the Ready ones (a Service's job, which no Service can do here).
  const webhookFront = await startWebhookFront(cp);
  const docs = await renderLocalDeploy(cp.workDir, {
    apiPort: Number(new URL(cp.server).port),
    nodesDir: nodesDir(cp),
    kubeletRootOf: (name) => nodeKubeletRoot(cp, name),
    agentHealthPort: await freePort(),
    webhookFront,
    guestNodes: appArmorNode ? [appArmorNode.name] : [],
  });
  await applyInOrder(cp.kubeConfig(), docs);
  step("applied deploy/ through deploy-overlays/test-local (kubectl apply --server-side -k)");
  for (const [component, count] of [
    ["agent", nodes.length + (appArmorNode ? 1 : 0)],
    ["controller", 2],
    ["webhook", 2],
  ] as const) {
    await componentPodsReady(cp.kubeConfig(), component, count);
    step(`${component}: ${count} pod${count > 1 ? "s" : ""} Ready`);
  }
  await webhookFront.routesTo(2);

  // Profiles first, workloads once the profiles are on their nodes (the webhook would also let them
  // wait in Pending; applying them after keeps the demo's output easy to read).
  const examples = readdirSync(join(repo, "examples")).filter((f) => f.endsWith(".yaml"));
  const workloads = ["deployment.yaml"];
  // The recording example is the recording step's (for its own namespace and workload: see demoRecording).
  const recordingExample = "profile-recording.yaml";
  for (const file of examples.filter((f) => !workloads.includes(f) && f !== recordingExample)) {
    await cp.applyFile(join(repo, "examples", file));
    step(`applied examples/${file}`);
  }
  const profileTables = () =>
    Promise.all([
      cp.getTable("/apis/lockstep.dev/v1alpha1/seccompprofiles"),
      cp.getTable("/apis/lockstep.dev/v1alpha1/apparmorprofiles"),
    ]);
  await waitFor(
    "every seccomp profile to be Installed",
    async () => {
      const [seccomp] = await profileTables();
      return seccomp.rows.length > 0 && seccomp.rows.every((r) => r[1] === "Installed");
    },
    { timeoutMs: 60_000 },
  );
  step("every seccomp profile is Installed on its nodes");
  for (const file of workloads) {
    if (appArmorNode)
      await applyYaml(cp.kubeConfig(), k8s.dumpYaml(runnableHere(join(repo, "examples", file))));
    else await cp.applyFile(join(repo, "examples", file));
    step(`applied examples/${file}${appArmorNode ? " (made runnable here: see runnableHere)" : ""}`);
  }
  // A workload that needs only seccomp: it runs on the real nodes, and its log shows the kernel refusing
  // the calls hardened-default denies. Real-node pods use the host network (docs/adr/0050).
  const hardenedLabels = { app: "hardened" };
  await apps.createNamespacedDeployment({
    namespace: "default",
    body: {
      metadata: { name: "hardened" },
      spec: {
        replicas: 3,
        selector: { matchLabels: hardenedLabels },
        template: {
          metadata: { labels: hardenedLabels },
          spec: realNodePodSpec([
            {
              name: "app",
              command: ["sh", "-c", 'mkdir /tmp/cache; echo "mkdir exit=$?"; exec sleep 86400'],
              securityContext: {
                seccompProfile: { type: "Localhost", localhostProfile: "lockstep/hardened-default.json" },
              },
            },
          ]),
        },
      },
    },
  });
  step("created Deployment hardened (3 replicas, seccomp profile hardened-default only)");
  const hardened = await waitFor(
    "the hardened pods to run",
    async () => {
      const list = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=hardened" });
      return list.items.length === 3 && list.items.every((p) => p.status?.phase === "Running")
        ? list.items
        : undefined;
    },
    { timeoutMs: 120_000 },
  );
  const web = appArmorNode ? await webPodRunning(appArmorNode) : await webPodsKeptOff();
  const firstHardened = hardened[0]?.metadata?.name ?? "";
  const hardenedLog = await waitFor(`${firstHardened} to log`, async () => {
    const text = await core.readNamespacedPodLog({ name: firstHardened, namespace: "default" });
    return text.includes("mkdir exit=") ? text : undefined;
  });
  // Issue 27 point 4: a workload recorded where it runs, then run under what was recorded. A failure here
  // is printed with where to look, and the rest of the demo goes on.
  const recording = await demoRecording(
    cp.kubeConfig(),
    join(repo, "examples", recordingExample),
    firstNode.name,
    step,
  );
  const [seccomp, appArmor] = await profileTables();
  const podTable = await cp.getTable("/api/v1/namespaces/default/pods", { wide: true });
  const lockstepPods = await cp.getTable(`/api/v1/namespaces/${LOCKSTEP_NAMESPACE}/pods`, { wide: true });
  step("everything is in place\n");

  const rows = (kind: string, t: { rows: string[][] }) =>
    t.rows.map((r) => [`${kind}/${r[0]}`, ...r.slice(1)]);
  process.stdout.write("$ kubectl get seccompprofiles,apparmorprofiles\n");
  process.stdout.write(
    `${table(["NAME", "STATUS", "READY", "PROFILE", "AGE"], [...rows("seccompprofile.lockstep.dev", seccomp), ...rows("apparmorprofile.lockstep.dev", appArmor)])}\n\n`,
  );
  process.stdout.write(`$ kubectl -n ${LOCKSTEP_NAMESPACE} get pods -o wide\n`);
  process.stdout.write(`${table(lockstepPods.columns, lockstepPods.rows)}\n\n`);
  process.stdout.write("$ kubectl get pods -o wide\n");
  process.stdout.write(`${table(podTable.columns, podTable.rows)}\n\n`);
  process.stdout.write(`$ kubectl logs ${firstHardened}\n${hardenedLog.trimEnd()}\n\n`);
  process.stdout.write(
    [
      "The hardened pods run on real nodes with seccomp profile hardened-default, which the agents' pods wrote",
      "into each kubelet's seccomp root: the kernel refuses the mkdir the profile denies (the log above).",
      ...web.explanation,
      ...recording.explanation,
      "",
      "Go on with kubectl (the one built with the control plane, the same release as the API server):",
      `  export KUBECONFIG=${cp.adminKubeconfigPath} PATH=${dirname(kubectlBinary())}:$PATH`,
      "  kubectl get lockstep                       # both profile kinds",
      "  kubectl get nodes --show-labels            # the labels the agents keep in step with their disks",
      "  kubectl describe seccompprofile strict-sleeper",
      "  kubectl get profilerecordings -A          # the recording: phase, pods, nodes, syscalls",
      `  kubectl describe seccompprofile ${RECORDED_PROFILE}   # what it recorded, and from where`,
      `  kubectl -n ${RECORDING_NAMESPACE} get pods -o wide`,
      `  ls ${seccompProfileDir(firstNode.kubeletRoot)}      # the files node-1's agent wrote`,
      "",
      `Logs of every process: ${cp.workDir}/*.log, and ${cp.workDir}/nodes/*/{kubelet,containerd}.log`,
      "Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
} catch (error) {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  // Stopping removes the control plane's folder and the nodes' (nothing may be left behind on the
  // machine), so the logs this failure points to are copied out of it first, into the checkout.
  const kept = join(repo, ".tmp", `demo-logs-${new Date().toISOString().replaceAll(":", "-")}`);
  const logs = (dir: string) =>
    readdirSync(dir)
      .filter((f) => f.endsWith(".log"))
      .map((f) => join(dir, f));
  const nodesDir = join(cp.workDir, "nodes");
  const nodeDirs = existsSync(nodesDir) ? readdirSync(nodesDir).map((n) => join(nodesDir, n)) : [];
  const keptLogs = [cp.workDir, ...nodeDirs].flatMap(logs);
  for (const log of keptLogs) cpSync(log, join(kept, relative(cp.workDir, log)), { recursive: true });
  const cause = demoFailureCause(
    keptLogs.map((log) => ({ file: relative(cp.workDir, log), text: readFileSync(log, "utf8") })),
  );
  if (cause) process.stderr.write(`reason found in the logs: ${cause}\n`);
  process.stderr.write(
    `logs kept in ${relative(process.cwd(), kept)}/ (*.log, nodes/*/{kubelet,containerd}.log)\n`,
  );
  await stop(1);
}
