// What a Node's labels say about one profile (docs/adr/0024-node-labels-that-scale.md). Per node there
// is one revision label per profile kind and a failure label only for a profile that failed there, so
// a Node's Lockstep labels do not grow with the number of profiles.
//
// One rule, two spellings: nodeHasProfile reads it from labels (the controller's status, the CLI, the
// webhook's spec.nodeName check); profileRequirements writes it for the scheduler (the webhook's
// affinity). A unit test evaluates the requirements as the scheduler does and holds the two together.
import { type NodeSelector, NodeSelectorSchema } from "./common.ts";
import {
  APPARMOR_LABEL,
  type ProfileKind,
  RUNTIME_DEFAULT_PROFILE_NAME,
  SYNCED_REVISION_LABEL,
} from "./constants.ts";
import { failedLabelKey, selectorSyncedLabelKey } from "./labels.ts";
import { MAX_INHERITANCE_DEPTH } from "./limits.ts";
import { REVISION_PATTERN } from "./patterns.ts";
import { profileBelongsOnNode } from "./profiles.ts";

/** A profile object as far as its revision goes: the API server's resourceVersion, the controller's status. */
export interface RevisionSource {
  metadata?: { resourceVersion?: string; generation?: number };
  status?: { observedGeneration?: number; revision?: string };
}

/** Revisions are etcd revisions: decimal, at most int64, which is what the scheduler's `Gt` parses. */
const REVISION = new RegExp(REVISION_PATTERN);

export function isRevision(value: string | undefined): value is string {
  return value !== undefined && REVISION.test(value);
}

/**
 * What a profile's revision is when the API server's number does not parse (a resourceVersion is
 * opaque to clients before KEP-5504, and a proxy or a bug could hand over anything). Not a revision,
 * so it fails closed everywhere a revision decides: no node label reaches it (revisionReached), the
 * webhook's requirement for it matches no node (profileRequirements), the controller never counts a
 * node as having installed it, and an agent never claims it. It must never become "0", which every
 * node's label reaches.
 */
export const UNKNOWN_REVISION = "";

/**
 * The revision of a profile object's current version: a number the API server assigned at a write that
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
  return isRevision(own) ? own : UNKNOWN_REVISION;
}

/** The SeccompProfile a profile's spec inherits from; undefined for none, runtime/default and AppArmor. */
export function baseProfileOf(kind: ProfileKind, spec: unknown): string | undefined {
  if (kind !== "seccomp" || typeof spec !== "object" || spec === null) return undefined;
  const base = (spec as { baseProfileName?: unknown }).baseProfileName;
  return typeof base === "string" && base !== RUNTIME_DEFAULT_PROFILE_NAME ? base : undefined;
}

/** One profile of a chain as renderingRevision reads it: its object's revision and its spec. */
export interface ChainLink {
  revision: string;
  spec?: unknown;
}

/**
 * The revision of a profile's rendering: the highest profileRevision along its baseProfileName chain.
 * A rendering is decided by every spec of its chain, so updating an ancestor must move what a node has
 * to reach, or a pod admitted after the update could land on a node still holding the old rendering
 * (and keep it for life). Revisions are the API server's resourceVersions, which grow across all
 * objects of a resource, so the maximum is a revision at or after every write that decided the
 * rendering, and an agent that claims it has rendered every one of them (its claim means "verified up
 * to", ADR 0024). One function for the webhook (what a pod requires), the controller (what Installed
 * means) and the agent (the revisions it covered).
 *
 * The walk stops at a base that does not exist (the profile is BaseNotFound on every node that saw it),
 * at a cycle and after MAX_INHERITANCE_DEPTH profiles (both refused on every node); an unparseable
 * revision anywhere on the chain makes the whole rendering's revision UNKNOWN_REVISION.
 */
export function renderingRevision(
  kind: ProfileKind,
  name: string,
  linkOf: (name: string) => ChainLink | undefined,
): string {
  let max = -1n;
  const seen = new Set<string>();
  for (let current: string | undefined = name; current !== undefined && !seen.has(current); ) {
    if (seen.size === MAX_INHERITANCE_DEPTH) break;
    seen.add(current);
    const link = linkOf(current);
    if (link === undefined) break;
    if (!isRevision(link.revision)) return UNKNOWN_REVISION;
    if (BigInt(link.revision) > max) max = BigInt(link.revision);
    current = baseProfileOf(kind, link.spec);
  }
  return max < 0n ? UNKNOWN_REVISION : String(max);
}

