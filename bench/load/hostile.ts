// A hostile client of the webhook, as its own process (the benchmark pins it to the other core): for
// SECONDS it sends the worst AdmissionReviews found (bench/webhook-hostile.bench.ts says which and why)
// at full rate on CONNECTIONS keep-alive connections, and holds SLOW connections that send their headers
// a byte at a time, reopening each one the webhook cuts off. Prints one JSON line: how many bodies of
// each kind were answered with which status, and how many connections broke. Loopback only.
//
//   node bench/load/hostile.ts PORT SECONDS CONNECTIONS SLOW
import { Agent, request } from "node:https";
import { connect } from "node:tls";
import { WEBHOOK_PATH } from "../../src/api/constants.ts";
import { MAX_NODE_SELECTOR_TERMS, MAX_POD_CONTAINERS } from "../../src/api/pod-profiles.ts";
import { MAX_BODY_BYTES, MAX_JSON_CONTAINERS_AND_ITEMS } from "../../src/webhook/server.ts";
import { podCreateReview } from "../../test/harness/webhook.ts";

const [port, seconds, connections, slow] = process.argv.slice(2).map(Number) as [
  number,
  number,
  number,
  number,
];

const review = (object: unknown) => podCreateReview(object, { uid: "hostile", namespace: "bench" });
const seccomp = { seccompProfile: { type: "Localhost", localhostProfile: "lockstep/bench.json" } };
/** Just under the cap on `{`, `[` and `,`, so each is parsed rather than refused unread. */
const items = MAX_JSON_CONTAINERS_AND_ITEMS - 2_000;
const requirement = { key: "k", operator: "In", values: ["v"] };
const termsOf = (n: number, per: number) =>
  Array.from({ length: n }, () => ({ matchExpressions: Array.from({ length: per }, () => requirement) }));

const BODIES: Record<string, string> = {
  // Was the worst (one issue and one line of message per element): one object per item for JSON.parse.
  "containers-of-empty-objects": review({ spec: { containers: Array.from({ length: items }, () => ({})) } }),
  "label-values-of-numbers": review({
    metadata: { labels: Object.fromEntries(Array.from({ length: items / 2 }, (_, i) => [`k${i}`, 1])) },
    spec: { containers: [] },
  }),
  // Accepted and patched: the most terms and requirements (5 structure bytes each) the structure cap
  // lets through, each term copied with Lockstep's requirement into a replace patch (the largest answer).
  "guarded-terms": review({
    spec: {
      containers: [{ name: "c", securityContext: seccomp }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: termsOf(
              MAX_NODE_SELECTOR_TERMS,
              Math.floor(items / 6 / MAX_NODE_SELECTOR_TERMS),
            ),
          },
        },
      },
    },
  }),
  "containers-naming-a-missing-profile": review({
    spec: {
      containers: Array.from({ length: MAX_POD_CONTAINERS }, (_, i) => ({
        name: `c${i}`,
        securityContext: { appArmorProfile: { type: "Localhost", localhostProfile: "lockstep.missing" } },
      })),
    },
  }),
  // The largest body, one string: two-byte characters double it in V8.
  "one-large-non-ascii-label": review({
    metadata: { labels: { a: "Ω".repeat(Math.floor((MAX_BODY_BYTES - 1024) / 2)) } },
    spec: { containers: [] },
  }),
  // Built as text: JSON.stringify would recurse once per level.
  "deeply-nested": review({ spec: { containers: "NESTED" } }).replace(
    '"NESTED"',
    `${"[".repeat(items)}${"]".repeat(items)}`,
  ),
};

const agent = new Agent({ keepAlive: true, maxSockets: connections, rejectUnauthorized: false });
const answered: Record<string, Record<number, number>> = {};
let broken = 0;
const deadline = Date.now() + seconds * 1000;

function send(kind: string, body: string): Promise<void> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: WEBHOOK_PATH,
        method: "POST",
        agent,
        headers: { "Content-Type": "application/json" },
      },
      (res) => {
        res.resume();
        res.on("end", () => {
          const counts = answered[kind] ?? {};
          counts[res.statusCode ?? 0] = (counts[res.statusCode ?? 0] ?? 0) + 1;
          answered[kind] = counts;
          resolve();
        });
      },
    );
    req.on("error", () => {
      broken++;
      resolve();
    });
    req.end(body);
  });
}

async function floodLoop(offset: number): Promise<void> {
  const kinds = Object.entries(BODIES);
  for (let i = offset; Date.now() < deadline; i++) {
    const [kind, body] = kinds[i % kinds.length] as [string, string];
    await send(kind, body);
  }
}

/** A connection that sends its headers a byte every 200 ms; reopened whenever the webhook cuts it off. */
async function slowLoop(): Promise<void> {
  while (Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false });
      socket.on("error", () => undefined);
      socket.on("close", () => resolve());
      const timer = setInterval(() => {
        if (Date.now() >= deadline) {
          clearInterval(timer);
          socket.destroy();
        } else socket.write("X");
      }, 200);
      socket.on("close", () => clearInterval(timer));
      socket.once("secureConnect", () => socket.write("POST /mutate HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    });
  }
}

await Promise.all([
  ...Array.from({ length: connections }, (_, i) => floodLoop(i)),
  ...Array.from({ length: slow }, () => slowLoop()),
]);
agent.destroy();
process.stdout.write(
  `${JSON.stringify({ answered, broken, bytes: Object.fromEntries(Object.entries(BODIES).map(([k, b]) => [k, b.length])) })}\n`,
);
