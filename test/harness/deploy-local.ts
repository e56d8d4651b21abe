// deploy/ rendered through deploy-overlays/test-local for one run of the harness: a per-run kustomization
// in the control plane's folder adds on top of the overlay what only this run knows (the API server's
// port, the real node's kubelet root, a free health port). Rendered by `kubectl kustomize`, as a user's
// `kubectl apply -k` would; applied with the harness's server-side apply.
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { seccompProfileDir } from "../../src/api/paths.ts";

const run = promisify(execFile);
const repo = join(import.meta.dirname, "../..");
export const TEST_OVERLAY = join(repo, "deploy-overlays/test-local");

export interface LocalDeployOptions {
  /** The API server's port on 127.0.0.1. */
  apiPort: number;
  /** The real node's kubelet root, whose seccomp/lockstep folder the agent's hostPath names. */
  kubeletRoot: string;
  /** The agent's health port: its pod shares the machine's network namespace with everything else. */
  agentHealthPort: number;
}

/** The per-run kustomization: the overlay plus this run's values, each patch checking what it replaces. */
export function runKustomization(dir: string, options: LocalDeployOptions): string {
  const patch = [
    { op: "test", path: "/spec/template/spec/volumes/0/name", value: "seccomp-lockstep" },
    {
      op: "replace",
      path: "/spec/template/spec/volumes/0/hostPath/path",
      value: seccompProfileDir(options.kubeletRoot),
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
    {
      op: "add",
      path: "/spec/template/spec/containers/0/env/-",
      value: { name: "KUBERNETES_SERVICE_PORT", value: String(options.apiPort) },
    },
  ];
  return k8s.dumpYaml({
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    // kustomize takes a relative path only, even for a folder.
    resources: [relative(dir, TEST_OVERLAY)],
    patches: [{ target: { kind: "DaemonSet", name: "lockstep-agent" }, patch: JSON.stringify(patch) }],
  });
}

/** `kubectl kustomize DIR` as objects; fails saying what is missing when kubectl is not installed. */
export async function kustomize(dir: string): Promise<k8s.KubernetesObject[]> {
  try {
    const { stdout } = await run("kubectl", ["kustomize", dir], { maxBuffer: 64 << 20 });
    return (k8s.loadAllYaml(stdout) as k8s.KubernetesObject[]).filter((doc) => doc?.kind);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      throw new Error("kubectl not found: it renders deploy/'s kustomize overlays (kubectl kustomize)");
    throw error;
  }
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
