// The agent's durable record of what it put on this node: the seccomp files it wrote and the AppArmor
// profiles it loaded. The kernel's AppArmor namespace is node-global and says nothing about who loaded
// a profile, and the seccomp folder may hold entries someone else made; only what this record lists is
// the agent's to replace or remove, and it outlives restarts, so profiles loaded before a restart are
// still unloaded once their object is gone. The kernel forgets every profile at a reboot while the
// record on disk survives it, so the record carries the boot it was written in: loaded profiles it
// lists from another boot are not the agent's (docs/adr/0027-apparmor-kernel-names.md). Pure: parsing
// and serialising; seccomp-dir.ts stores it.
import * as z from "zod";
import { type Parsed, parseJsonDocument } from "../src/api/common.ts";
import { isValidProfileObjectName } from "../src/api/labels.ts";

/**
 * The record's file name inside <kubelet-root>/seccomp/lockstep/ (DESIGN invariant 4: the agent writes
 * nowhere else). A pod can only name `lockstep/<object name>.json`, and object names never start with
 * a dot or lack the suffix, so the kubelet never takes this file for a profile.
 */
export const OWNERSHIP_RECORD_FILE = ".lockstep-agent-record";

const ProfileName = z.string().refine(isValidProfileObjectName, { error: "not a profile object name" });

/** The kernel's boot_id (/proc/sys/kernel/random/boot_id): a random UUID, new at every boot. */
export const BootIdSchema = z.uuid();

export const OwnershipRecordSchema = z.strictObject({
  /**
   * The boot the record was last written in. Absent in a record from before boot ids, which counts
   * as another boot: what it says was loaded cannot be proven to be still the agent's.
   */
  bootId: BootIdSchema.optional(),
  /** Profile names whose `<name>.json` the agent wrote and has not removed. */
  seccomp: z.array(ProfileName),
  /**
   * AppArmor profiles the agent loaded: name -> version loaded, or null while a load is under way (a
   * crash then leaves a name the agent owns in an unknown version, which the next sync loads again).
   */
  appArmor: z.record(ProfileName, z.string().nullable()),
});
export type OwnershipRecord = z.infer<typeof OwnershipRecordSchema>;

export const EMPTY_RECORD: OwnershipRecord = { seccomp: [], appArmor: {} };

/** What the agent found at its record's path (SeccompDir.readRecord). */
export type StoredRecord =
  | { state: "ok"; record: OwnershipRecord }
  | { state: "absent" }
  | { state: "unreadable"; problem: string };

/**
 * The record as it holds in the boot `bootId`: the files it lists survive a reboot and stay the
 * agent's, but the kernel started empty, so no loaded profile is the agent's until it loads it again
 * (one loaded meanwhile under a Lockstep name is someone else's: NameTaken, never adopted).
 */
export function recordForBoot(record: OwnershipRecord, bootId: string): OwnershipRecord {
  return record.bootId === bootId ? record : { ...record, bootId, appArmor: {} };
}

export function parseOwnershipRecord(text: string): Parsed<OwnershipRecord> {
  return parseJsonDocument(OwnershipRecordSchema, text);
}

/**
 * Sorted, so an unchanged record serialises to the same bytes and is not rewritten. By code unit (the
 * default sort), not localeCompare, which would load ICU's collation data into the agent (about 3 MiB
 * resident, measured) for names that are ASCII anyway.
 */
export function serializeOwnershipRecord(record: OwnershipRecord): string {
  const appArmor = Object.fromEntries(
    Object.keys(record.appArmor)
      .sort()
      .map((name) => [name, record.appArmor[name]]),
  );
  const seccomp = [...new Set(record.seccomp)].sort();
  return `${JSON.stringify({ bootId: record.bootId, seccomp, appArmor }, null, 2)}\n`;
}
