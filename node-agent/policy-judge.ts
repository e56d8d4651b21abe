// apparmor_parser's verdicts on the AppArmor policies the planner wants loaded, without letting a slow
// one hold up the sync. A policy can keep the parser busy up to its limits (parser-runner.ts: seconds,
// not the few tens of milliseconds a published profile takes), and a sync that waited for it would hold
// back every other profile's file, load and label. So judgements run beside the syncs, at most `slots`
// at once (each parser may use its full memory limit in the agent's cgroup), and a sync waits for a
// judgement only until it is `graceMs` old: a policy still being judged then is neither loaded nor
// claimed (DESIGN invariant 1: it gets a failure label like any profile not installed), the sync goes
// on with everything else, and the verdict, when it comes, starts another sync. Lasting refusals are
// remembered across restarts (refusal-memo.ts). The decision is the pure `sortJudgements`; PolicyJudge
// keeps the state and runs the judgements.
import type { JudgeOptions, PolicyJudgement, RefusalDuration } from "./apparmor.ts";
import {
  type Judge,
  type JudgedPolicy,
  judgementKey,
  type RefusalMemo,
  recalledRefusal,
  rememberRefusal,
} from "./refusal-memo.ts";

export const JUDGE_SCHEDULE = {
  /** Parser runs at once: one slow policy leaves a slot for the others; each may take its full limits. */
  slots: 2,
  /**
   * How long a sync waits for a judgement, from its start. Published profiles are judged in 20 to
   * 210 ms on a busy 2-core node (docs/adr/0022), so they are loaded in the sync that asked for them.
   */
  graceMs: 250,
} as const;

export type Verdict = PolicyJudgement;

export interface Keyed<T> {
  key: string;
  item: T;
}

export interface JudgementSorting<T> {
  /** Judged and passed: load these compiled bytes. */
  load: { item: T; compiled: Uint8Array }[];
  /** Refused (`duration` says how long the refusal holds; `none`: the parser could not judge it). */
  refused: { item: T; message: string; duration: RefusalDuration }[];
  /** No verdict yet: being judged, or waiting for a slot. Neither loaded nor claimed. */
  pending: T[];
  /** Of the pending, those to start judging now, in the slots that are free. */
  start: Keyed<T>[];
}

/** What to do with each wanted policy, from the verdicts known and the judgements running. Pure. */
export function sortJudgements<T>(
  wanted: readonly Keyed<T>[],
  verdictOf: (key: string) => Verdict | undefined,
  running: ReadonlySet<string>,
  slots: number,
): JudgementSorting<T> {
  const sorting: JudgementSorting<T> = { load: [], refused: [], pending: [], start: [] };
  let free = Math.max(0, slots - running.size);
  for (const entry of wanted) {
    const verdict = verdictOf(entry.key);
    if (verdict?.ok) sorting.load.push({ item: entry.item, compiled: verdict.compiled });
    else if (verdict)
      sorting.refused.push({ item: entry.item, message: verdict.message, duration: verdict.duration });
    else {
      sorting.pending.push(entry.item);
      if (!running.has(entry.key) && free > 0) {
        sorting.start.push(entry);
        free -= 1;
      }
    }
  }
  return sorting;
}

/** How much longer a sync may wait: the time the youngest running judgement has left of its grace. Pure. */
export function syncWaitMs(startedAt: Iterable<number>, now: number, graceMs: number): number {
  let wait = 0;
  for (const start of startedAt) wait = Math.max(wait, start + graceMs - now);
  return wait;
}

export interface PolicyJudgeOptions {
  /** apparmor_parser's judgement (apparmor.ts's judgeAndCompile, bound to the node's parser). */
  judge: (policy: JudgedPolicy, options: JudgeOptions) => Promise<PolicyJudgement>;
  /** Who judges: part of every verdict's key. */
  identity: Judge;
  /** The refusals remembered from earlier runs. */
  memo: RefusalMemo;
  saveMemo: (memo: RefusalMemo) => Promise<void>;
  /** A verdict came after the syncs stopped waiting for it: sync again. */
  onVerdict: () => void;
  /** A remembered refusal could not be saved (it still holds for this run). */
  onSaveError: (error: unknown) => void;
  schedule?: { slots: number; graceMs: number };
  now?: () => number;
}

