import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RECORDING_ANNOTATION } from "./constants.ts";
import { RECORDING_LIMITS } from "./limits.ts";
import { DNS_SUBDOMAIN } from "./patterns.ts";
import {
  durationSeconds,
  isRecording,
  labelSelectorQuery,
  liveRecordings,
  mergeRecording,
  type PodFacts,
  ProfileRecordingSpecSchema,
  podsToRestart,
  RECORDED_FROM_ANNOTATION,
  RECORDED_NODES_ANNOTATION,
  RECORDED_PODS_ANNOTATION,
  type RecordingNodeEntry,
  recordedProfileName,
  recorderProfile,
  recorderProfileName,
  recordingStep,
  summarizeRecording,
} from "./profile-recording.ts";
import { RUNTIME_SYSCALLS } from "./recorded-seccomp.ts";
import { MAX_SECCOMP_PROFILE_NAME, SeccompProfileSchema } from "./seccomp.ts";

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
const subdomain = fc.stringMatching(
  /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?){0,3}$/,
);

describe("durationSeconds", () => {
  it("reads hours, minutes and seconds as Go writes them", () => {
    expect(durationSeconds("90s")).toBe(90);
    expect(durationSeconds("10m")).toBe(600);
    expect(durationSeconds("1h30m5s")).toBe(5405);
  });
  it("refuses anything else", () => {
    for (const bad of ["", "10", "1.5m", "m", "1d", "10m1h", " 1m", "-1s"])
      expect(durationSeconds(bad)).toBeUndefined();
  });
  it("bounds the spec's duration", () => {
    const spec = (duration: string) =>
      ProfileRecordingSpecSchema.safeParse({ podSelector: {}, duration }).success;
    expect(spec("2m")).toBe(true);
    expect(spec("0s")).toBe(false);
    expect(spec(`${RECORDING_LIMITS.maxDurationSeconds / 3600 + 1}h`)).toBe(false);
  });
});

describe("recorderProfileName", () => {
  it("is rec-<namespace>-<recording> when the namespace has no dash", () => {
    expect(recorderProfileName("shop", "web")).toBe("rec-shop-web");
  });
  it("keeps a-b/c apart from a/b-c", () => {
    expect(recorderProfileName("a-b", "c")).not.toBe(recorderProfileName("a", "b-c"));
    expect(recorderProfileName("a-b", "c")).toMatch(/^rec-a-b-c-[0-9a-f]{10}$/);
  });
  it("is a valid SeccompProfile name, distinct for distinct recordings (property)", () => {
    fc.assert(
      fc.property(dnsLabel, subdomain, dnsLabel, subdomain, (ns1, n1, ns2, n2) => {
        const a = recorderProfileName(ns1, n1);
        expect(a.length).toBeLessThanOrEqual(MAX_SECCOMP_PROFILE_NAME);
        expect(DNS_SUBDOMAIN.test(a)).toBe(true);
        if (ns1 !== ns2 || n1 !== n2) expect(a).not.toBe(recorderProfileName(ns2, n2));
      }),
    );
  });
  it("shortens a long name with a hash", () => {
    const name = recorderProfileName("shop", "x".repeat(253));
    expect(name.length).toBeLessThanOrEqual(MAX_SECCOMP_PROFILE_NAME);
    expect(DNS_SUBDOMAIN.test(name)).toBe(true);
  });
});

describe("recordedProfileName", () => {
  it("is <recording>-<container>, or <recording> for the workload", () => {
    expect(recordedProfileName("web", "nginx")).toBe("web-nginx");
    expect(recordedProfileName("web")).toBe("web");
  });
  it("is always a valid SeccompProfile name (property)", () => {
    fc.assert(
      fc.property(subdomain, fc.option(dnsLabel, { nil: undefined }), (rec, container) => {
        const name = recordedProfileName(rec.repeat(3), container);
        expect(name.length).toBeLessThanOrEqual(MAX_SECCOMP_PROFILE_NAME);
        expect(DNS_SUBDOMAIN.test(name)).toBe(true);
      }),
    );
  });
});

describe("recorderProfile", () => {
  it("logs every call and names its recording", () => {
    const p = recorderProfile("shop", "web");
    expect(SeccompProfileSchema.parse(p)).toEqual(p);
    expect(p.spec).toEqual({ defaultAction: "SCMP_ACT_LOG" });
    expect(p.metadata.annotations).toEqual({ [RECORDING_ANNOTATION]: "shop/web" });
  });
});

const rec = (spec: object, status?: object, deleting = false) => ({
  metadata: {
    name: "web",
    namespace: "shop",
    uid: "u1",
    ...(deleting ? { deletionTimestamp: "2026-01-01T00:00:00Z" } : {}),
  },
  spec: { podSelector: {}, ...spec },
  ...(status ? { status } : {}),
});

