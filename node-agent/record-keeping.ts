// How the agent keeps its ownership record (ownership-record.ts) across a sync, decided here and carried
// out by the agent and the executor: which record a sync starts from and what to say about it, and the
// record's claims before the plan is carried out. A name is claimed in the record before the file is
// written or the profile loaded, and released only after it is removed or unloaded: a crash at any
// point leaves the agent owning at most something that is gone (forgotten on the next sync), never
// something of its own it would take for someone else's. Pure.
import {
  OWNERSHIP_RECORD_FILE,
  type OwnershipRecord,
  type StoredRecord,
  serializeOwnershipRecord,
} from "./ownership-record.ts";
import type { SyncPlan } from "./planner.ts";

/** The record a sync starts from, whether it must be stored, and what to log about it. */
export interface RecordRestore {
  record: OwnershipRecord;
  store: boolean;
  note?: { level: "info" | "warn"; fields: Record<string, unknown>; message: string };
  /** The stored record could not be read: set it aside first (unreadableRecordMessage says why). */
  setAside?: string;
}

/**
 * From the record found on disk and the record the planner starts from (recordToPlanFrom): none yet,
 * started, adopting the profile files present; from another boot, its loaded profiles dropped (the
 * kernel lost them; whatever is loaded under a Lockstep name now is not the agent's); unreadable, set
 * aside and started afresh, removing and unloading nothing it listed (recordAfterUnreadable).
 */
export function restoreRecord(stored: StoredRecord, planned: OwnershipRecord, bootId: string): RecordRestore {
  if (stored.state === "absent")
    return {
      record: planned,
      store: true,
      note: {
        level: "info",
        fields: { seccomp: planned.seccomp },
        message: "started an ownership record, adopting the profile files present",
      },
    };
  if (stored.state === "unreadable") return { record: planned, store: true, setAside: stored.problem };
  if (sameRecord(planned, stored.record)) return { record: planned, store: false };
  const loaded = Object.keys(stored.record.appArmor);
  return {
    record: planned,
    store: true,
    ...(loaded.length > 0 && {
      note: {
        level: "warn",
        fields: { recordBoot: stored.record.bootId, boot: bootId, appArmor: loaded },
        message:
          "the ownership record is from another boot: the AppArmor profiles it lists were unloaded by the reboot",
      },
    }),
  };
}

/** What the log and a Node Event say when the record could not be read and was set aside. */
export function unreadableRecordMessage(
  dir: string,
  problem: string,
  aside: string,
  record: OwnershipRecord,
  filesOnDisk: Iterable<string>,
): { message: string; strays: string[] } {
  const strays = [...filesOnDisk].filter((name) => !record.seccomp.includes(name));
  const message = `the agent's ownership record ${dir}/${OWNERSHIP_RECORD_FILE} ${problem}; moved to ${aside} and started afresh. Nothing it listed is removed or unloaded: ${strays.length} profile file(s) of no SeccompProfile for this node stay (${strays.slice(0, 10).join(", ") || "none"}), and AppArmor profiles loaded before count as someone else's (NameTaken) until unloaded by hand (apparmor_parser -R lockstep.<name>) or the node reboots. Remove the stray files by hand once no pod uses them, then delete ${aside}.`;
  return { message, strays };
}

/**
 * The record with the plan's writes and the loads about to run claimed (a load in an unknown version
 * until it succeeds). `...before` keeps the boot the record holds for: without it the next sync would
 * take the agent's own loads for another boot's.
 */
export function claimBeforeActing(
  before: OwnershipRecord,
  plan: Pick<SyncPlan, "writeSeccomp">,
  loading: readonly string[],
): OwnershipRecord {
  const appArmor = { ...before.appArmor };
  for (const name of loading) appArmor[name] = null;
  return {
    ...before,
    seccomp: [...new Set([...before.seccomp, ...plan.writeSeccomp.map((w) => w.profile.name)])],
    appArmor,
  };
}

/** The record without what the plan forgets: names the agent owned whose file or load is gone anyway. */
export function forgetInRecord(
  record: OwnershipRecord,
  plan: Pick<SyncPlan, "forgetSeccomp" | "forgetAppArmor">,
): OwnershipRecord {
  const appArmor = { ...record.appArmor };
  for (const name of plan.forgetAppArmor) delete appArmor[name];
  return { ...record, seccomp: record.seccomp.filter((n) => !plan.forgetSeccomp.includes(n)), appArmor };
}

/** Whether two records say the same (so an unchanged record is not written again). */
export function sameRecord(a: OwnershipRecord, b: OwnershipRecord): boolean {
  return serializeOwnershipRecord(a) === serializeOwnershipRecord(b);
}
