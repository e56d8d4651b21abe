// The grants in docs/security.md, held on the real API server by deploy/'s RBAC plus its
// ValidatingAdmissionPolicies, each tested as the identity it constrains: the agent with a real
// pod-bound token, the controller and the webhook as their service accounts' users. For each narrowed
// grant the change the component needs passes and every other change is refused.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GROUP,
  IN_USE_FINALIZER,
  PROFILE_EVENTS_NAMESPACE,
  RECORDING_ANNOTATION,
  SECCOMP_PROFILE_PLURAL,
  serviceAccountUser,
  VERSION,
  WEBHOOK_CONFIGURATION_NAME,
} from "../../src/api/constants.ts";
import { INSTALL_REPORT_NODE_ANNOTATION, installReportEvent } from "../../src/api/install-report.ts";
import { RECORDED_FROM_ANNOTATION } from "../../src/api/profile-recording.ts";
import { outcome, untilEnforced } from "../harness/admission.ts";
import { agentKubeconfig, installAgentPrerequisites } from "../harness/agents.ts";
import { installControllerPrerequisites } from "../harness/controller.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { applyProfile } from "../harness/profiles.ts";

const repo = join(import.meta.dirname, "../..");
const SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:lockstep-system"];
const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);

let cp: ControlPlane;

beforeAll(async () => {
  cp = await ControlPlane.start({ scheduler: false });
  await installAgentPrerequisites(cp);
  await installControllerPrerequisites(cp);
  for (const file of [
    "deploy/webhook/rbac.yaml",
    "deploy/webhook/admission-policy.yaml",
    "deploy/webhook/mutating-webhook.yaml",
  ])
    await cp.applyFile(join(repo, file));
  await cp.addNode("node-a");
  await cp.addNode("node-b");
});

afterAll(async () => {
  await cp?.stop();
});

let nodeAKubeconfig: Promise<string> | undefined;
/** The agent's client with a pod-bound token for node-a; the pod behind the token is created once. */
async function agentOnNodeA(): Promise<k8s.CoreV1Api> {
  nodeAKubeconfig ??= agentKubeconfig(cp, "node-a");
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(await nodeAKubeconfig);
  return kc.makeApiClient(k8s.CoreV1Api);
}

describe("the agent (pod-bound token of a pod on node-a)", () => {
  let asAgent: k8s.CoreV1Api;
  const patchNodeA = (metadataOrSpec: object) =>
    outcome(asAgent.patchNode({ name: "node-a", body: metadataOrSpec }, merge));

  beforeAll(async () => {
    asAgent = await agentOnNodeA();
    await untilEnforced("lockstep-agent-own-node-labels", () =>
      asAgent.patchNode(
        { name: "node-a", body: { metadata: { annotations: { probe: "x" } } }, dryRun: "All" },
        merge,
      ),
    );
  });

  it("may set and remove the labels it writes on its own Node", async () => {
    const written = {
      "lockstep.dev/agent": "0.1.0",
      "lockstep.dev/apparmor": "unavailable",
      "lockstep.dev/seccomp-revision": "12",
      "lockstep.dev/apparmor-revision": "12",
      "failed.seccomp.lockstep.dev/web": "LoadFailed",
      "failed.apparmor.lockstep.dev/web": "LoadFailed",
      "selector.lockstep.dev/pool": "web",
    };
    expect(await patchNodeA({ metadata: { labels: written } })).toBe("allowed");
    const removed = Object.fromEntries(Object.keys(written).map((key) => [key, null]));
    expect(await patchNodeA({ metadata: { labels: removed } })).toBe("allowed");
  });

  it("may not set or remove a per-profile label, nor another key of Lockstep's domain (ADR 0024 retired them)", async () => {
    const refused =
      /^403: .*the Lockstep agent may only change the labels lockstep\.dev\/agent, .* and labels under failed\.seccomp\.lockstep\.dev\//;
    for (const key of ["seccomp.lockstep.dev/web", "apparmor.lockstep.dev/web", "lockstep.dev/other"])
      expect(await patchNodeA({ metadata: { labels: { [key]: "abc" } } }), key).toMatch(refused);
    // One an administrator left there stays: the agent may not remove it either.
    const admin = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    await admin.patchNode(
      { name: "node-a", body: { metadata: { labels: { "seccomp.lockstep.dev/web": "abc" } } } },
      merge,
    );
    try {
      expect(await patchNodeA({ metadata: { labels: { "seccomp.lockstep.dev/web": null } } })).toMatch(
        refused,
      );
      expect((await admin.readNode({ name: "node-a" })).metadata?.labels?.["seccomp.lockstep.dev/web"]).toBe(
        "abc",
      );
    } finally {
      await admin.patchNode(
        { name: "node-a", body: { metadata: { labels: { "seccomp.lockstep.dev/web": null } } } },
        merge,
      );
    }
  });

  it("may not set ownerReferences (the garbage collector would delete the Node)", async () => {
    const owner = await cp.kubeConfig().makeApiClient(k8s.CoreV1Api).readNode({ name: "node-b" });
    const ownerReferences = [{ apiVersion: "v1", kind: "Node", name: "node-b", uid: owner.metadata?.uid }];
    expect(await patchNodeA({ metadata: { ownerReferences } })).toMatch(
      /^403: .*the Lockstep agent may only change labels: spec \(taints\), annotations, ownerReferences and finalizers stay as they are/,
    );
  });

  it("may not add a finalizer (the Node could no longer be deleted)", async () => {
    expect(await patchNodeA({ metadata: { finalizers: ["example.com/keep"] } })).toMatch(
      /^403: .*may only change labels: spec \(taints\)/,
    );
  });

  it("may not change annotations", async () => {
    expect(await patchNodeA({ metadata: { annotations: { "example.com/note": "x" } } })).toMatch(
      /^403: .*may only change labels: spec \(taints\)/,
    );
  });

  it("may not change taints", async () => {
    expect(
      await patchNodeA({ spec: { taints: [{ key: "example.com/drain", effect: "NoSchedule" }] } }),
    ).toMatch(/^403: .*may only change labels: spec \(taints\)/);
    expect(await patchNodeA({ spec: { unschedulable: true } })).toMatch(/^403: /);
  });

  it("may not change another Node, nor a label outside Lockstep's prefixes", async () => {
    expect(
      await outcome(
        asAgent.patchNode(
          { name: "node-b", body: { metadata: { labels: { "seccomp.lockstep.dev/web": "abc" } } } },
          merge,
        ),
      ),
    ).toMatch(/^403: .*may only change its own Node \(node-a\), not node-b/);
    expect(
      await patchNodeA({ metadata: { labels: { "node-role.kubernetes.io/control-plane": "" } } }),
    ).toMatch(/^403: .*may only change the labels lockstep\.dev\/agent, /);
  });

  it("leaves node-a as it was after every refused change", async () => {
    const node = await cp.kubeConfig().makeApiClient(k8s.CoreV1Api).readNode({ name: "node-a" });
    expect(node.metadata?.ownerReferences).toBeUndefined();
    expect(node.metadata?.finalizers).toBeUndefined();
    expect(node.metadata?.annotations?.["example.com/note"]).toBeUndefined();
    expect(node.spec?.taints ?? []).toEqual([]);
  });
});