describe("recordingStep", () => {
  const t0 = Date.parse("2026-12-07T10:00:00Z");
  it("starts a new recording", () => {
    expect(recordingStep(rec({}), t0, 5000)).toEqual({ step: "start" });
  });
  it("records until stop, and asks to be woken at the deadline", () => {
    const started = { phase: "Recording", startedAt: "2026-12-07T10:00:00Z" };
    expect(recordingStep(rec({ duration: "2m" }, started), t0 + 1000, 5000)).toEqual({
      step: "record",
      recheckAt: t0 + 120_000,
      restartPods: false,
    });
    expect(recordingStep(rec({ duration: "2m" }, started), t0 + 120_000, 5000)).toEqual({
      step: "stop",
      why: "DurationElapsed",
    });
    expect(recordingStep(rec({ stop: true }, started), t0, 5000)).toEqual({
      step: "stop",
      why: "StopRequested",
    });
  });
  it("restarts pods once", () => {
    const started = { phase: "Recording", startedAt: "2026-12-07T10:00:00Z" };
    expect(recordingStep(rec({ restartPods: true }, started), t0, 1)).toMatchObject({ restartPods: true });
    expect(recordingStep(rec({ restartPods: true }, { ...started, podsRestarted: 0 }), t0, 1)).toMatchObject({
      restartPods: false,
    });
  });
  it("waits for the agents' last reports, then merges", () => {
    const stopping = { phase: "Stopping", stoppedAt: "2026-12-07T10:00:00Z" };
    expect(recordingStep(rec({}, stopping), t0 + 1000, 5000)).toEqual({
      step: "settle",
      recheckAt: t0 + 5000,
    });
    expect(recordingStep(rec({}, stopping), t0 + 5000, 5000)).toEqual({ step: "merge" });
  });
  it("does nothing more once completed or failed, and cleans up a deleted recording in any phase", () => {
    expect(recordingStep(rec({}, { phase: "Completed" }), t0, 1)).toEqual({ step: "done" });
    expect(recordingStep(rec({}, { phase: "Failed" }), t0, 1)).toEqual({ step: "done" });
    for (const phase of ["Pending", "Recording", "Stopping", "Completed"])
      expect(recordingStep(rec({}, { phase }, true), t0, 1)).toEqual({ step: "cleanup" });
  });
  it("is active for the webhook only while Recording, not stopped and not deleted", () => {
    expect(isRecording(rec({}, { phase: "Recording" }))).toBe(true);
    expect(isRecording(rec({ stop: true }, { phase: "Recording" }))).toBe(false);
    expect(isRecording(rec({}, { phase: "Recording" }, true))).toBe(false);
    expect(isRecording(rec({}, { phase: "Stopping" }))).toBe(false);
    expect(isRecording(rec({}))).toBe(false);
  });
});

describe("podsToRestart", () => {
  const pod = (name: string, o: Partial<PodFacts> = {}): PodFacts => ({
    name,
    labels: { app: "web" },
    annotations: {},
    creationTimestamp: "2026-12-07T09:00:00Z",
    hasController: true,
    deleting: false,
    ...o,
  });
  const started = Date.parse("2026-12-07T10:00:00Z");
  it("deletes selected, older, owned, unrecorded pods; names the unowned ones", () => {
    const result = podsToRestart(
      "web",
      started,
      [
        pod("b"),
        pod("a"),
        pod("new", { creationTimestamp: "2026-12-07T10:00:01Z" }),
        pod("other", { labels: { app: "db" } }),
        pod("recorded", { annotations: { [RECORDING_ANNOTATION]: "web" } }),
        pod("bare", { hasController: false }),
        pod("going", { deleting: true }),
      ],
      (labels) => labels.app === "web",
    );
    expect(result).toEqual({ restart: ["a", "b"], unowned: ["bare"] });
  });
});

const entry = (
  node: string,
  containers: [string, string, string, string[], number][],
  truncated = false,
): RecordingNodeEntry => ({
  node,
  updatedAt: "2026-12-07T10:00:00Z",
  containers: containers.map(([pod, podUID, container, syscalls, events]) => ({
    pod,
    podUID,
    container,
    syscalls,
    events,
  })),
  ...(truncated ? { truncated } : {}),
});

