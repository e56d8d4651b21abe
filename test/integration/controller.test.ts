// The controller against the real control plane. Node labels are placed the way agents place them,
// so status is tested on its own; the agents' own tests cover placing them for real.
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProfileStatus } from "../../src/api/common.ts";
import { PROFILE_EVENTS_NAMESPACE, SYNCED_REVISION_LABEL } from "../../src/api/constants.ts";
import { installReportEvent } from "../../src/api/install-report.ts";
import { failedLabelKey, profileLabelKey, selectorSyncedLabelKey } from "../../src/api/labels.ts";
import { isKubeError } from "../../src/kube/errors.ts";
import {
  type ControllerProcess,
  holdsLease,
  installControllerPrerequisites,
  startController,
} from "../harness/controller.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { applyProfile } from "../harness/profiles.ts";

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let objects: k8s.CustomObjectsApi;
const controllers: ControllerProcess[] = [];
const AGENT = { "lockstep.dev/agent": "0.1.0", "lockstep.dev/apparmor": "unavailable" };

async function readSeccomp(
  name: string,
): Promise<{ status?: ProfileStatus; metadata?: k8s.V1ObjectMeta } | undefined> {
  try {
    return await objects.getClusterCustomObject({
      group: "lockstep.dev",
      version: "v1alpha1",
      plural: "seccompprofiles",
      name,
    });
  } catch (error) {
    if (isKubeError(error, 404)) return undefined;
    throw error;
  }
}

function waitForStatus(name: string, what: string, check: (s: ProfileStatus) => boolean, timeoutMs = 30_000) {
  return waitFor(
    `${name}: ${what}`,
    async () => {
      const status = (await readSeccomp(name))?.status;
      return status && check(status) ? status : undefined;
    },
    { timeoutMs },
  );
}

async function labelNode(node: string, labels: Record<string, string | null>) {
  await core.patchNode(
    { name: node, body: { metadata: { labels } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
}

beforeAll(async () => {
  cp = await ControlPlane.start({ scheduler: false });
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  await installControllerPrerequisites(cp);
  await cp.addNode("node-1", { labels: AGENT });
  await cp.addNode("node-2", { labels: AGENT });
  controllers.push(await startController(cp, 1, { lease: [4, 3, 1] }));
  controllers.push(await startController(cp, 2, { lease: [4, 3, 1] }));
});

afterAll(async () => {
  await Promise.all(controllers.map((c) => c.process.stop()));
  await cp?.stop();
});

describe("profile status", () => {
  it("walks Pending -> Installing -> Installed, back to Installing when a node joins; kubectl get prints 2/3 then 3/3", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "web", {
      baseProfileName: "runtime/default",
      nodeSelector: { pool: "web" },
    });
    const pending = await waitForStatus("web", "Pending", (s) => s.phase === "Pending");
    expect(pending.ready).toBe("0/0");
    expect(pending.localhostProfile).toBe("lockstep/web.json");

    await labelNode("node-1", { pool: "web" });
    await labelNode("node-2", { pool: "web" });
    const installing = await waitForStatus(
      "web",
      "Installing 0/2",
      (s) => s.phase === "Installing" && s.ready === "0/2" && s.revision !== undefined,
    );
    const revision = installing.revision as string;
    expect(installing.missingNodes).toEqual([
      { node: "node-1", reason: "not installed yet" },
      { node: "node-2", reason: "not installed yet" },
    ]);

    // What a node's agent writes once it has installed web (ADR 0024).
    const installed = { [SYNCED_REVISION_LABEL.seccomp]: revision, [selectorSyncedLabelKey("pool")]: "web" };
    await labelNode("node-1", installed);
    await waitForStatus("web", "1/2", (s) => s.ready === "1/2");
    await labelNode("node-2", installed);
    await waitForStatus("web", "Installed 2/2", (s) => s.phase === "Installed" && s.ready === "2/2");

    await cp.addNode("node-3", { labels: { ...AGENT, pool: "web" } });
    await waitForStatus("web", "Installing 2/3", (s) => s.phase === "Installing" && s.ready === "2/3");
    const table = await cp.getTable("/apis/lockstep.dev/v1alpha1/seccompprofiles");
    expect(table.columns).toEqual(["NAME", "STATUS", "READY", "PROFILE", "AGE"]);
    expect(table.rows.find((r) => r[0] === "web")?.slice(0, 4)).toEqual([
      "web",
      "Installing",
      "2/3",
      "lockstep/web.json",
    ]);

    await labelNode("node-3", installed);
    await waitForStatus("web", "Installed 3/3", (s) => s.phase === "Installed" && s.ready === "3/3");
    const after = await cp.getTable("/apis/lockstep.dev/v1alpha1/seccompprofiles");
    expect(after.rows.find((r) => r[0] === "web")?.slice(0, 3)).toEqual(["web", "Installed", "3/3"]);
    // A node behind the revision does not count as installed, nor does a per-profile label (the
    // agents before ADR 0024, never released).
    await labelNode("node-3", {
      [SYNCED_REVISION_LABEL.seccomp]: String(BigInt(revision) - 1n),
      [profileLabelKey("seccomp", "web")]: installing.version as string,
    });
    await waitForStatus("web", "2/3 with a node behind", (s) => s.ready === "2/3");
    await labelNode("node-3", { ...installed, [profileLabelKey("seccomp", "web")]: null });
  });

  it("reports a base-profile cycle and a missing base as Invalid, and recovers when fixed", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "child", { baseProfileName: "parent" });
    const missing = await waitForStatus("child", "Invalid (missing base)", (s) => s.phase === "Invalid");
    expect(missing.conditions?.[0]?.message).toMatch(/base profile "parent" not found/);

    await applyProfile(cp.kubeConfig(), "SeccompProfile", "parent", { baseProfileName: "child" });
    const cycle = await waitForStatus("child", "Invalid (cycle)", (s) =>
      Boolean(s.conditions?.[0]?.message.includes("cycle")),
    );
    expect(cycle.conditions?.[0]?.message).toMatch(/inheritance cycle child -> parent -> child/);

    await applyProfile(cp.kubeConfig(), "SeccompProfile", "parent", { baseProfileName: "runtime/default" });
    await waitForStatus("child", "recovered", (s) => s.phase !== "Invalid");
  });
});

