// Thousands of malformed and hostile AdmissionReviews, straight at the running webhook process on
// 127.0.0.1 (with the CA it published, as the API server calls it): it never crashes, never answers
// 5xx, answers every review that has a uid with that uid, and every refusal names the field.
import { Agent, request } from "node:https";
import * as k8s from "@kubernetes/client-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEBHOOK_CONFIGURATION_NAME } from "../../src/api/admission-manifests.ts";
import { APPARMOR_LABEL, SYNCED_REVISION_LABEL } from "../../src/api/constants.ts";
import { installAgentPrerequisites } from "../harness/agents.ts";
import { ControlPlane } from "../harness/controlplane.ts";
import { applyProfile } from "../harness/profiles.ts";
import { installWebhook, type WebhookProcess } from "../harness/webhook.ts";

let cp: ControlPlane;
let webhook: WebhookProcess;
let agent: Agent;

beforeAll(async () => {
  cp = await ControlPlane.start({ scheduler: false });
  await installAgentPrerequisites(cp);
  type Applied = { metadata: { resourceVersion: string } };
  const seccomp = (await applyProfile(cp.kubeConfig(), "SeccompProfile", "web", {
    defaultAction: "SCMP_ACT_ALLOW",
  })) as Applied;
  const appArmor = (await applyProfile(cp.kubeConfig(), "AppArmorProfile", "web", {
    executables: ["/bin/busybox"],
  })) as Applied;
  // node-1 has both, as its agent would have labelled it: caught up with both revisions, AppArmor on.
  await cp.addNode("node-1", {
    labels: {
      [SYNCED_REVISION_LABEL.seccomp]: seccomp.metadata.resourceVersion,
      [SYNCED_REVISION_LABEL.apparmor]: appArmor.metadata.resourceVersion,
      [APPARMOR_LABEL]: "enabled",
    },
  });
  webhook = await installWebhook(cp);
  const config = await cp
    .kubeConfig()
    .makeApiClient(k8s.AdmissionregistrationV1Api)
    .readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME });
  const ca = Buffer.from(config.webhooks?.[0]?.clientConfig.caBundle ?? "", "base64").toString();
  agent = new Agent({ ca, keepAlive: true, maxSockets: 4 });
});

afterAll(async () => {
  agent?.destroy();
  await webhook?.stop();
  await cp?.stop();
});

/**
 * Posts a review and reads the answer. Pieces are written one by one, 20 ms apart (chunked transfer
 * encoding), so the webhook receives them as separate chunks.
 */
function post(body: string | Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `https://127.0.0.1:${webhook.port}/mutate`,
      { method: "POST", agent, headers: { "Content-Type": "application/json" }, timeout: 10_000 },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer in 10 s")));
    req.on("error", reject);
    if (typeof body === "string") req.end(body);
    else
      void (async () => {
        for (const piece of body) {
          req.write(piece);
          await new Promise((r) => setTimeout(r, 20));
        }
        req.end();
      })();
  });
}

// --- what is thrown at it ------------------------------------------------------------------------

const hostileString = fc.oneof(
  fc.string(),
  fc.constantFrom(
    "lockstep/web.json",
    "./lockstep/web.json",
    "lockstep//web.json",
    "/lockstep/web.json",
    "../seccomp/lockstep/web.json",
    "lockstep/../../etc/passwd.json",
    "lockstep/",
    "lockstep/.json",
    `lockstep/${"a".repeat(300)}.json`,
    "Localhost",
    "localhost/web",
    "__proto__",
    "constructor",
    "toString",
    "\u0000",
    "node-1",
    "../node-1",
    "node-1/status",
    "a".repeat(70_000),
    "ephemeralcontainers",
    "seccomp.lockstep.dev/web",
  ),
);
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hostileString,
  fc.constant(null),
  fc.array(hostileString, { maxLength: 3 }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 3 }),
  fc.array(fc.record({ name: hostileString, securityContext: fc.jsonValue({ maxDepth: 3 }) }), {
    maxLength: 3,
  }),
);

