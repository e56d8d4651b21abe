// Pods confined by Lockstep AppArmor profiles on a real node whose kernel has AppArmor (issue 25 point 2):
// a kubelet, containerd and the Lockstep agent inside a User-Mode Linux guest (apparmor-node.ts), beside a
// host node whose kernel has none, with the webhook guarding pods. The guest kernel is the authority: what
// a container may do is what it printed, and what the kernel allowed in complain mode is its audit line.
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APPARMOR_LABEL } from "../../src/api/constants.ts";
import { appArmorKernelName, failedLabelKey } from "../../src/api/labels.ts";
import { type AgentProcess, installAgentPrerequisites, startAgent, stopAgents } from "../harness/agents.ts";
import { type AppArmorNode, addAppArmorNode } from "../harness/apparmor-node.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { applyProfile, deleteProfile, nodeHoldsProfile } from "../harness/profiles.ts";
import { addRealNode, realNodePodSpec } from "../harness/real-node.ts";
import { installWebhook, type WebhookProcess } from "../harness/webhook.ts";

const NS = "default";
const APPARMOR_NODE = "aa-node";
/** A host node: its kernel has no AppArmor, so no AppArmor profile is ever held there. */
const PLAIN_NODE = "plain-node";
/** containerd's own profile for containers that name none: Lockstep must never touch it. */
const RUNTIME_DEFAULT = "cri-containerd.apparmor.d";

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let webhook: WebhookProcess;
let aaNode: AppArmorNode;
const agents: AgentProcess[] = [];

/** Reads /etc (allowed by the profile), writes under /etc (not allowed), and prints its own confinement. */
const PROBE = [
  "echo confinement=$(cat /proc/self/attr/current)",
  "cat /etc/hostname > /dev/null && echo read-etc=ok",
  "echo probe > /etc/lockstep-probe; echo write-etc=$?",
  "echo done",
].join("; ");

const webProfile = (mode: "enforce" | "complain") => ({
  mode,
  executables: ["/bin/busybox", "/bin/sh"],
  paths: { readOnly: ["/etc/**", "/proc/**"], readWrite: ["/tmp/**"] },
});

function probePod(name: string, appArmorProfile?: k8s.V1AppArmorProfile): k8s.V1Pod {
  const spec = realNodePodSpec([
    {
      name: "probe",
      command: ["sh", "-c", PROBE],
      ...(appArmorProfile ? { securityContext: { appArmorProfile } } : {}),
    },
  ]);
  return { metadata: { name }, spec: { ...spec, restartPolicy: "Never" } };
}

/** Creates the pod, waits for it to finish, and returns its node and what it printed. */
async function runProbe(pod: k8s.V1Pod): Promise<{ node: string; log: string }> {
  const name = pod.metadata?.name ?? "";
  await core.createNamespacedPod({ namespace: NS, body: pod });
  const done = await waitFor(
    `pod ${name} to finish`,
    async () => {
      const p = await core.readNamespacedPod({ name, namespace: NS });
      return p.status?.phase === "Succeeded" || p.status?.phase === "Failed" ? p : undefined;
    },
    { timeoutMs: 120_000 },
  );
  const node = done.spec?.nodeName ?? "";
  const log = node === APPARMOR_NODE ? aaNode.podLog(NS, name, "probe") : "";
  return { node, log };
}

const holds = (name: string, node: string) =>
  nodeHoldsProfile(cp.kubeConfig(), "AppArmorProfile", name, node);

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  await installAgentPrerequisites(cp);
  await addRealNode(cp, PLAIN_NODE);
  agents.push(await startAgent(cp, PLAIN_NODE));
  aaNode = await addAppArmorNode(cp, APPARMOR_NODE, { agent: true });
  webhook = await installWebhook(cp);
  await waitFor(
    "the guest's agent to find AppArmor",
    async () =>
      (await core.readNode({ name: APPARMOR_NODE })).metadata?.labels?.[APPARMOR_LABEL] === "enabled",
    { timeoutMs: 120_000 },
  ).catch((error: unknown) => {
    throw new Error(`${error}\nagent log:\n${aaNode.agentLog().slice(-3000)}`);
  });
}, 600_000);

afterAll(async () => {
  await webhook?.stop();
  await stopAgents(agents);
  await cp?.stop();
});

