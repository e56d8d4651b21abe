import { describe, expect, it } from "vitest";
import { INSTALL_FAILED, installReportEvent } from "../api/install-report.ts";
import { installReportWakes, nodeChangeWakes, profileChangeWakes } from "./triggers.ts";

describe("which changes wake which profiles", () => {
  it("a spec change wakes the whole kind (inheritance); any other change only that profile", () => {
    expect(profileChangeWakes({ kind: "seccomp", name: "base", verb: "update", specChanged: true })).toEqual({
      kind: "seccomp",
    });
    expect(profileChangeWakes({ kind: "apparmor", name: "web", verb: "update", specChanged: false })).toEqual(
      {
        profile: { kind: "apparmor", name: "web" },
      },
    );
  });

  it("a Node wakes every profile only when its labels changed, appeared or went", () => {
    expect(nodeChangeWakes({ a: "1" }, { a: "1" })).toBeUndefined();
    expect(nodeChangeWakes({ a: "1" }, { a: "2" })).toEqual({ allAfterNodeBurst: true });
    expect(nodeChangeWakes({ a: "1" }, { a: "1", b: "1" })).toEqual({ allAfterNodeBurst: true });
    expect(nodeChangeWakes(undefined, {})).toEqual({ allAfterNodeBurst: true });
    expect(nodeChangeWakes({}, undefined)).toEqual({ allAfterNodeBurst: true });
  });

  it("an agent's install report wakes its profile; another Event nothing", () => {
    const event = installReportEvent(
      { kind: "seccomp", name: "web", node: "n1", version: "v", reason: "WriteFailed", detail: "disk full" },
      new Date(),
    );
    expect(installReportWakes(event)).toEqual({ profile: { kind: "seccomp", name: "web" } });
    expect(installReportWakes({ ...event, reason: `Not${INSTALL_FAILED}` })).toBeUndefined();
  });
});
