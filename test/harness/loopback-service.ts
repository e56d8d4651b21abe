// A Service's stable front on loopback, for pods on the harness's real nodes: what kube-proxy does for a
// ClusterIP, done in the test process. Every real node's hostNetwork pods have that node's loopback
// address as their IP (docs/adr/0062-deploy-on-real-nodes.md), and an EndpointSlice may not name a loopback
// address, so no Service can front them here. This listens on 127.0.0.1 (a port the kernel picks, so two
// runs never collide) and forwards each TCP connection, bytes untouched (TLS passes through), to one of
// the selected pods that are Ready, in turn; a connection refused by one goes to the next.
//
// The webhook configuration's URL names this front, so the API server reaches a webhook replica wherever
// the scheduler put it (issue: both replicas on other nodes than the one a URL named left the webhook
// unreachable, and every guarded pod refused).
import { connect, createServer, type Server, type Socket } from "node:net";
import * as k8s from "@kubernetes/client-node";

/** How often the front reads which pods are Ready: a replica that became Ready is used within this. */
const ENDPOINT_REFRESH_MS = 500;
/** A replica that does not accept within this is skipped for the next one. */
const CONNECT_TIMEOUT_MS = 2_000;

export interface LoopbackServiceOptions {
  /** What it is in front of, for messages. */
  name: string;
  /** The addresses of the Ready pods behind it, now (podEndpoints reads them as a Service would). */
  endpoints: () => Promise<readonly string[]>;
  /** The port the pods listen on, at their pod IP. */
  targetPort: number;
}

/** The Ready pods' addresses of `labelSelector` in `namespace`, read from the API server. */
export function podEndpoints(
  kc: k8s.KubeConfig,
  namespace: string,
  labelSelector: string,
): () => Promise<readonly string[]> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return async () => readyEndpoints((await core.listNamespacedPod({ namespace, labelSelector })).items);
}

/**
 * The addresses of the pods a Service would route to: Ready, with an IP, not being deleted; or, when
 * every Ready pod is being deleted, those (kube-proxy's fallback to terminating endpoints that still
 * serve, so a workload being removed keeps answering until it stops: its preStop, as the webhook's).
 */
export function readyEndpoints(pods: readonly k8s.V1Pod[]): readonly string[] {
  const ready = pods.filter(
    (p) =>
      p.status?.podIP && (p.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
  );
  const serving = ready.filter((p) => !p.metadata?.deletionTimestamp);
  return (serving.length > 0 ? serving : ready).map((p) => p.status?.podIP ?? "").sort();
}

export class LoopbackService {
  readonly host = "127.0.0.1";
  private endpoints: readonly string[] = [];
  private next = 0;
  private readonly sockets = new Set<Socket>();
  private refreshTimer: NodeJS.Timeout | undefined;

  private readonly server: Server;
  private readonly options: LoopbackServiceOptions;

  private constructor(server: Server, options: LoopbackServiceOptions) {
    this.server = server;
    this.options = options;
  }

  /** The port the front listens on, at `host`. */
  get port(): number {
    const address = this.server.address();
    if (!address || typeof address === "string") throw new Error("the loopback service is not listening");
    return address.port;
  }

  static async start(options: LoopbackServiceOptions): Promise<LoopbackService> {
    const server = createServer();
    const service = new LoopbackService(server, options);
    server.on("connection", (client) => service.forward(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, service.host, () => resolve());
    });
    service.scheduleRefresh(0);
    return service;
  }

  /** The pod IPs connections go to now. */
  currentEndpoints(): readonly string[] {
    return this.endpoints;
  }

  async stop(): Promise<void> {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private scheduleRefresh(delayMs: number): void {
    this.refreshTimer = setTimeout(() => void this.refresh(), delayMs);
    this.refreshTimer.unref();
  }

  /** Resolves once at least `count` replicas are Ready and routed to (a test's start waits on it). */
  async routesTo(count: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.refresh(false);
      if (this.endpoints.length >= count) return;
      if (Date.now() > deadline)
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${count} Ready ${this.options.name} pods behind the loopback front (${this.endpoints.length} now)`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async refresh(reschedule = true): Promise<void> {
    try {
      this.endpoints = await this.options.endpoints();
    } catch {
      // The API server paused or restarting (tests do both): keep routing to the last known replicas, as
      // kube-proxy keeps its rules while it cannot reach the API server.
    }
    if (reschedule && this.refreshTimer) this.scheduleRefresh(ENDPOINT_REFRESH_MS);
  }

  private track(socket: Socket): Socket {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    return socket;
  }

  /** Pipes `client` to the first Ready replica, in turn, that accepts; closes it when none does. */
  private forward(client: Socket): void {
    this.track(client);
    client.on("error", () => client.destroy());
    client.pause();
    const candidates = [...this.endpoints];
    const start = this.next++;
    const attempt = (tried: number) => {
      if (tried >= candidates.length || client.destroyed) {
        client.destroy();
        return;
      }
      const host = candidates[(start + tried) % candidates.length] ?? "";
      const upstream = this.track(connect({ host, port: this.options.targetPort }));
      upstream.setTimeout(CONNECT_TIMEOUT_MS, () => upstream.destroy(new Error("connect timeout")));
      const failed = () => attempt(tried + 1);
      upstream.once("error", failed);
      upstream.once("connect", () => {
        upstream.setTimeout(0);
        upstream.off("error", failed);
        const end = () => {
          client.destroy();
          upstream.destroy();
        };
        upstream.on("error", end);
        client.on("error", end);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  }
}
