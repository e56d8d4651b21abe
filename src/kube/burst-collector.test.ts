import { afterEach, describe, expect, it, vi } from "vitest";
import { BurstCollector } from "./burst-collector.ts";

afterEach(() => {
  vi.useRealTimers();
});

function collector(waitMs: (sinceFirstMs: number, collected: string[]) => number) {
  const flushed: string[][] = [];
  const c = new BurstCollector<string, string[]>({
    empty: () => [],
    add: (collected, change) => [...collected, change],
    waitMs,
    flush: (collected) => flushed.push(collected),
  });
  return { c, flushed };
}

describe("BurstCollector", () => {
  it("hands a burst over once, after the quiet gap that follows its last change", () => {
    vi.useFakeTimers();
    const { c, flushed } = collector(() => 10);
    c.add("a");
    vi.advanceTimersByTime(8);
    c.add("b");
    vi.advanceTimersByTime(8);
    expect(flushed).toEqual([]);
    expect(c.collecting).toBe(true);
    vi.advanceTimersByTime(2);
    expect(flushed).toEqual([["a", "b"]]);
    expect(c.collecting).toBe(false);
    c.add("c");
    vi.advanceTimersByTime(10);
    expect(flushed).toEqual([["a", "b"], ["c"]]);
  });

  it("asks the rule at each change with the time since the first and what the burst holds", () => {
    vi.useFakeTimers();
    const asked: [number, number][] = [];
    // A quiet gap of 10 ms, never more than 25 ms after the first change.
    const { c, flushed } = collector((since, collected) => {
      asked.push([since, collected.length]);
      return Math.min(10, 25 - since);
    });
    for (let i = 0; i < 5; i++) {
      c.add(String(i));
      vi.advanceTimersByTime(7);
    }
    expect(asked).toEqual([
      [0, 1],
      [7, 2],
      [14, 3],
      [21, 4],
      // The cap ended the first burst at 25 ms; the change at 28 ms starts the next.
      [0, 1],
    ]);
    expect(flushed).toEqual([["0", "1", "2", "3"]]);
  });

  it("drops the burst under way when stopped", () => {
    vi.useFakeTimers();
    const { c, flushed } = collector(() => 5);
    c.add("a");
    c.stop();
    vi.advanceTimersByTime(50);
    expect(flushed).toEqual([]);
  });
});