describe("install reports (Events that tell the controller why a node lacks a profile)", () => {
  const report = (node: string) =>
    installReportEvent(
      { kind: "seccomp", name: "web", node, version: "abc", reason: "WriteFailed", detail: "disk full" },
      new Date(),
    ) as unknown as k8s.CoreV1Event;
  const create = (api: k8s.CoreV1Api, body: k8s.CoreV1Event) =>
    outcome(api.createNamespacedEvent({ namespace: PROFILE_EVENTS_NAMESPACE, body }));
  let asAgent: k8s.CoreV1Api;
  let asAdmin: k8s.CoreV1Api;

  beforeAll(async () => {
    asAgent = await agentOnNodeA();
    asAdmin = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    await untilEnforced("lockstep-agent-own-install-reports", () =>
      asAdmin.createNamespacedEvent({
        namespace: PROFILE_EVENTS_NAMESPACE,
        body: report("node-a"),
        dryRun: "All",
      }),
    );
  });

  it("may be written by the agent about its own node", async () => {
    expect(await create(asAgent, report("node-a"))).toBe("allowed");
  });

  it("may not be written by the agent about another node", async () => {
    expect(await create(asAgent, report("node-b"))).toMatch(
      /^403: .*the Lockstep agent may only report about its own node \(node-a\), not node-b/,
    );
  });

  it("may not be written by anyone else, even a cluster admin, through either Events API", async () => {
    expect(await create(asAdmin, report("node-a"))).toMatch(
      /^403: .*only the Lockstep agent may write an Event annotated lockstep\.dev\/node/,
    );
    const eventsV1 = cp.kubeConfig().makeApiClient(k8s.EventsV1Api);
    const body = {
      // events.k8s.io validates names strictly: no trailing dot in generateName.
      metadata: { generateName: "web-", annotations: report("node-a").metadata?.annotations },
      eventTime: new k8s.V1MicroTime(),
      reportingController: "example.com/forger",
      reportingInstance: "forger",
      action: "Install",
      reason: "InstallFailed",
      type: "Warning",
      regarding: { apiVersion: "lockstep.dev/v1alpha1", kind: "SeccompProfile", name: "web" },
    } as k8s.EventsV1Event;
    expect(
      await outcome(eventsV1.createNamespacedEvent({ namespace: PROFILE_EVENTS_NAMESPACE, body })),
    ).toMatch(/^403: .*only the Lockstep agent may write an Event annotated/);
  });

  it("may not be turned into another node's report by whoever may update Events", async () => {
    const created = await asAgent.createNamespacedEvent({
      namespace: PROFILE_EVENTS_NAMESPACE,
      body: report("node-a"),
    });
    const name = created.metadata?.name as string;
    const moved = { metadata: { annotations: { [INSTALL_REPORT_NODE_ANNOTATION]: "node-b" } } };
    expect(
      await outcome(
        asAdmin.patchNamespacedEvent({ name, namespace: PROFILE_EVENTS_NAMESPACE, body: moved }, merge),
      ),
    ).toMatch(/^403: .*only the Lockstep agent may write/);
    // An Event that stops being a report (its annotation removed) is no one's report: allowed.
    const unmarked = { metadata: { annotations: { [INSTALL_REPORT_NODE_ANNOTATION]: null } } };
    expect(
      await outcome(
        asAdmin.patchNamespacedEvent({ name, namespace: PROFILE_EVENTS_NAMESPACE, body: unmarked }, merge),
      ),
    ).toBe("allowed");
  });
});

