// The final pod is checked (issue 23, point 7): another mutating webhook that rewrites spec.affinity,
// a small HTTPS server on loopback registered after Lockstep's, either has Lockstep's webhook reinvoked
// after it (the pod ends up guarded) or is itself reinvoked last, and then the ValidatingAdmissionPolicy
// lockstep-pod-node-affinity refuses the pod. With Lockstep's webhook bypassed, the policy alone decides; with its
// configuration removed (Lockstep uninstalled), the policy refuses nothing.
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FAILED_LABEL_PREFIX,
  PROFILE_LABEL_PREFIX,
  SYNCED_REVISION_LABEL,
  WEBHOOK_CONFIGURATION_NAME,
} from "../../src/api/constants.ts";
import { appArmorKernelName, failedLabelKey, profileLabelKey } from "../../src/api/labels.ts";
import { MAX_NODE_SELECTOR_TERMS, MAX_POD_CONTAINERS } from "../../src/api/pod-profiles.ts";
import { createCertificateAuthority, issueCertificate } from "../../src/kube/certificates.ts";
import { isKubeError } from "../../src/kube/errors.ts";
import { POD_NODE_AFFINITY_POLICY } from "../../src/manifests/admission.ts";
import { outcome, untilEnforced } from "../harness/admission.ts";
import { installAgentPrerequisites } from "../harness/agents.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { applyProfile, termGuardsProfile } from "../harness/profiles.ts";
import { installWebhook, type WebhookProcess } from "../harness/webhook.ts";

const NS = "final";
const POLICY = POD_NODE_AFFINITY_POLICY;
/** Sorted after Lockstep's configuration, so the API server calls it after Lockstep's webhook. */
const REWRITER = "zz-rewrite-affinity";
/** A profile name longer than a label name: its label keys carry a stem and a hash. */
const LONG = `long-${"n".repeat(70)}`;

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let admission: k8s.AdmissionregistrationV1Api;
let webhook: WebhookProcess;
let rewriter: Server;
let rewriterCa: string;
let rewriterCalls = 0;

/** What the other webhook writes over whatever affinity the pod had: its own, without Lockstep's. */
const REWRITTEN_AFFINITY = {
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }],
    },
  },
};

async function startRewriter(): Promise<void> {
  const ca = await createCertificateAuthority("rewriter-ca");
  const serving = await issueCertificate(ca, {
    commonName: "rewriter",
    ipAddresses: ["127.0.0.1"],
    usage: "server",
  });
  rewriterCa = ca.certPem;
  rewriter = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      rewriterCalls++;
      const review = JSON.parse(body) as { request: { uid: string } };
      const patch = [{ op: "add", path: "/spec/affinity", value: REWRITTEN_AFFINITY }];
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          response: {
            uid: review.request.uid,
            allowed: true,
            patchType: "JSONPatch",
            patch: Buffer.from(JSON.stringify(patch)).toString("base64"),
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => rewriter.listen(0, "127.0.0.1", resolve));
}

/** Registers the rewriting webhook (replacing an earlier registration) with the reinvocation policy given. */
async function registerRewriter(reinvocationPolicy: "Never" | "IfNeeded"): Promise<void> {
  await removeConfiguration(REWRITER);
  const port = (rewriter.address() as AddressInfo).port;
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: REWRITER },
      webhooks: [
        {
          name: "rewrite.affinity.test",
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          failurePolicy: "Fail",
          reinvocationPolicy,
          clientConfig: {
            url: `https://127.0.0.1:${port}/`,
            caBundle: Buffer.from(rewriterCa).toString("base64"),
          },
          rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }],
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": NS } },
        },
      ],
    },
  });
  // Webhook configurations reach admission through an informer: wait until a dry run is rewritten.
  await waitFor(`${REWRITER} (${reinvocationPolicy}) in effect`, async () => {
    const before = rewriterCalls;
    await outcome(createPod(seccompPod("probe"), "All"));
    return rewriterCalls > before;
  });
}

async function removeConfiguration(name: string): Promise<void> {
  try {
    await admission.deleteMutatingWebhookConfiguration({ name });
  } catch (error) {
    if (!isKubeError(error, 404)) throw error;
  }
}

