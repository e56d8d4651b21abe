// client-node's ListWatch restarts by itself after a watch expires (410) or times out, but stops on
// any other error (the API server restarting, a CRD not yet served, a network blip) and only reports
// it. Every Lockstep informer must keep going, so this restarts it with a capped backoff.
import type * as k8s from "@kubernetes/client-node";
import { kubeErrorMessage } from "./errors.ts";
import type { Logger } from "./logger.ts";

export function keepWatching<T extends k8s.KubernetesObject>(
  informer: k8s.Informer<T>,
  what: string,
  log: Logger,
  isStopped: () => boolean,
): void {
  let delayMs = 500;
  informer.on("connect", () => {
    delayMs = 500;
  });
  informer.on("error", (error) => {
    if (isStopped()) return;
    log.warn({ watch: what, err: kubeErrorMessage(error), retryInMs: delayMs }, "watch failed; restarting");
    setTimeout(() => {
      if (!isStopped()) informer.start().catch(() => undefined);
    }, delayMs);
    delayMs = Math.min(delayMs * 2, 30_000);
  });
}
