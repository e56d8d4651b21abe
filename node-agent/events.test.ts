import { describe, expect, it } from "vitest";
import { EVENT_MESSAGE_MAX } from "../src/kube/event-recorder.ts";
import { FAILURE_LABELS_CAPPED, unlabelledFailuresEvent } from "./events.ts";

describe("the summary of failures past the failure-label cap", () => {
  it("is one Event on the Node that names the first few, counts the rest and stays within a message's size", () => {
    const unlabelled = Array.from({ length: 20_000 }, (_, i) => ({
      kind: "seccomp" as const,
      name: `p-${String(i).padStart(5, "0")}-${"x".repeat(200)}`,
      reason: "BaseNotFound",
    }));
    const event = unlabelledFailuresEvent("node-1", unlabelled, 128);
    expect(event).toMatchObject({
      involvedObject: { apiVersion: "v1", kind: "Node", name: "node-1" },
      reason: FAILURE_LABELS_CAPPED,
      type: "Warning",
    });
    expect(event.message).toMatch(
      /^node node-1: 20000 profiles that belong here are not installed and carry no failure label \(at most 128 per kind\)/,
    );
    expect(event.message.length).toBeLessThanOrEqual(EVENT_MESSAGE_MAX);
    // However long the names, the count of the rest is never cut off.
    expect(event.message).toMatch(/\(BaseNotFound\) and 1999\d more$/);
    expect(JSON.stringify(event).length).toBeLessThan(2 * EVENT_MESSAGE_MAX);
    const few = unlabelledFailuresEvent(
      "node-1",
      unlabelled.slice(0, 2).map((f, i) => ({ ...f, name: `p${i}` })),
      128,
    );
    const fit = unlabelledFailuresEvent(
      "node-1",
      unlabelled.slice(0, 300).map((f, i) => ({ ...f, name: `p${i}` })),
      128,
    );
    expect(fit.message).toMatch(/SeccompProfile p19 \(BaseNotFound\) and 280 more$/);
    expect(few.message).toMatch(/: SeccompProfile p0 \(BaseNotFound\), SeccompProfile p1 \(BaseNotFound\)$/);
  });
});
