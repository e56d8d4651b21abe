// End to end with the real kube-scheduler: three simulated nodes, a real agent process on each, the
// webhook process registered with the real API server. Pods only land where their profiles are.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYNCED_REVISION_LABEL } from "../../src/api/constants.ts";
import { failedLabelKey, profileLabelKey } from "../../src/api/labels.ts";
import { kubeErrorMessage } from "../../src/kube/errors.ts";
import { outcome, untilEnforced } from "../harness/admission.ts";
import {
  type AgentProcess,
  installAgentPrerequisites,
  startAgent,
  stopAgents,
  waitAgentReady,
} from "../harness/agents.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import {
  applyProfile,
  nodeHoldsProfile,
  type ProfileObjectKind,
  termGuardsProfile,
} from "../harness/profiles.ts";
import { installWebhook, type WebhookProcess } from "../harness/webhook.ts";

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let apps: k8s.AppsV1Api;
let webhook: WebhookProcess;
const agents: AgentProcess[] = [];
const agentOn = (node: string) => agents.find((a) => a.nodeName === node) as AgentProcess;
const NS = "shop";

const seccompPod = (name: string, profile: string, extra: Partial<k8s.V1PodSpec> = {}): k8s.V1Pod => ({
  metadata: { name, labels: { app: name } },
  spec: {
    containers: [
      {
        name: "web",
        image: "busybox",
        securityContext: {
          seccompProfile: { type: "Localhost", localhostProfile: `lockstep/${profile}.json` },
        },
      },
    ],
    ...extra,
  },
});

async function createPod(pod: k8s.V1Pod): Promise<string | undefined> {
  try {
    await core.createNamespacedPod({ namespace: NS, body: pod });
    return undefined;
  } catch (error) {
    return kubeErrorMessage(error);
  }
}

async function boundNode(name: string): Promise<string | undefined> {
  return (await core.readNamespacedPod({ name, namespace: NS })).spec?.nodeName;
}

async function waitForProfile(node: string, kind: ProfileObjectKind, name: string) {
  await waitFor(`${kind} ${name} on ${node}`, () => nodeHoldsProfile(cp.kubeConfig(), kind, name, node));
}

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  apps = cp.kubeConfig().makeApiClient(k8s.AppsV1Api);
  await cp.addNode("node-1", { labels: { pool: "web" } });
  await cp.addNode("node-2", { labels: { pool: "web" } });
  await cp.addNode("node-3", { labels: { pool: "batch" } });
  await installAgentPrerequisites(cp);
  agents.push(await startAgent(cp, "node-1", { appArmor: true }));
  agents.push(await startAgent(cp, "node-2"));
  agents.push(await startAgent(cp, "node-3"));
  webhook = await installWebhook(cp);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await waitFor("the shop service account", async () => {
    await core.readNamespacedServiceAccount({ name: "default", namespace: NS });
    return true;
  });
});

afterAll(async () => {
  await webhook?.stop();
  await stopAgents(agents);
  await cp?.stop();
});

