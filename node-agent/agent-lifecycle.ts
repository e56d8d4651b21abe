// Where an agent is in its life and the timer policy that follows from it, kept apart from the shell
// (agent.ts): a change may start a sync only once start-up reconciliation is done and until the agent
// stops; start-up reconciliation retries with a capped backoff until it succeeds (only then may the
// agent call itself ready); a sync that fails later retries after the server's Retry-After or a fixed
// delay; the agent re-verifies its disk every resync period even without events (someone may delete a
// file by hand). Pure.
import { type Refusal, retryDelayMs } from "../src/kube/retry-after.ts";

/** How often the agent syncs without events (AgentOptions.resyncMs). */
export const DEFAULT_RESYNC_MS = 60_000;
/**
 * After a failed sync once the agent is reconciled, when the server did not say when (a conflict, a
 * network error): the API server may be back by then. A refusal for load waits its Retry-After
 * (src/kube/retry-after.ts, ADR 0037).
 */
export const SYNC_RETRY_MS = 2_000;
const STARTUP_RETRY_FIRST_MS = 500;
const STARTUP_RETRY_MAX_MS = 10_000;

/** The wait before start-up reconciliation's attempt `attempt + 1`: doubling from 0.5 s, at most 10 s. */
export function startupRetryDelayMs(attempt: number): number {
  return Math.min(STARTUP_RETRY_FIRST_MS * 2 ** attempt, STARTUP_RETRY_MAX_MS);
}

export class AgentLifecycle {
  private reconciledAt = false;
  private stoppedAt = false;
  private lastSyncError: string | undefined;

  /** Start-up reconciliation is done: labels match the disk, and the agent may claim readiness. */
  get reconciled(): boolean {
    return this.reconciledAt;
  }

  get stopped(): boolean {
    return this.stoppedAt;
  }

  reconcile(): void {
    this.reconciledAt = true;
  }

  stop(): void {
    this.stoppedAt = true;
  }

  /** Whether a change (or a timer) may start a sync; before reconciliation start() runs them itself. */
  takesSyncRequests(): boolean {
    return this.reconciledAt && !this.stoppedAt;
  }

  /** Undefined once start-up reconciliation is done; else why the agent is not ready. */
  notReadyReason(): string | undefined {
    return this.reconciledAt ? undefined : "start-up reconciliation has not finished";
  }

  /** Undefined while the last published sync succeeded: a failing API server makes the agent unhealthy-but-alive. */
  lastError(): string | undefined {
    return this.lastSyncError;
  }

  /** A sync published its labels: the agent is healthy again. (A deferred one leaves that to the next.) */
  syncPublished(): void {
    this.lastSyncError = undefined;
  }

  /**
   * A sync failed: remembers why, and says when a sync should follow (undefined during start-up, whose
   * own loop retries with startupRetryDelayMs): what a refusal for load says, else SYNC_RETRY_MS.
   */
  syncFailed(message: string, refusal?: Refusal, random?: () => number): number | undefined {
    this.lastSyncError = message;
    return this.reconciledAt ? retryDelayMs(refusal, SYNC_RETRY_MS, random) : undefined;
  }
}
