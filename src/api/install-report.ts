// What an agent tells the controller when a profile that belongs on its node is not installed there,
// and how the controller reads it back: a Kubernetes Event on the profile (where `kubectl describe`
// shows it to a person), whose annotations carry the fields the controller needs. Both sides import
// this module, so the format has one home: the agent never formats text that the controller parses.
import * as z from "zod";
import { coreEvent, type EventFields, type EventSource } from "../kube/event-recorder.ts";
import {
  API_VERSION,
  OBJECT_KIND,
  PROFILE_EVENTS_NAMESPACE,
  PROFILE_KINDS,
  type ProfileKind,
} from "./constants.ts";

/** The Event reason; the controller watches Events with this reason only (a field selector). */
export const INSTALL_FAILED = "InstallFailed";
export const INSTALL_REPORT_SOURCE = "lockstep-node-agent";
/**
 * Longest detail an install report carries (16 KiB): enough for any message of the agent's, and a bound
 * on what one Event, and the controller's cache of them, can hold.
 */
export const INSTALL_REPORT_DETAIL_MAX = 16 * 1024;

/**
 * The annotation that makes an Event an install report (readInstallReport requires it). The agent's
 * admission policy lets only the agent of that node write an Event carrying it (src/manifests/admission.ts).
 */
export const INSTALL_REPORT_NODE_ANNOTATION = "lockstep.dev/node";

const ANNOTATION = {
  node: INSTALL_REPORT_NODE_ANNOTATION,
  version: "lockstep.dev/version",
  reason: "lockstep.dev/reason",
  detail: "lockstep.dev/detail",
} as const;

export const InstallReportSchema = z.object({
  kind: z.enum(PROFILE_KINDS),
  name: z.string().min(1),
  uid: z.string().optional(),
  node: z.string().min(1),
  /** The profile version the agent tried to install ("" when the profile could not be rendered). */
  version: z.string(),
  /** Machine-readable: NameTaken, InvalidPolicy, WriteFailed, ... */
  reason: z.string().min(1),
  /** What went wrong, in the user's own terms. */
  detail: z.string(),
});
export type InstallReport = z.infer<typeof InstallReportSchema>;

/** Who sends install reports: the agent of the report's node. */
export function installReportSource(node: string): EventSource {
  return { component: INSTALL_REPORT_SOURCE, instance: node, host: node };
}

/** What an install report Event says (src/kube/event-recorder.ts adds who reports it, and when). */
export function installReportFields(report: InstallReport): EventFields {
  return {
    annotations: {
      [ANNOTATION.node]: report.node,
      [ANNOTATION.version]: report.version,
      [ANNOTATION.reason]: report.reason,
      [ANNOTATION.detail]: report.detail.slice(0, INSTALL_REPORT_DETAIL_MAX),
    },
    involvedObject: {
      apiVersion: API_VERSION,
      kind: OBJECT_KIND[report.kind],
      name: report.name,
      uid: report.uid,
    },
    reason: INSTALL_FAILED,
    // Read by people: the node first, then what went wrong.
    message: `node ${report.node}: ${report.reason}: ${report.detail}`,
    type: "Warning",
  };
}

/** The Event an agent creates for a report. */
export function installReportEvent(report: InstallReport, now: Date) {
  return coreEvent(
    installReportSource(report.node),
    PROFILE_EVENTS_NAMESPACE,
    installReportFields(report),
    now,
  );
}

const ReportEventSchema = z.object({
  reason: z.literal(INSTALL_FAILED),
  involvedObject: z.object({ kind: z.string(), name: z.string().min(1), uid: z.string().optional() }),
  metadata: z.object({
    annotations: z.object({
      [ANNOTATION.node]: z.string().min(1),
      [ANNOTATION.version]: z.string(),
      [ANNOTATION.reason]: z.string().min(1),
      [ANNOTATION.detail]: z.string(),
    }),
    creationTimestamp: z.union([z.string(), z.date()]).optional(),
  }),
  lastTimestamp: z.union([z.string(), z.date()]).optional(),
});

/**
 * The report an Event carries, with when it was last seen; undefined for an Event that is not one (an
 * Event of another shape, anyone's with the same reason).
 */
export function readInstallReport(event: unknown): { report: InstallReport; at: number } | undefined {
  const parsed = ReportEventSchema.safeParse(event);
  if (!parsed.success) return undefined;
  const e = parsed.data;
  const kind = PROFILE_KINDS.find((k: ProfileKind) => OBJECT_KIND[k] === e.involvedObject.kind);
  if (kind === undefined) return undefined;
  const a = e.metadata.annotations;
  return {
    report: {
      kind,
      name: e.involvedObject.name,
      uid: e.involvedObject.uid,
      node: a[ANNOTATION.node],
      version: a[ANNOTATION.version],
      reason: a[ANNOTATION.reason],
      detail: a[ANNOTATION.detail],
    },
    at: new Date(e.lastTimestamp ?? e.metadata.creationTimestamp ?? 0).getTime(),
  };
}

/**
 * An install report Event as a cache keeps it: what readInstallReport reads, its detail cut to
 * `detailMax`, and the keys a cache needs; undefined for an Event that is not a report.
 */
export function trimInstallReportEvent(event: unknown, detailMax: number) {
  const read = readInstallReport(event);
  if (read === undefined) return undefined;
  const { report, at } = read;
  const full = installReportEvent(
    { ...report, detail: report.detail.slice(0, detailMax) },
    new Date(Number.isFinite(at) ? at : 0),
  );
  const { name, namespace, resourceVersion } = (event as { metadata: Record<string, string | undefined> })
    .metadata;
  return {
    metadata: { name, namespace, resourceVersion, annotations: full.metadata.annotations },
    reason: full.reason,
    involvedObject: full.involvedObject,
    lastTimestamp: full.lastTimestamp,
  };
}
