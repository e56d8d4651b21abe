import { describe, expect, it } from "vitest";
import { capabilityReport } from "./record-command.ts";

describe("capabilityReport", () => {
  it("says loudly that the proposed container fails, instead of 'none needed'", () => {
    const reason =
      "under runc with exactly no capabilities the program exited with 1, not exit code 0 as recorded";
    const lines = capabilityReport({ proven: [], unproven: [], unexplained: [], containerFails: reason });
    expect(lines[0]).toBe(
      `lockstep: ERROR: the proposed container does not run the program as recorded: ${reason}. The profiles and securityContext below are printed for inspection only; exit code 1`,
    );
    expect(lines.join("\n")).not.toMatch(/none needed/);
  });

  it("names what was proven, and what was left out and why", () => {
    expect(
      capabilityReport({
        proven: ["chown"],
        unproven: [{ capability: "fowner", reason: "the program ends as recorded without it" }],
        unexplained: [],
      }),
    ).toEqual([
      "lockstep: capabilities: proven needed: chown",
      "lockstep: capabilities: fowner not proven, left out: the program ends as recorded without it",
    ]);
    expect(capabilityReport({ proven: [], unproven: [], unexplained: [], skipped: "needs root" })).toEqual([
      "lockstep: capabilities: not analysed (needs root); the securityContext drops all and adds none",
    ]);
  });
});