describe("the scheduling guard", () => {
  it("binds all 10 replicas of a Deployment to the two nodes that have its profile, never the third", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "web", {
      baseProfileName: "runtime/default",
      nodeSelector: { pool: "web" },
    });
    await waitForProfile("node-1", "SeccompProfile", "web");
    await waitForProfile("node-2", "SeccompProfile", "web");
    const template = seccompPod("web", "web");
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 10,
          selector: { matchLabels: { app: "web" } },
          template: { metadata: template.metadata, spec: template.spec },
        },
      },
    });
    const pods = await waitFor(
      "10 web pods bound",
      async () => {
        const list = await core.listNamespacedPod({ namespace: NS, labelSelector: "app=web" });
        const bound = list.items.filter((p) => p.spec?.nodeName);
        return bound.length === 10 ? bound : undefined;
      },
      { timeoutMs: 90_000 },
    );
    for (const pod of pods) {
      expect(["node-1", "node-2"]).toContain(pod.spec?.nodeName);
      expect(pod.metadata?.labels?.[profileLabelKey("seccomp", "web")]).toBe("true");
    }
  });

  it("keeps a pod whose profile is on no node Pending, and lets new pods onto a node once it has the profile", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "batch-only", {
      defaultAction: "SCMP_ACT_ALLOW",
      nodeSelector: { tier: "gold" },
    });
    expect(await createPod(seccompPod("waiting", "batch-only"))).toBeUndefined();
    // Give the scheduler time to try: the pod must still be unbound.
    await waitFor("the scheduler to report the pod unschedulable", async () => {
      const pod = await core.readNamespacedPod({ name: "waiting", namespace: NS });
      return pod.status?.conditions?.some((c) => c.type === "PodScheduled" && c.status === "False");
    });
    expect(await boundNode("waiting")).toBeUndefined();

    await core.patchNode(
      { name: "node-3", body: { metadata: { labels: { tier: "gold" } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await waitForProfile("node-3", "SeccompProfile", "batch-only");
    await waitFor(
      "the waiting pod to be bound to node-3",
      async () => (await boundNode("waiting")) === "node-3",
      {
        timeoutMs: 90_000,
      },
    );
    // Relabelled into the nodeSelector, node-3 took the pod only once its agent had written the file:
    // the agent records the selector values it placed profiles by, and the pod requires them too.
    expect(existsSync(join(agentOn("node-3").seccompDir, "batch-only.json"))).toBe(true);
  });

  it("keeps a pod's own ORed affinity terms and nodeSelector, adding the requirement to each term", async () => {
    const pod = seccompPod("picky", "web", {
      nodeSelector: { "kubernetes.io/os": "linux" },
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["node-3"] }] },
              { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["node-2"] }] },
            ],
          },
        },
      },
    });
    expect(await createPod(pod)).toBeUndefined();
    const stored = await core.readNamespacedPod({ name: "picky", namespace: NS });
    expect(stored.spec?.nodeSelector).toEqual({ "kubernetes.io/os": "linux" });
    const terms =
      stored.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    // Each of the two terms is guarded in place: two terms in, two terms out.
    expect(terms).toHaveLength(2);
    for (const host of ["node-3", "node-2"])
      expect(
        terms?.some((t) =>
          t.matchExpressions?.some((e) => e.values?.[0] === host && e.key === "kubernetes.io/hostname"),
        ),
      ).toBe(true);
    for (const term of terms ?? []) expect(guardsWeb(term), JSON.stringify(term)).toBe(true);
    // node-3 lacks "web": of the two ORed choices only node-2 is allowed.
    await waitFor("picky to be bound", async () => boundNode("picky"));
    expect(await boundNode("picky")).toBe("node-2");
  });

  it("schedules AppArmor pods only onto nodes that have AppArmor and the profile", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "web-aa", {
      executables: ["/bin/busybox"],
      paths: { readOnly: ["/etc/**"] },
    });
    await waitForProfile("node-1", "AppArmorProfile", "web-aa");
    for (const [i, style] of ["field", "annotation"].entries()) {
      const name = `aa-${i}`;
      const pod: k8s.V1Pod =
        style === "field"
          ? {
              metadata: { name },
              spec: {
                containers: [
                  {
                    name: "web",
                    image: "busybox",
                    securityContext: {
                      appArmorProfile: { type: "Localhost", localhostProfile: "lockstep.web-aa" },
                    },
                  },
                ],
              },
            }
          : {
              metadata: {
                name,
                annotations: {
                  "container.apparmor.security.beta.kubernetes.io/web": "localhost/lockstep.web-aa",
                },
              },
              spec: { containers: [{ name: "web", image: "busybox" }] },
            };
      expect(await createPod(pod)).toBeUndefined();
      await waitFor(`${name} to be bound`, async () => boundNode(name));
      expect(await boundNode(name)).toBe("node-1");
    }
  });

  it("leaves AppArmor names that are not Lockstep's alone: such pods never reach the webhook (docs/adr/0027)", async () => {
    const before = await webhook.reviewCount();
    const names = [
      "cri-containerd.apparmor.d",
      "docker-default",
      "crio-default",
      "web-aa",
      "Lockstep.web-aa",
    ];
    for (const [i, localhostProfile] of names.entries()) {
      const name = `foreign-aa-${i}`;
      expect(
        await createPod({
          metadata: {
            name,
            annotations: {
              "container.apparmor.security.beta.kubernetes.io/c": `localhost/${localhostProfile}`,
            },
          },
          spec: {
            containers: [
              {
                name: "c",
                image: "busybox",
                securityContext: { appArmorProfile: { type: "Localhost", localhostProfile } },
              },
            ],
          },
        }),
      ).toBeUndefined();
      const pod = await core.readNamespacedPod({ namespace: NS, name });
      expect(pod.spec?.affinity).toBeUndefined();
    }
    expect(await webhook.reviewCount()).toBe(before);
  });

  it("refuses a Lockstep AppArmor name that no object can have, naming the field", async () => {
    const message = await createPod({
      metadata: { name: "bad-aa-name" },
      spec: {
        containers: [
          {
            name: "web",
            image: "busybox",
            securityContext: { appArmorProfile: { type: "Localhost", localhostProfile: "lockstep.Web-AA" } },
          },
        ],
      },
    });
    expect(message).toContain(
      'container "web": spec.containers[0].securityContext.appArmorProfile.localhostProfile: "lockstep.Web-AA" names no AppArmorProfile',
    );
  });

  it("rejects a pod that references a profile that does not exist, naming the container and the profile", async () => {
    const message = await createPod(seccompPod("typo", "wbe"));
    expect(message).toMatch(/container "web" references SeccompProfile "wbe" .*which does not exist/);
  });

  it("rejects a pod pinned with spec.nodeName to a node that lacks its profile, naming both", async () => {
    const message = await createPod(seccompPod("pinned", "web", { nodeName: "node-3" }));
    expect(message).toMatch(/spec.nodeName is "node-3", which does not have SeccompProfile "web" installed/);
  });

  it("is never called for pods without Lockstep profiles; while it is down they are created, and guarded pods are refused", async () => {
    const before = await webhook.reviewCount();
    for (let i = 0; i < 5; i++)
      expect(
        await createPod({
          metadata: { name: `plain-${i}` },
          spec: { containers: [{ name: "c", image: "busybox" }] },
        }),
      ).toBeUndefined();
    expect(await webhook.reviewCount()).toBe(before);

    await webhook.stop();
    expect(
      await createPod({
        metadata: { name: "plain-while-down" },
        spec: { containers: [{ name: "c", image: "busybox" }] },
      }),
    ).toBeUndefined();
    const refused = await createPod(seccompPod("guarded-while-down", "web"));
    expect(refused).toMatch(/failed calling webhook "pods.lockstep.dev"/);
    await webhook.start();
    expect(await createPod(seccompPod("guarded-after", "web"))).toBeUndefined();
  });
});

