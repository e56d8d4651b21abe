import { describe, expect, it } from "vitest";
import {
  INSTALL_FAILED,
  INSTALL_REPORT_DETAIL_MAX,
  type InstallReport,
  installReportEvent,
  readInstallReport,
  trimInstallReportEvent,
} from "./install-report.ts";

const report: InstallReport = {
  kind: "apparmor",
  name: "web",
  uid: "1234",
  node: "node-7",
  version: "abc123",
  reason: "NameTaken",
  detail: 'the kernel already has a profile named "web" that this agent did not load',
};

describe("the agent's install report", () => {
  it("reads back exactly what the agent wrote, whatever the message text says", () => {
    const at = new Date("2026-11-23T10:00:00Z");
    const event = installReportEvent(report, at);
    expect(event.reason).toBe(INSTALL_FAILED);
    expect(event.message).toBe(`node node-7: NameTaken: ${report.detail}`);
    // The API server returns the Event as JSON: timestamps are strings.
    expect(readInstallReport(JSON.parse(JSON.stringify(event)))).toEqual({ report, at: at.getTime() });
  });

  it("keeps the full detail even where the human message is cut", () => {
    const long = { ...report, detail: "x".repeat(5000) };
    const event = installReportEvent(long, new Date());
    expect(event.message.length).toBe(1024);
    expect(readInstallReport(event)?.report.detail).toBe(long.detail);
    const huge = installReportEvent({ ...report, detail: "y".repeat(1024 * 1024) }, new Date());
    expect(readInstallReport(huge)?.report.detail).toBe("y".repeat(INSTALL_REPORT_DETAIL_MAX));
  });

  it("ignores Events that are not reports: another reason, a missing field, an unknown kind", () => {
    const event = installReportEvent(report, new Date());
    expect(readInstallReport({ ...event, reason: "Installed" })).toBeUndefined();
    expect(readInstallReport({ ...event, metadata: { annotations: {} } })).toBeUndefined();
    expect(
      readInstallReport({ ...event, involvedObject: { ...event.involvedObject, kind: "ConfigMap" } }),
    ).toBeUndefined();
    expect(readInstallReport("not an object")).toBeUndefined();
  });

  it("trims a report Event to what a cache needs, and drops any other Event", () => {
    const at = new Date("2026-11-23T10:00:00Z");
    const event = {
      ...installReportEvent({ ...report, detail: "z".repeat(5000) }, at),
      metadata: {
        ...installReportEvent(report, at).metadata,
        name: "web.1",
        resourceVersion: "42",
        annotations: {
          ...installReportEvent({ ...report, detail: "z".repeat(5000) }, at).metadata.annotations,
          big: "b".repeat(100_000),
        },
        managedFields: [{ manager: "x" }],
      },
    };
    const trimmed = trimInstallReportEvent(event, 100);
    expect(readInstallReport(trimmed)).toEqual({
      report: { ...report, detail: "z".repeat(100) },
      at: at.getTime(),
    });
    expect(trimmed?.metadata).toMatchObject({ name: "web.1", namespace: "default", resourceVersion: "42" });
    expect(JSON.stringify(trimmed).length).toBeLessThan(1000);
    expect(trimInstallReportEvent({ ...event, reason: "Other" }, 100)).toBeUndefined();
  });
});
