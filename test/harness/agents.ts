// Real node-agent processes, one per Node (simulated or real), each with its node's kubelet-root folder and the
// identity a DaemonSet pod would have: a pod-bound token of the lockstep-agent service account, so the
// API server's admission policy sees the agent's node name exactly as in a real cluster.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { HOST_ARCH, nativeBinary } from "../../scripts/native.ts";
import { seccompProfileDir } from "../../src/api/paths.ts";
import { componentArgs, componentEnv } from "./components.ts";
import { type ControlPlane, freePort, waitFor } from "./controlplane.ts";
import { PAUSE_IMAGE } from "./images.ts";
import { type ManagedProcess, startProcess } from "./processes.ts";
import { nodeContainerdState, nodeDir, nodeKubeletRoot } from "./real-node.ts";

const repo = join(import.meta.dirname, "../..");
export const AGENT_NAMESPACE = "lockstep-system";
export const AGENT_SERVICE_ACCOUNT = "lockstep-agent";

export interface AgentProcess {
  nodeName: string;
  kubeletRoot: string;
  /** Where the agent writes seccomp files: <kubeletRoot>/seccomp/lockstep. */
  seccompDir: string;
  /** The fake securityfs of an AppArmor node, undefined on a node without AppArmor. */
  securityfs: string | undefined;
  /** The node's boot id (--boot-id-file): write another to simulate a reboot. */
  bootIdFile: string;
  healthPort: number;
  kubeconfigPath: string;
  process: ManagedProcess;
  /** SIGKILL and start again with the same folders and identity. */
  restart(): Promise<void>;
}

/** Applies the CRDs, the namespace and the agent's RBAC and admission policy (not its DaemonSet). */
export async function installAgentPrerequisites(cp: ControlPlane): Promise<void> {
  for (const file of [
    "crds/lockstep.dev_seccompprofiles.yaml",
    "crds/lockstep.dev_apparmorprofiles.yaml",
    "deploy/namespace.yaml",
    "deploy/agent/rbac.yaml",
    "deploy/agent/admission-policy.yaml",
    // The agents' priority level, as the DaemonSet ships it: a rollout to many nodes queues its PATCHes.
    "deploy/agent/flow-control.yaml",
  ])
    await cp.applyFile(join(repo, file));
}

/** A kubeconfig holding a pod-bound token of the agent's service account for a pod on `nodeName`. */
export async function agentKubeconfig(cp: ControlPlane, nodeName: string): Promise<string> {
  const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  const podName = `lockstep-agent-${nodeName}`;
  await core.createNamespacedPod({
    namespace: AGENT_NAMESPACE,
    body: {
      metadata: { name: podName, labels: { "app.kubernetes.io/component": "agent" } },
      spec: {
        nodeName,
        serviceAccountName: AGENT_SERVICE_ACCOUNT,
        // On a real node the kubelet runs this pod: an image it has, never pulled, and no pod network.
        hostNetwork: true,
        containers: [{ name: "agent", image: PAUSE_IMAGE, imagePullPolicy: "Never" }],
      },
    },
  });
  const token = await cp.podBoundToken(AGENT_NAMESPACE, AGENT_SERVICE_ACCOUNT, podName);
  const path = join(cp.workDir, `agent-${nodeName}.kubeconfig`);
  await writeFile(path, cp.kubeConfigWithToken(token).exportConfig(), { mode: 0o600 });
  return path;
}

export interface StartAgentOptions {
  /** Simulate a node whose kernel has AppArmor (the real apparmor_parser compiles; see fake-apparmor-parser.sh). */
  appArmor?: boolean;
  /** Wait until the agent reports ready (default true). */
  waitReady?: boolean;
  extraEnv?: Record<string, string>;
  /** Flags after the harness's own (a later flag wins). */
  extraArgs?: readonly string[];
}

export async function startAgent(
  cp: ControlPlane,
  nodeName: string,
  options: StartAgentOptions = {},
): Promise<AgentProcess> {
  const kubeletRoot = nodeKubeletRoot(cp, nodeName);
  await mkdir(kubeletRoot, { recursive: true });
  let securityfs: string | undefined;
  const enabledFile = join(nodeDir(cp, nodeName), "apparmor-enabled");
  if (options.appArmor) {
    securityfs = join(nodeDir(cp, nodeName), "securityfs");
    await mkdir(join(securityfs, "apparmor"), { recursive: true });
    await writeFile(join(securityfs, "apparmor", "profiles"), "", { flag: "a" });
    await writeFile(enabledFile, "Y\n");
  } else {
    await writeFile(enabledFile, "N\n");
  }
  // Each simulated node has a boot of its own, which a test may change to simulate a reboot.
  const bootIdFile = join(nodeDir(cp, nodeName), "boot_id");
  if (!existsSync(bootIdFile)) await writeFile(bootIdFile, `${randomUUID()}\n`);
  const kubeconfigPath = await agentKubeconfig(cp, nodeName);
  const healthPort = await freePort();
  const args = [
    ...(await componentArgs("lockstep-agent")),
    `--kubelet-root=${kubeletRoot}`,
    `--health-port=${healthPort}`,
    `--apparmor-enabled-file=${enabledFile}`,
    `--apparmor-securityfs=${securityfs ?? join(nodeDir(cp, nodeName), "no-securityfs")}`,
    `--apparmor-parser=${join(repo, "test/harness/fake-apparmor-parser.sh")}`,
    `--boot-id-file=${bootIdFile}`,
    // Its node's bundles only: every agent's reader sees every record of this one kernel (ADR 0038).
    `--containerd-state=${nodeContainerdState(cp, nodeName)}`,
    `--audit-reader=${nativeBinary("auditReader", HOST_ARCH)}`,
    ...(options.extraArgs ?? []),
  ];
  const env = {
    ...process.env,
    ...componentEnv("lockstep-agent"),
    NODE_NAME: nodeName,
    KUBECONFIG: kubeconfigPath,
    FAKE_SECURITYFS: securityfs ?? "",
    // fake-apparmor-parser.sh runs its kernel half (fake-kernel-load.ts) with this Node.
    LOCKSTEP_TEST_NODE: process.execPath,
    LOG_LEVEL: "debug",
    ...options.extraEnv,
  };
  const spawnAgent = () =>
    startProcess(`agent-${nodeName}`, process.execPath, args, join(cp.workDir, `agent-${nodeName}.log`), {
      env,
    });
  const agent: AgentProcess = {
    nodeName,
    kubeletRoot,
    seccompDir: seccompProfileDir(kubeletRoot),
    securityfs,
    bootIdFile,
    healthPort,
    kubeconfigPath,
    process: spawnAgent(),
    restart: async () => {
      await agent.process.kill();
      agent.process = spawnAgent();
      await waitAgentReady(agent);
    },
  };
  if (options.waitReady ?? true) await waitAgentReady(agent);
  return agent;
}

export async function waitAgentReady(agent: AgentProcess, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `agent on ${agent.nodeName} to be ready`,
    async () => {
      if (!agent.process.isRunning()) throw new Error(`agent exited:\n${agent.process.tail()}`);
      const res = await fetch(`http://127.0.0.1:${agent.healthPort}/readyz`);
      return res.ok;
    },
    { timeoutMs },
  );
}

export async function stopAgents(agents: readonly AgentProcess[]): Promise<void> {
  await Promise.all(agents.map((a) => a.process.stop(5_000)));
}
