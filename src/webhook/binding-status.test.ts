import { describe, expect, it } from "vitest";
import { BINDING_LIMITS, type ProfileBindingStatus } from "../api/profile-binding.ts";
import { BindingStatusRecorder } from "./binding-status.ts";

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second));

describe("BindingStatusRecorder", () => {
  it("adds what it saw to the status the cache holds, preconditioned on its resourceVersion", () => {
    const r = new BindingStatusRecorder();
    r.record("shop", "shop/web-1", [{ binding: "default", result: "bound" }], at(1));
    r.record("shop", "shop/web-2", [{ binding: "default", result: "bound" }], at(2));
    r.record(
      "shop",
      "shop/web-*",
      [{ binding: "default", result: "refused", reason: "Conflict", message: "m" }],
      at(3),
    );
    const cached: ProfileBindingStatus = { boundPods: 5, refusedPods: 1, refusals: [] };
    const writes = r.drain(() => ({ resourceVersion: "42", status: cached }));
    expect(writes.map((w) => [w.namespace, w.name, w.body])).toEqual([
      [
        "shop",
        "default",
        {
          metadata: { resourceVersion: "42" },
          status: {
            boundPods: 7,
            refusedPods: 2,
            refusals: [{ pod: "shop/web-*", reason: "Conflict", message: "m", time: at(3).toISOString() }],
            lastBoundPod: "shop/web-2",
            lastBoundTime: at(2).toISOString(),
          },
        },
      ],
    ]);
    expect(r.pending).toBe(0);
    expect(r.drain(() => ({ resourceVersion: "43", status: {} }))).toEqual([]);
  });

  it("puts the news of a failed write back, merged with what came meanwhile", () => {
    const r = new BindingStatusRecorder();
    r.record("ns", "ns/a", [{ binding: "b", result: "bound" }], at(1));
    const [first] = r.drain(() => ({ resourceVersion: "1", status: {} }));
    r.record("ns", "ns/c", [{ binding: "b", result: "bound" }], at(2));
    first?.restore();
    const [second] = r.drain(() => ({ resourceVersion: "2", status: { boundPods: 10 } }));
    expect(second?.body.status).toMatchObject({ boundPods: 12, lastBoundPod: "ns/c" });
  });

  it("drops the news of a binding the cache no longer holds", () => {
    const r = new BindingStatusRecorder();
    r.record("ns", "ns/a", [{ binding: "gone", result: "bound" }], at(1));
    expect(r.drain(() => undefined)).toEqual([]);
    expect(r.pending).toBe(0);
  });

  it("keeps the newest refusals only, each message cut, however many pods are refused", () => {
    const r = new BindingStatusRecorder();
    for (let i = 0; i < 10_000; i++)
      r.record(
        "ns",
        `ns/p${i}`,
        [{ binding: "b", result: "refused", reason: "ProfileMissing", message: "x".repeat(5000) }],
        at(i % 60),
      );
    const old = Array.from({ length: 10 }, () => ({
      pod: "ns/old",
      reason: "Conflict" as const,
      message: "o",
      time: at(0).toISOString(),
    }));
    const [write] = r.drain(() => ({ resourceVersion: "1", status: { refusedPods: 3, refusals: old } }));
    const refusals = write?.body.status.refusals ?? [];
    expect(refusals).toHaveLength(BINDING_LIMITS.statusRefusals);
    expect(refusals.every((x) => x.time === at(59).toISOString())).toBe(true);
    expect(refusals.every((x) => x.message.length <= BINDING_LIMITS.statusMessageChars + 3)).toBe(true);
    expect(write?.body.status.refusedPods).toBe(10_003);
  });
});
