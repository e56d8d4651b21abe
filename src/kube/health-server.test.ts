// The health server's listen address: every address by default, one address with --health-host (two
// replicas sharing one host network namespace, each on its pod IP, then both use the same port).
import type { Server } from "node:http";
import { type AddressInfo, createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startHealthServer } from "./health-server.ts";
import { MetricsRegistry } from "./metrics.ts";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A port free on every address now (port 0 would turn the health server off). */
const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, "0.0.0.0", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });

async function start(host?: string, port?: number): Promise<Server> {
  const server = await startHealthServer({
    port: port ?? (await freePort()),
    host,
    metrics: new MetricsRegistry(),
    notReadyReason: () => undefined,
  });
  if (!server) throw new Error("no health server");
  servers.push(server);
  return server;
}

const portOf = (server: Server) => (server.address() as AddressInfo).port;
const healthz = (host: string, port: number) =>
  fetch(`http://${host}:${port}/healthz`).then(
    (res) => res.status,
    () => "refused",
  );

describe("startHealthServer's address", () => {
  it("listens on every address by default", async () => {
    const server = await start();
    expect((server.address() as AddressInfo).address).toBe("0.0.0.0");
    expect(await healthz("127.0.0.1", portOf(server))).toBe(200);
    expect(await healthz("127.0.0.2", portOf(server))).toBe(200);
  });

  it("listens on the given address only, so a second one can take the same port on another", async () => {
    const first = await start("127.0.0.2");
    const port = portOf(first);
    expect(await healthz("127.0.0.2", port)).toBe(200);
    expect(await healthz("127.0.0.1", port)).toBe("refused");
    const second = await start("127.0.0.3", port);
    expect(portOf(second)).toBe(port);
    expect(await healthz("127.0.0.3", port)).toBe(200);
  });
});