describe("why a node lacks a profile", () => {
  it("is Degraded with the agent's InstallFailed reason, records an Event, and is Installed once the label lands", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "fails", {
      defaultAction: "SCMP_ACT_ALLOW",
      nodeSelector: { pool: "web" },
    });
    const installing = await waitForStatus(
      "fails",
      "Installing",
      (s) => s.phase === "Installing" && s.revision !== undefined,
    );
    const version = installing.version as string;
    const profile = await readSeccomp("fails");
    // Exactly as an agent reports it: the one shared format.
    await core.createNamespacedEvent({
      namespace: PROFILE_EVENTS_NAMESPACE,
      body: installReportEvent(
        {
          kind: "seccomp",
          name: "fails",
          uid: profile?.metadata?.uid,
          node: "node-2",
          version,
          reason: "WriteFailed",
          detail: "cannot write /var/lib/kubelet/seccomp/lockstep/fails.json: no space left",
        },
        new Date(),
      ) as unknown as k8s.CoreV1Event,
    });
    // The agent marks the failure on its Node; its Event says why (the label and the Event reach the
    // controller through different watches: the reason is the Event's once both are in).
    const failed = failedLabelKey("seccomp", "fails");
    await labelNode("node-2", { [failed]: "WriteFailed" });
    const degraded = await waitForStatus(
      "fails",
      "Degraded with the Event's reason",
      (s) => s.phase === "Degraded" && s.missingNodes?.[0]?.reason.startsWith("WriteFailed:") === true,
    );
    expect(degraded.missingNodes?.[0]).toEqual({
      node: "node-2",
      reason: "WriteFailed: cannot write /var/lib/kubelet/seccomp/lockstep/fails.json: no space left",
    });
    await waitFor("a Degraded Event from the controller", async () =>
      (
        await core.listNamespacedEvent({
          namespace: "default",
          fieldSelector: "involvedObject.name=fails,source=lockstep-controller",
        })
      ).items.find((e) => e.reason === "InstallFailed" && e.type === "Warning"),
    );

    const installed = {
      [SYNCED_REVISION_LABEL.seccomp]: installing.revision as string,
      [selectorSyncedLabelKey("pool")]: "web",
    };
    for (const n of ["node-1", "node-2", "node-3"]) await labelNode(n, { ...installed, [failed]: null });
    await waitForStatus("fails", "Installed", (s) => s.phase === "Installed" && s.ready === "3/3");
  });

  it("records an Invalid Event naming the missing base, and serves metrics and readiness on the leader", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "orphan", { baseProfileName: "nowhere" });
    await waitForStatus("orphan", "Invalid", (s) => s.phase === "Invalid");
    const event = await waitFor("an Invalid Event", async () =>
      (
        await core.listNamespacedEvent({
          namespace: "default",
          fieldSelector: "involvedObject.name=orphan,source=lockstep-controller",
        })
      ).items.find((e) => e.type === "Warning"),
    );
    expect(event.message).toMatch(/"nowhere"/);

    const ready = await Promise.all(
      controllers.map(async (c) => (await fetch(`http://127.0.0.1:${c.healthPort}/readyz`)).status),
    );
    expect(ready).toEqual([200, 200]);
    const metrics = (
      await Promise.all(
        controllers.map(async (c) => await (await fetch(`http://127.0.0.1:${c.healthPort}/metrics`)).text()),
      )
    ).find((text) => text.includes("lockstep_controller_is_leader 1"));
    expect(metrics).toMatch(/lockstep_controller_reconciles_total\{kind="seccomp",result="ok"\} [1-9]/);
    await waitFor("the phase gauge to count the Invalid profile", async () => {
      const leader = await Promise.all(
        controllers.map(async (c) => await (await fetch(`http://127.0.0.1:${c.healthPort}/metrics`)).text()),
      );
      return leader.some((t) => /lockstep_controller_profiles\{kind="seccomp",phase="Invalid"\} 1/.test(t));
    });
  });
});