const container = (name: string, localhostProfile: string) => ({
  name,
  image: "busybox",
  securityContext: {
    seccompProfile: { type: "Localhost", localhostProfile },
    appArmorProfile: { type: "Localhost", localhostProfile: "lockstep.web" },
  },
});

const pod = () => ({
  metadata: {
    name: "p",
    namespace: "fuzz",
    labels: { app: "x", "seccomp.lockstep.dev/other": "true" },
    annotations: { "container.apparmor.security.beta.kubernetes.io/c": "localhost/lockstep.web" },
  },
  spec: {
    nodeName: "node-1",
    securityContext: { seccompProfile: { type: "Localhost", localhostProfile: "lockstep/web.json" } },
    containers: [container("c", "lockstep/web.json")],
    initContainers: [container("i", "./lockstep/web.json")],
    ephemeralContainers: [container("e", "lockstep/web.json")],
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: "pool", operator: "In", values: ["a"] }] }, {}],
        },
      },
    },
  },
});

/** Where a mutation may land: every field the webhook reads, and their parents. */
const PATHS = [
  [],
  ["apiVersion"],
  ["kind"],
  ["request"],
  ["request", "uid"],
  ["request", "operation"],
  ["request", "subResource"],
  ["request", "resource"],
  ["request", "resource", "resource"],
  ["request", "namespace"],
  ["request", "object"],
  ["request", "oldObject"],
  ...["object", "oldObject"].flatMap((o) => [
    ["request", o, "metadata"],
    ["request", o, "metadata", "name"],
    ["request", o, "metadata", "labels"],
    ["request", o, "metadata", "labels", "seccomp.lockstep.dev/web"],
    ["request", o, "metadata", "annotations"],
    ["request", o, "metadata", "annotations", "container.apparmor.security.beta.kubernetes.io/c"],
    ["request", o, "spec"],
    ["request", o, "spec", "nodeName"],
    ["request", o, "spec", "securityContext"],
    ["request", o, "spec", "securityContext", "seccompProfile"],
    ["request", o, "spec", "securityContext", "seccompProfile", "localhostProfile"],
    ["request", o, "spec", "containers"],
    ["request", o, "spec", "containers", "0"],
    ["request", o, "spec", "containers", "0", "name"],
    ["request", o, "spec", "containers", "0", "securityContext"],
    ["request", o, "spec", "containers", "0", "securityContext", "seccompProfile", "localhostProfile"],
    ["request", o, "spec", "containers", "0", "securityContext", "appArmorProfile"],
    ["request", o, "spec", "initContainers"],
    ["request", o, "spec", "ephemeralContainers"],
    [
      "request",
      o,
      "spec",
      "ephemeralContainers",
      "0",
      "securityContext",
      "seccompProfile",
      "localhostProfile",
    ],
    ["request", o, "spec", "affinity"],
    ["request", o, "spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"],
    [
      "request",
      o,
      "spec",
      "affinity",
      "nodeAffinity",
      "requiredDuringSchedulingIgnoredDuringExecution",
      "nodeSelectorTerms",
    ],
    ["request", o, "status"],
  ]),
];

/** `doc` with the value at `path` replaced; unchanged when a parent on the path is not an object. */
function setPath(doc: unknown, path: readonly string[], value: unknown): unknown {
  if (path.length === 0) return value;
  let node = doc;
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== "object") return doc;
    node = (node as Record<string, unknown>)[key];
  }
  if (node !== null && typeof node === "object")
    (node as Record<string, unknown>)[path[path.length - 1] as string] = value;
  return doc;
}

