import { describe, expect, it } from "vitest";
import { AgentLifecycle, SYNC_RETRY_MS, startupRetryDelayMs } from "./agent-lifecycle.ts";

describe("AgentLifecycle", () => {
  it("takes sync requests only between start-up reconciliation and stop", () => {
    const life = new AgentLifecycle();
    expect(life.takesSyncRequests()).toBe(false);
    expect(life.notReadyReason()).toBe("start-up reconciliation has not finished");
    life.reconcile();
    expect(life.takesSyncRequests()).toBe(true);
    expect(life.notReadyReason()).toBeUndefined();
    life.stop();
    expect(life.takesSyncRequests()).toBe(false);
    expect(life.stopped).toBe(true);
  });

  it("takes none when stopped during start-up, even once reconciled", () => {
    const life = new AgentLifecycle();
    life.stop();
    life.reconcile();
    expect(life.takesSyncRequests()).toBe(false);
  });

  it("leaves retries to the start-up loop before reconciliation, and retries after a delay once reconciled", () => {
    const life = new AgentLifecycle();
    expect(life.syncFailed("connection refused")).toBeUndefined();
    expect(life.lastError()).toBe("connection refused");
    life.reconcile();
    expect(life.syncFailed("503: etcdserver: request timed out")).toBe(SYNC_RETRY_MS);
    expect(life.lastError()).toBe("503: etcdserver: request timed out");
  });

  it("waits what a refusal for load says (Retry-After plus jitter), and its own delay for any other refusal", () => {
    const life = new AgentLifecycle();
    life.reconcile();
    const half = () => 0.5;
    expect(life.syncFailed("429: too many requests", { code: 429, retryAfterSeconds: 4 }, half)).toBe(4_500);
    expect(life.syncFailed("409: conflict", { code: 409, retryAfterSeconds: 4 }, half)).toBe(SYNC_RETRY_MS);
    expect(life.syncFailed("429 without a header", { code: 429, retryAfterSeconds: undefined }, half)).toBe(
      SYNC_RETRY_MS,
    );
  });

  it("is healthy again only once a sync published its labels", () => {
    const life = new AgentLifecycle();
    life.reconcile();
    life.syncFailed("connection refused");
    expect(life.lastError()).toBe("connection refused");
    life.syncPublished();
    expect(life.lastError()).toBeUndefined();
  });
});

describe("startupRetryDelayMs", () => {
  it("doubles from half a second and stops at ten", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 20].map(startupRetryDelayMs)).toEqual([
      500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000,
    ]);
  });
});
