import { afterEach, describe, expect, it } from "vitest";
import { WorkQueue } from "./workqueue.ts";

const queues: WorkQueue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.shutDown()));
});

function newQueue(...args: ConstructorParameters<typeof WorkQueue>): WorkQueue {
  const q = new WorkQueue(...args);
  queues.push(q);
  return q;
}

/** Runs `q` with a handler that succeeds at once; the keys it was handed, in order. */
function runRecordingKeys(q: WorkQueue): string[] {
  const seen: string[] = [];
  q.run(
    async (key) => {
      seen.push(key);
      return undefined;
    },
    () => undefined,
  );
  return seen;
}

function until(check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = () => (check() ? resolve() : setTimeout(poll, 2));
    poll();
  });
}

describe("WorkQueue", () => {
  it("processes a key added many times while waiting once", async () => {
    const q = newQueue();
    for (let i = 0; i < 5; i++) q.add("a");
    q.add("b");
    const seen = runRecordingKeys(q);
    await until(() => q.idle);
    expect(seen).toEqual(["a", "b"]);
  });

  it("never hands one key to two workers, and reruns a key added while it was processed", async () => {
    const q = newQueue({ workers: 4 });
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    let release: () => void = () => undefined;
    const firstRunBlocked = new Promise<void>((r) => {
      release = r;
    });
    q.run(
      async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        runs++;
        if (runs === 1) await firstRunBlocked;
        active--;
        return undefined;
      },
      () => undefined,
    );
    q.add("a");
    await until(() => runs === 1);
    // Added twice while its first run is in progress: one more run, after the first.
    q.add("a");
    q.add("a");
    release();
    await until(() => q.idle && runs === 2);
    expect(maxActive).toBe(1);
    expect(runs).toBe(2);
  });

  it("retries a failing key with a doubling backoff and forgets its failures on success", async () => {
    const q = newQueue({ baseRetryDelayMs: 5, maxRetryDelayMs: 20 });
    const delays: number[] = [];
    let attempts = 0;
    q.run(
      async () => {
        attempts++;
        if (attempts <= 4) throw new Error("conflict");
        return undefined;
      },
      (_, __, retryInMs) => delays.push(retryInMs),
    );
    q.add("a");
    await until(() => attempts === 5 && q.idle);
    expect(delays).toEqual([5, 10, 20, 20]);
    expect(q.addRateLimited("a")).toBe(5);
  });

  it("brings a key back when its handler asks for it, keeping the earliest of two delays", async () => {
    const q = newQueue();
    let runs = 0;
    q.run(
      async () => {
        runs++;
        return runs === 1 ? { requeueAfterMs: 10 } : undefined;
      },
      () => undefined,
    );
    q.add("a");
    await until(() => runs === 2 && q.idle);
    expect(runs).toBe(2);

    q.addAfter("b", 60_000);
    q.addAfter("b", 5);
    await until(() => runs === 3 && q.idle);
    expect(q.idle).toBe(true);
  });

  it("stops handing out keys on shutDown and drops delayed ones", async () => {
    const q = newQueue();
    const seen = runRecordingKeys(q);
    q.addAfter("later", 50);
    await q.shutDown();
    q.add("after-shutdown");
    await new Promise((r) => setTimeout(r, 80));
    expect(seen).toEqual([]);
  });
});
