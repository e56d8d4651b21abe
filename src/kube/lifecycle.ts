// What every Lockstep process does at the edges of its life: stop gracefully on SIGTERM (the kubelet's
// signal) or SIGINT, once, and exit non-zero with a log line when it cannot start.
import type { Logger } from "./logger.ts";

/** Runs `stop` once on SIGTERM or SIGINT, then exits 0. */
export function stopGracefullyOnSignals(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    await stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void handler("SIGTERM"));
  process.on("SIGINT", () => void handler("SIGINT"));
}

/** Awaits `start`; a failure is logged as fatal and ends the process (the Deployment restarts it). */
export async function startOrExit(log: Logger, start: () => Promise<void>): Promise<void> {
  try {
    await start();
  } catch (error) {
    log.fatal({ err: error instanceof Error ? error.message : String(error) }, "could not start");
    process.exit(1);
  }
}
