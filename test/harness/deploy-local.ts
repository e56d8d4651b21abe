// deploy/ rendered through deploy-overlays/test-local for one run of the harness: a per-run kustomization
// in the control plane's folder adds on top of the overlay what only this run knows (the API server's
// port, the nodes' kubelet roots, a free health port, the webhook's address).
// Rendered by `kubectl kustomize`, as a user's `kubectl apply -k` would; applied with the harness's
// server-side apply.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { type BuiltImage, bootstrappedNodeDir, buildImage } from "../../scripts/image/build.ts";
import { LOCKSTEP_NAMESPACE } from "../../src/api/constants.ts";
import { CRI_BUNDLES, seccompProfileDir } from "../../src/api/paths.ts";
import { applyYaml } from "./apply.ts";
import { type ControlPlane, kubectlBinary, waitFor } from "./controlplane.ts";
import { LoopbackService, podEndpoints } from "./loopback-service.ts";
import { addRealNode, CONTAINERD_STATE_IN_NODE, type RealNode } from "./real-node.ts";

const run = promisify(execFile);
const repo = join(import.meta.dirname, "../..");
export const TEST_OVERLAY = join(repo, "deploy-overlays/test-local");
/** deploy/'s webhook port (its `--port`, which the patch below tests): where the front forwards to. */
export const WEBHOOK_PORT = 8443;

/** The paths of deploy/'s MutatingWebhookConfiguration's webhooks, in its order (the pods webhook first). */
export function webhookPaths(): string[] {
  const config = k8s.loadYaml<k8s.V1MutatingWebhookConfiguration>(
    readFileSync(join(repo, "deploy/webhook/mutating-webhook.yaml"), "utf8"),
  );
  return (config.webhooks ?? []).map((w, i) => {
    const path = w.clientConfig.service?.path;
    if (!path)
      throw new Error(`deploy/webhook/mutating-webhook.yaml: webhook ${i} (${w.name}) has no service path`);
    return path;
  });
}

export interface LocalDeployOptions {
  /** The API server's port on 127.0.0.1. */
  apiPort: number;
  /**
   * The folder holding every real node's folder, and a node's kubelet root by its name. A DaemonSet has
   * one hostPath for every node, and each node of this machine has its own kubelet root: the hostPath
   * names the folder above them, and the mount takes the node's own seccomp folder out of it by the
   * node's name (subPathExpr, from the NODE_NAME deploy/ already sets from the downward API).
   */
  nodesDir: string;
  kubeletRootOf: (node: string) => string;
  /** The agent's health port: its pod shares the machine's network namespace with everything else. */
  agentHealthPort: number;
  /**
   * Where the webhook configuration's URL points: a LoopbackService (test/harness/loopback-service.ts)
   * that forwards to whichever webhook replica is Ready, on whichever node. The API server would send a
   * Service reference to the Service's ClusterIP (its default resolver), and an EndpointSlice cannot name
   * a loopback address (validation refuses it).
   */
  webhookFront: { host: string; port: number };
  /**
   * Nodes in a guest kernel (apparmor-node.ts), whose pods the API server cannot reach: the webhook's
   * replicas stay off them. Every other component only calls the API server, which works from there.
   */
  guestNodes?: readonly string[];
}

