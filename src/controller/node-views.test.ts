import { describe, expect, it } from "vitest";
import { NodeLabelCache } from "./node-views.ts";

describe("NodeLabelCache", () => {
  it("takes a Node's labels when they wake profiles, and keeps the views until the next such change", () => {
    const cache = new NodeLabelCache();
    expect(cache.update("n1", { pool: "web" })).toEqual({ allAfterNodeBurst: true });
    const views = cache.views();
    expect(views).toEqual([{ name: "n1", labels: { pool: "web" } }]);
    // The same labels again (a heartbeat's update): nothing woken, the views stay the same object.
    expect(cache.update("n1", { pool: "web" })).toBeUndefined();
    expect(cache.views()).toBe(views);
    expect(cache.update("n2", {})).toEqual({ allAfterNodeBurst: true });
    expect(cache.views()).toEqual([
      { name: "n1", labels: { pool: "web" } },
      { name: "n2", labels: {} },
    ]);
  });

  it("drops a Node that is gone", () => {
    const cache = new NodeLabelCache();
    cache.update("n1", { pool: "web" });
    expect(cache.update("n1", undefined)).toEqual({ allAfterNodeBurst: true });
    expect(cache.views()).toEqual([]);
    expect(cache.update("n1", undefined)).toBeUndefined();
  });
});
