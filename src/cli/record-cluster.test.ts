import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { clusterRecordFlags, parseSelectorFlag, profilesYaml, progressLine } from "./record-cluster.ts";

describe("lockstep record --cluster flags", () => {
  it("reads an equality selector", () => {
    expect(parseSelectorFlag("app=web, example.com/tier=front")).toEqual({
      matchLabels: { app: "web", "example.com/tier": "front" },
    });
  });
  it("refuses what is not KEY=VALUE, naming the part", () => {
    expect(() => parseSelectorFlag("app")).toThrow('"app" is not KEY=VALUE');
    expect(() => parseSelectorFlag("app!=web")).toThrow("is not a label key");
    expect(() => parseSelectorFlag("a=b=c")).toThrow("is not KEY=VALUE");
    expect(() => parseSelectorFlag("app=no spaces")).toThrow("is not a label value");
  });
  it("names the recording after the selector's first value unless --name says otherwise", () => {
    expect(clusterRecordFlags({ namespace: "shop", selector: "app=web" })).toEqual({
      namespace: "shop",
      name: "web",
      spec: { podSelector: { matchLabels: { app: "web" } } },
      apply: false,
    });
    expect(
      clusterRecordFlags({
        namespace: "shop",
        selector: "app=web",
        name: "web-v2",
        duration: "2m",
        "restart-pods": true,
        "merge-strategy": "workload",
        apply: true,
      }),
    ).toEqual({
      namespace: "shop",
      name: "web-v2",
      spec: {
        podSelector: { matchLabels: { app: "web" } },
        duration: "2m",
        restartPods: true,
        mergeStrategy: "workload",
      },
      apply: true,
    });
  });
  it("refuses a missing namespace or selector, a bad duration, name or strategy", () => {
    expect(() => clusterRecordFlags({ selector: "app=web" })).toThrow("-n NAMESPACE");
    expect(() => clusterRecordFlags({ namespace: "shop" })).toThrow("--selector");
    expect(() =>
      clusterRecordFlags({ namespace: "shop", selector: "app=web", duration: "2 minutes" }),
    ).toThrow("--duration");
    expect(() => clusterRecordFlags({ namespace: "shop", selector: "app=Web_1" })).toThrow(
      "not a valid recording name",
    );
    expect(() =>
      clusterRecordFlags({ namespace: "shop", selector: "app=web", "merge-strategy": "pod" }),
    ).toThrow("--merge-strategy pod");
    expect(() => clusterRecordFlags({ namespace: "shop", selector: "app=web", duration: "999h" })).toThrow(
      "at most",
    );
  });
});

describe("lockstep record --cluster output", () => {
  it("shows progress from status", () => {
    expect(progressLine(undefined)).toBe("Pending: 0 pods on 0 nodes, 0 events, 0 syscalls");
    expect(
      progressLine({ phase: "Recording", podsRecorded: 2, nodesReporting: 2, eventsSeen: 9, syscalls: 6 }),
    ).toBe("Recording: 2 pods on 2 nodes, 9 events, 6 syscalls");
  });
  it("prints the profiles as their author would write them, without server fields", () => {
    const text = profilesYaml([
      {
        metadata: { name: "web-web", annotations: { a: "b" }, uid: "x", resourceVersion: "1" } as never,
        spec: { defaultAction: "SCMP_ACT_ERRNO" },
      },
      { metadata: { name: "web-log" }, spec: { defaultAction: "SCMP_ACT_ERRNO" } },
    ]);
    const docs = parseAllDocuments(text).map((d) => d.toJS());
    expect(docs).toHaveLength(2);
    expect(docs[0]).toEqual({
      apiVersion: "lockstep.dev/v1alpha1",
      kind: "SeccompProfile",
      metadata: { name: "web-web", annotations: { a: "b" } },
      spec: { defaultAction: "SCMP_ACT_ERRNO" },
    });
    expect(parse(text.split("---\n")[1] ?? "").metadata.name).toBe("web-log");
  });
});