/** The per-run kustomization: the overlay plus this run's values, each patch checking what it replaces. */
export function runKustomization(dir: string, options: LocalDeployOptions): string {
  const apiPort = { name: "KUBERNETES_SERVICE_PORT", value: String(options.apiPort) };
  const agent = [
    { op: "test", path: "/spec/template/spec/volumes/0/name", value: "seccomp-lockstep" },
    { op: "replace", path: "/spec/template/spec/volumes/0/hostPath/path", value: options.nodesDir },
    { op: "test", path: "/spec/template/spec/containers/0/volumeMounts/0/name", value: "seccomp-lockstep" },
    {
      op: "add",
      path: "/spec/template/spec/containers/0/volumeMounts/0/subPathExpr",
      value: relative(options.nodesDir, seccompProfileDir(options.kubeletRootOf("$(NODE_NAME)"))),
    },
    { op: "test", path: "/spec/template/spec/containers/0/ports/0/name", value: "health" },
    {
      op: "replace",
      path: "/spec/template/spec/containers/0/ports/0/containerPort",
      value: options.agentHealthPort,
    },
    { op: "test", path: "/spec/template/spec/containers/0/args/1", value: "--health-port=8081" },
    {
      op: "replace",
      path: "/spec/template/spec/containers/0/args/1",
      value: `--health-port=${options.agentHealthPort}`,
    },
    { op: "add", path: "/spec/template/spec/containers/0/env/-", value: apiPort },
    // containerd's CRI bundles: each node's own, under its folder, as the kubelet roots above.
    { op: "test", path: "/spec/template/spec/volumes/4/name", value: "cri-bundles" },
    { op: "replace", path: "/spec/template/spec/volumes/4/hostPath/path", value: options.nodesDir },
    { op: "test", path: "/spec/template/spec/containers/0/volumeMounts/4/name", value: "cri-bundles" },
    {
      op: "add",
      path: "/spec/template/spec/containers/0/volumeMounts/4/subPathExpr",
      value: join("$(NODE_NAME)", CONTAINERD_STATE_IN_NODE, CRI_BUNDLES),
    },
  ];
  const controller = [{ op: "add", path: "/spec/template/spec/containers/0/env/-", value: apiPort }];
  const webhook: object[] = [
    { op: "add", path: "/spec/template/spec/containers/0/env/-", value: apiPort },
    { op: "test", path: "/spec/template/spec/containers/0/args/0", value: `--port=${WEBHOOK_PORT}` },
    // Every replica issues the shared certificate for the one address the URL names: TLS passes through
    // the front untouched, so the API server checks the replica's certificate against the front's address.
    {
      op: "add",
      path: "/spec/template/spec/containers/0/args/-",
      value: `--extra-san=${options.webhookFront.host}`,
    },
  ];
  if (options.guestNodes?.length)
    webhook.push({
      op: "add",
      path: "/spec/template/spec/affinity",
      value: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              {
                matchExpressions: [
                  { key: "kubernetes.io/hostname", operator: "NotIn", values: [...options.guestNodes] },
                ],
              },
            ],
          },
        },
      },
    });
  // Every webhook of the configuration (pods, bound pods, recorded pods), each to its own path on the
  // front: one left on the Service would fail its pods' creation (failurePolicy Fail), as no Service
  // routes here. The test op makes the patch fail if deploy/ reorders them.
  const webhookConfiguration = webhookPaths().flatMap((path, i) => [
    { op: "test", path: `/webhooks/${i}/clientConfig/service/path`, value: path },
    {
      op: "replace",
      path: `/webhooks/${i}/clientConfig`,
      value: { url: `https://${options.webhookFront.host}:${options.webhookFront.port}${path}` },
    },
  ]);
  const patch = (kind: string, name: string, operations: object[]) => ({
    target: { kind, name },
    patch: JSON.stringify(operations),
  });
  return k8s.dumpYaml({
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    // kustomize takes a relative path only, even for a folder.
    resources: [relative(dir, TEST_OVERLAY)],
    patches: [
      patch("DaemonSet", "lockstep-agent", agent),
      patch("Deployment", "lockstep-controller", controller),
      patch("Deployment", "lockstep-webhook", webhook),
      patch("MutatingWebhookConfiguration", "lockstep-webhook", webhookConfiguration),
    ],
  });
}

/** `kubectl kustomize DIR` as objects, with the kubectl built beside the control plane. */
export async function kustomize(dir: string): Promise<k8s.KubernetesObject[]> {
  const { stdout } = await run(kubectlBinary(), ["kustomize", dir], { maxBuffer: 64 << 20 });
  return (k8s.loadAllYaml(stdout) as k8s.KubernetesObject[]).filter((doc) => doc?.kind);
}