const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
const webKey = profileLabelKey("seccomp", "web");

const guardsWeb = (term: k8s.V1NodeSelectorTerm | undefined) => termGuardsProfile(term, "seccomp", "web");

/** A bound pod using "web" (on node-1 or node-2), for adding debug containers to. */
async function runningWebPod(name: string): Promise<string> {
  expect(await createPod(seccompPod(name, "web"))).toBeUndefined();
  return waitFor(`${name} to be bound`, async () => boundNode(name));
}

/** What `kubectl debug` sends: the pod's ephemeralContainers subresource with one more container. */
function addDebugContainer(pod: string, container: string, localhostProfile?: string) {
  const ephemeral: k8s.V1EphemeralContainer = {
    name: container,
    image: "busybox",
    ...(localhostProfile && { securityContext: { seccompProfile: { type: "Localhost", localhostProfile } } }),
  };
  return outcome(
    core.patchNamespacedPodEphemeralcontainers(
      {
        name: pod,
        namespace: NS,
        body: [{ op: "add", path: "/spec/ephemeralContainers", value: [ephemeral] }],
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
    ),
  );
}

describe("kubectl debug (UPDATE of pods/ephemeralcontainers)", () => {
  it("refuses a debug container naming a missing profile, by name", async () => {
    await runningWebPod("debug-missing");
    expect(await addDebugContainer("debug-missing", "dbg", "lockstep/ghost.json")).toMatch(
      /^403: .*container "dbg" references SeccompProfile "ghost" \(spec\.ephemeralContainers\[0\]\.securityContext\.seccompProfile\.localhostProfile\), which does not exist/,
    );
  });

  it("refuses a profile the pod's node lacks, naming the node, and admits one it has", async () => {
    const node = await runningWebPod("debug-node");
    // batch-only is on node-3 alone; the pod runs on node-1 or node-2.
    expect(await addDebugContainer("debug-node", "dbg", "lockstep/batch-only.json")).toMatch(
      new RegExp(
        `^403: .*pod "debug-node" runs on node "${node}" \\(spec\\.nodeName\\), which does not have SeccompProfile "batch-only" installed, and a pod cannot move`,
      ),
    );
    expect(await addDebugContainer("debug-node", "dbg", "./lockstep/web.json")).toBe("allowed");
    const stored = await core.readNamespacedPod({ name: "debug-node", namespace: NS });
    expect(stored.spec?.ephemeralContainers?.map((c) => c.name)).toEqual(["dbg"]);
  });

  it("judges a pod not yet scheduled by its node affinity, not by an in-use label written by hand", async () => {
    // A pod created while the webhook was not configured (before Lockstep was installed, say) keeps
    // the labels it was written with: here one claiming gold-only, on a pod nothing keeps off nodes
    // that lack it. It waits for a node in pool "gold", which none is.
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "gold-only", {
      defaultAction: "SCMP_ACT_ALLOW",
      nodeSelector: { pool: "gold" },
    });
    const admission = cp.kubeConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
    const config = (await admission.listMutatingWebhookConfiguration()).items.find((c) =>
      c.webhooks?.some((w) => w.name === "pods.lockstep.dev"),
    ) as k8s.V1MutatingWebhookConfiguration;
    const name = config.metadata?.name ?? "";
    await admission.deleteMutatingWebhookConfiguration({ name });
    const handLabelled: k8s.V1Pod = {
      metadata: { name: "hand-labelled", labels: { [profileLabelKey("seccomp", "gold-only")]: "true" } },
      spec: { containers: [{ name: "c", image: "busybox" }], nodeSelector: { pool: "gold" } },
    };
    try {
      // The API server drops the configuration from its cache a moment after the delete.
      await waitFor("a pod created without the webhook", async () => {
        if ((await createPod(handLabelled)) !== undefined) return undefined;
        const stored = await core.readNamespacedPod({ name: "hand-labelled", namespace: NS });
        if (stored.metadata?.labels?.[profileLabelKey("seccomp", "gold-only")] === "true") return true;
        await core.deleteNamespacedPod({ name: "hand-labelled", namespace: NS, gracePeriodSeconds: 0 });
        return undefined;
      });
    } finally {
      const {
        resourceVersion: _rv,
        uid: _uid,
        creationTimestamp: _ct,
        managedFields: _mf,
        ...metadata
      } = config.metadata ?? {};
      await admission.createMutatingWebhookConfiguration({ body: { ...config, metadata } });
    }
    await waitFor("the webhook configured again", async () =>
      (await createPod(seccompPod("typo-again", "wbe")))?.includes("does not exist"),
    );
    expect(await addDebugContainer("hand-labelled", "dbg", "lockstep/gold-only.json")).toMatch(
      /^403: .*pod "hand-labelled" is not scheduled yet \(no spec\.nodeName\) and its node affinity does not require SeccompProfile "gold-only" in every term/,
    );
  });

  it("reviews debug containers of pods that use no profile themselves", async () => {
    expect(
      await createPod({
        metadata: { name: "plain-debug" },
        spec: { containers: [{ name: "c", image: "busybox" }] },
      }),
    ).toBeUndefined();
    expect(await addDebugContainer("plain-debug", "dbg", "lockstep/ghost.json")).toMatch(
      /^403: .*SeccompProfile "ghost" .*which does not exist/,
    );
    expect(await addDebugContainer("plain-debug", "dbg")).toBe("allowed");
  });
});

