// Pods confined by Lockstep AppArmor profiles on a real node whose kernel has AppArmor (issue 25 point 2):
// a kubelet, containerd and the Lockstep agent inside a User-Mode Linux guest (apparmor-node.ts), beside a
// host node whose kernel has none, with the webhook guarding pods. The guest kernel is the authority: what
// a container may do is what it printed, and what the kernel allowed in complain mode is its audit line.
// On the same node (one guest boot for the file: a node costs about 13 s to start), the agent process meets
// every hostile AppArmor case of docs/security.md, keeps a profile loaded under a running pod (DESIGN
// invariant 6) and, traced with strace, changes nothing of the node outside its places (invariant 4).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OWNERSHIP_RECORD_FILE } from "../../node-agent/ownership-record.ts";
import { APPARMOR_LABEL, IN_USE_FINALIZER, SYNCED_REVISION_LABEL } from "../../src/api/constants.ts";
import { appArmorKernelName, failedLabelKey } from "../../src/api/labels.ts";
import { profileRevision } from "../../src/api/node-profiles.ts";
import { kubeErrorMessage } from "../../src/kube/errors.ts";
import { type AgentProcess, installAgentPrerequisites, startAgent, stopAgents } from "../harness/agents.ts";
import { HOSTILE_RAW_POLICIES, hostileFixture } from "../harness/apparmor-hostile-policies.ts";
import { type AppArmorNode, addAppArmorNode, GUEST_KUBELET_ROOT } from "../harness/apparmor-node.ts";
import { installControllerPrerequisites, startController } from "../harness/controller.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import {
  applyProfile,
  deleteProfile,
  installFailedMessage,
  nodeHoldsProfile,
  readProfile,
} from "../harness/profiles.ts";
import { addRealNode, realNodePodSpec } from "../harness/real-node.ts";
import { filesChangedInTrace, TRACE_ARGS } from "../harness/traced-writes.ts";
import { shellQuote } from "../harness/uml.ts";
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
const failureOnNode = async (name: string) =>
  (await core.readNode({ name: APPARMOR_NODE })).metadata?.labels?.[failedLabelKey("apparmor", name)];

/** The guest kernel's profile list now (not the 0.2 s copy): `name (mode)` lines. */
async function guestProfiles(): Promise<string[]> {
  const listed = await aaNode.exec("cat /sys/kernel/security/apparmor/profiles");
  expect(listed.status).toBe(0);
  return listed.output.split("\n").filter(Boolean);
}

/** The SHA-1 the guest kernel keeps of a loaded profile's policy (apparmorfs), "" when none is loaded. */
async function kernelPolicySha1(kernelName: string): Promise<string> {
  const found = await aaNode.exec(
    `for d in /sys/kernel/security/apparmor/policy/profiles/*/; do [ "$(cat "$d/name")" = ${shellQuote(kernelName)} ] && cat "$d/sha1"; done; true`,
  );
  return found.output.trim();
}

/** Whether the AppArmor node's agent has synced the profile's current version (its revision label). */
async function agentSynced(name: string): Promise<boolean> {
  const obj = await readProfile(cp.kubeConfig(), "AppArmorProfile", name);
  const synced = (await core.readNode({ name: APPARMOR_NODE })).metadata?.labels?.[
    SYNCED_REVISION_LABEL.apparmor
  ];
  return obj !== undefined && synced !== undefined && BigInt(synced) >= BigInt(profileRevision(obj));
}

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  await installAgentPrerequisites(cp);
  // The controller adds the in-use finalizer and writes each object's status (missingNodes).
  await installControllerPrerequisites(cp);
  await startController(cp, 1);
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
    expect(await guestProfiles()).toContain("lockstep.taken (enforce)");
  });

  it("remembers what it loaded across a restart without a reboot: deleted while the agent was down, unloaded after", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "left-behind", webProfile("enforce"));
    await waitFor("left-behind held", () => holds("left-behind", APPARMOR_NODE), { timeoutMs: 120_000 });
    aaNode.holdAgent(true);
    const before = aaNode.agentPid();
    expect((await aaNode.exec(`kill -9 ${before}`)).status).toBe(0);
    await deleteProfile(cp.kubeConfig(), "AppArmorProfile", "left-behind");
    const kernelName = appArmorKernelName("left-behind");
    expect(await guestProfiles()).toContain(`${kernelName} (enforce)`);
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

