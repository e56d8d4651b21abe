import { describe, expect, it } from "vitest";
import { renderSeccompProfiles } from "../src/api/profiles.ts";
import type { OwnershipRecord } from "./ownership-record.ts";
import type { SyncPlan } from "./planner.ts";
import {
  claimBeforeActing,
  forgetInRecord,
  restoreRecord,
  sameRecord,
  unreadableRecordMessage,
} from "./record-keeping.ts";

const BOOT = "6f1d1c3e-5a7b-4c2d-9e8f-0a1b2c3d4e5f";
const OTHER_BOOT = "0b7e3c1a-2d4f-4a6b-8c9d-e0f1a2b3c4d5";
const record = (seccomp: string[], appArmor: Record<string, string | null> = {}): OwnershipRecord => ({
  bootId: BOOT,
  seccomp,
  appArmor,
});

describe("restoreRecord", () => {
  it("stores nothing for a record that holds as it is", () => {
    const stored = record(["web"], { aa: "v1" });
    expect(restoreRecord({ state: "ok", record: stored }, record(["web"], { aa: "v1" }), BOOT)).toEqual({
      record: record(["web"], { aa: "v1" }),
      store: false,
    });
  });

  it("stores a record from another boot, and warns only when it listed loaded profiles", () => {
    const planned = record(["web"]);
    const fromOtherBoot = { ...record(["web"], { aa: "v1" }), bootId: OTHER_BOOT };
    const restored = restoreRecord({ state: "ok", record: fromOtherBoot }, planned, BOOT);
    expect(restored).toMatchObject({ record: planned, store: true, note: { level: "warn" } });
    expect(restored.note?.fields).toEqual({ recordBoot: OTHER_BOOT, boot: BOOT, appArmor: ["aa"] });
    const noLoads = { ...record(["web"]), bootId: OTHER_BOOT };
    expect(restoreRecord({ state: "ok", record: noLoads }, planned, BOOT)).toEqual({
      record: planned,
      store: true,
    });
  });

  it("starts a record when there is none, and sets an unreadable one aside before storing afresh", () => {
    expect(restoreRecord({ state: "absent" }, record(["a"]), BOOT)).toMatchObject({
      store: true,
      note: { level: "info", fields: { seccomp: ["a"] } },
    });
    expect(restoreRecord({ state: "unreadable", problem: "is not JSON" }, record([]), BOOT)).toEqual({
      record: record([]),
      store: true,
      setAside: "is not JSON",
    });
  });

  it("names the stray files an unreadable record leaves, at most ten, and says what to do", () => {
    const files = Array.from({ length: 12 }, (_, i) => `f${i}`);
    const { message, strays } = unreadableRecordMessage(
      "/k/seccomp/lockstep",
      "is not JSON",
      "/k/aside",
      record(["f0"]),
      files,
    );
    expect(strays).toHaveLength(11);
    expect(message).toContain("/k/seccomp/lockstep/.lockstep-agent-record is not JSON; moved to /k/aside");
    expect(message).toContain("11 profile file(s) of no SeccompProfile for this node stay (f1, f2,");
    expect(message).not.toContain("f11");
    expect(unreadableRecordMessage("/d", "p", "/a", record([]), []).message).toContain("stay (none)");
  });
});

describe("claims around carrying a plan out", () => {
  const [web] = renderSeccompProfiles([{ name: "web", uid: "u", spec: { defaultAction: "SCMP_ACT_ALLOW" } }]);
  if (!web?.ok) throw new Error("test profile does not render");

  it("claims every file to write and every profile to load (in an unknown version) before acting", () => {
    const before = record(["old"], { kept: "v1" });
    const plan = { writeSeccomp: [{ profile: web, content: "{}" }] } as Pick<SyncPlan, "writeSeccomp">;
    expect(claimBeforeActing(before, plan, ["aa"])).toEqual(record(["old", "web"], { kept: "v1", aa: null }));
    // Nothing to claim: the same record, which is not written again.
    expect(sameRecord(claimBeforeActing(before, { writeSeccomp: [] }, []), before)).toBe(true);
    expect(before).toEqual(record(["old"], { kept: "v1" }));
  });

  it("forgets what the plan says is gone anyway", () => {
    expect(
      forgetInRecord(record(["a", "b"], { x: "v", y: "w" }), { forgetSeccomp: ["a"], forgetAppArmor: ["y"] }),
    ).toEqual(record(["b"], { x: "v" }));
  });
});
