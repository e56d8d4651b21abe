// Which ProfileBinding gives which container which profile: pure, bounded, and deterministic
// (docs/adr/0036-profile-bindings.md).
//
// For each container and each profile kind, the candidates are the bindings of the pod's namespace whose
// podSelector matches the pod's labels, whose image glob matches the container's image, and that name a
// profile of that kind. The most specific candidate wins: more literal characters in its image pattern,
// then more requirements in its podSelector. Candidates tied at the top that name different profiles are
// a conflict (the pod is refused, naming them); tied ones naming the same profile are all applied. A
// container that has a profile of that kind already (its own, its pod's, or a legacy AppArmor annotation)
// keeps it unless the winner says `override` and the namespace allows overriding.
//
// The work is bounded: a glob is matched in time linear in the image and the pattern (no backtracking:
// the pieces between `*` are found leftmost in turn, each with Knuth-Morris-Pratt), and every step of
// selector and glob matching is counted against MAX_MATCH_STEPS; past it the review stops and the pod is
// refused, never admitted unbound.
import type { ProfileKind } from "./constants.ts";
import type { AdmittedPod } from "./pod-profiles.ts";
import { LEGACY_APPARMOR_ANNOTATION_PREFIX } from "./pod-profiles.ts";
import type { PodSelector, ProfileBindingSpec } from "./profile-binding.ts";

/**
 * The matching one review may do (selector requirements checked plus characters of image and pattern
 * scanned). A real pod (tens of containers, tens of bindings, images under 200 characters) takes well
 * under 1 % of it; the worst a 3 MiB review can ask (1,024 containers, thousands of bindings) far more.
 */
export const MAX_MATCH_STEPS = 4_000_000;

/** An image pattern prepared once per binding: the literal pieces between `*`, with their KMP tables. */
export interface CompiledGlob {
  pattern: string;
  /** No `*`: the image must equal the pattern. */
  exact: boolean;
  head: string;
  tail: string;
  middle: { piece: string; failure: Int32Array }[];
  /** Characters other than `*`: how specific the pattern is. */
  literals: number;
}

export function compileGlob(pattern: string): CompiledGlob {
  const pieces = pattern.split("*");
  const literals = pattern.length - (pieces.length - 1);
  if (pieces.length === 1) return { pattern, exact: true, head: pattern, tail: "", middle: [], literals };
  const middle = pieces
    .slice(1, -1)
    .filter((p) => p.length > 0)
    .map((piece) => ({ piece, failure: kmpFailure(piece) }));
  return { pattern, exact: false, head: pieces[0] ?? "", tail: pieces.at(-1) ?? "", middle, literals };
}

function kmpFailure(piece: string): Int32Array {
  const failure = new Int32Array(piece.length);
  let k = 0;
  for (let i = 1; i < piece.length; i++) {
    while (k > 0 && piece[i] !== piece[k]) k = failure[k - 1] ?? 0;
    if (piece[i] === piece[k]) k++;
    failure[i] = k;
  }
  return failure;
}

/** Counts the work of one review; `spend` returns false once the budget is gone. */
export class MatchBudget {
  steps = 0;
  readonly limit: number;
  constructor(limit = MAX_MATCH_STEPS) {
    this.limit = limit;
  }
  spend(steps: number): boolean {
    this.steps += steps;
    return this.steps <= this.limit;
  }
  get exhausted(): boolean {
    return this.steps > this.limit;
  }
}

/**
 * The first index at or after `from` (and ending by `end`) where `piece` occurs, or -1. Scans each
 * character of text once (KMP), and charges what it scanned to the budget.
 */
function findPiece(
  text: string,
  from: number,
  end: number,
  piece: string,
  failure: Int32Array,
  budget: MatchBudget,
): number {
  let k = 0;
  let i = from;
  for (; i < end; i++) {
    while (k > 0 && text[i] !== piece[k]) k = failure[k - 1] ?? 0;
    if (text[i] === piece[k]) k++;
    if (k === piece.length) {
      budget.spend(i + 1 - from);
      return i + 1 - piece.length;
    }
  }
  budget.spend(i - from);
  return -1;
}

