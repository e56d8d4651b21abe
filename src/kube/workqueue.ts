// A work queue with client-go's guarantees, for level-triggered controllers:
// - a key waiting in the queue is there once, however many events asked for it (events coalesce);
// - a key is never handed to two workers at once; one added while it is being processed runs again
//   right after, so the change that caused the add is never lost;
// - a failed key comes back after a per-key exponential backoff, reset by its next success;
// - a handler can ask for a key to come back later (for state nobody watches).
// Keys are plain strings; what they mean is the caller's business.

export interface WorkQueueOptions {
  /** First retry delay after a failure; doubles with every further failure of the same key. */
  baseRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Keys processed in parallel (never the same key twice). */
  workers?: number;
}

/** What a handler may ask for: come back after this long even if nothing changes. */
export type HandlerResult = { requeueAfterMs: number } | undefined;

export type KeyHandler = (key: string) => Promise<HandlerResult>;

export class WorkQueue {
  private readonly baseRetryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly workers: number;
  /** Keys waiting, in arrival order. Every key in it is also in `dirty`. */
  private readonly waiting: string[] = [];
  /** Keys that need processing (waiting, or added again while being processed). */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private wakeups: (() => void)[] = [];
  private running: Promise<void>[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.baseRetryDelayMs = options.baseRetryDelayMs ?? 500;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 60_000;
    this.workers = options.workers ?? 1;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    // Being processed: done() puts it back once the current run ends.
    if (this.processing.has(key)) return;
    this.waiting.push(key);
    this.wakeups.shift()?.();
  }

  /** Adds the key after a delay; a pending earlier delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    this.timers.set(key, { at, timer });
  }

  /** Adds the key after its backoff: base * 2^(failures so far), capped. */
  addRateLimited(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const delayMs = Math.min(this.baseRetryDelayMs * 2 ** failures, this.maxRetryDelayMs);
    this.addAfter(key, delayMs);
    return delayMs;
  }

  /** Forgets a key's failures, so its next failure starts again at the base delay. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Keys waiting to be processed (not counting those being processed or delayed). */
  get depth(): number {
    return this.waiting.length;
  }

  /** Whether nothing is waiting, being processed or delayed. */
  get idle(): boolean {
    return this.waiting.length === 0 && this.processing.size === 0 && this.timers.size === 0;
  }

  /**
   * Starts the workers. A handler that throws gets its key back after a backoff; `onError` is told
   * (for logs and metrics) and must not throw.
   */
  run(handler: KeyHandler, onError: (key: string, error: unknown, retryInMs: number) => void): void {
    for (let i = 0; i < this.workers; i++) this.running.push(this.work(handler, onError));
  }

  /** Stops handing out keys, drops delayed ones and waits for the keys in progress to finish. */
  async shutDown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const wake of this.wakeups) wake();
    this.wakeups = [];
    await Promise.all(this.running);
  }

  private async work(
    handler: KeyHandler,
    onError: (key: string, error: unknown, retryInMs: number) => void,
  ): Promise<void> {
    for (;;) {
      const key = await this.next();
      if (key === undefined) return;
      try {
        const result = await handler(key);
        this.forget(key);
        if (result) this.addAfter(key, result.requeueAfterMs);
      } catch (error) {
        onError(key, error, this.addRateLimited(key));
      } finally {
        this.done(key);
      }
    }
  }

  private async next(): Promise<string | undefined> {
    while (this.waiting.length === 0) {
      if (this.shuttingDown) return undefined;
      await new Promise<void>((resolve) => this.wakeups.push(resolve));
    }
    if (this.shuttingDown) return undefined;
    const key = this.waiting.shift() as string;
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.waiting.push(key);
      this.wakeups.shift()?.();
    }
  }
}
