// The node-side trust boundary, against the real control plane with real agent processes and the real
// apparmor_parser (the kernel's half is the fake securityfs of fake-apparmor-parser.sh): the kernel
// gets exactly the one profile an object says, names the agent did not load are never replaced or
// removed, a profile stays on a node while a pod bound there uses it, and foreign entries in the
// agent's folder are left alone without stopping anything else.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OWNERSHIP_RECORD_FILE } from "../../node-agent/ownership-record.ts";
import { IN_USE_LABEL_VALUE } from "../../src/api/affinity.ts";
import { appArmorKernelName, failedLabelKey, profileLabelKey } from "../../src/api/labels.ts";
import { kubeErrorMessage } from "../../src/kube/errors.ts";
import { type AgentProcess, installAgentPrerequisites, startAgent, stopAgents } from "../harness/agents.ts";
import { HOSTILE_RAW_POLICIES } from "../harness/apparmor-hostile-policies.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import {
  applyProfile,
  deleteProfile,
  installFailedMessage,
  nodeHoldsProfile,
  type ProfileObjectKind,
} from "../harness/profiles.ts";

const corpus = join(import.meta.dirname, "../fixtures/apparmor-corpus");
const published = (file: string) => readFileSync(join(corpus, file), "utf8");

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let appArmorAgent: AgentProcess;
let plainAgent: AgentProcess;
const AA_NODE = "aa-node";
const PLAIN_NODE = "plain-node";
/**
 * Loaded by "someone else" before the agent ever ran: the container runtimes' defaults, a host's own
 * profile, and one under a Lockstep kernel name that the agent did not load.
 */
const RUNTIME_PROFILES = ["docker-default", "cri-containerd.apparmor.d", "snap.lxd.lxc", "lockstep.taken"];

const seccompKey = (name: string) => profileLabelKey("seccomp", name);
const appArmorKey = (name: string) => profileLabelKey("apparmor", name);
const holds = (node: string, kind: ProfileObjectKind, name: string) =>
  nodeHoldsProfile(cp.kubeConfig(), kind, name, node);
const nodeLabels = async (node: string) => (await core.readNode({ name: node })).metadata?.labels ?? {};
const kernelList = () =>
  readFileSync(join(appArmorAgent.securityfs as string, "apparmor", "profiles"), "utf8")
    .split("\n")
    .filter(Boolean);
/** Sets the fake kernel's list, as a reboot or `apparmor_parser -R` by hand would leave it. */
const writeKernelList = (lines: readonly string[]) =>
  writeFileSync(
    join(appArmorAgent.securityfs as string, "apparmor", "profiles"),
    lines.map((l) => `${l}\n`).join(""),
  );

const installFailed = (kind: ProfileObjectKind, name: string, reason: string) =>
  installFailedMessage(cp.kubeConfig(), kind, name, reason);

async function createPodOn(node: string, name: string, labels: Record<string, string>): Promise<void> {
  // As the webhook leaves a pod that uses these profiles: their keys as labels. Bound directly, as the
  // scheduler would bind it to this (simulated) node.
  await waitFor(`pod ${name} created`, async () => {
    await core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name, labels },
        spec: {
          nodeName: node,
          automountServiceAccountToken: false,
          containers: [{ name: "c", image: "busybox" }],
        },
      },
    });
    return true;
  });
}

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  await cp.addNode(AA_NODE, { labels: { pool: "web" } });
  await cp.addNode(PLAIN_NODE, { labels: { pool: "web" } });
  await installAgentPrerequisites(cp);
  const securityfs = join(cp.workDir, "nodes", AA_NODE, "securityfs", "apparmor");
  mkdirSync(securityfs, { recursive: true });
  writeFileSync(join(securityfs, "profiles"), RUNTIME_PROFILES.map((p) => `${p} (enforce)\n`).join(""));
  // Foreign entries in the plain node's folder before its agent first starts: a directory named like
  // the agent's temporary files, a directory, a FIFO and a symbolic link named like profile files.
  const dir = join(cp.workDir, "nodes", PLAIN_NODE, "kubelet", "seccomp", "lockstep");
  mkdirSync(join(dir, ".tmp-0123456789abcdef"), { recursive: true });
  mkdirSync(join(dir, "taken-dir.json"));
  execFileSync("mkfifo", [join(dir, "taken-fifo.json")]);
  writeFileSync(join(cp.workDir, "outside.txt"), "not the agent's\n");
  symlinkSync(join(cp.workDir, "outside.txt"), join(dir, "taken-link.json"));
  [appArmorAgent, plainAgent] = await Promise.all([
    startAgent(cp, AA_NODE, { appArmor: true }),
    startAgent(cp, PLAIN_NODE),
  ]);
});