describe("profile references, resolved as the kubelet resolves them", () => {
  it("guards every spelling that cleans to lockstep/<name>.json", async () => {
    for (const [i, spelling] of [
      "./lockstep/web.json",
      "lockstep//web.json",
      "lockstep/./web.json",
    ].entries()) {
      const name = `spelling-${i}`;
      const pod = seccompPod(name, "web");
      const container = pod.spec?.containers[0] as k8s.V1Container;
      container.securityContext = { seccompProfile: { type: "Localhost", localhostProfile: spelling } };
      expect(await createPod(pod), spelling).toBeUndefined();
      const stored = await core.readNamespacedPod({ name, namespace: NS });
      expect(stored.metadata?.labels?.[webKey], spelling).toBe("true");
      expect(
        guardsWeb(
          stored.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
            ?.nodeSelectorTerms?.[0],
        ),
        spelling,
      ).toBe(true);
    }
    const typo = seccompPod("spelling-typo", "web");
    (typo.spec?.containers[0] as k8s.V1Container).securityContext = {
      seccompProfile: { type: "Localhost", localhostProfile: "lockstep//wbe.json" },
    };
    expect(await createPod(typo)).toMatch(/SeccompProfile "wbe" .*which does not exist/);
  });

  it("refuses the spellings the API server refuses, and files in Lockstep's directory no profile has", async () => {
    for (const [path, why] of [
      ["foo/../lockstep/web.json", "must not contain '..'"],
      ["../seccomp/lockstep/web.json", "must not contain '..'"],
      ["/lockstep/web.json", "must be a relative path"],
      ["lockstep/sub/web.json", "in Lockstep's directory, which no SeccompProfile has"],
    ]) {
      const pod = seccompPod("odd-path", "web");
      (pod.spec?.containers[0] as k8s.V1Container).securityContext = {
        seccompProfile: { type: "Localhost", localhostProfile: path },
      };
      const message = await createPod(pod);
      expect(message, path).toContain(why);
      expect(message, path).toContain("spec.containers[0].securityContext.seccompProfile.localhostProfile");
    }
  });
});

