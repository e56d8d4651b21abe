// Collects a burst of changes and hands it over once, after a quiet gap. Watches deliver a rollout as a
// burst (a GitOps tool applies 35 profiles, 20 agents label their Nodes within tens of milliseconds);
// acting on each change alone costs one sync, PATCH or status write per change, while a fixed debounce
// delays every lone change by its whole length. Here the wait is the caller's rule, asked again at each
// change with the time since the burst's first change and what it holds so far: the agent's sync
// trigger waits for a short quiet gap capped after the first change, the controller's Node burst waits
// longer once several Nodes are in it.

export interface BurstCollectorOptions<T, S> {
  /** The state of a burst with nothing in it yet. */
  empty(): S;
  /** The burst's state with one more change in it. */
  add(collected: S, change: T): S;
  /** How long from now to wait for more, `sinceFirstMs` after the burst's first change. */
  waitMs(sinceFirstMs: number, collected: S): number;
  /** Called once per burst with everything it collected. */
  flush(collected: S): void;
  now?: () => number;
}

export class BurstCollector<T, S> {
  private readonly opts: BurstCollectorOptions<T, S>;
  private timer: NodeJS.Timeout | undefined;
  private firstAt: number | undefined;
  private collected: S;

  constructor(opts: BurstCollectorOptions<T, S>) {
    this.opts = opts;
    this.collected = opts.empty();
  }

  /** One more change: it joins the burst under way, and the wait starts again from the rule. */
  add(change: T): void {
    const now = this.opts.now?.() ?? Date.now();
    this.firstAt ??= now;
    this.collected = this.opts.add(this.collected, change);
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.flushNow(),
      Math.max(0, this.opts.waitMs(now - this.firstAt, this.collected)),
    );
  }

  /** Whether a burst is being collected. */
  get collecting(): boolean {
    return this.firstAt !== undefined;
  }

  /** Drops the burst under way without handing it over. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.firstAt = undefined;
    this.collected = this.opts.empty();
  }

  private flushNow(): void {
    const collected = this.collected;
    this.stop();
    this.opts.flush(collected);
  }
}