const review = fc
  .record({
    uid: fc.uuid(),
    debug: fc.boolean(),
    mutations: fc.array(fc.tuple(fc.constantFrom(...PATHS), anyValue), { minLength: 1, maxLength: 3 }),
  })
  .map(({ uid, debug, mutations }) => {
    let doc: unknown = {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: {
        uid,
        kind: { group: "", version: "v1", kind: "Pod" },
        resource: { group: "", version: "v1", resource: "pods" },
        ...(debug ? { subResource: "ephemeralcontainers" } : {}),
        operation: debug ? "UPDATE" : "CREATE",
        namespace: "fuzz",
        object: pod(),
        ...(debug ? { oldObject: { ...pod(), spec: { ...pod().spec, ephemeralContainers: [] } } } : {}),
      },
    };
    for (const [path, value] of mutations) doc = setPath(doc, path, structuredClone(value));
    return JSON.stringify(doc) ?? "null";
  });
const rawBody = fc.oneof(
  fc.string(),
  fc.constantFrom("", "{", "null", "[]", '"x"', "1e999", "[".repeat(20_000), '{"request":{"uid":7}}'),
);

/** A refusal names where the problem is: a field path, or the body itself. */
const NAMES_A_FIELD = /\b(request|spec|metadata|apiVersion|kind)(\.|\[|:)|\(the body\)|the body is not JSON/;

describe("the webhook under malformed and hostile AdmissionReviews", () => {
  it("never crashes, never answers 5xx, and names the field in every refusal", async () => {
    const answered = { allowed: 0, denied: 0, badRequest: 0 };
    // "allowed" includes every patched pod: the affinity and label paths run on hostile input too.
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ weight: 9, arbitrary: review }, { weight: 1, arbitrary: rawBody }),
        async (body) => {
          const res = await post(body);
          expect(res.status, res.body).toBeLessThan(500);
          const answer = JSON.parse(res.body) as {
            error?: string;
            response?: { uid: string; allowed: boolean; status?: { message?: string } };
          };
          if (res.status === 400) {
            answered.badRequest++;
            expect(answer.error).toMatch(NAMES_A_FIELD);
            return;
          }
          expect(res.status).toBe(200);
          const sent = (() => {
            try {
              return (JSON.parse(body) as { request?: { uid?: unknown } })?.request?.uid;
            } catch {
              return undefined;
            }
          })();
          expect(answer.response?.uid).toBe(sent);
          if (answer.response?.allowed) answered.allowed++;
          else {
            answered.denied++;
            const message = answer.response?.status?.message ?? "";
            expect(message).toMatch(NAMES_A_FIELD);
            expect(message).not.toMatch(/TypeError|is not a function|Cannot read prop|\n\s+at /);
          }
        },
      ),
      { numRuns: 3000 },
    );
    // Every kind of answer was exercised, not one path over and over.
    expect(answered.allowed).toBeGreaterThan(100);
    expect(answered.denied).toBeGreaterThan(100);
    expect(answered.badRequest).toBeGreaterThan(50);
    expect(webhook.process.isRunning()).toBe(true);
    expect((await fetch(`http://127.0.0.1:${webhook.healthPort}/readyz`)).ok).toBe(true);
  });

  it("reads a body whose UTF-8 characters are split between chunks", async () => {
    // The webhook decodes chunk by chunk as they arrive: a character cut in two must come out whole.
    const uid = "übung-ü-Ω";
    const body = Buffer.from(
      JSON.stringify({
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        request: {
          uid,
          kind: { group: "", version: "v1", kind: "Pod" },
          resource: { group: "", version: "v1", resource: "pods" },
          operation: "CREATE",
          namespace: "fuzz",
          object: pod(),
        },
      }),
    );
    const cut = body.indexOf(Buffer.from("ü")) + 1; // between the two bytes of "ü"
    const res = await post([body.subarray(0, cut), body.subarray(cut)]);
    expect(res.status, res.body).toBe(200);
    const answer = JSON.parse(res.body) as { response: { uid: string; allowed: boolean } };
    expect(answer.response).toMatchObject({ uid, allowed: true });
  });

  it("refuses a body over 4 MiB with 413 and goes on answering", async () => {
    const piece = Buffer.alloc(1024 * 1024, "x");
    const res = await post([piece, piece, piece, piece, piece]);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toEqual({ error: "request too large" });
    expect((await post("{")).status).toBe(400);
    expect(webhook.process.isRunning()).toBe(true);
  });
});
