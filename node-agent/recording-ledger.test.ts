import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RECORDING_ANNOTATION } from "../src/api/constants.ts";
import { RecordingNodeEntrySchema } from "../src/api/profile-recording.ts";
import type { KubeObject } from "../src/kube/informer.ts";
import { RecordingLedger } from "./recording-ledger.ts";
import { podRecordingFrom, recordingsThatLostCalls } from "./recording-reporter.ts";

const now = new Date("2026-12-07T10:00:00Z");
const call = (podUID: string, container: string, syscall: string, count = 1) => ({
  pod: `pod-${podUID}`,
  podUID,
  container,
  syscall,
  count,
});

describe("RecordingLedger", () => {
  it("keeps each container's calls sorted and deduplicated, and counts every record", () => {
    const ledger = new RecordingLedger();
    for (const s of ["write", "read", "write", "openat"]) ledger.add("shop/web", call("u2", "web", s, 2));
    ledger.add("shop/web", call("u1", "web", "read"));
    const entry = ledger.entry("shop/web", "real-1", now);
    expect(entry).toEqual({
      node: "real-1",
      updatedAt: now.toISOString(),
      truncated: false,
      containers: [
        { pod: "pod-u1", podUID: "u1", container: "web", syscalls: ["read"], events: 1 },
        { pod: "pod-u2", podUID: "u2", container: "web", syscalls: ["openat", "read", "write"], events: 8 },
      ],
    });
    expect(RecordingNodeEntrySchema.parse(entry)).toEqual(entry);
  });

  it("says truncated when calls of a recording were lost before it, even with nothing held", () => {
    const ledger = new RecordingLedger();
    ledger.lostCalls("shop/web");
    expect(ledger.entry("shop/web", "n", now)).toEqual({
      node: "n",
      updatedAt: now.toISOString(),
      containers: [],
      truncated: true,
    });
  });

  it("keeps recordings apart, and forgets one", () => {
    const ledger = new RecordingLedger();
    ledger.add("shop/a", call("u1", "web", "read"));
    ledger.add("shop/b", call("u1", "web", "write"));
    expect(ledger.entry("shop/a", "n", now)?.containers?.[0]?.syscalls).toEqual(["read"]);
    ledger.forget("shop/a");
    expect(ledger.entry("shop/a", "n", now)).toBeUndefined();
    expect(ledger.held).toEqual(["shop/b"]);
  });

  it("never holds more than its caps, says truncated when it dropped something, and keeps counting what it holds (property)", () => {
    const limits = { containersPerNode: 3, syscallNamesPerNode: 10, syscallsPerContainer: 5 };
    const calls = fc.array(
      fc.tuple(
        fc.constantFrom("u1", "u2", "u3", "u4", "u5"),
        fc.constantFrom("a", "b"),
        fc.integer({ min: 0, max: 30 }),
      ),
      { maxLength: 300 },
    );
    fc.assert(
      fc.property(calls, (list) => {
        const ledger = new RecordingLedger(limits);
        for (const [uid, c, n] of list) ledger.add("r", call(uid, c, `sys${n}`));
        const entry = ledger.entry("r", "n", now);
        if (list.length === 0) {
          expect(entry).toBeUndefined();
          return;
        }
        const containers = entry?.containers ?? [];
        expect(containers.length).toBeLessThanOrEqual(limits.containersPerNode);
        const names = containers.reduce((n, c) => n + c.syscalls.length, 0);
        expect(names).toBeLessThanOrEqual(limits.syscallNamesPerNode);
        for (const c of containers)
          expect(c.syscalls.length).toBeLessThanOrEqual(limits.syscallsPerContainer);
        // Nothing dropped: everything is there, and not truncated.
        const distinct = new Map<string, Set<string>>();
        for (const [uid, c, n] of list)
          distinct.set(`${uid}/${c}`, (distinct.get(`${uid}/${c}`) ?? new Set()).add(`sys${n}`));
        const total = [...distinct.values()].reduce((n, s) => n + s.size, 0);
        const fits =
          distinct.size <= limits.containersPerNode &&
          total <= limits.syscallNamesPerNode &&
          [...distinct.values()].every((s) => s.size <= limits.syscallsPerContainer);
        expect(entry?.truncated).toBe(!fits);
      }),
    );
  });
});

describe("podRecordingFrom", () => {
  const pods: Record<string, KubeObject> = {
    "shop/web-1": {
      metadata: {
        name: "web-1",
        namespace: "shop",
        uid: "u1",
        annotations: { [RECORDING_ANNOTATION]: "web" },
      },
    },
    "shop/plain": { metadata: { name: "plain", namespace: "shop", uid: "u2" } },
  };
  const lookup = podRecordingFrom((name, namespace) => pods[`${namespace}/${name}`]);
  it("names the recording of the pod that made the call, and nothing for any other", () => {
    expect(lookup("shop", "web-1", "u1")).toBe("web");
    expect(lookup("shop", "web-1", "recreated")).toBeUndefined();
    expect(lookup("shop", "plain", "u2")).toBeUndefined();
    expect(lookup("shop", "gone", "u3")).toBeUndefined();
  });
});

describe("recordingsThatLostCalls", () => {
  const live = new Set(["shop/web", "shop/api"]);
  const podRecording = (namespace: string, pod: string, podUID: string) =>
    namespace === "shop" && pod === "web-1" && podUID === "u1" ? "web" : undefined;
  const capped = (podUID: string, pod: string) =>
    new Map([[podUID, { identity: { namespace: "shop", pod, podUID } }]]);
  it("names the live recording of a capped pod, none for an unrecorded pod, every live one past the node's cap", () => {
    expect(
      recordingsThatLostCalls({ cappedPods: capped("u1", "web-1"), droppedOverTotal: 0 }, live, podRecording),
    ).toEqual(new Set(["shop/web"]));
    expect(
      recordingsThatLostCalls({ cappedPods: capped("u9", "plain"), droppedOverTotal: 0 }, live, podRecording),
    ).toEqual(new Set());
    expect(
      recordingsThatLostCalls({ cappedPods: new Map(), droppedOverTotal: 3 }, live, podRecording),
    ).toEqual(live);
    expect(
      recordingsThatLostCalls(
        { cappedPods: capped("u1", "web-1"), droppedOverTotal: 0 },
        new Set(),
        podRecording,
      ),
    ).toEqual(new Set());
  });
});
