// /healthz (the process is alive), /readyz (it can do its job: caches synced, certificates loaded)
// and /metrics, on a plain HTTP port that the kubelet's probes and Prometheus scrape.
import type { Server } from "node:http";
import type { MetricsRegistry } from "./metrics.ts";

// Not `import { createServer } from "node:http"`: an ES module import of a builtin reads every export
// to build its namespace, and node:http's WebSocket, CloseEvent and MessageEvent getters load undici,
// Node's fetch: about 10 MiB resident (6 MiB anonymous) in every component, for nothing it uses.
const { createServer } = process.getBuiltinModule("node:http");

export interface HealthServerOptions {
  port: number;
  host?: string;
  metrics: MetricsRegistry;
  /** Returns undefined when ready, else the reason it is not. */
  notReadyReason: () => string | undefined;
  /** Returns undefined when healthy, else the reason; defaults to always healthy. */
  unhealthyReason?: () => string | undefined;
}

/** Starts the server; port 0 means the operator turned it off, and nothing is started. */
export async function startHealthServer(options: HealthServerOptions): Promise<Server | undefined> {
  if (options.port === 0) return undefined;
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "Content-Type": type });
      res.end(body);
    };
    if (req.method !== "GET") return reply(405, "method not allowed\n");
    if (path === "/healthz") {
      const reason = options.unhealthyReason?.();
      return reason ? reply(503, `${reason}\n`) : reply(200, "ok\n");
    }
    if (path === "/readyz") {
      const reason = options.notReadyReason();
      return reason ? reply(503, `${reason}\n`) : reply(200, "ok\n");
    }
    if (path === "/metrics") return reply(200, options.metrics.render(), "text/plain; version=0.0.4");
    return reply(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => resolve());
  });
  return server;
}
