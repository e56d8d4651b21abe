import { describe, expect, it } from "vitest";
import { SerialLane } from "./serial-lane.ts";

describe("SerialLane", () => {
  it("runs tasks one at a time in order, each after the callbacks already waiting, and goes on after a failure", async () => {
    const lane = new SerialLane();
    const events: string[] = [];
    let running = 0;
    const task =
      (name: string, fail = false) =>
      async () => {
        running++;
        expect(running).toBe(1);
        events.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, 5));
        events.push(`end ${name}`);
        running--;
        if (fail) throw new Error(name);
        return name;
      };
    const a = lane.run(task("a"));
    const b = lane.run(task("b", true));
    const c = lane.run(task("c"));
    // A small review read meanwhile is answered before the first large one starts.
    setImmediate(() => events.push("small"));
    expect(await a).toBe("a");
    await expect(b).rejects.toThrow("b");
    expect(await c).toBe("c");
    expect(events).toEqual(["small", "start a", "end a", "start b", "end b", "start c", "end c"]);
  });
});