describe("hostile AppArmor policies through the agent on the real kernel (docs/security.md)", () => {
  /** What the kernel held before: every refusal must leave it exactly so. */
  let before: { profiles: string[]; runtimeSha1: string; agentPid: number };
  /** Named like containerd's own profile: loaded as lockstep.cri-containerd.apparmor.d, beside it. */
  const RUNTIME_NAMED = RUNTIME_DEFAULT;
  const BOMB = "parser-bomb";

  beforeAll(async () => {
    before = {
      profiles: await guestProfiles(),
      runtimeSha1: await kernelPolicySha1(RUNTIME_DEFAULT),
      agentPid: aaNode.agentPid(),
    };
    expect(before.runtimeSha1).toMatch(/^[0-9a-f]{40}$/);
    // All at once: the agent judges them side by side, as it would a hostile batch.
    await Promise.all([
      ...HOSTILE_RAW_POLICIES.map(([name, rawPolicy]) =>
        applyProfile(cp.kubeConfig(), "AppArmorProfile", name, { rawPolicy }),
      ),
      applyProfile(cp.kubeConfig(), "AppArmorProfile", BOMB, {
        rawPolicy: hostileFixture("overlapping-globs.apparmor", BOMB),
      }),
    ]);
  });

  it.each(HOSTILE_RAW_POLICIES)(
    "%s: refused before anything is loaded, named on the object; the kernel has nothing of it",
    async (name, _rawPolicy, why) => {
      const message = await installFailedMessage(
        cp.kubeConfig(),
        "AppArmorProfile",
        name,
        "InvalidPolicy",
        120_000,
      );
      expect(message).toMatch(new RegExp(`^node ${APPARMOR_NODE}: InvalidPolicy: `));
      expect(message).toContain(why);
      await waitFor(
        `${name} marked InvalidPolicy on the Node`,
        async () => (await failureOnNode(name)) === "InvalidPolicy",
      );
      await waitFor(`${name}'s status to name the node`, async () =>
        (await readProfile(cp.kubeConfig(), "AppArmorProfile", name))?.status?.missingNodes?.some(
          (m) => m.node === APPARMOR_NODE && m.reason.startsWith("InvalidPolicy: ") && m.reason.includes(why),
        ),
      );
      expect(await holds(name, APPARMOR_NODE)).toBe(false);
      expect((await guestProfiles()).filter((l) => l.startsWith(`${appArmorKernelName(name)} `))).toEqual([]);
    },
    300_000,
  );

  it("a parser bomb is refused at the parser's limits inside the guest; the agent keeps running", async () => {
    expect(
      await installFailedMessage(cp.kubeConfig(), "AppArmorProfile", BOMB, "InvalidPolicy", 120_000),
    ).toMatch(/apparmor_parser exceeded its (memory|time) limit .*: simplify the policy/);
    await waitFor(
      "the bomb marked InvalidPolicy",
      async () => (await failureOnNode(BOMB)) === "InvalidPolicy",
    );
    expect(aaNode.agentPid()).toBe(before.agentPid);
    expect((await aaNode.exec(`kill -0 ${before.agentPid}`)).status).toBe(0);
    expect((await guestProfiles()).filter((l) => l.startsWith(`${appArmorKernelName(BOMB)} `))).toEqual([]);
  }, 300_000);

  it("an object declaring the runtime's kernel name is refused when applied; one named like it loads under its own", async () => {
    const refused = await applyProfile(cp.kubeConfig(), "AppArmorProfile", "docker-default", {
      rawPolicy: "profile docker-default flags=(complain) {\n  file,\n}\n",
    }).then(
      () => "accepted",
      (e: unknown) => kubeErrorMessage(e),
    );
    expect(refused).toContain('must declare "profile lockstep.docker-default {"');
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", RUNTIME_NAMED, {
      rawPolicy: `profile ${appArmorKernelName(RUNTIME_NAMED)} flags=(attach_disconnected) {\n  file,\n}\n`,
    });
    await waitFor(`${RUNTIME_NAMED} held`, () => holds(RUNTIME_NAMED, APPARMOR_NODE), { timeoutMs: 120_000 });
    expect(await guestProfiles()).toEqual(
      expect.arrayContaining([
        `${RUNTIME_DEFAULT} (enforce)`,
        `${appArmorKernelName(RUNTIME_NAMED)} (enforce)`,
      ]),
    );
  }, 300_000);

  it("an invalid update keeps the loaded version byte for byte, without its label; the kernel gets nothing of the update", async () => {
    const good = "profile lockstep.keeper {\n  /etc/** r,\n}\n";
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "keeper", { rawPolicy: good });
    await waitFor("keeper held", () => holds("keeper", APPARMOR_NODE), { timeoutMs: 120_000 });
    const loaded = await kernelPolicySha1("lockstep.keeper");
    expect(loaded).toMatch(/^[0-9a-f]{40}$/);
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "keeper", {
      rawPolicy: `${good}profile docker-default flags=(unconfined) {\n}\n`,
    });
    expect(
      await installFailedMessage(cp.kubeConfig(), "AppArmorProfile", "keeper", "InvalidPolicy", 120_000),
    ).toContain('declares a second profile "docker-default"');
    await waitFor(
      "keeper marked InvalidPolicy",
      async () => (await failureOnNode("keeper")) === "InvalidPolicy",
    );
    expect(await holds("keeper", APPARMOR_NODE)).toBe(false);
    expect(await kernelPolicySha1("lockstep.keeper")).toBe(loaded);
    expect((await guestProfiles()).filter((l) => l.startsWith("docker-default "))).toEqual([]);
  }, 300_000);

  it("leaves the kernel's policy as it was: the same profiles, no other namespace, the runtime's policy unchanged", async () => {
    const expected = [
      ...before.profiles,
      `${appArmorKernelName(RUNTIME_NAMED)} (enforce)`,
      "lockstep.keeper (enforce)",
    ];
    expect((await guestProfiles()).sort()).toEqual(expected.sort());
    expect((await aaNode.exec("ls /sys/kernel/security/apparmor/policy/namespaces")).output).toBe("");
    expect(await kernelPolicySha1(RUNTIME_DEFAULT)).toBe(before.runtimeSha1);
  }, 300_000);
});

