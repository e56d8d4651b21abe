// When the agent syncs. A single change should reach the disk at once; a burst (a GitOps tool applying
// 35 profiles) should still cost one sync and one Node PATCH. A fixed debounce gives neither: it delays
// every lone change by its whole length. This waits only for a short quiet gap after the latest poke,
// and never longer than a cap after the first, so a lone change waits quietMs and a steady stream of
// changes is still synced every maxWaitMs. Pokes that arrive while a sync runs lead to exactly one
// more sync after it: the sync is level-triggered, so it covers every change it was poked for.
//
// The first change of a burst looks like a lone change (a GitOps tool's first request often goes out
// tens of milliseconds before the rest), so it is synced at once; the burst's other changes arrive
// while that sync runs, or just after. That sync may then leave publishing (the Node PATCH) to the one
// that follows at once: a burst costs one PATCH, and no change waits more than maxPublishDelayMs to be
// published. Before deciding, a sync that nothing overtook waits up to publishGraceMs for the rest of a
// burst: the price of one PATCH per burst is that much on a lone change's way to its label (never to
// its file on disk, which is written first).
import { BurstCollector } from "../src/kube/burst-collector.ts";

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
  /**
   * How long a sync that no change overtook waits for one before it publishes. A sync of a few
   * milliseconds finishes before a burst's second request is stored (measured: a 35-profile burst
   * then cost two PATCHes in one run of two), so the wait covers the gap between a burst's first
   * change and the rest: 0-61 ms in 11 runs of the rollout benchmark, whose client opens a connection
   * for each request after the first. 25 ms left a 61 ms gap two PATCHes; 60 covers gaps up to about
   * 80 ms (the wait starts after the first change's quiet gap and sync).
   */
  publishGraceMs: number;
}

export const DEFAULT_SYNC_TRIGGER: SyncTriggerOptions = {
  quietMs: 15,
  maxWaitMs: 250,
  maxPublishDelayMs: 1000,
  publishGraceMs: 60,
};

/** What a running sync may ask its trigger. */
export interface SyncRun {
  /**
   * Whether this sync may leave publishing its result to the next one: changes came in while it ran,
   * so another sync follows at once, and the oldest change not yet published is younger than
   * maxPublishDelayMs. A sync that gets true must not publish; one that gets false must.
   */
  publishingCanWait(): Promise<boolean>;
}

/** For a sync run outside the trigger (start-up): it always publishes. */
export const PUBLISH_NOW: SyncRun = { publishingCanWait: async () => false };

export class SyncTrigger {
  private readonly sync: (run: SyncRun) => Promise<void>;
  private readonly opts: SyncTriggerOptions;
  /** The pokes not yet synced: a quiet gap of quietMs, capped at maxWaitMs after the first. */
  private readonly pokes: BurstCollector<void, void>;
  /** When the oldest poke whose change no sync has published yet came. */
  private unpublishedSince: number | undefined;
  private running: Promise<void> | undefined;
  private pokedWhileRunning = false;
  /** Wakes a sync waiting for publishGraceMs when a poke comes. */
  private onPokeWhileRunning: (() => void) | undefined;
  private stopped = false;

  constructor(sync: (run: SyncRun) => Promise<void>, opts: SyncTriggerOptions = DEFAULT_SYNC_TRIGGER) {
    this.sync = sync;
    this.opts = opts;
    this.pokes = new BurstCollector<void, void>({
      empty: () => undefined,
      add: () => undefined,
      waitMs: (sinceFirstMs) => Math.min(opts.quietMs, opts.maxWaitMs - sinceFirstMs),
      flush: () => this.fire(),
    });
  }

  /** Something changed: sync soon. */
  poke(): void {
    if (this.stopped) return;
    this.unpublishedSince ??= Date.now();
    if (this.running) {
      this.pokedWhileRunning = true;
      this.onPokeWhileRunning?.();
      return;
    }
    this.pokes.add();
  }

  /** Resolves once no sync is running and none will start. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.pokes.stop();
    await this.running;
  }

  /** Resolves when a poke comes, or after `ms`. */
  private pokeWithin(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.onPokeWhileRunning = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.onPokeWhileRunning = done;
    });
  }

  private fire(): void {
    const since = this.unpublishedSince;
    this.unpublishedSince = undefined;
    let deferred = false;
    const run: SyncRun = {
      publishingCanWait: async () => {
        if (!this.pokedWhileRunning && !this.stopped) await this.pokeWithin(this.opts.publishGraceMs);
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
