// Thousands of malformed and hostile AdmissionReviews, straight at the running webhook process on
// 127.0.0.1 (with the CA it published, as the API server calls it): it never crashes, never answers
// 5xx, answers every review that has a uid with that uid, and every refusal names the field.
import { Agent, request } from "node:https";
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls, type TLSSocket } from "node:tls";
import * as k8s from "@kubernetes/client-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  APPARMOR_LABEL,
  SYNCED_REVISION_LABEL,
  WEBHOOK_CONFIGURATION_NAME,
} from "../../src/api/constants.ts";
import { MAX_POD_CONTAINERS } from "../../src/api/pod-profiles.ts";
import {
  LARGE_BODIES_BUDGET_BYTES,
  MAX_BODY_BYTES,
  MAX_CONNECTIONS,
  MAX_JSON_CONTAINERS_AND_ITEMS,
  MAX_MESSAGE_CHARS,
  REQUEST_TIMEOUT_MS,
  SMALL_BODY_BYTES,
} from "../../src/webhook/server.ts";
import { installAgentPrerequisites } from "../harness/agents.ts";
import { ControlPlane } from "../harness/controlplane.ts";
import { applyProfile } from "../harness/profiles.ts";
import { installWebhook, podCreateReview, podReview, type WebhookProcess } from "../harness/webhook.ts";

let cp: ControlPlane;
let webhook: WebhookProcess;
let agent: Agent;
let ca: string;

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
  ca = Buffer.from(config.webhooks?.[0]?.clientConfig.caBundle ?? "", "base64").toString();
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
    let doc: unknown = podReview(pod(), {
      uid,
      namespace: "fuzz",
      ...(debug
        ? { ephemeral: { oldObject: { ...pod(), spec: { ...pod().spec, ephemeralContainers: [] } } } }
        : {}),
    });
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
    const body = Buffer.from(podCreateReview(pod(), { uid, namespace: "fuzz" }));
    const cut = body.indexOf(Buffer.from("ü")) + 1; // between the two bytes of "ü"
    const res = await post([body.subarray(0, cut), body.subarray(cut)]);
    expect(res.status, res.body).toBe(200);
    const answer = JSON.parse(res.body) as { response: { uid: string; allowed: boolean } };
    expect(answer.response).toMatchObject({ uid, allowed: true });
  });

  it("refuses a body over MAX_BODY_BYTES with 413, by its Content-Length or as it arrives, and goes on answering", async () => {
    const piece = Buffer.alloc(1024 * 1024, " ");
    const pieces = Array.from({ length: Math.ceil(MAX_BODY_BYTES / piece.length) + 1 }, () => piece);
    const res = await post(pieces);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toEqual({ error: `request too large: at most ${MAX_BODY_BYTES} bytes` });
    // Announced as too large: refused before a byte of it is read.
    const announced = await rawExchange(
      `POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n`,
    );
    expect(announced).toMatch(/^HTTP\/1\.1 413/);
    expect((await post("{")).status).toBe(400);
    expect(webhook.process.isRunning()).toBe(true);
  });
});

// --- hostile clients: the worst bodies, slow clients, many connections ------------------------------

const reviewOf = (object: unknown) => podCreateReview(object, { uid: "hostile", namespace: "fuzz" });

/** A TLS connection to the webhook (as the API server opens one), with what it received. */
function openTls(): Promise<{ socket: TLSSocket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    let text = "";
    const socket = connectTls({ host: "127.0.0.1", port: webhook.port, ca }, () =>
      resolve({ socket, received: () => text, closed }),
    );
    const closed = new Promise<void>((done) => socket.on("close", () => done()));
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error("closed before the TLS handshake")));
  });
}

