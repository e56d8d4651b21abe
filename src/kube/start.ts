// What every long-running component does first: find its Kubernetes credentials (or exit with why it
// cannot), and count its API requests by verb and status for /metrics.
import { KubeClient } from "./client.ts";
import type { Logger } from "./logger.ts";
import type { MetricsRegistry } from "./metrics.ts";

export async function connectOrExit(log: Logger, metrics: MetricsRegistry): Promise<KubeClient> {
  const requests = metrics.counter(
    "lockstep_api_requests_total",
    "Requests to the Kubernetes API server, by verb (WATCH for a watch) and HTTP status (0: no answer)",
  );
  try {
    return await KubeClient.fromEnvironment({
      onResponse: (verb, code) => requests.inc({ verb, code: String(code) }),
    });
  } catch (error) {
    log.fatal({ err: error instanceof Error ? error.message : String(error) }, "no Kubernetes configuration");
    process.exit(2);
  }
}