describe("the controller (lockstep-controller's user)", () => {
  let asController: k8s.CustomObjectsApi;
  const target = { group: GROUP, version: VERSION, plural: SECCOMP_PROFILE_PLURAL, name: "guarded" };
  const patchProfile = (body: object) =>
    outcome(asController.patchClusterCustomObject({ ...target, body }, merge));

  beforeAll(async () => {
    asController = (await cp.kubeConfigAs(serviceAccountUser("controller"), SA_GROUPS)).makeApiClient(
      k8s.CustomObjectsApi,
    );
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "guarded", { defaultAction: "SCMP_ACT_ALLOW" });
    // Someone else's finalizer, which the controller must leave alone.
    await cp
      .kubeConfig()
      .makeApiClient(k8s.CustomObjectsApi)
      .patchClusterCustomObject(
        { ...target, body: { metadata: { finalizers: ["example.com/backup"] } } },
        merge,
      );
    // The API server compiles the policy in the background: a forbidden change may pass until then.
    await untilEnforced("lockstep-controller-finalizer-and-status", () =>
      asController.patchClusterCustomObject(
        { ...target, body: { metadata: { labels: { probe: "x" } } }, dryRun: "All" },
        merge,
      ),
    );
  });

  it("may add and remove the in-use finalizer, and write status", async () => {
    expect(await patchProfile({ metadata: { finalizers: ["example.com/backup", IN_USE_FINALIZER] } })).toBe(
      "allowed",
    );
    expect(await patchProfile({ metadata: { finalizers: ["example.com/backup"] } })).toBe("allowed");
    expect(
      await outcome(
        asController.patchClusterCustomObjectStatus(
          { ...target, body: { status: { phase: "Pending" } } },
          merge,
        ),
      ),
    ).toBe("allowed");
  });

  it("may not change the spec, labels, annotations or another finalizer", async () => {
    const refused =
      /^403: .*the Lockstep controller may only add or remove its finalizers \(lockstep.dev\/in-use-protection, lockstep.dev\/recording-cleanup\) and write status/;
    expect(await patchProfile({ spec: { defaultAction: "SCMP_ACT_LOG" } })).toMatch(refused);
    expect(await patchProfile({ metadata: { labels: { team: "x" } } })).toMatch(refused);
    expect(await patchProfile({ metadata: { annotations: { note: "x" } } })).toMatch(refused);
    expect(await patchProfile({ metadata: { finalizers: [IN_USE_FINALIZER] } })).toMatch(refused);
    const stored = await cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi).getClusterCustomObject(target);
    expect(stored.spec.defaultAction).toBe("SCMP_ACT_ALLOW");
    expect(stored.metadata.finalizers).toEqual(["example.com/backup"]);
  });

  it("may not create or delete profiles, but a recording's recorder and results (ADR 0039)", async () => {
    const refused =
      /^403: .*the Lockstep controller may only update profiles, create a SeccompProfile annotated/;
    expect(await outcome(asController.deleteClusterCustomObject(target))).toMatch(refused);
    const create = (name: string, annotations?: Record<string, string>) =>
      outcome(
        asController.createClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: SECCOMP_PROFILE_PLURAL,
          body: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: "SeccompProfile",
            metadata: { name, ...(annotations ? { annotations } : {}) },
            spec: { defaultAction: "SCMP_ACT_LOG" },
          },
        }),
      );
    expect(await create("made-up")).toMatch(refused);
    expect(await create("rec-shop-web", { [RECORDING_ANNOTATION]: "shop/web" })).toBe("allowed");
    expect(await create("web-web", { [RECORDED_FROM_ANNOTATION]: "shop/web" })).toBe("allowed");
    // A recorder it may delete; a recording's result is the user's from then on.
    expect(await outcome(asController.deleteClusterCustomObject({ ...target, name: "rec-shop-web" }))).toBe(
      "allowed",
    );
    expect(await outcome(asController.deleteClusterCustomObject({ ...target, name: "web-web" }))).toMatch(
      refused,
    );
  });
});

