import { describe, expect, it } from "vitest";
import {
  INSTALL_FAILED,
  type InstallReport,
  installReportEvent,
  readInstallReport,
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
});
