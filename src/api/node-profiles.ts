// What a Node's labels say about one profile (docs/adr/0024-node-labels-that-scale.md). Per node there
// is one revision label per profile kind and a failure label only for a profile that failed there, so
// a Node's Lockstep labels do not grow with the number of profiles; while agents roll, an older agent's
// per-profile label (`seccomp.lockstep.dev/<name>: <version>`) still counts.
//
// One rule, two spellings: nodeHasProfile reads it from labels (the controller's status, the CLI, the
// webhook's spec.nodeName check); profileRequirements writes it for the scheduler (the webhook's
// affinity). A unit test evaluates the requirements as the scheduler does and holds the two together.
import { type NodeSelector, NodeSelectorSchema } from "./common.ts";
import { APPARMOR_LABEL, type ProfileKind, SYNCED_REVISION_LABEL } from "./constants.ts";
import { failedLabelKey, profileLabelKey, selectorSyncedLabelKey } from "./labels.ts";
import { profileBelongsOnNode } from "./profiles.ts";

/** A profile object as far as its revision goes: the API server's resourceVersion, the controller's status. */
export interface RevisionSource {
  metadata?: { resourceVersion?: string; generation?: number };
  status?: { observedGeneration?: number; revision?: string };
}

/** Revisions are etcd revisions: decimal, at most int64, which is what the scheduler's `Gt` parses. */
const REVISION = /^(0|[1-9][0-9]{0,17})$/;

export function isRevision(value: string | undefined): value is string {
  return value !== undefined && REVISION.test(value);
}

/**
 * The revision of a profile's current version: a number the API server assigned at a write that
 * already carried the current spec. Any such number works (every agent that has seen it has seen the
 * spec), and it must not change with status writes, or every status write would move every node's
 * revision label. So: the revision the controller recorded when it first saw this generation
 * (status.revision with status.observedGeneration), and until then the object's own resourceVersion.
 * Everyone computes it from the object alone, so the webhook, the agents and the controller agree.
 */
export function profileRevision(obj: RevisionSource): string {
  const status = obj.status;
  if (status?.observedGeneration === obj.metadata?.generation && isRevision(status?.revision))
    return status.revision;
  const own = obj.metadata?.resourceVersion;
  return isRevision(own) ? own : "0";
}

/**
 * Whether `a` is an earlier revision than `b`: both are revisions (resourceVersions are comparable
 * integers, KEP-5504) and a < b. False when either is not a revision.
 */
export function revisionBefore(a: string | undefined, b: string | undefined): boolean {
  return isRevision(a) && isRevision(b) && BigInt(a) < BigInt(b);
}

export function maxRevision(revisions: Iterable<string>): string {
  let max = 0n;
  for (const r of revisions) if (isRevision(r) && BigInt(r) > max) max = BigInt(r);
  return String(max);
}

/** What decides whether a node holds a profile, taken from the object and its status. */
export interface ProfilePlacement {
  kind: ProfileKind;
  name: string;
  revision: string;
  /** The current version's hash; undefined when it is not known (invalid, or not rendered yet). */
  version: string | undefined;
  nodeSelector?: NodeSelector | undefined;
  disabled: boolean;
}

/** A profile object as a cache holds it, with the controller's status. */
export interface PlacementSource {
  metadata?: { name?: string; resourceVersion?: string; generation?: number };
  spec?: unknown;
  status?: { observedGeneration?: number; revision?: string; version?: string };
}

/**
 * The placement of a profile as the webhook and the CLI see it, without rendering: the version comes
 * from the controller's status, and only while that status is about the current generation (an older
 * one would let a pod onto a node that an older agent labelled with the previous version).
 */
export function placementOf(kind: ProfileKind, obj: PlacementSource): ProfilePlacement {
  const spec = (typeof obj.spec === "object" && obj.spec !== null ? obj.spec : {}) as Record<string, unknown>;
  const selector = NodeSelectorSchema.safeParse(spec.nodeSelector);
  const current = obj.status?.observedGeneration === obj.metadata?.generation;
  return {
    kind,
    name: obj.metadata?.name ?? "",
    revision: profileRevision(obj),
    version: current ? obj.status?.version : undefined,
    nodeSelector: selector.success ? selector.data : undefined,
    disabled: spec.disabled === true,
  };
}

/** Whether this node's agent has caught up with `revision` for profiles of `kind`. */
export function revisionReached(
  labels: Readonly<Record<string, string>>,
  kind: ProfileKind,
  revision: string,
): boolean {
  const synced = labels[SYNCED_REVISION_LABEL[kind]];
  return isRevision(synced) && isRevision(revision) && !revisionBefore(synced, revision);
}

/** Whether this node's agent publishes revisions for `kind` (ADR 0024) rather than per-profile labels. */
export function usesRevisions(labels: Readonly<Record<string, string>>, kind: ProfileKind): boolean {
  return isRevision(labels[SYNCED_REVISION_LABEL[kind]]);
}

/** An older agent's per-profile label, carrying this version. */
function legacyLabelHolds(p: ProfilePlacement, labels: Readonly<Record<string, string>>): boolean {
  return p.version !== undefined && labels[profileLabelKey(p.kind, p.name)] === p.version;
}