/** Writes the per-run kustomization into `workDir` and renders it. */
export async function renderLocalDeploy(
  workDir: string,
  options: LocalDeployOptions,
): Promise<k8s.KubernetesObject[]> {
  const dir = join(workDir, "deploy-local");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "kustomization.yaml"), runKustomization(dir, options));
  return kustomize(dir);
}

/** Server-side applies rendered objects as `kubectl apply -k` orders them: the Namespace, the CRDs, the rest. */
export async function applyInOrder(kc: k8s.KubeConfig, docs: readonly k8s.KubernetesObject[]): Promise<void> {
  const rank = (kind?: string) => (kind === "Namespace" ? 0 : kind === "CustomResourceDefinition" ? 1 : 2);
  for (const doc of [...docs].sort((a, b) => rank(a.kind) - rank(b.kind)))
    await applyYaml(kc, k8s.dumpYaml(doc));
}

/** The label selector of one of Lockstep's components' pods (agent, controller, webhook), as deploy/ labels them. */
export const componentSelector = (component: string) => `app.kubernetes.io/component=${component}`;

/**
 * The webhook's stable address for this run: a LoopbackService in front of its Ready replicas, stopped
 * with the control plane. Its host and port are what `webhookFront` of renderLocalDeploy takes.
 */
export async function startWebhookFront(cp: ControlPlane): Promise<LoopbackService> {
  const front = await LoopbackService.start({
    name: "webhook",
    endpoints: podEndpoints(cp.kubeConfig(), LOCKSTEP_NAMESPACE, componentSelector("webhook")),
    targetPort: WEBHOOK_PORT,
  });
  cp.onStop(() => front.stop());
  return front;
}

/** The pods of one of Lockstep's components (agent, controller, webhook) once `count` of them are Ready. */
export function componentPodsReady(
  kc: k8s.KubeConfig,
  component: string,
  count: number,
): Promise<k8s.V1Pod[]> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return waitFor(
    `${count} ${component} pods to be Ready`,
    async () => {
      const pods = (
        await core.listNamespacedPod({
          namespace: LOCKSTEP_NAMESPACE,
          labelSelector: componentSelector(component),
        })
      ).items.filter((p) => !p.metadata?.deletionTimestamp);
      const ready = (p: k8s.V1Pod) =>
        p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
      return pods.length === count && pods.every(ready) ? pods : undefined;
    },
    { timeoutMs: 120_000 },
  );
}

/**
 * What installing deploy/ on real nodes starts from: the image the Dockerfile describes (`make image`), built
 * into the control plane's folder, and real nodes named `names` with it imported, as a registry pull would
 * give them. `onNode` hears of each node once it is Ready with the image. `alongside` starts as soon as the
 * image is built and runs while the nodes start (make demo's AppArmor node, whose start is mostly importing
 * the image in its guest); its result is awaited with the nodes.
 */
export async function realNodesWithImage<T = undefined>(
  cp: ControlPlane,
  names: readonly string[],
  onNode: (node: RealNode) => void = () => {},
  alongside?: (image: BuiltImage) => Promise<T>,
): Promise<{ image: BuiltImage; nodes: RealNode[]; alongside: T | undefined }> {
  const image = await buildImage({
    nodeDir: bootstrappedNodeDir(),
    archive: join(cp.workDir, "lockstep.oci.tar"),
  });
  // Settled into a value at once, so a failure while the nodes start is not an unhandled rejection.
  const beside = alongside?.(image).then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  const nodes: RealNode[] = [];
  try {
    for (const name of names) {
      const node = await addRealNode(cp, name);
      await node.importImage(image.archive);
      nodes.push(node);
      onNode(node);
    }
  } finally {
    await beside;
  }
  const done = await beside;
  if (done !== undefined && !done.ok) throw done.error;
  return { image, nodes, alongside: done?.value };
}
