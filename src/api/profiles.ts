// From the profile objects in a cache to what each of them means for nodes: its version (the label
// value of a node that holds the current content), which nodes it belongs on, and its content for one
// node. Pure, and shared by the agent (what to install), the controller (what "installed" means) and
// the CLI (`lockstep convert`), so all three agree byte for byte.
import { type AppArmorMode, parseAppArmorProfileSpec } from "./apparmor.ts";
import type { NodeSelector, Parsed } from "./common.ts";
import { AGENT_LABEL, APPARMOR_LABEL, type ProfileKind, RUNTIME_DEFAULT_PROFILE_NAME } from "./constants.ts";
import { isValidProfileObjectName, profileLabelKey } from "./labels.ts";
import { MAX_INHERITANCE_DEPTH } from "./limits.ts";
import { appArmorProfileVersion, renderAppArmorProfile } from "./render-apparmor.ts";
import {
  type InheritanceMemo,
  type ResolvedSeccomp,
  renderSeccompForNode,
  resolveSeccompProfile,
  type SeccompResolution,
  seccompProfileVersion,
  serializeSeccomp,
} from "./render-seccomp.ts";
import { parseSeccompProfileSpec, type SeccompProfileSpec } from "./seccomp.ts";

/**
 * Why an AppArmor profile cannot be installed because of its policy text: the renderer's cheap checks
 * here, and apparmor_parser's judgement on the node (node-agent/failures.ts), under one reason.
 */
export const INVALID_POLICY = "InvalidPolicy";

/** A profile object as a cache holds it: only the fields rendering needs. */
export interface ProfileObjectRef {
  name: string;
  uid?: string;
  /** renderingRevision of the object (node-profiles.ts); "0" where no API server assigned one (the CLI). */
  revision?: string;
  spec: unknown;
}

interface RenderedCommon {
  kind: ProfileKind;
  name: string;
  uid?: string;
  revision: string;
  labelKey: string;
  nodeSelector?: NodeSelector;
  disabled: boolean;
}

export type RenderedProfile =
  | (RenderedCommon & {
      ok: true;
      version: string;
      /** The bytes to install on a node of this architecture (`kubernetes.io/arch`). */
      contentFor: (nodeArch: string | undefined) => string;
      /** AppArmor only: the mode the agent loads the profile in (spec.mode, and nothing in the text). */
      appArmorMode?: AppArmorMode;
    })
  | (RenderedCommon & { ok: false; reason: string; message: string });

function common(
  kind: ProfileKind,
  obj: ProfileObjectRef,
  spec?: { nodeSelector?: NodeSelector; disabled?: boolean },
) {
  return {
    kind,
    name: obj.name,
    ...(obj.uid === undefined ? {} : { uid: obj.uid }),
    revision: obj.revision ?? "0",
    labelKey: profileLabelKey(kind, obj.name),
    ...(spec?.nodeSelector === undefined ? {} : { nodeSelector: spec.nodeSelector }),
    disabled: spec?.disabled ?? false,
  };
}

/**
 * What rendering passes over the same objects share, so that rendering a kind again after one spec
 * changed redoes about that profile's work (and its descendants'), not every profile's: parsing, the
 * resolved chain and its version hash. Keyed by the spec objects themselves: a watch cache replaces an
 * object on every change and keeps it otherwise. ProfileCache keeps one for its SeccompProfiles.
 */
export class SeccompRenderMemo {
  readonly parsed = new WeakMap<object, { name: string; result: Parsed<SeccompProfileSpec> }>();
  readonly resolved = new WeakMap<
    SeccompProfileSpec,
    { chain: readonly (SeccompProfileSpec | undefined)[]; resolution: SeccompResolution; version: string }
  >();
}

/**
 * Every SeccompProfile rendered. Inheritance is resolved against all of them, so an invalid base
 * makes its children fail with a reason that names the chain.
 */
