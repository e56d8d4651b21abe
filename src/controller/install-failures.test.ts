import { describe, expect, it } from "vitest";
import { installReportEvent } from "../api/install-report.ts";
import {
  InstallReportCache,
  indexInstallReports,
  latestFailures,
  profileKey,
  splitProfileKey,
} from "./install-failures.ts";

const report = (node: string, reason: string, name = "web") => ({
  kind: "seccomp" as const,
  name,
  node,
  version: "v1",
  reason,
  detail: `${reason} on ${node}`,
});

describe("install failures", () => {
  it("reads each node's latest report of a profile and leaves out Events that are not reports", () => {
    const index = indexInstallReports([
      installReportEvent(report("n1", "WriteFailed"), new Date(2000)),
      installReportEvent(report("n1", "LoadFailed"), new Date(1000)),
      installReportEvent(report("n2", "NameTaken"), new Date(1000)),
      installReportEvent(report("n1", "NameTaken", "other"), new Date(3000)),
      { reason: "InstallFailed", involvedObject: { kind: "SeccompProfile", name: "web" }, metadata: {} },
    ]);
    expect(latestFailures(index, "seccomp", "web")).toEqual(
      new Map([
        ["n1", { version: "v1", message: "WriteFailed: WriteFailed on n1" }],
        ["n2", { version: "v1", message: "NameTaken: NameTaken on n2" }],
      ]),
    );
    expect(latestFailures(index, "apparmor", "web")).toEqual(new Map());
  });

  it("keys a profile by kind and name, and splits the key back at the first slash", () => {
    expect(profileKey("apparmor", "a.b")).toBe("apparmor/a.b");
    expect(splitProfileKey(profileKey("seccomp", "x"))).toEqual(["seccomp", "x"]);
  });

  it("indexes the Event cache once per change, not once per read", () => {
    const events: unknown[] = [installReportEvent(report("n1", "WriteFailed"), new Date(1000))];
    let reads = 0;
    const cache = new InstallReportCache(() => {
      reads++;
      return events;
    });
    expect(cache.failuresFor("seccomp", "web").get("n1")?.message).toBe("WriteFailed: WriteFailed on n1");
    events.push(installReportEvent(report("n1", "LoadFailed"), new Date(2000)));
    expect(cache.failuresFor("seccomp", "web").get("n1")?.message).toBe("WriteFailed: WriteFailed on n1");
    expect(reads).toBe(1);
    cache.changed();
    expect(cache.failuresFor("seccomp", "web").get("n1")?.message).toBe("LoadFailed: LoadFailed on n1");
    expect(reads).toBe(2);
  });
});