interface Running {
  startedAt: number;
  settled: Promise<void>;
  abort: AbortController;
}

export class PolicyJudge {
  private readonly opts: Required<PolicyJudgeOptions>;
  private memo: RefusalMemo;
  /** This run's verdicts on wanted policies (dropped once a policy is no longer wanted). */
  private readonly verdicts = new Map<string, Verdict>();
  private readonly running = new Map<string, Running>();
  /** A sync is in sort(): it picks up every verdict that arrives meanwhile. */
  private sorting = false;
  private stopped = false;
  /** Parser runs started, for tests and metrics. */
  started = 0;

  constructor(options: PolicyJudgeOptions) {
    this.opts = { schedule: JUDGE_SCHEDULE, now: Date.now, ...options };
    this.memo = options.memo;
  }

  keyOf(policy: JudgedPolicy): string {
    return judgementKey(policy, this.opts.identity);
  }

  /**
   * The sorting of the policies a sync wants loaded. Starts the judgements there are slots for, waits
   * for those still within their grace, and returns; what is still pending is judged on.
   */
  async sort<T extends { policy: JudgedPolicy }>(wanted: readonly T[]): Promise<JudgementSorting<T>> {
    const keyed = wanted.map((item) => ({ key: this.keyOf(item.policy), item }));
    const keys = new Set(keyed.map((k) => k.key));
    for (const key of this.verdicts.keys()) if (!keys.has(key)) this.verdicts.delete(key);
    // A policy changed or gone while being judged: its verdict would be for nothing; free the slot.
    for (const [key, run] of this.running) if (!keys.has(key)) run.abort.abort();
    const verdictOf = (key: string): Verdict | undefined => {
      const known = this.verdicts.get(key);
      if (known) return known;
      const message = recalledRefusal(this.memo, key);
      return message === undefined ? undefined : { ok: false, message, duration: "lasting" };
    };
    this.sorting = true;
    try {
      for (;;) {
        const sorting = sortJudgements(
          keyed,
          verdictOf,
          new Set(this.running.keys()),
          this.opts.schedule.slots,
        );
        for (const entry of sorting.start) this.begin(entry.key, entry.item.policy);
        const startedAt = [...this.running.values()].map((r) => r.startedAt);
        const wait = syncWaitMs(startedAt, this.opts.now(), this.opts.schedule.graceMs);
        if (wait <= 0 || sorting.pending.length === 0 || this.stopped) {
          // The parser could not judge these: reported now, tried again at the next sync.
          for (const r of sorting.refused)
            if (r.duration === "none") this.verdicts.delete(this.keyOf(r.item.policy));
          return sorting;
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          ...[...this.running.values()].map((r) => r.settled),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, wait);
          }),
        ]);
        clearTimeout(timer);
      }
    } finally {
      this.sorting = false;
    }
  }

  /** Ends every running judgement (its parser's whole process group) at once. */
  stop(): void {
    this.stopped = true;
    for (const run of this.running.values()) run.abort.abort();
  }

  private begin(key: string, policy: JudgedPolicy): void {
    const abort = new AbortController();
    this.started += 1;
    const settled = this.opts
      .judge(policy, { signal: abort.signal })
      .catch((error: unknown): PolicyJudgement => ({ ok: false, message: String(error), duration: "none" }))
      .then(async (verdict) => {
        this.running.delete(key);
        if (abort.signal.aborted) return;
        this.verdicts.set(key, verdict);
        if (!verdict.ok && verdict.duration === "lasting") {
          this.memo = rememberRefusal(this.memo, key, verdict.message);
          await this.opts.saveMemo(this.memo).catch(this.opts.onSaveError);
        }
        if (!this.sorting && !this.stopped) this.opts.onVerdict();
      });
    this.running.set(key, { startedAt: this.opts.now(), settled, abort });
  }
}