/**
 * Whether `image` matches the glob. With only `*` as a wildcard, finding each middle piece at its
 * leftmost place after the previous one is exact (a later place leaves less room for the rest).
 */
export function globMatches(glob: CompiledGlob, image: string, budget: MatchBudget): boolean {
  if (glob.exact) {
    budget.spend(Math.min(glob.pattern.length, image.length) + 1);
    return image === glob.pattern;
  }
  const { head, tail } = glob;
  budget.spend(head.length + tail.length + 1);
  if (image.length < head.length + tail.length || !image.startsWith(head) || !image.endsWith(tail))
    return false;
  let at = head.length;
  const end = image.length - tail.length;
  for (const { piece, failure } of glob.middle) {
    const found = findPiece(image, at, end, piece, failure, budget);
    if (found < 0) return false;
    at = found + piece.length;
  }
  return true;
}

/** metav1.LabelSelector semantics (an absent or empty selector matches every pod). */
export function selectorMatches(
  selector: PodSelector | undefined,
  labels: Readonly<Record<string, string>>,
  budget: MatchBudget,
): boolean {
  if (selector === undefined) return true;
  const has = (k: string) => Object.hasOwn(labels, k);
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    budget.spend(1);
    if (!has(key) || labels[key] !== value) return false;
  }
  for (const e of selector.matchExpressions ?? []) {
    budget.spend(1 + (e.values?.length ?? 0));
    const present = has(e.key);
    const value = labels[e.key];
    const inValues = present && (e.values ?? []).includes(value ?? "");
    const ok =
      e.operator === "Exists"
        ? present
        : e.operator === "DoesNotExist"
          ? !present
          : e.operator === "In"
            ? inValues
            : !inValues;
    if (!ok) return false;
  }
  return true;
}

/** A binding prepared for matching: done once per object version, not per review. */
export interface CompiledBinding {
  name: string;
  selector: PodSelector | undefined;
  glob: CompiledGlob;
  profiles: Partial<Record<ProfileKind, string>>;
  override: boolean;
  /** Literal characters of the image pattern, then requirements of the podSelector: higher wins. */
  specificity: readonly [number, number];
}

export function compileBinding(name: string, spec: ProfileBindingSpec): CompiledBinding {
  const glob = compileGlob(spec.image ?? "*");
  const requirements =
    Object.keys(spec.podSelector?.matchLabels ?? {}).length +
    (spec.podSelector?.matchExpressions?.length ?? 0);
  const profiles: Partial<Record<ProfileKind, string>> = {};
  if (spec.seccompProfile !== undefined) profiles.seccomp = spec.seccompProfile;
  if (spec.appArmorProfile !== undefined) profiles.apparmor = spec.appArmorProfile;
  return {
    name,
    selector: requirements === 0 ? undefined : spec.podSelector,
    glob,
    profiles,
    override: spec.override === true,
    specificity: [glob.literals, requirements],
  };
}

export type ContainerGroup = "initContainers" | "containers" | "ephemeralContainers";

/** A container the bindings are matched against. */
export interface ContainerSite {
  group: ContainerGroup;
  index: number;
  name: string;
  image: string;
}

/** A profile a container gets from one or more bindings (several only when tied on the same profile). */
export interface BindingAssignment {
  site: ContainerSite;
  kind: ProfileKind;
  profile: string;
  bindings: string[];
  /** The container (or its pod) had a profile of this kind, which this replaces. */
  replacesOwn: boolean;
  /** Set only when a legacy AppArmor annotation for this container is replaced: its key. */
  legacyAnnotation?: string;
}

/** Bindings tied at the top for a container and a kind, naming different profiles. */
export interface BindingConflict {
  site: ContainerSite;
  kind: ProfileKind;
  candidates: { binding: string; profile: string }[];
}

export interface BindingResolution {
  assignments: BindingAssignment[];
  conflicts: BindingConflict[];
  /** Winners that said `override` for a container with its own profile, where the namespace forbids it. */
  overrideRefused: { site: ContainerSite; kind: ProfileKind; binding: string }[];
  /** The budget ran out: nothing above can be trusted, the pod must be refused. */
  overBudget: boolean;
}