/**
 * Renderings each with its rendering's revision as the objects stand now (a status or metadata write
 * may have moved an object's own revision since it was rendered): what the agent claims and compares.
 */
export function withRenderingRevisions<P extends { name: string; revision: string }>(
  kind: ProfileKind,
  renderings: Iterable<P>,
  linkOf: (name: string) => ChainLink | undefined,
): P[] {
  return [...renderings].map((p) => ({ ...p, revision: renderingRevision(kind, p.name, linkOf) }));
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
  nodeSelector?: NodeSelector | undefined;
  disabled: boolean;
}

/** A profile object as a cache holds it, with the controller's status. */
export interface PlacementSource {
  metadata?: { name?: string; resourceVersion?: string; generation?: number };
  spec?: unknown;
  status?: { observedGeneration?: number; revision?: string };
}

/**
 * The placement of a profile as the webhook and the CLI see it, without rendering (`revision`: the
 * rendering's, renderingRevision; the object's own by default, for a profile with no base).
 */
export function placementOf(
  kind: ProfileKind,
  obj: PlacementSource,
  revision: string = profileRevision(obj),
): ProfilePlacement {
  const spec = (typeof obj.spec === "object" && obj.spec !== null ? obj.spec : {}) as Record<string, unknown>;
  const selector = NodeSelectorSchema.safeParse(spec.nodeSelector);
  return {
    kind,
    name: obj.metadata?.name ?? "",
    revision,
    nodeSelector: selector.success ? selector.data : undefined,
    disabled: spec.disabled === true,
  };
}

/** The placement of every profile of a kind in a list, each with its rendering's revision. */
export function placementsOf(kind: ProfileKind, objects: readonly PlacementSource[]): ProfilePlacement[] {
  const byName = new Map(objects.map((o) => [o.metadata?.name ?? "", o]));
  const linkOf = (name: string) => {
    const obj = byName.get(name);
    return obj && { revision: profileRevision(obj), spec: obj.spec };
  };
  return objects.map((o) => placementOf(kind, o, renderingRevision(kind, o.metadata?.name ?? "", linkOf)));
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

/** How a node stands with a profile that belongs on it. */
export type NodeProfileState = "installed" | "failed" | "pending";

export function nodeProfileState(
  p: ProfilePlacement,
  labels: Readonly<Record<string, string>>,
): NodeProfileState {
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
 * nodeHasProfile for every profile in `profiles`, as node-affinity requirements: a node that satisfies
 * all of them holds every profile.
 */
export function profileRequirements(profiles: readonly ProfilePlacement[]): NodeRequirement[] {
  const placement: NodeRequirement[] = [];
  for (const p of profiles)
    for (const [key, value] of Object.entries(p.nodeSelector ?? {}))
      placement.push({ key, operator: "In", values: [value] });
  if (profiles.some((p) => p.kind === "apparmor"))
    placement.push({ key: APPARMOR_LABEL, operator: "In", values: ["enabled"] });

  const synced: NodeRequirement[] = [];
  const kinds = [...new Set(profiles.map((p) => p.kind))];
  for (const kind of kinds) {
    const revisions = profiles.filter((p) => p.kind === kind).map((p) => p.revision);
    const revision = maxRevision(revisions);
    // `Gt` is strict; the label must be at least the revision.
    synced.push({
      key: SYNCED_REVISION_LABEL[kind],
      operator: "Gt",
      values: [String(BigInt(revision) - 1n)],
    });
    // An unknown revision is reached by no node: `Gt` and `DoesNotExist` on one key match none.
    if (!revisions.every(isRevision))
      synced.push({ key: SYNCED_REVISION_LABEL[kind], operator: "DoesNotExist" });
  }
  for (const p of profiles) synced.push({ key: failedLabelKey(p.kind, p.name), operator: "DoesNotExist" });
  for (const p of profiles)
    for (const [key, value] of Object.entries(p.nodeSelector ?? {}))
      synced.push({ key: selectorSyncedLabelKey(key), operator: "In", values: [value] });
  // A disabled profile belongs nowhere: `Gt` and `DoesNotExist` on one key match no node.
  for (const p of profiles)
    if (p.disabled) synced.push({ key: SYNCED_REVISION_LABEL[p.kind], operator: "DoesNotExist" });
  return distinctRequirements([...synced, ...placement]);
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