describe("a real node whose kernel has AppArmor", () => {
  it("runs a pod under its Lockstep profile in enforce mode, only there: the kernel refuses what the profile does not allow", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "aa-web", webProfile("enforce"));
    await waitFor("aa-web on the AppArmor node", () => holds("aa-web", APPARMOR_NODE), {
      timeoutMs: 120_000,
    });
    const kernelName = appArmorKernelName("aa-web");
    // The guest copies its kernel's list every 0.2 s: the label may be a copy ahead.
    await waitFor("the kernel to list it", async () =>
      aaNode.kernelProfiles().includes(`${kernelName} (enforce)`),
    );
    expect(await holds("aa-web", PLAIN_NODE)).toBe(false);

    const { node, log } = await runProbe(
      probePod("enforced", { type: "Localhost", localhostProfile: kernelName }),
    );
    expect(node).toBe(APPARMOR_NODE);
    expect(log).toContain(`confinement=${kernelName} (enforce)`);
    expect(log).toContain("read-etc=ok");
    expect(log).toMatch(/can't create \/etc\/lockstep-probe: Permission denied/);
    expect(log).toContain("write-etc=1");
    expect(aaNode.auditLines().some((l) => /apparmor="DENIED".*name="\/etc\/lockstep-probe"/.test(l))).toBe(
      true,
    );
  });

  it("in complain mode lets the same write through and the kernel audits it as ALLOWED", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "aa-learn", webProfile("complain"));
    await waitFor("aa-learn on the AppArmor node", () => holds("aa-learn", APPARMOR_NODE), {
      timeoutMs: 120_000,
    });
    const kernelName = appArmorKernelName("aa-learn");
    await waitFor("the kernel to list it", async () =>
      aaNode.kernelProfiles().includes(`${kernelName} (complain)`),
    );

    const { node, log } = await runProbe(
      probePod("complaining", { type: "Localhost", localhostProfile: kernelName }),
    );
    expect(node).toBe(APPARMOR_NODE);
    expect(log).toContain(`confinement=${kernelName} (complain)`);
    expect(log).toContain("write-etc=0");
    await waitFor("the ALLOWED audit line", async () =>
      aaNode
        .auditLines()
        .some((l) => l.includes(`profile="${kernelName}"`) && /apparmor="ALLOWED".*lockstep-probe/.test(l)),
    );
  });

  it("leaves the runtime's own default profile loaded and in use for pods that name none", async () => {
    expect(aaNode.kernelProfiles()).toContain(`${RUNTIME_DEFAULT} (enforce)`);
    const pod = probePod("runtime-default");
    pod.spec = { ...pod.spec, containers: pod.spec?.containers ?? [], nodeName: APPARMOR_NODE };
    const { log } = await runProbe(pod);
    expect(log).toContain(`confinement=${RUNTIME_DEFAULT} (enforce)`);
  });

  it("never replaces a Lockstep kernel name someone else loaded: NameTaken on the Node, and the kernel keeps the other policy", async () => {
    const loaded = await aaNode.exec(
      "printf 'profile lockstep.taken {\\n  /** r,\\n}\\n' > /tmp/taken.aa && apparmor_parser -r /tmp/taken.aa",
    );
    expect(loaded).toEqual({ status: 0, output: "" });
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "taken", webProfile("enforce"));
    await waitFor(
      "the Node to say NameTaken",
      async () =>
        (await core.readNode({ name: APPARMOR_NODE })).metadata?.labels?.[
          failedLabelKey("apparmor", "taken")
        ] === "NameTaken",
      { timeoutMs: 120_000 },
    );
    expect(await holds("taken", APPARMOR_NODE)).toBe(false);
    await deleteProfile(cp.kubeConfig(), "AppArmorProfile", "taken");
    // A later sync (another profile) has every chance to unload it; it must not.
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "after-taken", webProfile("enforce"));
    await waitFor("after-taken held", () => holds("after-taken", APPARMOR_NODE), { timeoutMs: 120_000 });
    const taken = await aaNode.exec("cat /sys/kernel/security/apparmor/profiles");
    expect(taken.output.split("\n")).toContain("lockstep.taken (enforce)");
  });

  it("remembers what it loaded across a restart without a reboot: deleted while the agent was down, unloaded after", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "left-behind", webProfile("enforce"));
    await waitFor("left-behind held", () => holds("left-behind", APPARMOR_NODE), { timeoutMs: 120_000 });
    aaNode.holdAgent(true);
    const before = aaNode.agentPid();
    expect((await aaNode.exec(`kill -9 ${before}`)).status).toBe(0);
    await deleteProfile(cp.kubeConfig(), "AppArmorProfile", "left-behind");
    const kernelName = appArmorKernelName("left-behind");
    expect((await aaNode.exec("cat /sys/kernel/security/apparmor/profiles")).output).toContain(
      `${kernelName} (enforce)`,
    );
    aaNode.holdAgent(false);
    await waitFor("the agent to start again", async () => aaNode.agentPid() !== before, {
      timeoutMs: 60_000,
    });
    await waitFor(
      "the restarted agent to unload left-behind",
      async () => !aaNode.kernelProfiles().includes(`${kernelName} (enforce)`),
      { timeoutMs: 120_000 },
    );
    // What it did not load stays: the runtime's profile and the one someone else loaded.
    expect(aaNode.kernelProfiles()).toEqual(
      expect.arrayContaining([`${RUNTIME_DEFAULT} (enforce)`, "lockstep.taken (enforce)"]),
    );
  });
});