const seccompPod = (name: string, spec: Partial<k8s.V1PodSpec> = {}, profile = "web"): k8s.V1Pod => ({
  metadata: { name },
  spec: {
    containers: [
      {
        name: "c",
        image: "busybox",
        securityContext: {
          seccompProfile: { type: "Localhost", localhostProfile: `lockstep/${profile}.json` },
        },
      },
    ],
    ...spec,
  },
});

const withTerms = (terms: k8s.V1NodeSelectorTerm[]): Partial<k8s.V1PodSpec> => ({
  affinity: {
    nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
  },
});

function createPod(pod: k8s.V1Pod, dryRun?: "All", namespace = NS): Promise<k8s.V1Pod> {
  return core.createNamespacedPod({ namespace, body: pod, ...(dryRun ? { dryRun } : {}) });
}

/** A term carrying what Lockstep requires of a node for the seccomp profile `name` (structurally). */
const guardFor = (
  name: string,
  kind: "seccomp" | "apparmor" = "seccomp",
): [k8s.V1NodeSelectorRequirement, k8s.V1NodeSelectorRequirement] => [
  { key: SYNCED_REVISION_LABEL[kind], operator: "Gt", values: ["1"] },
  { key: failedLabelKey(kind, name), operator: "DoesNotExist" },
];

beforeAll(async () => {
  cp = await ControlPlane.start({ scheduler: false });
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  admission = cp.kubeConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
  await installAgentPrerequisites(cp);
  await applyProfile(cp.kubeConfig(), "SeccompProfile", "web", { defaultAction: "SCMP_ACT_ALLOW" });
  await applyProfile(cp.kubeConfig(), "SeccompProfile", LONG, { defaultAction: "SCMP_ACT_ALLOW" });
  await applyProfile(cp.kubeConfig(), "AppArmorProfile", "web", { executables: ["/bin/busybox"] });
  webhook = await installWebhook(cp);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await waitFor("the default service account", async () => {
    await core.readNamespacedServiceAccount({ name: "default", namespace: NS });
    return true;
  });
  await startRewriter();
});

afterAll(async () => {
  await webhook?.stop();
  await new Promise((resolve) => rewriter?.close(resolve));
  await cp?.stop();
});

describe("a webhook that rewrites spec.affinity after Lockstep's", () => {
  it("is undone by Lockstep's reinvocation when it is not reinvoked itself: the pod is guarded", async () => {
    await registerRewriter("Never");
    const calls = rewriterCalls;
    const pod = await createPod(
      seccompPod(
        "reinvoked",
        withTerms([{ matchExpressions: [{ key: "pool", operator: "In", values: ["x"] }] }]),
        LONG,
      ),
    );
    expect(rewriterCalls).toBe(calls + 1);
    const terms =
      pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    // The rewriter's term, with Lockstep's requirement added back by its second pass.
    expect(terms?.map((t) => t.matchExpressions?.[0]?.key)).toEqual(["zone"]);
    expect(terms?.every((t) => termGuardsProfile(t, "seccomp", LONG))).toBe(true);
    expect(pod.metadata?.labels?.[profileLabelKey("seccomp", LONG)]).toBe("true");
  });

  it("is refused by the policy when it runs again after Lockstep's reinvocation", async () => {
    await registerRewriter("IfNeeded");
    await untilEnforced(POLICY, () => createPod(seccompPod("probe"), "All"));
    const result = await outcome(createPod(seccompPod("rewritten")));
    expect(result).toContain(`ValidatingAdmissionPolicy '${POLICY}'`);
    expect(result).toContain("lacks the requirement the Lockstep webhook adds");
    expect(result).toContain("pod rewritten");
    await removeConfiguration(REWRITER);
  });
});

describe("the policy on a pod that reached it with Lockstep's webhook in place", () => {
  it("admits a pod at the webhook's caps on containers and terms (CEL cost within the API server's budget)", async () => {
    const containers = Array.from({ length: MAX_POD_CONTAINERS }, (_, i) => ({
      name: `c${i}`,
      image: "busybox",
      securityContext: {
        seccompProfile: { type: "Localhost", localhostProfile: "lockstep/web.json" },
        appArmorProfile: { type: "Localhost", localhostProfile: appArmorKernelName("web") },
      },
    }));
    const terms = Array.from({ length: MAX_NODE_SELECTOR_TERMS }, (_, i) => ({
      matchExpressions: Array.from({ length: 10 }, (_, j) => ({ key: `k${i}-${j}`, operator: "Exists" })),
    }));
    const pod = await createPod(
      { metadata: { name: "many" }, spec: { containers, ...withTerms(terms) } },
      "All",
    );
    const guarded =
      pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
    expect(
      guarded?.every(
        (t) => termGuardsProfile(t, "seccomp", "web") && termGuardsProfile(t, "apparmor", "web"),
      ),
    ).toBe(true);
  });
});

