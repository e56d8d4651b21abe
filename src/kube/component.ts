// The one start-up scaffold of the three long-running programs (agent, controller, webhook): read the
// configuration or exit 2 naming what is wrong; find Kubernetes credentials or exit 2; count API
// requests for /metrics; serve /healthz, /readyz and /metrics; stop gracefully on SIGTERM/SIGINT (the
// kubelet's signal); exit 1 with a log line when start-up fails, so the kubelet restarts the process.
import * as z from "zod";
import { KubeClient } from "./client.ts";
import { startHealthServer } from "./health-server.ts";
import { startOrExit, stopGracefullyOnSignals } from "./lifecycle.ts";
import type { Logger } from "./logger.ts";
import { MetricsRegistry, ProcessMetrics } from "./metrics.ts";

/** Parses the flags and environment with the program's schema; on a problem, names each one and exits 2. */
export function configOrExit<S extends z.ZodType>(log: Logger, schema: S, input: unknown): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues)
    log.fatal({ setting: issue.path.join(".") || undefined }, `invalid configuration: ${issue.message}`);
  process.exit(2);
}

export interface Connection {
  client: KubeClient;
  metrics: MetricsRegistry;
}

/**
 * The API client every component uses, with its requests counted by verb and status, and the metrics
 * registry, which serves the process's own figures too (docs/metrics.md).
 */
export async function connectOrExit(log: Logger): Promise<Connection> {
  const metrics = new MetricsRegistry({ process: ProcessMetrics.start() });
  const requests = metrics.counter(
    "lockstep_api_requests_total",
    "Requests to the Kubernetes API server, by verb (WATCH for a watch) and HTTP status (0: no answer)",
  );
  try {
    const client = await KubeClient.fromEnvironment({
      onResponse: (verb, code) => requests.inc({ verb, code: String(code) }),
    });
    return { client, metrics };
  } catch (error) {
    log.fatal({ err: error instanceof Error ? error.message : String(error) }, "no Kubernetes configuration");
    process.exit(2);
  }
}

export interface RunnableComponent {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Undefined when ready to serve; else why not (for /readyz). */
  notReadyReason(): string | undefined;
}

/**
 * The flags every component takes for /healthz, /readyz and /metrics: a port (0 serves nothing) and the
 * address to listen on (every address by default; a pod's own IP where pods share the host network).
 */
export const HEALTH_FLAGS = {
  "health-port": { type: "string", default: "8081" },
  "health-host": { type: "string", default: "0.0.0.0" },
} as const;

export const HealthAddressSchema = z.object({
  port: z.coerce.number().int().min(0).max(65535),
  host: z.ipv4().or(z.ipv6()),
});
export type HealthAddress = z.infer<typeof HealthAddressSchema>;

/** HEALTH_FLAGS's values, as HealthAddressSchema reads them. */
export function healthAddressInput(values: { "health-port": string; "health-host": string }) {
  return { port: values["health-port"], host: values["health-host"] };
}

/** Serves health and metrics, starts the component, and stops it (then the client) on a signal. */
export async function runComponent(
  log: Logger,
  { client, metrics }: Connection,
  healthAddress: HealthAddress,
  component: RunnableComponent,
): Promise<void> {
  const health = await startHealthServer({
    ...healthAddress,
    metrics,
    notReadyReason: () => component.notReadyReason(),
  });
  stopGracefullyOnSignals(log, async () => {
    await component.stop();
    health?.close();
    client.close();
  });
  await startOrExit(log, () => component.start());
}