describe("node affinity the pod already has", () => {
  it("leaves an empty term empty (it matches no node) and guards the others", async () => {
    const pod = seccompPod("empty-term", "web", {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              {},
              // A node field selector takes exactly one name.
              { matchFields: [{ key: "metadata.name", operator: "In", values: ["node-2"] }] },
              { matchFields: [{ key: "metadata.name", operator: "In", values: ["node-3"] }] },
            ],
          },
        },
      },
    });
    expect(await createPod(pod)).toBeUndefined();
    const stored = await core.readNamespacedPod({ name: "empty-term", namespace: NS });
    const terms =
      stored.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    expect(terms?.[0]?.matchExpressions ?? []).toEqual([]);
    const rest = terms?.slice(1) ?? [];
    for (const node of ["node-2", "node-3"])
      expect(rest.some((t) => t.matchFields?.[0]?.values?.[0] === node)).toBe(true);
    for (const term of rest) expect(guardsWeb(term), JSON.stringify(term)).toBe(true);
    // node-3 lacks "web", and the empty term matches nothing: only node-2 is left.
    expect(await waitFor("empty-term to be bound", async () => boundNode("empty-term"))).toBe("node-2");
  });

  it("refuses a required node affinity without terms, as the API server would", async () => {
    const message = await createPod(
      seccompPod("no-terms", "web", {
        affinity: {
          nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } },
        },
      }),
    );
    expect(message).toMatch(
      /spec\.affinity\.nodeAffinity\.requiredDuringSchedulingIgnoredDuringExecution\.nodeSelectorTerms: must have at least one term/,
    );
  });
});