afterAll(async () => {
  await stopAgents([appArmorAgent, plainAgent].filter(Boolean));
  await cp?.stop();
});

describe("what a raw AppArmor policy may declare", () => {
  it("refuses a node-local include at apply time, naming the rule (the CRD's CEL)", async () => {
    const refused = await applyProfile(cp.kubeConfig(), "AppArmorProfile", "local-include", {
      rawPolicy: "profile lockstep.local-include {\n  include if exists <local/local-include>\n}\n",
    }).then(
      () => "accepted",
      (e: unknown) => kubeErrorMessage(e),
    );
    expect(refused).toMatch(/spec\.rawPolicy: .*may include only <tunables\/...> and <abstractions\/...>/);
  });

  it.each([
    [
      "cri-containerd.apparmor.d",
      published("cri-containerd.apparmor.d.apparmor").replaceAll("lockstep.", ""),
    ],
    ["docker-default", "profile docker-default flags=(complain) {\n  file,\n}\n"],
    ["crio-default", 'profile "crio-default" {\n  file,\n}\n'],
    ["unconfined", "profile unconfined {\n  file,\n}\n"],
  ])(
    "refuses at apply time %s declaring its own name, not its kernel name (the CRD's CEL)",
    async (name, rawPolicy) => {
      const refused = await applyProfile(cp.kubeConfig(), "AppArmorProfile", name, { rawPolicy }).then(
        () => "accepted",
        (e: unknown) => kubeErrorMessage(e),
      );
      expect(refused).toContain(`must declare "profile lockstep.${name} {"`);
    },
  );

  it.each(HOSTILE_RAW_POLICIES)(
    "%s: refused by apparmor_parser's own account of it, naming the line; nothing loaded, no label",
    async (name, rawPolicy, why) => {
      await applyProfile(cp.kubeConfig(), "AppArmorProfile", name, { rawPolicy });
      expect(await installFailed("AppArmorProfile", name, "InvalidPolicy")).toContain(why);
      expect(kernelList().filter((line) => line.startsWith(appArmorKernelName(name)))).toEqual([]);
      expect(await holds(AA_NODE, "AppArmorProfile", name)).toBe(false);
      // The runtime's own profiles were never touched, let alone replaced.
      expect(kernelList()).toEqual(expect.arrayContaining(RUNTIME_PROFILES.map((p) => `${p} (enforce)`)));
    },
  );

  it("loads the container runtimes' published profiles, rendered with the kernel name, in the mode spec.mode says; the runtimes' own stay as they are", async () => {
    const cases = [
      ["cri-containerd.apparmor.d", "cri-containerd.apparmor.d.apparmor", "enforce"],
      ["nerdctl-default", "nerdctl-default.apparmor", "enforce"],
      ["cri-containerd-no-tunables", "cri-containerd-no-tunables.apparmor", "complain"],
    ] as const;
    for (const [name, file, mode] of cases)
      await applyProfile(cp.kubeConfig(), "AppArmorProfile", name, { rawPolicy: published(file), mode });
    await waitFor("all held", async () => {
      for (const [name] of cases) if (!(await holds(AA_NODE, "AppArmorProfile", name))) return false;
      return true;
    });
    expect(kernelList()).toEqual(
      expect.arrayContaining([
        "lockstep.cri-containerd.apparmor.d (enforce)",
        "lockstep.nerdctl-default (enforce)",
        "lockstep.cri-containerd-no-tunables (complain)",
      ]),
    );
    // An object named like containerd's default never reaches containerd's kernel name.
    expect(kernelList().filter((l) => l.startsWith("cri-containerd.apparmor.d "))).toEqual([
      "cri-containerd.apparmor.d (enforce)",
    ]);
    // A change of spec.mode alone reloads the same text in the new mode.
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "nerdctl-default", {
      rawPolicy: published("nerdctl-default.apparmor"),
      mode: "complain",
    });
    await waitFor("nerdctl-default in complain mode", async () =>
      kernelList().includes("lockstep.nerdctl-default (complain)"),
    );
  });

  it("loads a policy whose comment mentions an include, as written", async () => {
    const rawPolicy =
      "#include <tunables/global>\n# Site additions would go in include <local/commented>; none here.\nprofile lockstep.commented {\n  #include <abstractions/base>\n}\n";
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "commented", { rawPolicy });
    await waitFor("commented held", () => holds(AA_NODE, "AppArmorProfile", "commented"));
    expect(kernelList()).toContain("lockstep.commented (enforce)");
  });

  it("an invalid update keeps the version that is loaded, without its label; fixed, it is labelled again", async () => {
    const good = "profile lockstep.keeper {\n  /etc/** r,\n}\n";
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "keeper", { rawPolicy: good });
    await waitFor("keeper held", () => holds(AA_NODE, "AppArmorProfile", "keeper"));
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "keeper", {
      rawPolicy: `${good}profile docker-default {\n}\n`,
    });
    expect(await installFailed("AppArmorProfile", "keeper", "InvalidPolicy")).toContain(
      'declares a second profile "docker-default"',
    );
    await waitFor(
      "keeper marked failed on the node",
      async () => (await nodeLabels(AA_NODE))[failedLabelKey("apparmor", "keeper")] === "InvalidPolicy",
    );
    expect(await holds(AA_NODE, "AppArmorProfile", "keeper")).toBe(false);
    expect(kernelList()).toEqual(
      expect.arrayContaining(["lockstep.keeper (enforce)", "docker-default (enforce)"]),
    );
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "keeper", { rawPolicy: good });
    await waitFor("keeper held again", () => holds(AA_NODE, "AppArmorProfile", "keeper"));
    expect((await nodeLabels(AA_NODE))[failedLabelKey("apparmor", "keeper")]).toBeUndefined();
  });
});

