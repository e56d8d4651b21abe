// The node-side trust boundary, against the real control plane with real agent processes and the real
// apparmor_parser (the kernel's half is the fake securityfs of fake-apparmor-parser.sh): the kernel
// gets exactly the one profile an object says, names the agent did not load are never replaced or
// removed, a profile stays on a node while a pod bound there uses it, and foreign entries in the
// agent's folder are left alone without stopping anything else.
import { execFileSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
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
import { failedLabelKey, profileLabelKey } from "../../src/api/labels.ts";
import { kubeErrorMessage } from "../../src/kube/errors.ts";
import { type AgentProcess, installAgentPrerequisites, startAgent, stopAgents } from "../harness/agents.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import {
  applyProfile,
  deleteProfile,
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
/** Loaded by "someone else" (the container runtime) before the agent ever ran. */
const RUNTIME_PROFILES = ["docker-default", "snap.lxd.lxc"];

const seccompKey = (name: string) => profileLabelKey("seccomp", name);
const appArmorKey = (name: string) => profileLabelKey("apparmor", name);
const holds = (node: string, kind: ProfileObjectKind, name: string) =>
  nodeHoldsProfile(cp.kubeConfig(), kind, name, node);
const nodeLabels = async (node: string) => (await core.readNode({ name: node })).metadata?.labels ?? {};
const kernelList = () =>
  readFileSync(join(appArmorAgent.securityfs as string, "apparmor", "profiles"), "utf8")
    .split("\n")
    .filter(Boolean);

async function installFailed(kind: "AppArmorProfile" | "SeccompProfile", name: string, reason: string) {
  return waitFor(`an InstallFailed Event for ${kind} ${name} with ${reason}`, async () => {
    const events = await core.listNamespacedEvent({
      namespace: "default",
      fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name},reason=InstallFailed`,
    });
    return events.items.find((e) => e.message?.includes(`: ${reason}: `))?.message;
  });
}

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
      rawPolicy: "profile local-include {\n  include if exists <local/local-include>\n}\n",
    }).then(
      () => "accepted",
      (e: unknown) => kubeErrorMessage(e),
    );
    expect(refused).toMatch(/spec\.rawPolicy: .*may include only <tunables\/...> and <abstractions\/...>/);
  });

  it.each([
    [
      "second-profile",
      "profile second-profile {\n}\nprofile cri-containerd.apparmor.d flags=(unconfined) {\n}\n",
      'line 3: "profile cri-containerd.apparmor.d flags=(unconfined) {": declares a second profile "cri-containerd.apparmor.d"',
    ],
    [
      "path-profile",
      "profile path-profile {\n}\n/usr/sbin/sshd {\n}\n",
      'declares a second profile "/usr/sbin/sshd"',
    ],
    [
      "other-namespace",
      // The comment satisfies the CRD's cheap "declares profile <name>" rule; the parser is not fooled.
      "# profile other-namespace\nprofile :lockstep-evil:other-namespace {\n}\n",
      'loads "other-namespace" into the AppArmor policy namespace "lockstep-evil"',
    ],
    [
      "with-hat",
      "profile with-hat {\n  ^escape {\n  }\n}\n",
      'line 2: "^escape {": declares the hat "with-hat//escape"',
    ],
    ["attached", "profile attached /usr/bin/** {\n}\n", "the profile has an attachment"],
    [
      "attached-by-variable",
      "@{bins}=/usr/bin/*\nprofile attached-by-variable @{bins} {\n}\n",
      "the profile has an attachment",
    ],
    ["unconfined-flag", "profile unconfined-flag flags=(unconfined) {\n}\n", "flags set mode unconfined"],
    ["kill-flag", "profile kill-flag flags=(kill) {\n}\n", "flags set mode kill"],
    [
      "complain-flag",
      "profile complain-flag flags = ( complain ) {\n}\n",
      "flags set mode complain, but spec.mode is enforce",
    ],
    [
      "hidden-include",
      'profile hidden-include {\n  "/tmp/#" r, include "/etc/hostname"\n}\n',
      'line 2: "\\"/tmp/#\\" r, include \\"/etc/hostname\\"": includes "/etc/hostname"',
    ],
  ])(
    "%s: refused by apparmor_parser's own account of it, naming the line; nothing loaded, no label",
    async (name, rawPolicy, why) => {
      await applyProfile(cp.kubeConfig(), "AppArmorProfile", name, { rawPolicy });
      expect(await installFailed("AppArmorProfile", name, "InvalidPolicy")).toContain(why);
      expect(kernelList().filter((line) => line.startsWith(name))).toEqual([]);
      expect(await holds(AA_NODE, "AppArmorProfile", name)).toBe(false);
      // The runtime's own profiles were never touched, let alone replaced.
      expect(kernelList()).toEqual(expect.arrayContaining(RUNTIME_PROFILES.map((p) => `${p} (enforce)`)));
    },
  );

  it("loads the container runtimes' published profiles unchanged, in the mode spec.mode says", async () => {
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
        "cri-containerd.apparmor.d (enforce)",
        "nerdctl-default (enforce)",
        "cri-containerd-no-tunables (complain)",
      ]),
    );
    // A change of spec.mode alone reloads the same text in the new mode.
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "nerdctl-default", {
      rawPolicy: published("nerdctl-default.apparmor"),
      mode: "complain",
    });
    await waitFor("nerdctl-default in complain mode", async () =>
      kernelList().includes("nerdctl-default (complain)"),
    );
  });

  it("loads a policy whose comment mentions an include, as written", async () => {
    const rawPolicy =
      "#include <tunables/global>\n# Site additions would go in include <local/commented>; none here.\nprofile commented {\n  #include <abstractions/base>\n}\n";
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "commented", { rawPolicy });
    await waitFor("commented held", () => holds(AA_NODE, "AppArmorProfile", "commented"));
    expect(kernelList()).toContain("commented (enforce)");
  });

  it("an invalid update keeps the version that is loaded, without its label; fixed, it is labelled again", async () => {
    const good = "profile keeper {\n  /etc/** r,\n}\n";
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
    expect(kernelList()).toEqual(expect.arrayContaining(["keeper (enforce)", "docker-default (enforce)"]));
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "keeper", { rawPolicy: good });
    await waitFor("keeper held again", () => holds(AA_NODE, "AppArmorProfile", "keeper"));
    expect((await nodeLabels(AA_NODE))[failedLabelKey("apparmor", "keeper")]).toBeUndefined();
  });
});

describe("kernel names the agent did not load", () => {
  it("are never replaced: NameTaken, no label; deleting the object leaves the runtime's profile loaded", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "docker-default", {
      rawPolicy: published("docker-default.apparmor"),
    });
    expect(await installFailed("AppArmorProfile", "docker-default", "NameTaken")).toContain(
      'an AppArmor profile named "docker-default" is already loaded on this node and Lockstep did not load it',
    );
    expect(await holds(AA_NODE, "AppArmorProfile", "docker-default")).toBe(false);
    expect((await nodeLabels(AA_NODE))[failedLabelKey("apparmor", "docker-default")]).toBe("NameTaken");
    await deleteProfile(cp.kubeConfig(), "AppArmorProfile", "docker-default");
    // A later sync (the profile list changed) has every chance to unload it; it must not.
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "after-delete", {});
    await waitFor("after-delete held", () => holds(AA_NODE, "AppArmorProfile", "after-delete"));
    expect(kernelList().filter((l) => l.startsWith("docker-default "))).toEqual(["docker-default (enforce)"]);
  });

  it("what the agent loaded is remembered across a restart: deleted while it was down, it is unloaded after", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "left-behind", {});
    await waitFor("left-behind loaded", async () => kernelList().includes("left-behind (enforce)"));
    await appArmorAgent.process.kill();
    await deleteProfile(cp.kubeConfig(), "AppArmorProfile", "left-behind");
    const record = JSON.parse(readFileSync(join(appArmorAgent.seccompDir, OWNERSHIP_RECORD_FILE), "utf8"));
    expect(Object.keys(record.appArmor)).toContain("left-behind");
    await appArmorAgent.restart();
    await waitFor("left-behind unloaded", async () => !kernelList().includes("left-behind (enforce)"));
    expect(kernelList()).toEqual(expect.arrayContaining(RUNTIME_PROFILES.map((p) => `${p} (enforce)`)));
  });
});

describe("a profile in use by a pod bound to the node (invariant 6, per node)", () => {
  const seccompFile = () => join(appArmorAgent.seccompDir, "in-use.json");
  const loaded = () => kernelList().includes("in-use (enforce)");
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
