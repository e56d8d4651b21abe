// The loopback front the demo and the deploy tests put before the webhook's replicas: real sockets on
// 127.0.0.1, with backends that answer, refuse or come and go.
import { once } from "node:events";
import { connect, createServer, type Server } from "node:net";
import type * as k8s from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { LoopbackService, readyEndpoints } from "../harness/loopback-service.ts";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A backend on `host` that answers every connection with its own name and closes. */
async function backend(host: string, name: string, port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.end(name));
  server.listen(port, host);
  await once(server, "listening");
  cleanups.push(() => new Promise((r) => server.close(() => r())));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no address");
  return { server, port: address.port };
}

/** What a client connecting to the front reads before the connection ends ("" when it is cut). */
async function ask(front: LoopbackService): Promise<string> {
  const socket = connect({ host: front.host, port: front.port });
  let text = "";
  socket.on("data", (chunk) => {
    text += chunk;
  });
  await new Promise<void>((resolve) => {
    socket.on("close", () => resolve());
    socket.on("error", () => resolve());
  });
  return text;
}

async function startFront(endpoints: () => readonly string[], targetPort: number) {
  const front = await LoopbackService.start({
    name: "test",
    endpoints: async () => endpoints(),
    targetPort,
  });
  cleanups.push(() => front.stop());
  return front;
}

const pod = (ip: string, ready: boolean, deleting = false): k8s.V1Pod => ({
  metadata: deleting ? { deletionTimestamp: new Date() } : {},
  status: { podIP: ip, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
});

describe("readyEndpoints", () => {
  it("keeps the Ready pods with an IP that are not being deleted", () => {
    expect(
      readyEndpoints([
        pod("127.20.0.2", true),
        pod("127.20.0.1", true),
        pod("127.20.0.3", false),
        pod("127.20.0.4", true, true),
        { status: { conditions: [{ type: "Ready", status: "True" }] } },
      ]),
    ).toEqual(["127.20.0.1", "127.20.0.2"]);
  });

  it("falls back to the Ready pods being deleted when no other is Ready, as kube-proxy does", () => {
    expect(
      readyEndpoints([
        pod("127.20.0.4", true, true),
        pod("127.20.0.3", false),
        pod("127.20.0.5", true, true),
      ]),
    ).toEqual(["127.20.0.4", "127.20.0.5"]);
  });
});

describe("LoopbackService", () => {
  it("forwards to every Ready replica in turn, each on its own loopback address", async () => {
    const a = await backend("127.31.0.1", "a");
    await backend("127.31.0.2", "b", a.port);
    const front = await startFront(() => ["127.31.0.1", "127.31.0.2"], a.port);
    await front.routesTo(2);
    const answers = [await ask(front), await ask(front), await ask(front), await ask(front)];
    expect(new Set(answers)).toEqual(new Set(["a", "b"]));
  });

  it("goes on to the next replica when one refuses the connection", async () => {
    const b = await backend("127.31.0.4", "b");
    // Nothing listens on 127.31.0.3 at that port: refused, as by a replica that just stopped.
    const front = await startFront(() => ["127.31.0.3", "127.31.0.4"], b.port);
    await front.routesTo(2);
    for (let i = 0; i < 4; i++) expect(await ask(front)).toBe("b");
  });

  it("closes the connection when no replica is Ready, and routes once one is", async () => {
    let ready: string[] = [];
    const c = await backend("127.31.0.5", "c");
    const front = await startFront(() => ready, c.port);
    expect(await ask(front)).toBe("");
    ready = ["127.31.0.5"];
    await front.routesTo(1);
    expect(await ask(front)).toBe("c");
  });

  it("keeps the last replicas it knew while the endpoint source fails", async () => {
    const d = await backend("127.31.0.6", "d");
    let fail = false;
    const front = await LoopbackService.start({
      name: "test",
      endpoints: async () => {
        if (fail) throw new Error("API server paused");
        return ["127.31.0.6"];
      },
      targetPort: d.port,
    });
    cleanups.push(() => front.stop());
    await front.routesTo(1);
    fail = true;
    await new Promise((r) => setTimeout(r, 1_200));
    expect(front.currentEndpoints()).toEqual(["127.31.0.6"]);
    expect(await ask(front)).toBe("d");
  });
});
