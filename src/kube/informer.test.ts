import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createCertificateAuthority, issueCertificate } from "./certificates.ts";
import { KubeClient } from "./client.ts";
import { CACHE_STALE_AFTER_MS, cacheStaleReason, Informer, listPageLimit } from "./informer.ts";

describe("listPageLimit", () => {
  it("pages by count, and by the largest object when the collection declares one", () => {
    expect(listPageLimit(64 * 2 ** 20, undefined)).toBe(500);
    expect(listPageLimit(64 * 2 ** 20, 1024)).toBe(500);
    // Profiles (MAX_PROFILE_OBJECT_BYTES, 768 KiB): 42 a page, at most 31.5 MiB of a 64 MiB answer.
    expect(listPageLimit(64 * 2 ** 20, 768 * 1024)).toBe(42);
    // An object larger than half the answer limit still gets pages of one.
    expect(listPageLimit(1024, 4096)).toBe(1);
  });
});

describe("cacheStaleReason", () => {
  const t = 1_000_000;
  it("is live while the watch is up and heard from within the server's longest watch", () => {
    expect(cacheStaleReason({ downSince: undefined, lastHeardAt: t }, t + 600_000)).toBeUndefined();
    expect(cacheStaleReason({ downSince: undefined, lastHeardAt: t }, t + 640_000)).toMatch(
      /silent for 640 s/,
    );
  });

  it("is stale once the watch has been down longer than CACHE_STALE_AFTER_MS", () => {
    expect(cacheStaleReason({ downSince: t, lastHeardAt: t }, t + CACHE_STALE_AFTER_MS)).toBeUndefined();
    expect(cacheStaleReason({ downSince: t, lastHeardAt: t }, t + CACHE_STALE_AFTER_MS + 1_000)).toMatch(
      /down for 31 s/,
    );
  });
});

describe("Informer liveness, against an HTTPS server on loopback", () => {
  let server: Server | undefined;
  let informer: Informer<{ metadata?: { name?: string } }> | undefined;
  let client: KubeClient | undefined;
  afterEach(async () => {
    await informer?.stop();
    client?.close();
    server?.closeAllConnections();
    server?.close();
  });

  /** An API server whose list answers and whose watch does what `watch` does with the response. */
  async function start(watch: (res: ServerResponse) => void): Promise<void> {
    const ca = await createCertificateAuthority("test-ca");
    const cert = await issueCertificate(ca, {
      commonName: "127.0.0.1",
      usage: "server",
      ipAddresses: ["127.0.0.1"],
    });
    server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      if (req.url?.includes("watch=true")) return watch(res);
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ metadata: { resourceVersion: "5" }, items: [{ metadata: { name: "a" } }] }));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    client = new KubeClient({ server: `https://127.0.0.1:${port}`, ca: ca.certPem });
    informer = new Informer(client, { path: "/apis/x/v1/things" });
    await informer.start();
  }

  it("stays live while its watch hangs open within the server's timeout, and stops once that is long past", async () => {
    await start((res) => res.writeHead(200, { "Content-Type": "application/json" }).flushHeaders());
    await new Promise((r) => setTimeout(r, 200));
    const now = Date.now();
    expect(informer?.notLiveReason(now + CACHE_STALE_AFTER_MS + 1_000)).toBeUndefined();
    expect(informer?.notLiveReason(now + 700_000)).toMatch(
      /\/apis\/x\/v1\/things: the watch has been silent/,
    );
  });

  it("stops being live once its watch has failed for longer than CACHE_STALE_AFTER_MS", async () => {
    await start((res) => res.destroy());
    await new Promise((r) => setTimeout(r, 200));
    const now = Date.now();
    expect(informer?.notLiveReason(now)).toBeUndefined();
    expect(informer?.notLiveReason(now + CACHE_STALE_AFTER_MS + 1_000)).toMatch(
      /the watch has been down for/,
    );
  });
});