/** Sends `head` on a new TLS connection and returns what came back before the server closed it. */
async function rawExchange(head: string): Promise<string> {
  const conn = await openTls();
  conn.socket.on("error", () => undefined);
  conn.socket.write(head);
  await conn.closed;
  return conn.received();
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long the server may take to cut a slow client off: the bound, its check interval, and slack. */
const CUT_OFF_MS = REQUEST_TIMEOUT_MS + 3_000;

describe("the webhook under hostile clients", () => {
  it("answers the worst bodies found with one short refusal each, or refuses them unparsed", async () => {
    // Each of these, as a 600 KB body, made a message per element before (up to 610 MiB resident).
    const numbers = (n: number) => Array.from({ length: n }, () => 1);
    const n = MAX_JSON_CONTAINERS_AND_ITEMS - 1_000;
    const cases: [string, unknown, RegExp][] = [
      ["containers of numbers", { spec: { containers: numbers(n) } }, /spec\.containers: must have at most/],
      [
        "containers each naming a missing profile",
        {
          spec: {
            containers: Array.from({ length: MAX_POD_CONTAINERS }, (_, i) => ({
              name: `c${i}`,
              securityContext: {
                appArmorProfile: { type: "Localhost", localhostProfile: "lockstep.missing" },
              },
            })),
          },
        },
        /; and \d+ more/,
      ],
      [
        "labels of numbers",
        {
          metadata: { labels: Object.fromEntries(numbers(n).map((v, i) => [`k${i}`, v])) },
          spec: { containers: [] },
        },
        /metadata\.labels: must have at most \d+ entries/,
      ],
      [
        "values of numbers",
        {
          spec: {
            containers: [],
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    { matchExpressions: [{ key: "k", operator: "In", values: numbers(n) }] },
                  ],
                },
              },
            },
          },
        },
        /values\[0\]/,
      ],
    ];
    for (const [what, object, names] of cases) {
      const res = await post(reviewOf(object));
      expect(res.status, what).toBe(200);
      const message = (JSON.parse(res.body) as { response: { status: { message: string } } }).response.status
        .message;
      expect(message, what).toMatch(names);
      expect(message.length, what).toBeLessThanOrEqual(MAX_MESSAGE_CHARS + 50);
    }
    // A million empty objects in under 3 MiB: refused before JSON.parse allocates them.
    const objects = await post(
      reviewOf({ spec: { containers: Array.from({ length: 1_000_000 }, () => ({})) } }),
    );
    expect(objects.status).toBe(413);
    expect(objects.body).toContain("too complex");
    expect(webhook.process.isRunning()).toBe(true);
  });

  it("cuts off a client that sends nothing, headers byte by byte or a body slowly, and answers others meanwhile", async () => {
    const started = Date.now();
    // No TLS handshake at all.
    const silent = connectTcp({ host: "127.0.0.1", port: webhook.port });
    silent.on("error", () => undefined);
    const silentClosed = new Promise<void>((done) => silent.on("close", () => done()));
    // Headers one byte at a time, never finished.
    const headers = await openTls();
    headers.socket.on("error", () => undefined);
    let stopDripping = false;
    void (async () => {
      for (const byte of "POST /mutate HTTP/1.1\r\nHost: x\r\nX-Slow: ".concat("y".repeat(1000))) {
        if (stopDripping || headers.socket.destroyed) return;
        headers.socket.write(byte);
        await pause(100);
      }
    })();
    // Headers at once, then a body byte by byte, never finished.
    const body = await openTls();
    body.socket.on("error", () => undefined);
    body.socket.write(
      "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
    );
    void (async () => {
      while (!stopDripping && !body.socket.destroyed) {
        body.socket.write("1");
        await pause(100);
      }
    })();
    // Real reviews are answered while they hang on.
    for (let i = 0; i < 5; i++) {
      expect((await post(reviewOf({ spec: { containers: [] } }))).status).toBe(200);
      await pause(200);
    }
    await Promise.all([silentClosed, headers.closed, body.closed]);
    stopDripping = true;
    expect(Date.now() - started).toBeLessThan(CUT_OFF_MS);
    // The slow body was answered 408 (Node's requestTimeout) before the connection closed.
    expect(body.received()).toMatch(/^HTTP\/1\.1 408/);
    expect((await post(reviewOf({ spec: { containers: [] } }))).status).toBe(200);
  }, 30_000);

  it("refuses large bodies beyond the shared budget with 503 while small reviews pass, and takes them again once freed", async () => {
    // Each holds its body's bytes beyond SMALL_BODY_BYTES until the end arrives, which it never sends.
    const size = 2 * 1024 * 1024;
    const holders = Math.floor(LARGE_BODIES_BUDGET_BYTES / (size - SMALL_BODY_BYTES));
    const held: { socket: TLSSocket; closed: Promise<void> }[] = [];
    for (let i = 0; i < holders; i++) {
      const conn = await openTls();
      conn.socket.on("error", () => undefined);
      conn.socket.write(`POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: ${size + 1}\r\n\r\n`);
      await new Promise<void>((done) => conn.socket.write(Buffer.alloc(size, " "), () => done()));
      held.push(conn);
    }
    await pause(300);
    const refused = await post(Buffer.alloc(size, " ").toString());
    expect(refused.status).toBe(503);
    expect((await post(reviewOf({ spec: { containers: [] } }))).status).toBe(200);
    for (const conn of held) conn.socket.destroy();
    await Promise.all(held.map((c) => c.closed));
    await pause(100);
    // A large body is read again (and refused as JSON, which it is not).
    expect((await post(Buffer.alloc(size, " ").toString())).status).toBe(400);
  }, 30_000);

  it("holds at most MAX_CONNECTIONS connections and serves again once they are gone", async () => {
    const sockets: Socket[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const socket = connectTcp({ host: "127.0.0.1", port: webhook.port });
      socket.on("error", () => undefined);
      await new Promise<void>((done) => socket.once("connect", () => done()));
      sockets.push(socket);
    }
    await pause(200);
    // A new connection (the API server's next one) is closed at once.
    await expect(openTls()).rejects.toThrow();
    for (const socket of sockets) socket.destroy();
    await pause(300);
    expect((await post(reviewOf({ spec: { containers: [] } }))).status).toBe(200);
  }, 30_000);
});