describe("the policy alone (Lockstep's webhook bypassed)", () => {
  beforeAll(async () => {
    // Bypassed, not removed: the policy holds pods to Lockstep's webhook only while that webhook's
    // configuration exists (docs/adr/0065-upgrade-and-removal.md). An objectSelector no pod matches: every
    // pod skips the webhook, as one that another webhook rewrote after it, or that it never saw.
    const lockstep = await admission.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME });
    for (const webhook of lockstep.webhooks ?? [])
      webhook.objectSelector = { matchLabels: { "final-pod-affinity.test/never": "true" } };
    await admission.replaceMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME, body: lockstep });
    await waitFor("Lockstep's webhook out of the way", async () =>
      (await outcome(createPod(seccompPod("probe"), "All"))).includes(
        `ValidatingAdmissionPolicy '${POLICY}'`,
      ),
    );
  });

  const WEB = { [profileLabelKey("seccomp", "web")]: "true" };
  /** What a dry run of the pod comes to, with the in-use labels the webhook would have set (`labels`). */
  const admitted = async (pod: k8s.V1Pod, labels: Record<string, string> = WEB, namespace = NS) =>
    outcome(createPod({ ...pod, metadata: { ...pod.metadata, labels } }, "All", namespace));

  it("refuses a pod that names a profile and has no required node affinity, or a term without the requirement", async () => {
    expect(await admitted(seccompPod("bare"))).toContain("lacks the requirement");
    // Guarded, but without the in-use label the webhook sets with it.
    expect(
      await admitted(seccompPod("unlabelled", withTerms([{ matchExpressions: guardFor("web") }])), {}),
    ).toContain("without its in-use label");
    const otherTerm = { matchExpressions: [{ key: "pool", operator: "In", values: ["x"] }] };
    expect(
      await admitted(seccompPod("one-of-two", withTerms([{ matchExpressions: guardFor("web") }, otherTerm]))),
    ).toContain(POLICY);
    // Only the revision, only the failure label, or the failure label of another profile.
    expect(
      await admitted(
        seccompPod("revision-only", withTerms([{ matchExpressions: guardFor("web").slice(0, 1) }])),
      ),
    ).toContain(POLICY);
    expect(
      await admitted(seccompPod("failure-only", withTerms([{ matchExpressions: guardFor("web").slice(1) }]))),
    ).toContain(POLICY);
    expect(
      await admitted(seccompPod("other-profile", withTerms([{ matchExpressions: guardFor("other") }]))),
    ).toContain(POLICY);
    // The revision with another operator.
    const wrongOperator = [{ ...guardFor("web")[0], operator: "Exists", values: [] }, guardFor("web")[1]];
    expect(await admitted(seccompPod("exists", withTerms([{ matchExpressions: wrongOperator }])))).toContain(
      POLICY,
    );
  });

  it("admits a pod whose every term carries the requirement, in any spelling of the path, a term matching no node aside", async () => {
    const guarded = {
      matchExpressions: [{ key: "pool", operator: "In", values: ["x"] }, ...guardFor("web")],
    };
    expect(await admitted(seccompPod("guarded", withTerms([guarded, guarded])))).toBe("allowed");
    const spelled = seccompPod("spelled", withTerms([guarded]));
    const container = spelled.spec?.containers[0];
    if (container?.securityContext?.seccompProfile)
      container.securityContext.seccompProfile.localhostProfile = "./lockstep//./web.json";
    expect(await admitted(spelled)).toBe("allowed");
    expect(await admitted(seccompPod("with-empty", withTerms([guarded, {}])))).toBe("allowed");
  });

  it("takes no per-profile node label (the agents before ADR 0024, never released) for the requirement", async () => {
    const perProfile = {
      matchExpressions: [{ key: profileLabelKey("seccomp", "web"), operator: "In", values: ["v"] }],
    };
    expect(await admitted(seccompPod("per-profile", withTerms([perProfile])))).toContain(
      "lacks the requirement",
    );
  });

  it("takes a long profile name's shortened in-use label by its stem, and its failure label from it", async () => {
    const long = { [profileLabelKey("seccomp", LONG)]: "true" };
    const guarded = seccompPod("long", withTerms([{ matchExpressions: guardFor(LONG) }]), LONG);
    expect(await admitted(guarded, long)).toBe("allowed");
    expect(
      await admitted(guarded, { [`${PROFILE_LABEL_PREFIX.seccomp}${LONG.slice(0, 50)}`]: "true" }),
    ).toContain("without its in-use label");
    const stemOnly = `${FAILED_LABEL_PREFIX.seccomp}${LONG.slice(0, 50)}`;
    const wrongKey = [guardFor(LONG)[0], { key: stemOnly, operator: "DoesNotExist" }];
    expect(
      await admitted(seccompPod("long-wrong", withTerms([{ matchExpressions: wrongKey }]), LONG), long),
    ).toContain("lacks the requirement");
  });

  it("holds AppArmor profiles (field and legacy annotation) and every profile of a pod to the same", async () => {
    const appArmorPod = (name: string, terms: k8s.V1NodeSelectorTerm[]): k8s.V1Pod => ({
      metadata: {
        name,
        annotations: {
          "container.apparmor.security.beta.kubernetes.io/c": `localhost/${appArmorKernelName("web")}`,
        },
      },
      spec: { containers: [{ name: "c", image: "busybox" }], ...withTerms(terms) },
    });
    const AA = { [profileLabelKey("apparmor", "web")]: "true" };
    expect(await admitted(appArmorPod("aa-none", [{ matchExpressions: guardFor("web") }]), AA)).toContain(
      POLICY,
    );
    expect(
      await admitted(appArmorPod("aa-unlabelled", [{ matchExpressions: guardFor("web", "apparmor") }])),
    ).toContain("without its in-use label");
    expect(await admitted(appArmorPod("aa", [{ matchExpressions: guardFor("web", "apparmor") }]), AA)).toBe(
      "allowed",
    );
    const both = seccompPod("both", withTerms([{ matchExpressions: guardFor("web", "apparmor") }]));
    if (both.metadata)
      both.metadata.annotations = {
        "container.apparmor.security.beta.kubernetes.io/c": `localhost/${appArmorKernelName("web")}`,
      };
    expect(await admitted(both, { ...WEB, ...AA })).toContain("lacks the requirement");
    const guardBoth = [...guardFor("web"), ...guardFor("web", "apparmor")];
    if (both.spec) Object.assign(both.spec, withTerms([{ matchExpressions: guardBoth }]));
    expect(await admitted(both, { ...WEB, ...AA })).toBe("allowed");
  });

  it("refuses a path into Lockstep's directory that names no profile, and leaves other pods and Lockstep's namespace alone", async () => {
    const guarded = withTerms([{ matchExpressions: guardFor("web") }]);
    expect(await admitted(seccompPod("sub", guarded, "sub/web"))).toContain(POLICY);
    const elsewhere = seccompPod("elsewhere");
    const container = elsewhere.spec?.containers[0];
    if (container?.securityContext?.seccompProfile)
      container.securityContext.seccompProfile.localhostProfile = "other/x.json";
    expect(await admitted(elsewhere, {})).toBe("allowed");
    await core
      .createNamespacedServiceAccount({
        namespace: "lockstep-system",
        body: { metadata: { name: "default" } },
      })
      .catch(() => undefined);
    expect(await admitted(seccompPod("own"), {}, "lockstep-system")).toBe("allowed");
  });

  it("refuses nothing once Lockstep's webhook configuration is gone, as after an uninstall", async () => {
    expect(await admitted(seccompPod("before-removal"), {})).toContain("without its in-use label");
    await removeConfiguration(WEBHOOK_CONFIGURATION_NAME);
    // The API server drops the configuration, the policy's parameter, from its cache a moment later.
    await waitFor("the policy to stop refusing", async () =>
      (await admitted(seccompPod("after-removal"), {})) === "allowed" ? true : undefined,
    );
  });
});
