import { describe, expect, it } from "vitest";
import { MetricsRegistry } from "../src/kube/metrics.ts";
import type { ObservedCall } from "./audit-events.ts";
import { CALLS_METRIC, CallEvents, CallsMetric } from "./call-reports.ts";

const call = (
  pod: string,
  syscall: string,
  action: ObservedCall["action"] = "log",
  count = 1,
): ObservedCall => ({
  namespace: "web",
  pod,
  podUID: `uid-${pod}`,
  container: "app",
  syscall,
  arch: "x86_64",
  action,
  count,
});

describe("lockstep_profile_calls_total", () => {
  it("counts calls by namespace, pod, container, syscall and action", () => {
    const registry = new MetricsRegistry();
    const metric = new CallsMetric(registry, 10);
    metric.add([call("a", "mkdir", "log", 3), call("a", "mkdir", "log", 2), call("a", "mkdir", "errno")]);
    const text = registry.render();
    expect(text).toContain(
      `${CALLS_METRIC}{namespace="web",pod="a",container="app",syscall="mkdir",action="log"} 5`,
    );
    expect(text).toContain('{namespace="web",pod="a",container="app",syscall="mkdir",action="errno"} 1');
  });

  it("holds at most its cap of series and counts the rest in the overflow series", () => {
    const registry = new MetricsRegistry();
    const metric = new CallsMetric(registry, 2);
    metric.add([call("a", "s1"), call("a", "s2"), call("a", "s3", "log", 4), call("b", "s1", "log", 5)]);
    const lines = registry
      .render()
      .split("\n")
      .filter((l) => l.startsWith(CALLS_METRIC));
    expect(lines).toHaveLength(3);
    expect(lines).toContain(`${CALLS_METRIC}{overflow="true"} 9`);
  });

  it("drops the series of pods gone from the node, which frees room under the cap", () => {
    const registry = new MetricsRegistry();
    const metric = new CallsMetric(registry, 1);
    metric.add([call("a", "mkdir")]);
    metric.keepPods(new Set(["uid-b"]));
    metric.add([call("b", "mkdir")]);
    const text = registry.render();
    expect(text).not.toContain('pod="a"');
    expect(text).toContain('pod="b"');
    expect(text).not.toContain(`${CALLS_METRIC}{overflow`);
  });
});

describe("pod Events of observed calls", () => {
  it("sends one Event per pod, container and action, naming the busiest syscalls", () => {
    const events = new CallEvents(10);
    events.add([call("a", "mkdir", "log", 3), call("a", "rmdir", "log", 1), call("a", "mkdir", "errno", 2)]);
    events.add([call("a", "mkdir", "log", 1)]);
    const sent = events.drain(60);
    expect(sent).toEqual([
      {
        involvedObject: { apiVersion: "v1", kind: "Pod", name: "a", namespace: "web", uid: "uid-a" },
        reason: "SeccompCallsLogged",
        message:
          "container app: 5 calls logged (allowed) by its seccomp profile in the last 60 s: mkdir (4), rmdir (1)",
        type: "Normal",
      },
      {
        involvedObject: { apiVersion: "v1", kind: "Pod", name: "a", namespace: "web", uid: "uid-a" },
        reason: "SeccompCallsDenied",
        message:
          "container app: 2 calls refused with an error by its seccomp profile in the last 60 s: mkdir (2)",
        type: "Warning",
      },
    ]);
    expect(events.drain(60)).toEqual([]);
  });

  it("sends at most its cap per interval, the busiest first, and names at most 20 syscalls each", () => {
    const events = new CallEvents(1);
    events.add([call("quiet", "mkdir")]);
    events.add(
      Array.from({ length: 25 }, (_, i) => call("busy", `s${String(i).padStart(2, "0")}`, "log", 2)),
    );
    const [only, ...rest] = events.drain(60);
    expect(rest).toEqual([]);
    expect(only?.involvedObject.name).toBe("busy");
    expect(only?.message).toMatch(/50 calls .* and 5 more syscalls$/);
  });
});