describe("in-use protection", () => {
  it("reads revision labels as the scheduler does: caught up counts, behind or failed does not; status writes keep the revision", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "rev", {
      defaultAction: "SCMP_ACT_ALLOW",
      nodeSelector: { tier: "rev" },
    });
    await labelNode("node-1", { tier: "rev" });
    await labelNode("node-2", { tier: "rev" });
    const first = await waitForStatus(
      "rev",
      "Installing 0/2",
      (s) => s.ready === "0/2" && s.revision !== undefined,
    );
    const revision = first.revision as string;
    const caughtUp = { [SYNCED_REVISION_LABEL.seccomp]: revision, [selectorSyncedLabelKey("tier")]: "rev" };
    await labelNode("node-1", caughtUp);
    await waitForStatus("rev", "1/2", (s) => s.ready === "1/2");
    const failed = failedLabelKey("seccomp", "rev");
    await labelNode("node-2", { ...caughtUp, [failed]: "NameTaken" });
    const degraded = await waitForStatus("rev", "Degraded", (s) => s.phase === "Degraded");
    expect(degraded.missingNodes).toEqual([
      { node: "node-2", reason: "NameTaken (see the agent's InstallFailed Event)" },
    ]);
    await labelNode("node-2", { [failed]: null });
    const installed = await waitForStatus(
      "rev",
      "Installed 2/2",
      (s) => s.phase === "Installed" && s.ready === "2/2",
    );
    // Three status writes later, the revision is the one of the first: nodes need not move for them.
    expect(installed.revision).toBe(revision);

    // An update has a newer revision: both nodes are behind until their agents catch up.
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "rev", {
      defaultAction: "SCMP_ACT_LOG",
      nodeSelector: { tier: "rev" },
    });
    const updated = await waitForStatus("rev", "Installing 0/2 after the update", (s) => s.ready === "0/2");
    expect(BigInt(updated.revision as string)).toBeGreaterThan(BigInt(revision));
    // A node relabelled out of the nodeSelector no longer counts; one whose agent recorded another value is behind.
    await labelNode("node-1", { [SYNCED_REVISION_LABEL.seccomp]: updated.revision as string });
    await waitForStatus("rev", "1/2 after the update", (s) => s.ready === "1/2");
    await labelNode("node-1", { [selectorSyncedLabelKey("tier")]: "other" });
    await waitForStatus("rev", "0/2 with a stale selector record", (s) => s.ready === "0/2");
  });

  it("keeps a profile used by a pod until the pod is deleted", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "used", { defaultAction: "SCMP_ACT_ALLOW" });
    await waitFor("the finalizer", async () =>
      (await readSeccomp("used"))?.metadata?.finalizers?.includes("lockstep.dev/in-use-protection"),
    );
    await core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "user", labels: { [profileLabelKey("seccomp", "used")]: "true" } },
        spec: { containers: [{ name: "c", image: "busybox" }] },
      },
    });
    await objects.deleteClusterCustomObject({
      group: "lockstep.dev",
      version: "v1alpha1",
      plural: "seccompprofiles",
      name: "used",
    });
    const terminating = await waitForStatus(
      "used",
      "Terminating, held by the pod",
      (s) => s.phase === "Terminating" && s.conditions?.[0]?.reason === "InUse",
    );
    expect(terminating.conditions?.[0]?.message).toMatch(/in use by default\/user/);
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await readSeccomp("used")).toBeDefined();

    await core.deleteNamespacedPod({ name: "user", namespace: "default", gracePeriodSeconds: 0 });
    await waitFor("the profile to be gone", async () => (await readSeccomp("used")) === undefined, {
      timeoutMs: 30_000,
    });
  });
});