describe("kernel names the agent did not load", () => {
  it("an object named like the runtime's profile loads under its own kernel name; the runtime's is never touched", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "docker-default", {
      rawPolicy: published("docker-default.apparmor"),
    });
    await waitFor("docker-default held", () => holds(AA_NODE, "AppArmorProfile", "docker-default"));
    expect(kernelList()).toEqual(
      expect.arrayContaining(["docker-default (enforce)", "lockstep.docker-default (enforce)"]),
    );
    await deleteProfile(cp.kubeConfig(), "AppArmorProfile", "docker-default");
    await waitFor(
      "lockstep.docker-default unloaded",
      async () => !kernelList().includes("lockstep.docker-default (enforce)"),
    );
    expect(kernelList().filter((l) => l.startsWith("docker-default "))).toEqual(["docker-default (enforce)"]);
  });

  it("a Lockstep kernel name someone else loaded is never replaced: NameTaken, no label; deleting the object leaves it loaded", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "taken", {});
    expect(await installFailed("AppArmorProfile", "taken", "NameTaken")).toContain(
      'an AppArmor profile named "lockstep.taken" is already loaded on this node and this agent did not load it',
    );
    expect(await holds(AA_NODE, "AppArmorProfile", "taken")).toBe(false);
    expect((await nodeLabels(AA_NODE))[failedLabelKey("apparmor", "taken")]).toBe("NameTaken");
    await deleteProfile(cp.kubeConfig(), "AppArmorProfile", "taken");
    // A later sync (the profile list changed) has every chance to unload it; it must not.
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "after-delete", {});
    await waitFor("after-delete held", () => holds(AA_NODE, "AppArmorProfile", "after-delete"));
    expect(kernelList().filter((l) => l.startsWith("lockstep.taken "))).toEqual(["lockstep.taken (enforce)"]);
  });

  it("what the agent loaded is remembered across a restart: deleted while it was down, it is unloaded after", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "left-behind", {});
    await waitFor("left-behind loaded", async () => kernelList().includes("lockstep.left-behind (enforce)"));
    await appArmorAgent.process.kill();
    await deleteProfile(cp.kubeConfig(), "AppArmorProfile", "left-behind");
    const record = JSON.parse(readFileSync(join(appArmorAgent.seccompDir, OWNERSHIP_RECORD_FILE), "utf8"));
    expect(Object.keys(record.appArmor)).toContain("left-behind");
    expect(record.bootId).toBe(readFileSync(appArmorAgent.bootIdFile, "utf8").trim());
    await appArmorAgent.restart();
    await waitFor(
      "left-behind unloaded",
      async () => !kernelList().includes("lockstep.left-behind (enforce)"),
    );
    expect(kernelList()).toEqual(expect.arrayContaining(RUNTIME_PROFILES.map((p) => `${p} (enforce)`)));
  });

  it("after a reboot nothing loaded is the agent's until it loads it again: one loaded first under its name is NameTaken", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "survivor", {});
    await waitFor("survivor held", () => holds(AA_NODE, "AppArmorProfile", "survivor"));
    await appArmorAgent.process.kill();
    // The reboot: a new boot id, and the kernel's list as the host's own AppArmor setup leaves it, which
    // here loads a permissive profile under the Lockstep name before the agent starts.
    writeFileSync(appArmorAgent.bootIdFile, `${randomUUID()}\n`);
    writeKernelList([...RUNTIME_PROFILES.map((p) => `${p} (enforce)`), "lockstep.survivor (complain)"]);
    await appArmorAgent.restart();
    expect(await installFailed("AppArmorProfile", "survivor", "NameTaken")).toContain(
      '"lockstep.survivor" is already loaded on this node and this agent did not load it in this boot',
    );
    await waitFor(
      "survivor marked NameTaken on the node",
      async () => (await nodeLabels(AA_NODE))[failedLabelKey("apparmor", "survivor")] === "NameTaken",
    );
    expect(await holds(AA_NODE, "AppArmorProfile", "survivor")).toBe(false);
    expect(kernelList()).toContain("lockstep.survivor (complain)");
    // Unloaded by hand, as the Event says: the agent loads the object's policy and claims it again.
    writeKernelList(kernelList().filter((l) => !l.startsWith("lockstep.survivor ")));
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "survivor", { capabilities: ["chown"] });
    await waitFor("survivor held again", () => holds(AA_NODE, "AppArmorProfile", "survivor"));
    expect(kernelList()).toContain("lockstep.survivor (enforce)");
  });

  it("an unreadable record is moved aside and trusted for nothing: nothing removed or unloaded, said on the Node", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "kept-file", { defaultAction: "SCMP_ACT_ALLOW" });
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "orphan-file", { defaultAction: "SCMP_ACT_ALLOW" });
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "loaded-before", {});
    await waitFor(
      "all held",
      async () =>
        (await holds(AA_NODE, "SeccompProfile", "kept-file")) &&
        (await holds(AA_NODE, "SeccompProfile", "orphan-file")) &&
        holds(AA_NODE, "AppArmorProfile", "loaded-before"),
    );
    await appArmorAgent.process.kill();
    await deleteProfile(cp.kubeConfig(), "SeccompProfile", "orphan-file");
    const recordFile = join(appArmorAgent.seccompDir, OWNERSHIP_RECORD_FILE);
    writeFileSync(recordFile, readFileSync(recordFile, "utf8").slice(0, 30));
    await appArmorAgent.restart();

    const event = await waitFor("an OwnershipRecordUnreadable Event on the Node", async () => {
      const events = await core.listNamespacedEvent({
        namespace: "default",
        fieldSelector: `involvedObject.kind=Node,involvedObject.name=${AA_NODE},reason=OwnershipRecordUnreadable`,
      });
      return events.items[0]?.message;
    });
    expect(event).toMatch(/is not a valid ownership record .*moved to \.lockstep-agent-record\.unreadable-/);
    expect(event).toContain("orphan-file");
    expect(await installFailed("AppArmorProfile", "loaded-before", "NameTaken")).toContain(
      '"lockstep.loaded-before" is already loaded',
    );
    // The file of a current object is that object's by contract and stays installed; the orphan and
    // the loaded profile stay where they are.
    expect(await holds(AA_NODE, "SeccompProfile", "kept-file")).toBe(true);
    expect(existsSync(join(appArmorAgent.seccompDir, "orphan-file.json"))).toBe(true);
    expect(kernelList()).toContain("lockstep.loaded-before (enforce)");
    const aside = readdirSync(appArmorAgent.seccompDir).filter((f) =>
      f.startsWith(`${OWNERSHIP_RECORD_FILE}.unreadable-`),
    );
    expect(aside).toHaveLength(1);
    const record = JSON.parse(readFileSync(recordFile, "utf8"));
    expect(record.seccomp).toContain("kept-file");
    expect(record.seccomp).not.toContain("orphan-file");
    expect(record.appArmor).toEqual({});
  });
});

