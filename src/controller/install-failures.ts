// The agents' install reports as status reads them: per profile, each node's latest report. Pure; the
// controller keeps the index until its Event cache changes.
import type { ProfileKind } from "../api/constants.ts";
import { type InstallReport, readInstallReport } from "../api/install-report.ts";
import type { InstallFailure } from "./status.ts";

export type InstallReportIndex = ReadonlyMap<string, readonly { report: InstallReport; at: number }[]>;

/** The key of a profile in the controller's queue and indexes. */
export function profileKey(kind: ProfileKind, name: string): string {
  return `${kind}/${name}`;
}

export function splitProfileKey(key: string): [ProfileKind, string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash) as ProfileKind, key.slice(slash + 1)];
}

/** The install reports among cached Events, by profile; any other Event is left out. */
export function indexInstallReports(events: Iterable<unknown>): InstallReportIndex {
  const index = new Map<string, { report: InstallReport; at: number }[]>();
  for (const e of events) {
    const read = readInstallReport(e);
    if (!read) continue;
    const key = profileKey(read.report.kind, read.report.name);
    const list = index.get(key) ?? [];
    list.push(read);
    index.set(key, list);
  }
  return index;
}

/**
 * Node -> the latest failure one profile's reports tell: an agent that failed, then failed differently,
 * is read as it is now.
 */
export function latestFailures(
  index: InstallReportIndex,
  kind: ProfileKind,
  name: string,
): Map<string, InstallFailure> {
  const latest = new Map<string, { at: number; failure: InstallFailure }>();
  for (const { report, at } of index.get(profileKey(kind, name)) ?? []) {
    if ((latest.get(report.node)?.at ?? -1) > at) continue;
    latest.set(report.node, {
      at,
      failure: { version: report.version, message: `${report.reason}: ${report.detail}` },
    });
  }
  return new Map([...latest].map(([node, { failure }]) => [node, failure]));
}
