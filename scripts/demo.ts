// `make demo`: the whole of Lockstep on one machine. A real control plane, three simulated nodes (two
// with AppArmor, one without) each with a real agent process and its own kubelet root, the controller
// and the webhook; then the examples in examples/. It keeps running for kubectl until Ctrl-C.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { type AgentProcess, installAgentPrerequisites, startAgent } from "../test/harness/agents.ts";
import { installControllerPrerequisites, startController } from "../test/harness/controller.ts";
import { ControlPlane, waitFor } from "../test/harness/controlplane.ts";
import { installWebhook } from "../test/harness/webhook.ts";

const repo = join(import.meta.dirname, "..");
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
  const nodes: [string, boolean][] = [
    ["node-1", true],
    ["node-2", true],
    ["node-3", false],
  ];
  for (const [name] of nodes) await cp.addNode(name);
  step("control plane ready; 3 nodes registered (node-3 has no AppArmor)");

  await installAgentPrerequisites(cp);
  await installControllerPrerequisites(cp);
  const agents: AgentProcess[] = [];
  for (const [name, appArmor] of nodes) {
    agents.push(await startAgent(cp, name, { appArmor }));
    step(`agent on ${name} ready (kubelet root ${agents.at(-1)?.kubeletRoot})`);
  }
  await startController(cp, 1);
  step("controller started");
  await installWebhook(cp);
  step("webhook started and registered");

  // Profiles first, workloads once the profiles are on their nodes (the webhook would also let them
  // wait in Pending; applying them after keeps the demo's output easy to read).
  const examples = readdirSync(join(repo, "examples")).filter((f) => f.endsWith(".yaml"));
  const workloads = ["deployment.yaml"];
  for (const file of examples.filter((f) => !workloads.includes(f))) {
    await cp.applyFile(join(repo, "examples", file));
    step(`applied examples/${file}`);
  }
  const profilesReady = async () => {
    const tables = await Promise.all([
      cp.getTable("/apis/lockstep.dev/v1alpha1/seccompprofiles"),
      cp.getTable("/apis/lockstep.dev/v1alpha1/apparmorprofiles"),
    ]);
    return tables.every((t) => t.rows.length > 0 && t.rows.every((r) => r[1] === "Installed"))
      ? tables
      : undefined;
  };
  await waitFor("every profile to be Installed", profilesReady, { timeoutMs: 60_000 });
  step("every profile is Installed on its nodes");
  for (const file of workloads) {
    await cp.applyFile(join(repo, "examples", file));
    step(`applied examples/${file}`);
  }
  const pods = await waitFor(
    "the web pods to be scheduled",
    async () => {
      const list = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=web" });
      return list.items.length > 0 && list.items.every((p) => p.spec?.nodeName) ? list.items : undefined;
    },
    { timeoutMs: 60_000 },
  );
  const [seccomp, appArmor] = (await profilesReady()) ?? [{ rows: [] }, { rows: [] }];
  step("everything is in place\n");

  const rows = (kind: string, t: { rows: string[][] }) =>
    t.rows.map((r) => [`${kind}/${r[0]}`, ...r.slice(1)]);
  process.stdout.write("$ kubectl get seccompprofiles,apparmorprofiles\n");
  process.stdout.write(
    `${table(["NAME", "STATUS", "READY", "PROFILE", "AGE"], [...rows("seccompprofile.lockstep.dev", seccomp), ...rows("apparmorprofile.lockstep.dev", appArmor)])}\n\n`,
  );
  process.stdout.write("$ kubectl get pods -l app=web -o wide   (where each pod was scheduled)\n");
  process.stdout.write(
    `${table(
      ["NAME", "NODE"],
      pods.map((p) => [p.metadata?.name ?? "", p.spec?.nodeName ?? ""]),
    )}\n\n`,
  );
  process.stdout.write(
    [
      "The web pods use seccomp profile hardened-default and AppArmor profile web-readonly. node-3 has no",
      "AppArmor, so it cannot carry apparmor.lockstep.dev/web-readonly, and the webhook's node affinity keeps",
      "every web pod off it: none fails with CreateContainerError, they all run where their profiles are.",
      "",
      "Go on with kubectl:",
      `  export KUBECONFIG=${cp.adminKubeconfigPath}`,
      "  kubectl get lockstep                       # both profile kinds",
      "  kubectl get nodes --show-labels            # the labels the agents keep in step with their disks",
      "  kubectl describe seccompprofile strict-sleeper",
      `  ls ${agents[0]?.seccompDir}      # the files node-1's agent wrote`,
      "",
      `Logs of every process: ${cp.workDir}/*.log`,
      "Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
} catch (error) {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.stderr.write(`logs: ${cp.workDir}/*.log\n`);
  await stop(1);
}
