// The agents' install reports as status reads them: per profile, each node's latest report, indexed
// once per change of the controller's Event cache rather than once per reconcile. Pure.
import type { ProfileKind } from "../api/constants.ts";
import { type InstallReport, readInstallReport } from "../api/install-report.ts";
import type { InstallFailure } from "./status.ts";

/**
 * Install reports the controller keeps, the newest first kept. An agent reports only failures it labels
 * (at most MAX_FAILURE_LABELS_PER_KIND per kind and node, once per change), so this holds every current
 * report of 39 nodes each failing every profile it can label, or of 10,000 nodes failing one profile;
 * past it a failure is still shown, by its label's reason. A report is a few hundred bytes, its detail
 * cut to REPORT_DETAIL_KEPT: at most about 12 MiB.
 */
export const MAX_CACHED_INSTALL_REPORTS = 10_000;
/** What status.missingNodes shows of a report's detail. */
export const REPORT_DETAIL_KEPT = 1024;

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

/** The index of the cached install reports, built when first read after the Event cache changed. */
export class InstallReportCache {
  private readonly events: () => Iterable<unknown>;
  private index: InstallReportIndex | undefined;

  /** `events`: the Event cache's objects as they are now. */
  constructor(events: () => Iterable<unknown>) {
    this.events = events;
  }

  /** The Event cache changed: the next read indexes it again. */
  changed(): void {
    this.index = undefined;
  }

  failuresFor(kind: ProfileKind, name: string): Map<string, InstallFailure> {
    this.index ??= indexInstallReports(this.events());
    return latestFailures(this.index, kind, name);
  }
}
