import { describe, expect, it } from "vitest";
import { KubeApiError } from "./client.ts";
import {
  MAX_RETRY_AFTER_MS,
  MAX_RETRY_JITTER_MS,
  parseRetryAfterSeconds,
  retryDelayMs,
} from "./retry-after.ts";

describe("parseRetryAfterSeconds", () => {
  it("reads whole seconds, as the API server sends them", () => {
    expect(parseRetryAfterSeconds("1")).toBe(1);
    expect(parseRetryAfterSeconds(" 30 ")).toBe(30);
    expect(parseRetryAfterSeconds("0")).toBe(0);
    expect(parseRetryAfterSeconds(["5", "7"])).toBe(5);
  });

  it("ignores what is not a non-negative whole number of seconds", () => {
    for (const header of [
      undefined,
      "",
      "-1",
      "1.5",
      "soon",
      "Wed, 21 Oct 2015 07:28:00 GMT",
      "1e3",
      "9".repeat(40),
    ])
      expect(parseRetryAfterSeconds(header)).toBeUndefined();
    expect(parseRetryAfterSeconds([])).toBeUndefined();
  });
});

describe("retryDelayMs", () => {
  const noJitter = () => 0;
  const fullJitter = () => 0.999_999;

  it("waits what a 429 or 503 says, plus at most the jitter", () => {
    expect(retryDelayMs({ code: 429, retryAfterSeconds: 1 }, 2_000, noJitter)).toBe(1_000);
    expect(retryDelayMs({ code: 429, retryAfterSeconds: 1 }, 2_000, fullJitter)).toBe(2_000);
    expect(retryDelayMs({ code: 503, retryAfterSeconds: 5 }, 2_000, () => 0.5)).toBe(5_500);
  });

  it("never jitters by more than the wait itself, except for a wait of zero", () => {
    expect(retryDelayMs({ code: 429, retryAfterSeconds: 0 }, 2_000, () => 0.5)).toBe(MAX_RETRY_JITTER_MS / 2);
    expect(retryDelayMs({ code: 429, retryAfterSeconds: 3 }, 2_000, fullJitter)).toBeLessThanOrEqual(
      3_000 + MAX_RETRY_JITTER_MS,
    );
  });

  it("caps what the server says", () => {
    expect(retryDelayMs({ code: 429, retryAfterSeconds: 3_600 }, 2_000, noJitter)).toBe(MAX_RETRY_AFTER_MS);
  });

  it("keeps the caller's own pause for anything else", () => {
    expect(retryDelayMs(undefined, 2_000)).toBe(2_000);
    expect(retryDelayMs({ code: 429, retryAfterSeconds: undefined }, 2_000)).toBe(2_000);
    expect(retryDelayMs({ code: 409, retryAfterSeconds: 1 }, 2_000)).toBe(2_000);
    expect(retryDelayMs({ code: 500, retryAfterSeconds: 1 }, 2_000)).toBe(2_000);
  });

  it("spreads refused agents over the jitter instead of sending them back together", () => {
    const delays = new Set(
      Array.from({ length: 200 }, () => retryDelayMs({ code: 429, retryAfterSeconds: 1 }, 2_000)),
    );
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(1_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(2_000);
    expect(delays.size).toBeGreaterThan(50);
  });

  it("reads a KubeApiError built from the server's answer", () => {
    const body = JSON.stringify({
      kind: "Status",
      code: 429,
      reason: "TooManyRequests",
      message: "too many requests",
    });
    const refused = new KubeApiError(429, body, "PATCH /api/v1/nodes/n1", "1");
    expect(refused.retryAfterSeconds).toBe(1);
    expect(retryDelayMs(refused, 2_000, noJitter)).toBe(1_000);
    expect(new KubeApiError(429, body, "PATCH /api/v1/nodes/n1").retryAfterSeconds).toBeUndefined();
  });
});