describe("the webhook (lockstep-webhook's user)", () => {
  let asWebhook: k8s.AdmissionregistrationV1Api;
  const patchConfig = (ops: object[]) =>
    outcome(
      asWebhook.patchMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME, body: ops }, jsonPatch),
    );
  const refused = /^403: .*the Lockstep webhook may only change clientConfig.caBundle of lockstep-webhook/;

  beforeAll(async () => {
    asWebhook = (await cp.kubeConfigAs(serviceAccountUser("webhook"), SA_GROUPS)).makeApiClient(
      k8s.AdmissionregistrationV1Api,
    );
    await untilEnforced("lockstep-webhook-ca-bundle-only", () =>
      asWebhook.patchMutatingWebhookConfiguration(
        {
          name: WEBHOOK_CONFIGURATION_NAME,
          body: [{ op: "replace", path: "/webhooks/0/failurePolicy", value: "Ignore" }],
          dryRun: "All",
        },
        jsonPatch,
      ),
    );
  });

  it("may publish caBundle in its own configuration", async () => {
    const bundle = Buffer.from(cp.ca.certPem).toString("base64");
    expect(await patchConfig([{ op: "add", path: "/webhooks/0/clientConfig/caBundle", value: bundle }])).toBe(
      "allowed",
    );
  });

  it("may not change its rules, where it is called, its failure policy, its conditions or its metadata", async () => {
    const base = "/webhooks/0";
    for (const op of [
      { op: "replace", path: `${base}/rules/0/operations`, value: ["CREATE", "UPDATE"] },
      { op: "replace", path: `${base}/clientConfig/service/path`, value: "/elsewhere" },
      { op: "replace", path: `${base}/failurePolicy`, value: "Ignore" },
      { op: "replace", path: `${base}/matchConditions/0/expression`, value: "false" },
      { op: "replace", path: `${base}/namespaceSelector`, value: {} },
      { op: "add", path: "/metadata/annotations", value: { note: "x" } },
    ])
      expect(await patchConfig([op]), op.path).toMatch(refused);
    const stored = await cp
      .kubeConfig()
      .makeApiClient(k8s.AdmissionregistrationV1Api)
      .readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME });
    expect(stored.webhooks?.[0]?.failurePolicy).toBe("Fail");
    expect(stored.webhooks?.[0]?.clientConfig.service?.path).toBe("/mutate");
  });

  it("may not touch any other webhook configuration", async () => {
    expect(
      await outcome(
        asWebhook.patchMutatingWebhookConfiguration(
          { name: "someone-else", body: [{ op: "add", path: "/metadata/labels", value: {} }] },
          jsonPatch,
        ),
      ),
    ).toMatch(/^403: /);
  });

  it("has no grant on webhook configurations at all with the cert-manager overlay", async () => {
    // The overlay's own patch of the ClusterRole, applied by the real API server (JSON Patch, `test` included).
    const kustomization = k8s.loadYaml<{
      patches: { target?: { kind: string; name: string }; patch?: string }[];
    }>(readFileSync(join(repo, "deploy-overlays/cert-manager/kustomization.yaml"), "utf8"));
    const rbacPatch = kustomization.patches.find(
      (p) => p.target?.kind === "ClusterRole" && p.target.name === "lockstep-webhook",
    );
    expect(rbacPatch?.patch).toBeDefined();
    await cp
      .kubeConfig()
      .makeApiClient(k8s.RbacAuthorizationV1Api)
      .patchClusterRole({ name: "lockstep-webhook", body: k8s.loadYaml(rbacPatch?.patch ?? "") }, jsonPatch);
    const bundle = Buffer.from(cp.ca.certPem).toString("base64");
    // The authorizer reads RBAC from an informer: the narrowed role takes effect a moment later.
    const refused = await waitFor("the narrowed ClusterRole to be enforced", async () => {
      const result = await patchConfig([
        { op: "add", path: "/webhooks/0/clientConfig/caBundle", value: bundle },
      ]);
      return result === "allowed" ? undefined : result;
    });
    expect(refused).toMatch(/^403: .*cannot patch resource "mutatingwebhookconfigurations"/);
    // It still reads the profiles and Nodes it needs.
    const asWebhookCore = (await cp.kubeConfigAs(serviceAccountUser("webhook"), SA_GROUPS)).makeApiClient(
      k8s.CoreV1Api,
    );
    expect(await outcome(asWebhookCore.readNode({ name: "node-a" }))).toBe("allowed");
  });
});