export function renderSeccompProfiles(
  objects: readonly ProfileObjectRef[],
  memo: SeccompRenderMemo = new SeccompRenderMemo(),
): RenderedProfile[] {
  const specs = new Map<string, SeccompProfileSpec>();
  const parsed = objects.map((obj) => {
    const result = parseOnce(obj, memo);
    if (result.ok) specs.set(obj.name, result.value);
    return { obj, result };
  });
  const folded: InheritanceMemo = new Map();
  return parsed.map(({ obj, result }): RenderedProfile => {
    if (!result.ok)
      return { ...common("seccomp", obj), ok: false, reason: "InvalidSpec", message: result.message };
    const base = common("seccomp", obj, result.value);
    // The specs the resolution read: the same objects as last time give the same resolution.
    const chain = specChain(obj.name, specs);
    const known = memo.resolved.get(result.value);
    const reused =
      known && known.chain.length === chain.length && known.chain.every((spec, i) => spec === chain[i]);
    const resolved = reused ? known.resolution : resolveSeccompProfile(obj.name, specs, folded);
    if (!resolved.ok) return { ...base, ok: false, reason: resolved.reason, message: resolved.message };
    const spec: ResolvedSeccomp = resolved.spec;
    const version = reused ? known.version : seccompProfileVersion(spec);
    if (!reused) memo.resolved.set(result.value, { chain, resolution: resolved, version });
    return {
      ...base,
      ok: true,
      version,
      contentFor: (nodeArch) => serializeSeccomp(renderSeccompForNode(spec, nodeArch)),
    };
  });
}

function parseOnce(obj: ProfileObjectRef, memo: SeccompRenderMemo): Parsed<SeccompProfileSpec> {
  if (!isValidProfileObjectName(obj.name))
    return { ok: false, message: `invalid profile name ${JSON.stringify(obj.name)}` };
  const key = typeof obj.spec === "object" && obj.spec !== null ? obj.spec : undefined;
  const known = key && memo.parsed.get(key);
  if (known?.name === obj.name) return known.result;
  const result = parseSeccompProfileSpec(obj.name, obj.spec);
  if (key) memo.parsed.set(key, { name: obj.name, result });
  return result;
}

/** The parsed specs along a profile's chain as far as resolution looks (undefined: a base not found). */
function specChain(
  name: string,
  specs: ReadonlyMap<string, SeccompProfileSpec>,
): (SeccompProfileSpec | undefined)[] {
  const chain: (SeccompProfileSpec | undefined)[] = [];
  const seen = new Set<string>();
  for (let current: string | undefined = name; current !== undefined && !seen.has(current); ) {
    if (seen.size > MAX_INHERITANCE_DEPTH) break;
    seen.add(current);
    const spec = specs.get(current);
    chain.push(spec);
    current = spec?.baseProfileName === RUNTIME_DEFAULT_PROFILE_NAME ? undefined : spec?.baseProfileName;
  }
  return chain;
}

export function renderAppArmorProfiles(objects: readonly ProfileObjectRef[]): RenderedProfile[] {
  return objects.map((obj): RenderedProfile => {
    const parsed = parseAppArmorProfileSpec(obj.name, obj.spec);
    if (!parsed.ok)
      return { ...common("apparmor", obj), ok: false, reason: "InvalidSpec", message: parsed.message };
    const base = common("apparmor", obj, parsed.value);
    const rendered = renderAppArmorProfile(obj.name, parsed.value);
    if (!rendered.ok) return { ...base, ok: false, reason: INVALID_POLICY, message: rendered.message };
    const text = rendered.text;
    const mode = parsed.value.mode;
    return {
      ...base,
      ok: true,
      version: appArmorProfileVersion(text, mode),
      contentFor: () => text,
      appArmorMode: mode,
    };
  });
}

/** matchLabels semantics, as a pod's `spec.nodeSelector`: every entry must be present and equal. */
export function nodeSelectorMatches(
  selector: NodeSelector | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);
}

/**
 * Whether a profile belongs on a node: not disabled, the node matches its nodeSelector, and for
 * AppArmor the node can load AppArmor at all. Valid or not: an invalid profile that belongs on a node
 * is one the node lacks, with a reason.
 */
export function profileBelongsOnNode(
  profile: Pick<RenderedProfile, "kind" | "disabled" | "nodeSelector">,
  nodeLabels: Readonly<Record<string, string>>,
): boolean {
  if (profile.disabled) return false;
  if (!nodeSelectorMatches(profile.nodeSelector, nodeLabels)) return false;
  return profile.kind === "seccomp" || nodeLabels[APPARMOR_LABEL] === "enabled";
}

/**
 * The controller's view: a node counts towards a profile when its agent is ready and the profile
 * belongs on it; it has the profile when its label carries the current version.
 */
export function nodeCountsForProfile(
  profile: Pick<RenderedProfile, "kind" | "disabled" | "nodeSelector">,
  nodeLabels: Readonly<Record<string, string>>,
): boolean {
  return nodeLabels[AGENT_LABEL] !== undefined && profileBelongsOnNode(profile, nodeLabels);
}
