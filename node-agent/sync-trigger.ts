// When the agent syncs. A single change should reach the disk at once; a burst (a GitOps tool applying
// 35 profiles) should still cost one sync and one Node PATCH. A fixed debounce gives neither: it delays
// every lone change by its whole length. This waits only for a short quiet gap after the latest poke,
// and never longer than a cap after the first, so a lone change waits quietMs and a steady stream of
// changes is still synced every maxWaitMs. Pokes that arrive while a sync runs lead to exactly one
// more sync after it: the sync is level-triggered, so it covers every change it was poked for.

export interface SyncTriggerOptions {
  /** Sync once no poke has come for this long. */
  quietMs: number;
  /** ...but no later than this after the first poke not yet synced. */
  maxWaitMs: number;
}

export const DEFAULT_SYNC_TRIGGER: SyncTriggerOptions = { quietMs: 15, maxWaitMs: 250 };

export class SyncTrigger {
  private readonly sync: () => Promise<void>;
  private readonly opts: SyncTriggerOptions;
  private timer: NodeJS.Timeout | undefined;
  private firstPokeAt: number | undefined;
  private running: Promise<void> | undefined;
  private pokedWhileRunning = false;
  private stopped = false;

  constructor(sync: () => Promise<void>, opts: SyncTriggerOptions = DEFAULT_SYNC_TRIGGER) {
    this.sync = sync;
    this.opts = opts;
  }

  /** Something changed: sync soon. */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.pokedWhileRunning = true;
      return;
    }
    const now = Date.now();
    this.firstPokeAt ??= now;
    const deadline = this.firstPokeAt + this.opts.maxWaitMs;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.min(this.opts.quietMs, deadline - now)));
  }

  /** Resolves once no sync is running and none will start. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private fire(): void {
    this.timer = undefined;
    this.firstPokeAt = undefined;
    this.running = this.sync()
      .catch(() => undefined)
      .finally(() => {
        this.running = undefined;
        if (this.pokedWhileRunning) {
          this.pokedWhileRunning = false;
          this.poke();
        }
      });
  }
}