export interface ResolveOptions {
  overrideAllowed: boolean;
  /** Only these containers (kubectl debug: the new ephemeral containers); every one when absent. */
  only?: (site: ContainerSite) => boolean;
  budget?: MatchBudget;
}

const compareSpecificity = (a: readonly [number, number], b: readonly [number, number]) =>
  a[0] - b[0] || a[1] - b[1];

/** The kinds of profile a container has already, from itself, its pod, or a legacy annotation. */
function ownProfiles(
  pod: AdmittedPod,
  site: ContainerSite,
): { seccomp: boolean; apparmor: boolean; legacyAnnotation: string | undefined } {
  const ctx = pod.spec[site.group]?.[site.index]?.securityContext;
  const podCtx = pod.spec.securityContext;
  const key = `${LEGACY_APPARMOR_ANNOTATION_PREFIX}${site.name}`;
  const legacy = pod.metadata?.annotations?.[key] !== undefined ? key : undefined;
  return {
    seccomp: ctx?.seccompProfile !== undefined || podCtx?.seccompProfile !== undefined,
    apparmor:
      ctx?.appArmorProfile !== undefined || podCtx?.appArmorProfile !== undefined || legacy !== undefined,
    legacyAnnotation: legacy,
  };
}

/** Every container of the pod, in the order the pod lists them. */
export function containerSites(pod: AdmittedPod): ContainerSite[] {
  const groups: ContainerGroup[] = ["initContainers", "containers", "ephemeralContainers"];
  return groups.flatMap((group) =>
    (pod.spec[group] ?? []).map((c, index) => ({ group, index, name: c.name, image: c.image ?? "" })),
  );
}

/** What the bindings of the pod's namespace give each of its containers. */
export function resolveBindings(
  pod: AdmittedPod,
  bindings: readonly CompiledBinding[],
  opts: ResolveOptions,
): BindingResolution {
  const budget = opts.budget ?? new MatchBudget();
  const out: BindingResolution = { assignments: [], conflicts: [], overrideRefused: [], overBudget: false };
  const labels = pod.metadata?.labels ?? {};
  // The selector depends on the pod only: checked once per binding, not per container.
  const forPod = bindings.filter((b) => selectorMatches(b.selector, labels, budget));
  if (budget.exhausted) return { ...out, overBudget: true };
  for (const site of containerSites(pod)) {
    if (opts.only && !opts.only(site)) continue;
    const matching = forPod.filter((b) => !budget.exhausted && globMatches(b.glob, site.image, budget));
    if (budget.exhausted) return { ...out, overBudget: true };
    if (matching.length === 0) continue;
    const own = ownProfiles(pod, site);
    for (const kind of ["seccomp", "apparmor"] as const) {
      const candidates = matching.filter((b) => b.profiles[kind] !== undefined);
      if (candidates.length === 0) continue;
      const best = candidates.reduce((a, b) =>
        compareSpecificity(b.specificity, a.specificity) > 0 ? b : a,
      );
      const top = candidates
        .filter((b) => compareSpecificity(b.specificity, best.specificity) === 0)
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const profiles = new Set(top.map((b) => b.profiles[kind]));
      if (profiles.size > 1) {
        out.conflicts.push({
          site,
          kind,
          candidates: top.map((b) => ({ binding: b.name, profile: b.profiles[kind] ?? "" })),
        });
        continue;
      }
      const profile = top[0]?.profiles[kind] ?? "";
      const override = top.some((b) => b.override);
      if (own[kind]) {
        if (!override) continue;
        if (!opts.overrideAllowed) {
          out.overrideRefused.push({ site, kind, binding: top.find((b) => b.override)?.name ?? "" });
          continue;
        }
      }
      out.assignments.push({
        site,
        kind,
        profile,
        bindings: top.map((b) => b.name),
        replacesOwn: own[kind],
        ...(kind === "apparmor" && own.legacyAnnotation ? { legacyAnnotation: own.legacyAnnotation } : {}),
      });
    }
  }
  return out;
}

/** The distinct names of the bindings the assignments came from, sorted. */
export function appliedBindings(assignments: readonly BindingAssignment[]): string[] {
  return [...new Set(assignments.flatMap((a) => a.bindings))].sort();
}