describe("a profile in use by a running pod on the real kernel (DESIGN invariant 6)", () => {
  const NAME = "in-use";
  const kernelName = appArmorKernelName(NAME);
  const onThisNode = { "kubernetes.io/hostname": APPARMOR_NODE };
  const spec = (extra: object) => ({ ...webProfile("enforce"), nodeSelector: onThisNode, ...extra });
  const loadedInGuest = async () => (await guestProfiles()).includes(`${kernelName} (enforce)`);
  /** The guest's processes the kernel runs under the profile: the pod's container. */
  const confined = async () =>
    (await aaNode.exec(`grep -l '^${kernelName} ' /proc/[0-9]*/attr/current; true`)).output
      .split("\n")
      .filter(Boolean);
  const finalizers = async () =>
    (await readProfile(cp.kubeConfig(), "AppArmorProfile", NAME))?.metadata?.finalizers ?? [];

  function holderPod(name: string): k8s.V1Pod {
    const pod = probePod(name, { type: "Localhost", localhostProfile: kernelName });
    const container = { ...pod.spec?.containers[0], name: "probe" };
    container.command = ["sh", "-c", "echo confinement=$(cat /proc/self/attr/current); exec sleep 3600"];
    return { ...pod, spec: { ...pod.spec, containers: [container], terminationGracePeriodSeconds: 1 } };
  }

  it("stays loaded under the pod through disabled, a nodeSelector that no longer matches and the object's deletion; NoLongerHere at once; unloaded when the pod is gone", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", NAME, spec({}));
    await waitFor(`${NAME} held`, () => holds(NAME, APPARMOR_NODE), { timeoutMs: 120_000 });
    await core.createNamespacedPod({ namespace: NS, body: holderPod("holder") });
    await waitFor(
      "the holder running under the profile",
      async () => aaNode.podLog(NS, "holder", "probe").includes(`confinement=${kernelName} (enforce)`),
      { timeoutMs: 120_000 },
    );
    expect((await core.readNamespacedPod({ name: "holder", namespace: NS })).spec?.nodeName).toBe(
      APPARMOR_NODE,
    );
    expect(await confined()).not.toEqual([]);
    await waitFor("the in-use finalizer", async () => (await finalizers()).includes(IN_USE_FINALIZER));

    await applyProfile(cp.kubeConfig(), "AppArmorProfile", NAME, spec({ disabled: true }));
    await waitFor("NoLongerHere on the Node", async () => (await failureOnNode(NAME)) === "NoLongerHere", {
      timeoutMs: 60_000,
    });
    expect(await loadedInGuest()).toBe(true);
    expect(await confined()).not.toEqual([]);

    // No new pod is placed there meanwhile.
    await core.createNamespacedPod({ namespace: NS, body: holderPod("latecomer") });
    await waitFor("the latecomer unschedulable", async () => {
      const p = await core.readNamespacedPod({ name: "latecomer", namespace: NS });
      return p.status?.conditions?.some((c) => c.type === "PodScheduled" && c.reason === "Unschedulable");
    });
    await core.deleteNamespacedPod({ name: "latecomer", namespace: NS, gracePeriodSeconds: 0 });

    await applyProfile(cp.kubeConfig(), "AppArmorProfile", NAME, {
      ...spec({}),
      nodeSelector: { "kubernetes.io/hostname": "another-node" },
    });
    await waitFor("the agent to sync the new nodeSelector", () => agentSynced(NAME));
    expect(await holds(NAME, APPARMOR_NODE)).toBe(false);
    expect(await loadedInGuest()).toBe(true);

    await deleteProfile(cp.kubeConfig(), "AppArmorProfile", NAME);
    const deleting = await readProfile(cp.kubeConfig(), "AppArmorProfile", NAME);
    expect(deleting?.metadata?.deletionTimestamp).toBeDefined();
    expect(deleting?.metadata?.finalizers).toContain(IN_USE_FINALIZER);
    // A later sync (another profile held) has every chance to unload it; it must not.
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "after-in-use", webProfile("enforce"));
    await waitFor("after-in-use held", () => holds("after-in-use", APPARMOR_NODE), { timeoutMs: 120_000 });
    expect(await loadedInGuest()).toBe(true);
    expect(await confined()).not.toEqual([]);

    await core.deleteNamespacedPod({ name: "holder", namespace: NS });
    await waitFor(
      "the holder gone",
      async () =>
        core.readNamespacedPod({ name: "holder", namespace: NS }).then(
          () => false,
          () => true,
        ),
      { timeoutMs: 60_000 },
    );
    await waitFor("the profile unloaded", async () => !(await loadedInGuest()), { timeoutMs: 60_000 });
    await waitFor(
      "the object gone with its finalizer",
      async () => (await readProfile(cp.kubeConfig(), "AppArmorProfile", NAME)) === undefined,
    );
    await waitFor("the NoLongerHere label gone", async () => (await failureOnNode(NAME)) === undefined);
    expect(await confined()).toEqual([]);
  }, 300_000);
});

