// The ownership record's rules that do not need a file system: which boot it holds for, and what is
// never read as a record.
import { describe, expect, it } from "vitest";
import {
  EMPTY_RECORD,
  type OwnershipRecord,
  parseOwnershipRecord,
  recordForBoot,
  serializeOwnershipRecord,
} from "./ownership-record.ts";

const BOOT = "6f1d1c3e-5a7b-4c2d-9e8f-0a1b2c3d4e5f";
const OTHER_BOOT = "0b7e3c1a-2d4f-4a6b-8c9d-e0f1a2b3c4d5";
const record: OwnershipRecord = { bootId: BOOT, seccomp: ["web"], appArmor: { aa: "0123456789ab" } };

describe("recordForBoot", () => {
  it("keeps the record in the boot it was written in", () => {
    expect(recordForBoot(record, BOOT)).toBe(record);
  });

  it("after a reboot, no loaded profile is the agent's; its files stay its own", () => {
    expect(recordForBoot(record, OTHER_BOOT)).toEqual({ bootId: OTHER_BOOT, seccomp: ["web"], appArmor: {} });
  });

  it("takes a record from before boot ids for one from another boot", () => {
    const old = parseOwnershipRecord('{"seccomp": ["web"], "appArmor": {"cri-containerd.apparmor.d": "x"}}');
    expect(old.ok && recordForBoot(old.value, BOOT)).toEqual({
      bootId: BOOT,
      seccomp: ["web"],
      appArmor: {},
    });
  });
});

describe("the record on disk", () => {
  it("round-trips, sorted, with its boot", () => {
    const text = serializeOwnershipRecord({ ...record, seccomp: ["b", "a", "b"] });
    expect(parseOwnershipRecord(text)).toEqual({ ok: true, value: { ...record, seccomp: ["a", "b"] } });
    expect(serializeOwnershipRecord(EMPTY_RECORD)).toBe('{\n  "seccomp": [],\n  "appArmor": {}\n}\n');
  });

  it.each([
    ["truncated", serializeOwnershipRecord(record).slice(0, 40)],
    ["garbage", "\u0000\u0001\u0002"],
    ["a boot id that is no UUID", JSON.stringify({ ...record, bootId: "yesterday" })],
    ["an extra field", JSON.stringify({ ...record, adopted: ["x"] })],
    ["a kernel name for a key", JSON.stringify({ ...record, appArmor: { "lockstep.Web": "x" } })],
    ["a runtime's name with a slash", JSON.stringify({ ...record, appArmor: { "docker-default//x": "x" } })],
  ])("refuses a record that is %s", (_case, text) => {
    expect(parseOwnershipRecord(text).ok).toBe(false);
  });
});
