// When the agent syncs. A single change should reach the disk at once; a burst (a GitOps tool applying
// 35 profiles) should still cost one sync and one Node PATCH. A fixed debounce gives neither: it delays
// every lone change by its whole length. This waits only for a short quiet gap after the latest poke,
// and never longer than a cap after the first, so a lone change waits quietMs and a steady stream of
// changes is still synced every maxWaitMs. Pokes that arrive while a sync runs lead to exactly one
// more sync after it: the sync is level-triggered, so it covers every change it was poked for.
//
// The first change of a burst looks like a lone change (a GitOps tool's first request often goes out
// tens of milliseconds before the rest), so it is synced at once; the burst's other changes arrive
// while that sync runs. That sync may then leave publishing (the Node PATCH) to the one that follows
// at once: a burst costs one PATCH, and no change waits more than maxPublishDelayMs to be published.

export interface SyncTriggerOptions {
  /** Sync once no poke has come for this long. */
  quietMs: number;
  /** ...but no later than this after the first poke not yet synced. */
  maxWaitMs: number;
  /**
   * A sync overtaken by more changes may leave publishing to the next one while the oldest change not
   * yet published is younger than this. Longer than maxWaitMs: the API server of a busy 2-core control
   * plane takes 300-800 ms to store 35 profiles posted at once (measured), and a burst should still
   * cost one PATCH; a steady stream is still published at least this often.
   */
  maxPublishDelayMs: number;
}

export const DEFAULT_SYNC_TRIGGER: SyncTriggerOptions = {
  quietMs: 15,
  maxWaitMs: 250,
  maxPublishDelayMs: 1000,
};

/** What a running sync may ask its trigger. */
export interface SyncRun {
  /**
   * Whether this sync may leave publishing its result to the next one: changes came in while it ran,
   * so another sync follows at once, and the oldest change not yet published is younger than
   * maxPublishDelayMs. A sync that gets true must not publish; one that gets false must.
   */
  publishingCanWait(): boolean;
}

/** For a sync run outside the trigger (start-up): it always publishes. */
export const PUBLISH_NOW: SyncRun = { publishingCanWait: () => false };

export class SyncTrigger {
  private readonly sync: (run: SyncRun) => Promise<void>;
  private readonly opts: SyncTriggerOptions;
  private timer: NodeJS.Timeout | undefined;
  private firstPokeAt: number | undefined;
  /** When the oldest poke whose change no sync has published yet came. */
  private unpublishedSince: number | undefined;
  private running: Promise<void> | undefined;
  private pokedWhileRunning = false;
  private stopped = false;

  constructor(sync: (run: SyncRun) => Promise<void>, opts: SyncTriggerOptions = DEFAULT_SYNC_TRIGGER) {
    this.sync = sync;
    this.opts = opts;
  }

  /** Something changed: sync soon. */
  poke(): void {
    if (this.stopped) return;
    this.unpublishedSince ??= Date.now();
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
    const since = this.unpublishedSince;
    this.unpublishedSince = undefined;
    let deferred = false;
    const run: SyncRun = {
      publishingCanWait: () => {
        deferred =
          this.pokedWhileRunning && since !== undefined && Date.now() - since < this.opts.maxPublishDelayMs;
        return deferred;
      },
    };
    this.running = this.sync(run)
      .catch(() => undefined)
      .finally(() => {
        this.running = undefined;
        if (deferred) this.unpublishedSince = since;
        if (this.pokedWhileRunning) {
          this.pokedWhileRunning = false;
          this.poke();
        }
      });
  }
}
