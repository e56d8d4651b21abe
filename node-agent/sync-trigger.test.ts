import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SyncTrigger } from "./sync-trigger.ts";

const opts = { quietMs: 15, maxWaitMs: 250, maxPublishDelayMs: 1000, publishGraceMs: 25 };

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function counting(durationMs = 0) {
  const syncs: number[] = [];
  const sync = async () => {
    syncs.push(Date.now());
    if (durationMs > 0) await new Promise((r) => setTimeout(r, durationMs));
  };
  return { syncs, sync };
}

describe("SyncTrigger", () => {
  it("syncs a lone change after the quiet gap, not a fixed debounce", async () => {
    const { syncs, sync } = counting();
    const trigger = new SyncTrigger(sync, opts);
    const start = Date.now();
    trigger.poke();
    await vi.advanceTimersByTimeAsync(14);
    expect(syncs).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(syncs).toEqual([start + 15]);
  });

  it("coalesces a burst of pokes into one sync", async () => {
    const { syncs, sync } = counting();
    const trigger = new SyncTrigger(sync, opts);
    for (let i = 0; i < 35; i++) {
      trigger.poke();
      await vi.advanceTimersByTimeAsync(3);
    }
    await vi.advanceTimersByTimeAsync(100);
    expect(syncs).toHaveLength(1);
  });

  it("syncs a never-ending stream at least every maxWaitMs", async () => {
    const { syncs, sync } = counting();
    const trigger = new SyncTrigger(sync, opts);
    const start = Date.now();
    for (let i = 0; i < 100; i++) {
      trigger.poke();
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(syncs.length).toBeGreaterThanOrEqual(3);
    expect(syncs[0]).toBe(start + 250);
  });

  it("runs exactly one more sync for pokes that arrive while a sync runs, never two at once", async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    let count = 0;
    const trigger = new SyncTrigger(async () => {
      count += 1;
      concurrent += 1;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await new Promise((r) => setTimeout(r, 100));
      concurrent -= 1;
    }, opts);
    trigger.poke();
    await vi.advanceTimersByTimeAsync(20);
    for (let i = 0; i < 10; i++) trigger.poke();
    await vi.advanceTimersByTimeAsync(500);
    expect(count).toBe(2);
    expect(maxConcurrent).toBe(1);
  });

  it("keeps going after a sync fails", async () => {
    let calls = 0;
    const trigger = new SyncTrigger(async () => {
      calls += 1;
      throw new Error("API server away");
    }, opts);
    trigger.poke();
    await vi.advanceTimersByTimeAsync(20);
    trigger.poke();
    await vi.advanceTimersByTimeAsync(20);
    expect(calls).toBe(2);
  });

  it("after stop, waits for the running sync and starts none", async () => {
    const { syncs, sync } = counting(50);
    const trigger = new SyncTrigger(sync, opts);
    trigger.poke();
    await vi.advanceTimersByTimeAsync(20);
    trigger.poke();
    const stopped = trigger.stop();
    await vi.advanceTimersByTimeAsync(200);
    await stopped;
    trigger.poke();
    await vi.advanceTimersByTimeAsync(200);
    expect(syncs).toHaveLength(1);
  });
});

describe("SyncTrigger: publishing a burst once", () => {
  it("lets a sync that was overtaken by changes leave publishing to the next, one that was not publish", async () => {
    const decisions: boolean[] = [];
    let first = true;
    const trigger = new SyncTrigger(async (run) => {
      if (first) {
        first = false;
        // The rest of the burst arrives while the first sync runs.
        await new Promise((r) => setTimeout(r, 40));
      }
      decisions.push(await run.publishingCanWait());
    }, opts);
    trigger.poke();
    await vi.advanceTimersByTimeAsync(20);
    for (let i = 0; i < 34; i++) trigger.poke();
    await vi.advanceTimersByTimeAsync(200);
    expect(decisions).toEqual([true, false]);
  });

  it("waits publishGraceMs for the rest of a burst that comes after a quick first sync, and no longer", async () => {
    const decisions: { canWait: boolean; at: number }[] = [];
    const trigger = new SyncTrigger(async (run) => {
      decisions.push({ canWait: await run.publishingCanWait(), at: Date.now() });
    }, opts);
    const start = Date.now();
    trigger.poke();
    // The first sync starts after quietMs and finishes at once; the burst comes 10 ms later.
    await vi.advanceTimersByTimeAsync(25);
    for (let i = 0; i < 34; i++) trigger.poke();
    await vi.advanceTimersByTimeAsync(200);
    expect(decisions.map((d) => d.canWait)).toEqual([true, false]);
    // A lone change: published publishGraceMs after its sync, not later.
    decisions.length = 0;
    const lone = Date.now();
    trigger.poke();
    await vi.advanceTimersByTimeAsync(200);
    expect(decisions).toEqual([{ canWait: false, at: lone + opts.quietMs + opts.publishGraceMs }]);
    expect(start).toBeLessThan(lone);
  });

  it("never holds a change back longer than maxPublishDelayMs, however long the burst", async () => {
    const decisions: boolean[] = [];
    const trigger = new SyncTrigger(async (run) => {
      await new Promise((r) => setTimeout(r, 100));
      decisions.push(await run.publishingCanWait());
    }, opts);
    for (let i = 0; i < 300; i++) {
      trigger.poke();
      await vi.advanceTimersByTimeAsync(10);
    }
    await vi.advanceTimersByTimeAsync(1000);
    // Each 100 ms sync is overtaken; at least one in every 11 (after 1,000 ms of holding) publishes,
    // and so does the last.
    expect(decisions.at(-1)).toBe(false);
    for (let i = 0; i + 10 < decisions.length; i++) expect(decisions.slice(i, i + 11)).toContain(false);
  });
});
