// When to try again after the API server refused a request for load. API Priority and Fairness answers
// 429 with `Retry-After` (whole seconds) when a flow's queues are full, and an overloaded or starting
// server answers 503 with it too. client-go waits what the server says (rest.checkWait); a client that
// waits its own fixed time instead comes back too early (refused again) or too late (the p99 it adds).
// Every refused agent of a rollout is told the same number at the same moment, so each adds a random
// jitter: otherwise they would all return in the same instant and fill the same queues again. Pure.

/** Refusals for load that carry a `Retry-After` worth honouring. */
const LOAD_REFUSALS: ReadonlySet<number> = new Set([429, 503]);
/**
 * A `Retry-After` above this is taken as this: a misconfigured or hostile server must not park an agent
 * for an hour, and the agent's periodic resync would retry long before anyway.
 */
export const MAX_RETRY_AFTER_MS = 30_000;
/** The jitter is uniform in [0, this) and never more than the wait itself: it spreads, it does not delay. */
export const MAX_RETRY_JITTER_MS = 1_000;

/**
 * The delay-seconds form of `Retry-After` (the only one the API server sends); undefined for an absent
 * header, an HTTP date or anything else that is not a non-negative whole number of seconds.
 */
export function parseRetryAfterSeconds(header: string | readonly string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (typeof value !== "string" || !/^\s*\d{1,9}\s*$/.test(value)) return undefined;
  return Number(value.trim());
}

/** What a refusal says about retrying: its HTTP code and the server's `Retry-After`, when it gave one. */
export interface Refusal {
  code: number;
  retryAfterSeconds: number | undefined;
}

/**
 * How long to wait before retrying after `refusal`: for a 429 or 503 with `Retry-After`, what the server
 * says (capped) plus jitter; for anything else (a conflict, a network error, a 429 without the header)
 * the caller's own `fallbackMs`. `random` returns a number in [0, 1), as Math.random does.
 */
export function retryDelayMs(
  refusal: Refusal | undefined,
  fallbackMs: number,
  random: () => number = Math.random,
): number {
  if (refusal === undefined || !LOAD_REFUSALS.has(refusal.code) || refusal.retryAfterSeconds === undefined)
    return fallbackMs;
  const waitMs = Math.min(refusal.retryAfterSeconds * 1000, MAX_RETRY_AFTER_MS);
  // A Retry-After of 0 still gets up to the full jitter: "now" told to hundreds of agents at once.
  const jitterBoundMs = waitMs === 0 ? MAX_RETRY_JITTER_MS : Math.min(waitMs, MAX_RETRY_JITTER_MS);
  return Math.round(waitMs + random() * jitterBoundMs);
}