describe("a profile in use by a pod bound to the node (invariant 6, per node)", () => {
  const seccompFile = () => join(appArmorAgent.seccompDir, "in-use.json");
  const loaded = () => kernelList().includes("lockstep.in-use (enforce)");
  const specs = (extra: Record<string, unknown>) =>
    Promise.all([
      applyProfile(cp.kubeConfig(), "SeccompProfile", "in-use", {
        defaultAction: "SCMP_ACT_ALLOW",
        nodeSelector: { pool: "web" },
        ...extra,
      }),
      applyProfile(cp.kubeConfig(), "AppArmorProfile", "in-use", { nodeSelector: { pool: "web" }, ...extra }),
    ]);
  const labelled = async () =>
    (await holds(AA_NODE, "SeccompProfile", "in-use")) && holds(AA_NODE, "AppArmorProfile", "in-use");
  const unlabelled = async () =>
    !(await holds(AA_NODE, "SeccompProfile", "in-use")) &&
    !(await holds(AA_NODE, "AppArmorProfile", "in-use"));
  const stillInstalled = () => {
    expect(existsSync(seccompFile())).toBe(true);
    expect(loaded()).toBe(true);
  };

  it("keeps the file and the loaded profile through disabled, a nodeSelector change and a node relabel; they go when the pod goes", async () => {
    await specs({});
    await waitFor("in-use labelled", labelled);
    await createPodOn(AA_NODE, "uses-in-use", {
      [seccompKey("in-use")]: IN_USE_LABEL_VALUE,
      [appArmorKey("in-use")]: IN_USE_LABEL_VALUE,
    });

    await specs({ disabled: true });
    await waitFor("labels gone at once when disabled", unlabelled);
    stillInstalled();

    await specs({ nodeSelector: { pool: "batch" } });
    await waitFor("still unlabelled with a nodeSelector that does not match", unlabelled);
    stillInstalled();

    await specs({});
    await waitFor("labelled again", labelled);
    await core.patchNode(
      { name: AA_NODE, body: { metadata: { labels: { pool: "db" } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await waitFor("labels gone when the node is relabelled", unlabelled);
    stillInstalled();

    // The kubelet reports the pod finished: nothing on this node uses the profiles any more.
    await core.patchNamespacedPodStatus(
      { namespace: "default", name: "uses-in-use", body: { status: { phase: "Failed" } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await waitFor("file removed and profile unloaded", async () => !existsSync(seccompFile()) && !loaded());
    await core.patchNode(
      { name: AA_NODE, body: { metadata: { labels: { pool: "web" } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await waitFor("installed again on the relabelled node", labelled);
  });

  it("keeps them after the object is deleted until the pod using them is deleted", async () => {
    await createPodOn(AA_NODE, "uses-deleted", {
      [seccompKey("in-use")]: IN_USE_LABEL_VALUE,
      [appArmorKey("in-use")]: IN_USE_LABEL_VALUE,
    });
    await Promise.all([
      deleteProfile(cp.kubeConfig(), "SeccompProfile", "in-use"),
      deleteProfile(cp.kubeConfig(), "AppArmorProfile", "in-use"),
    ]);
    await waitFor("labels gone with the objects", unlabelled);
    stillInstalled();
    await core.deleteNamespacedPod({ namespace: "default", name: "uses-deleted", gracePeriodSeconds: 0 });
    await waitFor("file removed and profile unloaded", async () => !existsSync(seccompFile()) && !loaded());
  });
});

describe("the agent's folder", () => {
  it("leaves foreign entries alone, reports the names they take, and installs everything else", async () => {
    const dir = plainAgent.seccompDir;
    // Created after the agent's first start, so not adopted: a file the agent did not write.
    writeFileSync(join(dir, "stray.json"), "{}\n");
    for (const name of ["taken-dir", "taken-fifo", "taken-link", "stray", "fine"])
      await applyProfile(cp.kubeConfig(), "SeccompProfile", name, { defaultAction: "SCMP_ACT_ALLOW" });
    await waitFor("fine held", () => holds(PLAIN_NODE, "SeccompProfile", "fine"));
    expect(await installFailed("SeccompProfile", "taken-dir", "NameTaken")).toContain(
      "taken-dir.json in the agent's folder is a directory",
    );
    expect(await installFailed("SeccompProfile", "taken-fifo", "NameTaken")).toContain("is a FIFO");
    expect(await installFailed("SeccompProfile", "taken-link", "NameTaken")).toContain("is a symbolic link");
    expect(await installFailed("SeccompProfile", "stray", "NameTaken")).toContain(
      "is a file that the agent did not write",
    );
    const labels = await nodeLabels(PLAIN_NODE);
    for (const name of ["taken-dir", "taken-fifo", "taken-link", "stray"]) {
      expect(await holds(PLAIN_NODE, "SeccompProfile", name)).toBe(false);
      expect(labels[failedLabelKey("seccomp", name)]).toBe("NameTaken");
    }

    for (const name of ["taken-dir", "taken-fifo", "taken-link", "stray", "fine"])
      await deleteProfile(cp.kubeConfig(), "SeccompProfile", name);
    await waitFor("fine removed", async () => !existsSync(join(dir, "fine.json")));
    expect(lstatSync(join(dir, "taken-dir.json")).isDirectory()).toBe(true);
    expect(lstatSync(join(dir, "taken-fifo.json")).isFIFO()).toBe(true);
    expect(readlinkSync(join(dir, "taken-link.json"))).toBe(join(cp.workDir, "outside.txt"));
    expect(readFileSync(join(cp.workDir, "outside.txt"), "utf8")).toBe("not the agent's\n");
    expect(readFileSync(join(dir, "stray.json"), "utf8")).toBe("{}\n");
    expect(lstatSync(join(dir, ".tmp-0123456789abcdef")).isDirectory()).toBe(true);
    expect(plainAgent.process.isRunning()).toBe(true);
  });

  it("starts again with the same foreign entries present", async () => {
    await plainAgent.restart();
    expect(plainAgent.process.isRunning()).toBe(true);
  });
});
