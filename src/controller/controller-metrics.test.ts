import { describe, expect, it } from "vitest";
import { MetricsRegistry } from "../kube/metrics.ts";
import { controllerMetrics, measuredReconcile } from "./controller-metrics.ts";

describe("measuredReconcile", () => {
  it("counts each reconcile by result, times it, and passes its result or error on", async () => {
    const registry = new MetricsRegistry();
    const m = controllerMetrics(registry);
    expect(await measuredReconcile(m, "seccomp", async () => ({ requeueAfterMs: 5 }))).toEqual({
      requeueAfterMs: 5,
    });
    await expect(
      measuredReconcile(m, "apparmor", async () => {
        throw new Error("409: conflict");
      }),
    ).rejects.toThrow("409: conflict");
    const text = registry.render();
    expect(text).toContain('lockstep_controller_reconciles_total{kind="seccomp",result="ok"} 1');
    expect(text).toContain('lockstep_controller_reconciles_total{kind="apparmor",result="error"} 1');
    expect(text).toMatch(/lockstep_controller_reconcile_duration_seconds_count\{kind="apparmor"\} 1/);
  });
});