/** How a node stands with a profile that belongs on it. */
export type NodeProfileState = "installed" | "failed" | "pending";

export function nodeProfileState(
  p: ProfilePlacement,
  labels: Readonly<Record<string, string>>,
): NodeProfileState {
  if (legacyLabelHolds(p, labels)) return "installed";
  if (labels[failedLabelKey(p.kind, p.name)] !== undefined) return "failed";
  const selectorSynced = Object.entries(p.nodeSelector ?? {}).every(
    ([key, value]) => labels[selectorSyncedLabelKey(key)] === value,
  );
  return selectorSynced && revisionReached(labels, p.kind, p.revision) ? "installed" : "pending";
}

/** Whether the scheduler may place a pod that needs `p` on a node with these labels. */
export function nodeHasProfile(p: ProfilePlacement, labels: Readonly<Record<string, string>>): boolean {
  return profileBelongsOnNode(p, labels) && nodeProfileState(p, labels) === "installed";
}

/** A node-affinity requirement (core/v1 NodeSelectorRequirement). */
export interface NodeRequirement {
  key: string;
  operator: "In" | "Gt" | "Exists" | "DoesNotExist";
  values?: string[];
}

/**
 * nodeHasProfile for every profile in `profiles`, as node-affinity requirements: `current` for nodes of
 * agents that publish revisions, `legacy` (undefined when it cannot hold: a version unknown, a profile
 * disabled) for nodes an older agent labelled. A node that satisfies either holds every profile.
 */
export function profileRequirements(profiles: readonly ProfilePlacement[]): {
  current: NodeRequirement[];
  legacy: NodeRequirement[] | undefined;
} {
  const placement: NodeRequirement[] = [];
  for (const p of profiles)
    for (const [key, value] of Object.entries(p.nodeSelector ?? {}))
      placement.push({ key, operator: "In", values: [value] });
  if (profiles.some((p) => p.kind === "apparmor"))
    placement.push({ key: APPARMOR_LABEL, operator: "In", values: ["enabled"] });

  const current: NodeRequirement[] = [];
  const kinds = [...new Set(profiles.map((p) => p.kind))];
  for (const kind of kinds) {
    const revision = maxRevision(profiles.filter((p) => p.kind === kind).map((p) => p.revision));
    // `Gt` is strict; the label must be at least the revision.
    current.push({
      key: SYNCED_REVISION_LABEL[kind],
      operator: "Gt",
      values: [String(BigInt(revision) - 1n)],
    });
  }
  for (const p of profiles) current.push({ key: failedLabelKey(p.kind, p.name), operator: "DoesNotExist" });
  for (const p of profiles)
    for (const [key, value] of Object.entries(p.nodeSelector ?? {}))
      current.push({ key: selectorSyncedLabelKey(key), operator: "In", values: [value] });
  // A disabled profile belongs nowhere: `Gt` and `DoesNotExist` on one key match no node.
  for (const p of profiles)
    if (p.disabled) current.push({ key: SYNCED_REVISION_LABEL[p.kind], operator: "DoesNotExist" });

  const legacyPossible = profiles.every((p) => p.version !== undefined && !p.disabled);
  const legacy = legacyPossible
    ? profiles.map(
        (p): NodeRequirement => ({
          key: profileLabelKey(p.kind, p.name),
          operator: "In",
          values: [p.version ?? ""],
        }),
      )
    : undefined;
  return {
    current: distinctRequirements([...current, ...placement]),
    legacy: legacy && distinctRequirements([...legacy, ...placement]),
  };
}

export function sameRequirement(
  a: NodeRequirement,
  b: { key: string; operator: string; values?: string[] },
): boolean {
  const av = a.values ?? [];
  const bv = b.values ?? [];
  return (
    a.key === b.key && a.operator === b.operator && av.length === bv.length && av.every((v, i) => v === bv[i])
  );
}

function distinctRequirements(reqs: NodeRequirement[]): NodeRequirement[] {
  return reqs.filter((r, i) => reqs.findIndex((o) => sameRequirement(o, r)) === i);
}

/** One line of `lockstep node`: how a node stands with one profile. */
export interface NodeProfileLine {
  kind: ProfileKind;
  name: string;
  state: NodeProfileState | "elsewhere";
  /** The failure label's value, for a failed profile. */
  reason?: string;
}

/** Every profile and whether this node holds it, by the rule the scheduler applies (nodeHasProfile). */
export function nodeProfileReport(
  labels: Readonly<Record<string, string>>,
  profiles: readonly ProfilePlacement[],
): NodeProfileLine[] {
  return profiles.map((p): NodeProfileLine => {
    if (!profileBelongsOnNode(p, labels)) return { kind: p.kind, name: p.name, state: "elsewhere" };
    const state = nodeProfileState(p, labels);
    const reason = labels[failedLabelKey(p.kind, p.name)];
    return state === "failed" && reason !== undefined
      ? { kind: p.kind, name: p.name, state, reason }
      : { kind: p.kind, name: p.name, state };
  });
}