describe("the pod's in-use labels belong to the webhook", () => {
  it("sets exactly the labels of the profiles the pod uses, dropping ones written by hand", async () => {
    const own = seccompPod("stray-labels", "web");
    own.metadata = {
      ...own.metadata,
      labels: { app: "x", "apparmor.lockstep.dev/web-aa": "true", [webKey]: "no" },
    };
    expect(await createPod(own)).toBeUndefined();
    expect((await core.readNamespacedPod({ name: "stray-labels", namespace: NS })).metadata?.labels).toEqual({
      app: "x",
      [webKey]: "true",
    });
    // A pod that uses no profile cannot hold one either.
    expect(
      await createPod({
        metadata: { name: "squatter", labels: { app: "y", [webKey]: "true" } },
        spec: { containers: [{ name: "c", image: "busybox" }] },
      }),
    ).toBeUndefined();
    expect((await core.readNamespacedPod({ name: "squatter", namespace: NS })).metadata?.labels).toEqual({
      app: "y",
    });
  });

  it("refuses any later change to them, by anyone, and lets every other change through", async () => {
    const patchLabels = (name: string, labels: Record<string, string | null>, dryRun?: string) =>
      core.patchNamespacedPod({ name, namespace: NS, body: { metadata: { labels } }, dryRun }, merge);
    await untilEnforced("lockstep-pod-in-use-labels", () =>
      patchLabels("stray-labels", { [webKey]: null }, "All"),
    );
    const refused =
      /^403: .*pod stray-labels: the labels under seccomp.lockstep.dev\/ and apparmor.lockstep.dev\/ record the profiles the pod uses/;
    // The cluster admin included: removing one would let the profile go while the pod runs.
    expect(await outcome(patchLabels("stray-labels", { [webKey]: null }))).toMatch(refused);
    expect(await outcome(patchLabels("stray-labels", { [webKey]: "false" }))).toMatch(refused);
    expect(await outcome(patchLabels("squatter", { [webKey]: "true" }))).toMatch(
      /^403: .*pod squatter: the labels under/,
    );
    // Status writes (the kubelet's) and other labels (controllers') pass.
    expect(await outcome(patchLabels("stray-labels", { app: "z" }))).toBe("allowed");
    expect(
      await outcome(
        core.patchNamespacedPodStatus(
          {
            name: "stray-labels",
            namespace: NS,
            body: { status: { conditions: [{ type: "example.com/Checked", status: "True" }] } },
          },
          merge,
        ),
      ),
    ).toBe("allowed");
    expect(
      (await core.readNamespacedPod({ name: "stray-labels", namespace: NS })).metadata?.labels?.[webKey],
    ).toBe("true");
  });
});