describe("mergeRecording", () => {
  const now = new Date("2026-12-07T10:05:00Z");
  const nodes = [
    entry("real-1", [
      ["web-1", "u1", "nginx", ["read", "accept4"], 10],
      ["web-1", "u1", "sidecar", ["nanosleep"], 3],
    ]),
    entry("real-2", [["web-2", "u2", "nginx", ["write", "read"], 7]], true),
  ];

  it("writes one profile per container name, with every replica's calls and the runtime's", () => {
    const { profiles, summary } = mergeRecording(rec({}), nodes, now);
    expect(profiles.map((p) => p.metadata.name)).toEqual(["web-nginx", "web-sidecar"]);
    const nginx = profiles[0];
    const allowed = nginx?.spec.syscalls?.find((r) => r.action === "SCMP_ACT_ALLOW")?.names ?? [];
    for (const s of ["read", "accept4", "write", ...Object.keys(RUNTIME_SYSCALLS)])
      expect(allowed).toContain(s);
    expect(allowed).not.toContain("mkdir");
    expect(allowed).toEqual([...new Set(allowed)].sort());
    expect(nginx?.spec.defaultAction).toBe("SCMP_ACT_ERRNO");
    expect(nginx?.metadata.annotations).toMatchObject({
      [RECORDED_FROM_ANNOTATION]: "shop/web",
      [RECORDED_PODS_ANNOTATION]: "web-1,web-2",
      [RECORDED_NODES_ANNOTATION]: "real-1,real-2",
    });
    for (const p of profiles) expect(SeccompProfileSchema.parse(p)).toEqual(p);
    expect(summary).toEqual({
      podsRecorded: 2,
      nodesReporting: 2,
      eventsSeen: 20,
      syscalls: 4,
      truncatedNodes: ["real-2"],
    });
  });

  it("writes one profile for the workload", () => {
    const { profiles } = mergeRecording(rec({ mergeStrategy: "workload" }), nodes, now);
    expect(profiles.map((p) => p.metadata.name)).toEqual(["web"]);
    const allowed = profiles[0]?.spec.syscalls?.find((r) => r.action === "SCMP_ACT_ALLOW")?.names ?? [];
    expect(allowed).toContain("accept4");
    expect(allowed).toContain("nanosleep");
  });

  it("writes nothing when nothing was recorded", () => {
    expect(mergeRecording(rec({}), [entry("real-1", [])], now).profiles).toEqual([]);
  });

  it("allows exactly the union of the recorded calls and the runtime's, whatever the order of nodes (property)", () => {
    const names = fc.constantFrom(
      "read",
      "write",
      "openat",
      "close",
      "accept4",
      "mmap",
      "brk",
      "futex",
      "epoll_wait",
    );
    const container = fc.tuple(
      fc.constantFrom("p1", "p2", "p3"),
      fc.constantFrom("a", "b"),
      fc.uniqueArray(names),
    );
    fc.assert(
      fc.property(fc.array(fc.array(container, { maxLength: 4 }), { maxLength: 4 }), (perNode) => {
        const entries = perNode.map((cs, i) =>
          entry(
            `n${i}`,
            cs.map(([pod, c, s]) => [pod, `uid-${pod}`, c, [...s].sort(), s.length]),
          ),
        );
        const forward = mergeRecording(rec({ mergeStrategy: "workload" }), entries, now).profiles;
        const backward = mergeRecording(
          rec({ mergeStrategy: "workload" }),
          [...entries].reverse(),
          now,
        ).profiles;
        expect(forward.map((p) => p.spec)).toEqual(backward.map((p) => p.spec));
        const recorded = new Set(perNode.flat().flatMap(([, , s]) => s));
        if (perNode.flat().length === 0) {
          expect(forward).toEqual([]);
          return;
        }
        const allowedNames = new Set(
          (forward[0]?.spec.syscalls ?? [])
            .filter((r) => r.action === "SCMP_ACT_ALLOW" || r.names.includes("clone"))
            .flatMap((r) => r.names),
        );
        const expected = new Set([...recorded, ...Object.keys(RUNTIME_SYSCALLS)]);
        expect(allowedNames).toEqual(expected);
      }),
    );
  });

  it("counts the summary from the entries", () => {
    expect(summarizeRecording([])).toEqual({
      podsRecorded: 0,
      nodesReporting: 0,
      eventsSeen: 0,
      syscalls: 0,
      truncatedNodes: [],
    });
  });
});

describe("labelSelectorQuery", () => {
  it("writes the selector in the API server's grammar", () => {
    expect(
      labelSelectorQuery({
        matchLabels: { app: "web", "example.com/tier": "front" },
        matchExpressions: [
          { key: "env", operator: "In", values: ["a", "b"] },
          { key: "x", operator: "NotIn", values: ["c"] },
          { key: "y", operator: "Exists" },
          { key: "z", operator: "DoesNotExist" },
        ],
      }),
    ).toBe("app=web,example.com/tier=front,env in (a,b),x notin (c),y,!z");
    expect(labelSelectorQuery({})).toBe("");
  });
});

describe("liveRecordings", () => {
  it("names the recordings whose recorder profile exists and is not being deleted", () => {
    expect(
      liveRecordings([
        recorderProfile("shop", "web"),
        {
          metadata: {
            annotations: { [RECORDING_ANNOTATION]: "shop/old" },
            deletionTimestamp: "2026-01-01T00:00:00Z",
          },
        },
        { metadata: { annotations: { other: "x" } } },
        {},
      ]),
    ).toEqual(new Set(["shop/web"]));
  });
});
