// Which changes wake which profiles, kept apart from the reconcile (as controller-runtime keeps its
// `handler` package apart from `Reconcile`): the reconcile reads everything from the caches and has no
// event-specific branches, so all that matters about an event is which keys it wakes. Pure.
import { PROFILE_KINDS, type ProfileKind, SYNCED_REVISION_LABEL } from "../api/constants.ts";
import { readInstallReport } from "../api/install-report.ts";
import { isRevision } from "../api/node-profiles.ts";
import type { ProfileChange } from "../kube/profile-cache.ts";

export type Wake =
  /** Reconcile this one profile. */
  | { profile: { kind: ProfileKind; name: string } }
  /** Reconcile every profile of a kind. */
  | { kind: ProfileKind }
  /** Reconcile every profile, once a burst of Node changes has passed (a rollout labels many Nodes). */
  | { allAfterNodeBurst: true }
  /**
   * Once the burst has passed, reconcile the profiles of a kind whose revision r is in a range
   * (above < r <= upTo): an agent's claim moved, and nothing else about the node did.
   */
  | { revisionsAfterNodeBurst: RevisionRanges }
  /** Nothing to do. */
  | undefined;

/** How long label changes of several Nodes are collected before the profiles they wake are reconciled. */
export const NODE_BURST_MAX_MS = 50;
/** While one Node alone has changed, the burst ends once it has been quiet this long. */
export const NODE_BURST_QUIET_MS = 10;

/**
 * How long from now a burst of Node label changes is reconciled: `nodes` distinct Nodes have changed
 * since its first change `sinceFirstMs` ago. A rollout labels many Nodes within tens of milliseconds, and
 * collecting them for NODE_BURST_MAX_MS costs each profile one reconcile and one status write instead of
 * one per batch (a quiet gap for every burst made 20 Nodes labelled in two batches converge in 450 ms
 * instead of 250-280). One Node alone is one agent's PATCH: it waits only for the quiet gap, since a
 * fixed 50 ms was a third of a lone profile's way from its creation to Installed (ADR 0013).
 */
export function nodeBurstWaitMs(sinceFirstMs: number, nodes: number): number {
  const left = NODE_BURST_MAX_MS - sinceFirstMs;
  return Math.max(0, nodes <= 1 ? Math.min(NODE_BURST_QUIET_MS, left) : left);
}

/**
 * A spec change, or a profile appearing or going, may change every profile of its kind (children
 * inherit from bases; a deleted base leaves its children Invalid). Any other change (status,
 * finalizers, deletionTimestamp) concerns that profile alone.
 */
export function profileChangeWakes({ kind, name, specChanged }: ProfileChange): Wake {
  return specChanged ? { kind } : { profile: { kind, name } };
}

/** Per kind, the revisions r with above < r <= upTo. */
export type RevisionRanges = Partial<Record<ProfileKind, { above: bigint; upTo: bigint }>>;

/**
 * A Node changes for many reasons (heartbeats, taints, annotations); only its labels matter to any
 * profile's status. `after` is undefined for a Node that is gone. When only an agent's revision labels
 * moved (every rollout), a profile's state on that node changed only if its revision lies between the
 * two claims (node-profiles.ts's revisionReached), so only those profiles are woken: a rollout to one
 * node then costs one reconcile, not one per profile.
 */
export function nodeChangeWakes(
  before: Readonly<Record<string, string>> | undefined,
  after: Readonly<Record<string, string>> | undefined,
): Wake {
  if (sameLabels(before, after)) return undefined;
  if (before === undefined || after === undefined) return { allAfterNodeBurst: true };
  const revisionKeys = new Set<string>(Object.values(SYNCED_REVISION_LABEL));
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)]))
    if (before[key] !== after[key] && !revisionKeys.has(key)) return { allAfterNodeBurst: true };
  const ranges: RevisionRanges = {};
  for (const kind of PROFILE_KINDS) {
    const [b, a] = [before[SYNCED_REVISION_LABEL[kind]], after[SYNCED_REVISION_LABEL[kind]]];
    if (a === b) continue;
    const [lo, hi] = [b ?? "0", a ?? "0"].map((r) => (isRevision(r) ? BigInt(r) : undefined));
    if (lo === undefined || hi === undefined) return { allAfterNodeBurst: true };
    ranges[kind] = lo < hi ? { above: lo, upTo: hi } : { above: hi, upTo: lo };
  }
  return { revisionsAfterNodeBurst: ranges };
}

/** The ranges of two wakes together (a range that covers both, per kind). */
export function mergeRevisionRanges(a: RevisionRanges, b: RevisionRanges): RevisionRanges {
  const out: RevisionRanges = { ...a };
  for (const kind of PROFILE_KINDS) {
    const [x, y] = [a[kind], b[kind]];
    if (!y) continue;
    const merged = { ...(x ?? y) };
    if (y.above < merged.above) merged.above = y.above;
    if (y.upTo > merged.upTo) merged.upTo = y.upTo;
    out[kind] = merged;
  }
  return out;
}

/** Whether a profile of `kind` with this revision is in the ranges. */
export function revisionInRanges(ranges: RevisionRanges, kind: ProfileKind, revision: string): boolean {
  const range = ranges[kind];
  if (!range || !isRevision(revision)) return false;
  const r = BigInt(revision);
  return range.above < r && r <= range.upTo;
}

/** A wake that waits for the end of a Node burst. */
export type NodeBurstWake = Extract<
  Wake,
  { allAfterNodeBurst: true } | { revisionsAfterNodeBurst: RevisionRanges }
>;

/** A burst of Node changes being collected: which Nodes changed, and what they wake together. */
export interface NodeBurst {
  wakes: "all" | RevisionRanges;
  nodes: ReadonlySet<string>;
}

export const EMPTY_NODE_BURST: NodeBurst = { wakes: {}, nodes: new Set() };

/** The burst with one more Node change; `node` undefined for a change no Node is named for. */
export function addToNodeBurst(burst: NodeBurst, wake: NodeBurstWake, node: string | undefined): NodeBurst {
  const wakes =
    "allAfterNodeBurst" in wake || burst.wakes === "all"
      ? "all"
      : mergeRevisionRanges(burst.wakes, wake.revisionsAfterNodeBurst);
  return { wakes, nodes: node === undefined ? burst.nodes : new Set([...burst.nodes, node]) };
}

/** How long from now the burst is reconciled (nodeBurstWaitMs). */
export function nodeBurstCollectMs(sinceFirstMs: number, burst: NodeBurst): number {
  return nodeBurstWaitMs(sinceFirstMs, burst.nodes.size);
}

/** Whether a burst wakes a profile of `kind` whose rendering has this revision. */
export function nodeBurstWakes(burst: NodeBurst, kind: ProfileKind, revision: string): boolean {
  return burst.wakes === "all" || revisionInRanges(burst.wakes, kind, revision);
}

/** An agent's install report about a profile wakes that profile; any other Event nothing. */
export function installReportWakes(event: unknown): Wake {
  const read = readInstallReport(event);
  return read ? { profile: { kind: read.report.kind, name: read.report.name } } : undefined;
}

function sameLabels(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  if (a === undefined || b === undefined) return a === b;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
