import { describe, expect, it } from "vitest";
import type { KubeClient } from "./client.ts";
import { coreEvent, EVENT_MESSAGE_MAX, EventRecorder, SentMemo } from "./event-recorder.ts";
import { createLogger } from "./logger.ts";

const source = { component: "lockstep-node-agent", instance: "node-1", host: "node-1" };
const fields = {
  involvedObject: { apiVersion: "v1", kind: "Node", name: "node-1" },
  reason: "Something",
  message: "happened",
  type: "Warning" as const,
};

describe("coreEvent", () => {
  it("builds the whole core/v1 Event: who reports, about what, when, with the message cut to fit", () => {
    const at = new Date("2026-12-07T10:00:00Z");
    expect(coreEvent(source, "lockstep-system", fields, at)).toEqual({
      apiVersion: "v1",
      kind: "Event",
      metadata: { generateName: "node-1.", namespace: "lockstep-system" },
      involvedObject: { apiVersion: "v1", kind: "Node", name: "node-1" },
      reason: "Something",
      message: "happened",
      type: "Warning",
      source: { component: "lockstep-node-agent", host: "node-1" },
      reportingComponent: "lockstep-node-agent",
      reportingInstance: "node-1",
      firstTimestamp: "2026-12-07T10:00:00.000Z",
      lastTimestamp: "2026-12-07T10:00:00.000Z",
      count: 1,
    });
    const long = coreEvent(
      { component: "c", instance: "i" },
      "ns",
      { ...fields, message: "x".repeat(5000), annotations: { a: "b" } },
      at,
    );
    expect(long.message).toHaveLength(EVENT_MESSAGE_MAX);
    expect(long.source).toEqual({ component: "c" });
    expect(long.metadata.annotations).toEqual({ a: "b" });
  });
});

describe("SentMemo", () => {
  it("forgets the oldest past its bound", () => {
    const memo = new SentMemo(2);
    for (const what of ["a", "b", "c"]) memo.remember(SentMemo.digest(what));
    expect(["a", "b", "c"].map((w) => memo.has(SentMemo.digest(w)))).toEqual([false, true, true]);
  });
});

describe("EventRecorder", () => {
  /** A client that records creates, failing while `failing` is set. */
  function client(state: { failing: boolean; created: unknown[] }): KubeClient {
    return {
      create: async (path: string, body: unknown) => {
        if (state.failing) throw new Error("connection refused");
        state.created.push({ path, body });
        return body;
      },
    } as unknown as KubeClient;
  }

  it("sends an Event once per `what`, tries a failed one again, and never throws", async () => {
    const state = { failing: true, created: [] as unknown[] };
    const recorder = new EventRecorder({
      client: client(state),
      namespace: "ns",
      source,
      log: createLogger("test", "silent"),
      now: () => new Date(0),
    });
    await recorder.recordOnce("a", fields);
    expect(state.created).toEqual([]);
    state.failing = false;
    await recorder.recordOnce("a", fields);
    await recorder.recordOnce("a", fields);
    await recorder.record(fields);
    expect(state.created).toEqual([
      { path: "/api/v1/namespaces/ns/events", body: coreEvent(source, "ns", fields, new Date(0)) },
      { path: "/api/v1/namespaces/ns/events", body: coreEvent(source, "ns", fields, new Date(0)) },
    ]);
  });
});