describe("what the agent changes on the node (DESIGN invariant 4)", () => {
  const NAME = "traced";
  const kernelName = appArmorKernelName(NAME);
  const folder = `${GUEST_KUBELET_ROOT}/seccomp/lockstep/`;
  /** Besides its folder: the kernel's policy interface, and the private folders the parser reads policy from. */
  const allowed = (path: string) =>
    path.startsWith(folder) ||
    ["/sys/kernel/security/apparmor/.replace", "/sys/kernel/security/apparmor/.remove"].includes(path) ||
    /^\/tmp\/lockstep-apparmor-[^/]+(\/[^/]+)?$/.test(path);

  it("through a load, a replace in complain mode and a remove on the real kernel, changes nothing but its folder, the kernel's policy and its private parser folders", async () => {
    const trace = join(aaNode.dir, "agent.trace");
    const pid = aaNode.agentPid();
    // Every thread of the agent (the file system work runs on libuv's pool) and every child it starts.
    const attached = await aaNode.exec(
      [
        `strace ${TRACE_ARGS.map(shellQuote).join(" ")} -o ${shellQuote(trace)} -p ${pid} > /dev/null 2>&1 &`,
        "echo $! > /run/agent-strace.pid",
        "for i in $(seq 100); do",
        `  [ -z "$(grep -L 'TracerPid:[[:space:]]*[1-9]' /proc/${pid}/task/*/status)" ] && exit 0`,
        "  sleep 0.1",
        "done",
        "exit 1",
      ].join("\n"),
    );
    expect(attached).toEqual({ status: 0, output: "" });
    try {
      await applyProfile(cp.kubeConfig(), "AppArmorProfile", NAME, webProfile("enforce"));
      await waitFor("loaded", async () => (await guestProfiles()).includes(`${kernelName} (enforce)`), {
        timeoutMs: 120_000,
      });
      await applyProfile(cp.kubeConfig(), "AppArmorProfile", NAME, webProfile("complain"));
      await waitFor("replaced", async () => (await guestProfiles()).includes(`${kernelName} (complain)`), {
        timeoutMs: 120_000,
      });
      await waitFor("held", () => holds(NAME, APPARMOR_NODE));
      await deleteProfile(cp.kubeConfig(), "AppArmorProfile", NAME);
      await waitFor(
        "removed and forgotten",
        async () =>
          !(await guestProfiles()).some((l) => l.startsWith(`${kernelName} `)) &&
          !(await aaNode.exec(`cat ${folder}${OWNERSHIP_RECORD_FILE}`)).output.includes(`"${NAME}"`),
        { timeoutMs: 120_000 },
      );
    } finally {
      await aaNode.exec(
        "p=$(cat /run/agent-strace.pid); kill $p; while kill -0 $p 2>/dev/null; do sleep 0.1; done",
      );
    }
    const { paths, unresolved } = filesChangedInTrace(readFileSync(trace, "utf8"));
    expect(unresolved).toEqual([]);
    expect(paths.filter((p) => !allowed(p))).toEqual([]);
    // The trace saw the agent's writes: the kernel's load and remove, and its record replaced.
    expect(paths).toEqual(
      expect.arrayContaining([
        "/sys/kernel/security/apparmor/.replace",
        "/sys/kernel/security/apparmor/.remove",
        `${folder}${OWNERSHIP_RECORD_FILE}`,
      ]),
    );
  }, 300_000);
});
