// The controller's metrics (docs/metrics.md).
import type { MetricsRegistry } from "../kube/metrics.ts";

export function controllerMetrics(m: MetricsRegistry) {
  return {
    reconciles: m.counter("lockstep_controller_reconciles_total", "Reconciles run, by kind and result"),
    errors: m.counter("lockstep_controller_reconcile_errors_total", "Reconciles that failed, by kind"),
    duration: m.histogram(
      "lockstep_controller_reconcile_duration_seconds",
      "Time one reconcile took, by kind",
      [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    ),
    statusWrites: m.counter("lockstep_controller_status_writes_total", "Status patches sent, by kind"),
    phases: m.gauge("lockstep_controller_profiles", "Profiles by kind and phase"),
    depth: m.gauge("lockstep_controller_queue_depth", "Profiles waiting to be reconciled"),
  };
}

export type ControllerMetrics = ReturnType<typeof controllerMetrics>;

/** Runs one reconcile of a `kind` profile, counting it by result and timing it. */
export async function measuredReconcile<R>(
  m: ControllerMetrics,
  kind: string,
  reconcile: () => Promise<R>,
): Promise<R> {
  const started = performance.now();
  try {
    const result = await reconcile();
    m.reconciles.inc({ kind, result: "ok" });
    return result;
  } catch (error) {
    m.reconciles.inc({ kind, result: "error" });
    throw error;
  } finally {
    m.duration.observe((performance.now() - started) / 1000, { kind });
  }
}