describe("races the node labels must not lose (ADR 0024)", () => {
  /** The Gt value the webhook would require now for a pod using `profile` (a dry run sees its cache). */
  async function requiredRevision(profile: string): Promise<bigint> {
    const dry = await core.createNamespacedPod({
      namespace: NS,
      body: seccompPod(`dry-${profile}`, profile),
      dryRun: "All",
    });
    const gt =
      dry.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms
        ?.flatMap((t) => t.matchExpressions ?? [])
        .find((e) => e.key === SYNCED_REVISION_LABEL.seccomp && e.operator === "Gt");
    return BigInt(gt?.values?.[0] ?? "-1");
  }

  async function waitUnschedulable(name: string) {
    await waitFor(`${name} to be reported unschedulable`, async () => {
      const pod = await core.readNamespacedPod({ name, namespace: NS });
      return pod.status?.conditions?.some((c) => c.type === "PodScheduled" && c.status === "False");
    });
  }

  const onNode = (pod: k8s.V1Pod, node: string): k8s.V1Pod => ({
    ...pod,
    spec: {
      ...(pod.spec as k8s.V1PodSpec),
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [node] }] },
            ],
          },
        },
      },
    },
  });

  it("after an update, keeps a new pod Pending while no node has the new version, then binds it only where it is", async () => {
    const spec = { defaultAction: "SCMP_ACT_ALLOW", nodeSelector: { pool: "web" } };
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "rolling", spec);
    await waitForProfile("node-1", "SeccompProfile", "rolling");
    await waitForProfile("node-2", "SeccompProfile", "rolling");
    const [a1, a2] = [agentOn("node-1"), agentOn("node-2")];
    // Both agents stop: their nodes keep the labels for the old version, as a slow agent's would.
    await Promise.all([a1.process.stop(), a2.process.stop()]);
    const updated = (await applyProfile(cp.kubeConfig(), "SeccompProfile", "rolling", {
      ...spec,
      defaultAction: "SCMP_ACT_LOG",
    })) as { metadata: { resourceVersion: string } };
    await waitFor(
      "the webhook to see the update",
      async () => (await requiredRevision("rolling")) >= BigInt(updated.metadata.resourceVersion) - 1n,
    );
    expect(await createPod(seccompPod("after-update", "rolling"))).toBeUndefined();
    await waitUnschedulable("after-update");
    expect(await boundNode("after-update")).toBeUndefined();

    await a1.restart();
    const node = await waitFor("after-update to be bound", () => boundNode("after-update"), {
      timeoutMs: 90_000,
    });
    expect(node).toBe("node-1");
    expect(readFileSync(join(a1.seccompDir, "rolling.json"), "utf8")).toContain("SCMP_ACT_LOG");
    await a2.restart();
    await waitAgentReady(a2);
  });

  it("after a base profile's update, keeps a new pod naming its child off nodes that rendered the child with the old base", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "chain-base", { defaultAction: "SCMP_ACT_ALLOW" });
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "chain-child", {
      baseProfileName: "chain-base",
      nodeSelector: { pool: "web" },
    });
    await waitForProfile("node-1", "SeccompProfile", "chain-child");
    await waitForProfile("node-2", "SeccompProfile", "chain-child");
    const [a1, a2] = [agentOn("node-1"), agentOn("node-2")];
    await Promise.all([a1.process.stop(), a2.process.stop()]);
    // Only the base changes: the child's own object, and so its own revision, stay as they were.
    const updated = (await applyProfile(cp.kubeConfig(), "SeccompProfile", "chain-base", {
      defaultAction: "SCMP_ACT_LOG",
    })) as { metadata: { resourceVersion: string } };
    await waitFor(
      "the webhook to require the base's update for the child",
      async () => (await requiredRevision("chain-child")) >= BigInt(updated.metadata.resourceVersion) - 1n,
    );
    expect(await createPod(seccompPod("after-base-update", "chain-child"))).toBeUndefined();
    await waitUnschedulable("after-base-update");
    expect(await boundNode("after-base-update")).toBeUndefined();

    await a1.restart();
    const node = await waitFor("after-base-update to be bound", () => boundNode("after-base-update"), {
      timeoutMs: 90_000,
    });
    expect(node).toBe("node-1");
    expect(readFileSync(join(a1.seccompDir, "chain-child.json"), "utf8")).toContain("SCMP_ACT_LOG");
    await a2.restart();
    await waitAgentReady(a2);
  });

  it("places nothing on a node that just joined until its agent has synced", async () => {
    await cp.addNode("node-4", { labels: { pool: "web" } });
    expect(await createPod(onNode(seccompPod("joiner", "web"), "node-4"))).toBeUndefined();
    await waitUnschedulable("joiner");
    expect(await boundNode("joiner")).toBeUndefined();
    const agent = await startAgent(cp, "node-4");
    agents.push(agent);
    expect(await waitFor("joiner to be bound", () => boundNode("joiner"), { timeoutMs: 90_000 })).toBe(
      "node-4",
    );
    expect(existsSync(join(agent.seccompDir, "web.json"))).toBe(true);
  });

  it("keeps pods off a node where installing failed, marking only that profile there", async () => {
    // A file the agent did not write holds the name on node-1: the agent refuses to replace it.
    writeFileSync(join(agentOn("node-1").seccompDir, "taken.json"), "{}");
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "taken", {
      defaultAction: "SCMP_ACT_ALLOW",
      nodeSelector: { pool: "web" },
    });
    await waitForProfile("node-2", "SeccompProfile", "taken");
    await waitFor(
      "taken's failure label on node-1",
      async () =>
        (await core.readNode({ name: "node-1" })).metadata?.labels?.[failedLabelKey("seccomp", "taken")] ===
        "NameTaken",
    );
    expect(await nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "taken", "node-1")).toBe(false);
    // node-1 still holds every other profile.
    expect(await nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "web", "node-1")).toBe(true);
    expect(await createPod(onNode(seccompPod("on-failed", "taken"), "node-1"))).toBeUndefined();
    await waitUnschedulable("on-failed");
    expect(await boundNode("on-failed")).toBeUndefined();
    expect(await createPod(onNode(seccompPod("on-good", "taken"), "node-2"))).toBeUndefined();
    expect(await waitFor("on-good to be bound", () => boundNode("on-good"))).toBe("node-2");
  });

  it("keeps a pod admitted before a profile moved away off the node it was removed from", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "movable", {
      defaultAction: "SCMP_ACT_ALLOW",
      nodeSelector: { pool: "web" },
    });
    await waitForProfile("node-2", "SeccompProfile", "movable");
    const cordon = (unschedulable: boolean) =>
      core.patchNode(
        { name: "node-2", body: { spec: { unschedulable } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    // Admitted while the profile is on node-2, kept Pending there only by the cordon.
    await cordon(true);
    expect(await createPod(onNode(seccompPod("before-move", "movable"), "node-2"))).toBeUndefined();
    await waitUnschedulable("before-move");
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "movable", {
      defaultAction: "SCMP_ACT_ALLOW",
      nodeSelector: { pool: "batch" },
    });
    await waitFor(
      "movable removed from node-2",
      async () => !existsSync(join(agentOn("node-2").seccompDir, "movable.json")),
    );
    expect(
      (await core.readNode({ name: "node-2" })).metadata?.labels?.[failedLabelKey("seccomp", "movable")],
    ).toBe("NoLongerHere");
    await cordon(false);
    // The pod still requires the old placement, which node-2 matches; the mark keeps it away.
    await waitFor("the scheduler to try node-2 again", async () => {
      const events = await core.listNamespacedEvent({
        namespace: NS,
        fieldSelector: "involvedObject.name=before-move,reason=FailedScheduling",
      });
      return events.items.some((e) => !(e.message ?? "").includes("unschedulable"));
    });
    expect(await boundNode("before-move")).toBeUndefined();
  });

  it("keeps the Node's Lockstep labels to a constant number, whatever the number of profiles", async () => {
    const lockstepKeys = async () =>
      Object.keys((await core.readNode({ name: "node-2" })).metadata?.labels ?? {}).filter((k) =>
        k.includes("lockstep.dev"),
      );
    const before = await lockstepKeys();
    for (let i = 0; i < 10; i++)
      await applyProfile(cp.kubeConfig(), "SeccompProfile", `many-${i}`, { defaultAction: "SCMP_ACT_ALLOW" });
    for (let i = 0; i < 10; i++) await waitForProfile("node-2", "SeccompProfile", `many-${i}`);
    expect((await lockstepKeys()).sort()).toEqual(before.sort());
  });
});