describe("in-use protection ends with the pod's run", () => {
  it("lets a profile go when the only pods using it have Succeeded or Failed", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "batch", { defaultAction: "SCMP_ACT_ALLOW" });
    await waitFor("the finalizer", async () =>
      (await readSeccomp("batch"))?.metadata?.finalizers?.includes("lockstep.dev/in-use-protection"),
    );
    for (const [name, phase] of [
      ["done", "Succeeded"],
      ["crashed", "Failed"],
    ] as const) {
      await core.createNamespacedPod({
        namespace: "default",
        body: {
          metadata: { name, labels: { [profileLabelKey("seccomp", "batch")]: "true" } },
          spec: { nodeName: "node-1", restartPolicy: "Never", containers: [{ name: "c", image: "busybox" }] },
        },
      });
      // What the kubelet reports when the pod's containers have exited for good.
      await core.patchNamespacedPodStatus(
        { name, namespace: "default", body: { status: { phase } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    }
    await objects.deleteClusterCustomObject({
      group: "lockstep.dev",
      version: "v1alpha1",
      plural: "seccompprofiles",
      name: "batch",
    });
    await waitFor("the profile to be gone", async () => (await readSeccomp("batch")) === undefined, {
      timeoutMs: 30_000,
    });
    // The finished pods are still there: they did not hold it.
    for (const name of ["done", "crashed"])
      expect((await core.readNamespacedPod({ name, namespace: "default" })).status?.phase).toMatch(
        /Succeeded|Failed/,
      );
  });
});

describe("high availability", () => {
  it("hands over to the standby when the leader is killed, and loses no reconcile", async () => {
    const coordination = cp.kubeConfig().makeApiClient(k8s.CoordinationV1Api);
    const holder = async () =>
      (await coordination.readNamespacedLease({ name: "lockstep-controller", namespace: "lockstep-system" }))
        .spec?.holderIdentity ?? "";
    const identity = await holder();
    const leader = controllers.find((c) => holdsLease(c, identity)) as ControllerProcess;
    const standby = controllers.find((c) => c !== leader) as ControllerProcess;
    expect(leader).toBeDefined();

    await leader.process.kill();
    // Created while nobody leads: the new leader must pick it up from its initial list.
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "during-handover", {
      defaultAction: "SCMP_ACT_ALLOW",
    });
    await waitFor("the standby to take the lease", async () => holdsLease(standby, await holder()), {
      timeoutMs: 15_000,
    });
    await waitForStatus(
      "during-handover",
      "a status from the new leader",
      (s) => s.ready === "0/3" || s.ready === "3/3",
    );
  });
});
