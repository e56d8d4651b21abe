// A half-open connection answers nothing and reports nothing. Real sockets on loopback play one: a TCP
// server that accepts and never speaks TLS, and a TLS server that takes a request and never answers it
// (or answers a watch's headers and then falls silent). Every request must give up with a message that
// says so, and an informer must give up on its watch and list again.
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCertificateAuthority, issueCertificate, type KeyPair } from "./certificates.ts";
import { KubeApiError, KubeClient } from "./client.ts";
import { Informer, type KubeObject, watchIdleTimeoutMs } from "./informer.ts";

let ca: KeyPair;
let serving: KeyPair;
const servers: (Server | HttpsServer)[] = [];
const sockets = new Set<Socket>();

beforeAll(async () => {
  ca = await createCertificateAuthority("timeouts-test-ca");
  serving = await issueCertificate(ca, {
    commonName: "127.0.0.1",
    ipAddresses: ["127.0.0.1"],
    usage: "server",
  });
});

afterEach(async () => {
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

afterAll(() => {
  for (const socket of sockets) socket.destroy();
});

function listening<S extends Server | HttpsServer>(server: S): Promise<number> {
  servers.push(server);
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

/** A TLS server that hands each request to `answer` (which may never answer). */
function tlsServer(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  return listening(createHttpsServer({ cert: serving.certPem, key: serving.keyPem }, answer));
}

const clientFor = (port: number, connectTimeoutMs = 10_000) =>
  new KubeClient({ server: `https://127.0.0.1:${port}`, ca: ca.certPem, token: "t" }, { connectTimeoutMs });

const failure = (call: Promise<unknown>) =>
  call.then(
    () => "answered",
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );

describe("requests on a half-open connection", () => {
  it("give up connecting when the TLS handshake never completes", async () => {
    const port = await listening(createServer(() => {}));
    const client = clientFor(port, 200);
    expect(await failure(client.get("/api/v1/nodes/n1"))).toBe(
      "GET /api/v1/nodes/n1: could not connect within 200 ms",
    );
    client.close();
  });

  it("give up when the server takes the request and never answers, or stops halfway", async () => {
    const port = await tlsServer((req, res) => {
      if (req.url?.startsWith("/half")) {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.write('{"items": [');
      }
    });
    const client = clientFor(port);
    expect(await failure(client.patch("/api/v1/nodes/n1", "merge", {}, { timeoutMs: 300 }))).toBe(
      "PATCH /api/v1/nodes/n1: no complete answer within 300 ms",
    );
    expect(await failure(client.get("/half", { timeoutMs: 300 }))).toBe(
      "GET /half: no complete answer within 300 ms",
    );
    client.close();
  });

  it("a watch gives up when nothing arrives for its idle timeout, headers sent or not", async () => {
    const port = await tlsServer((req, res) => {
      if (req.url?.startsWith("/headers"))
        res.writeHead(200, { "Content-Type": "application/json" }).flushHeaders();
    });
    const client = clientFor(port);
    for (const path of ["/silent", "/headers"])
      expect(await failure(client.watch(path, { onEvent: () => {}, idleTimeoutMs: 300 }))).toBe(
        `watch ${path}: nothing received for 300 ms (a half-open connection?)`,
      );
    client.close();
  });

  it("a watch that keeps receiving (bookmarks) is not cut by its idle timeout", async () => {
    const port = await tlsServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      const bookmark = `${JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "5" } } })}\n`;
      const timer = setInterval(() => res.write(bookmark), 100);
      setTimeout(() => {
        clearInterval(timer);
        res.end();
      }, 700);
    });
    const client = clientFor(port);
    let events = 0;
    await client.watch("/bookmarks", { onEvent: () => events++, idleTimeoutMs: 300 });
    expect(events).toBeGreaterThanOrEqual(4);
    client.close();
  });
});

describe("an informer whose watch goes half-open", () => {
  it("gives up on it after its idle timeout and lists again", async () => {
    const requests: string[] = [];
    const port = await tlsServer((req, res) => {
      const url = new URL(req.url ?? "/", "https://x");
      const watching = url.searchParams.get("watch") === "true";
      requests.push(watching ? "watch" : "list");
      if (watching) return; // accepted, never answered
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify({
          metadata: { resourceVersion: "10" },
          items: [{ metadata: { name: "n1", resourceVersion: "9" } }],
        }),
      );
    });
    const client = clientFor(port);
    const errors: string[] = [];
    const informer = new Informer<KubeObject>(client, {
      path: "/api/v1/nodes",
      watchTimeoutSeconds: 1,
      onError: (error) => errors.push(error instanceof Error ? error.message : String(error)),
    });
    await informer.start();
    expect(informer.list().map((n) => n.metadata?.name)).toEqual(["n1"]);
    // 1.5 s of silence, then the 0.5 s backoff: the second list comes about 2 s in.
    const deadline = Date.now() + 10_000;
    while (requests.filter((r) => r === "list").length < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(requests.slice(0, 3)).toEqual(["list", "watch", "list"]);
    expect(errors[0]).toMatch(/^watch \/api\/v1\/nodes: nothing received for 1500 ms/);
    await informer.stop();
    client.close();
  });

  it("waits half its watch timeout longer than the server would, at most 30 s longer", () => {
    expect(watchIdleTimeoutMs(1)).toBe(1_500);
    expect(watchIdleTimeoutMs(300)).toBe(330_000);
  });
});

describe("an informer that keeps only part of what it lists (Events)", () => {
  it("keeps what the transform returns, and only the newest maxObjects", async () => {
    const item = (name: string, keep: boolean) => ({
      metadata: { name, resourceVersion: "1", labels: { keep: String(keep) } },
    });
    const port = await tlsServer((req, res) => {
      if (new URL(req.url ?? "/", "https://x").searchParams.get("watch") === "true") {
        res.writeHead(200, { "Content-Type": "application/json" });
        for (const name of ["e6", "e7"])
          res.write(`${JSON.stringify({ type: "ADDED", object: item(name, true) })}\n`);
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify({
          metadata: { resourceVersion: "10" },
          items: ["e1", "e2", "e3", "e4", "e5"].map((n) => item(n, n !== "e4")),
        }),
      );
    });
    const client = clientFor(port);
    const informer = new Informer<KubeObject>(client, {
      path: "/api/v1/namespaces/default/events",
      transform: (o) =>
        o.metadata?.labels?.keep === "true" ? { metadata: { name: o.metadata.name } } : undefined,
      maxObjects: 3,
    });
    await informer.start();
    const deadline = Date.now() + 5_000;
    while (informer.get("e7") === undefined && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(informer.list()).toEqual([
      { metadata: { name: "e5" } },
      { metadata: { name: "e6" } },
      { metadata: { name: "e7" } },
    ]);
    await informer.stop();
    client.close();
  });
});

describe("a refusal for load", () => {
  it("carries the server's Retry-After, on a request and on a watch", async () => {
    const port = await tlsServer((_req, res) => {
      res.writeHead(429, { "Content-Type": "application/json", "Retry-After": "1" });
      res.end(
        JSON.stringify({
          kind: "Status",
          code: 429,
          reason: "TooManyRequests",
          message: "too many requests, please try again later",
        }),
      );
    });
    const client = clientFor(port);
    const refusal = (call: Promise<unknown>) =>
      call.then(
        () => undefined,
        (error: unknown) => error,
      );
    for (const call of [
      client.patch("/api/v1/nodes/n1", "merge", {}),
      client.watch("/api/v1/nodes", { onEvent: () => {}, idleTimeoutMs: 5_000 }),
    ]) {
      const error = await refusal(call);
      expect(error).toBeInstanceOf(KubeApiError);
      expect(error).toMatchObject({
        code: 429,
        retryAfterSeconds: 1,
        message: "too many requests, please try again later",
      });
    }
    client.close();
  });
});
