// Label names and values shared by the agent (which writes node labels), the controller (which reads
// them to derive status) and the webhook (which writes pod labels and affinity). All three must
// compute exactly the same strings, so this module is the only place they are made.

import { createHash } from "node:crypto";
import {
  AGENT_LABEL,
  APPARMOR_LABEL,
  FAILED_LABEL_PREFIX,
  PROFILE_KINDS,
  PROFILE_LABEL_PREFIX,
  type ProfileKind,
  SELECTOR_SYNCED_PREFIX,
  SYNCED_REVISION_LABEL,
} from "./constants.ts";
import {
  APPARMOR_KERNEL_NAME_PREFIX,
  SECCOMP_FILE_SUFFIX,
  SECCOMP_LOCALHOST_DIR,
  seccompLocalhostProfile,
} from "./paths.ts";
import {
  DNS_SUBDOMAIN,
  DNS_SUBDOMAIN_MAX,
  inCelString,
  LABEL_NAME,
  LABEL_NAME_MAX,
  LABEL_NAME_PATTERN,
  LABEL_VALUE,
} from "./patterns.ts";

/** The name part of a label key (k8s.io/apimachinery validation.IsQualifiedName). */

const HASH_HEX_LENGTH = 12;

// A shortened label name always ends in "_" + 12 hex digits. Object names cannot contain "_", and a
// name that happens to look like this is shortened too, so a name kept verbatim can never equal a
// shortened one: the mapping is injective up to a 48-bit hash collision.
const SHORTENED_SUFFIX_PATTERN = `_[0-9a-f]{${HASH_HEX_LENGTH}}$`;
const SHORTENED_SUFFIX = new RegExp(SHORTENED_SUFFIX_PATTERN);
const SHORTENED_STEM_MAX = LABEL_NAME_MAX - 1 - HASH_HEX_LENGTH;

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

export function isValidLabelNamePart(name: string): boolean {
  return name.length <= LABEL_NAME_MAX && LABEL_NAME.test(name);
}

export function isValidLabelValue(value: string): boolean {
  return value.length <= LABEL_NAME_MAX && LABEL_VALUE.test(value);
}

/** Whether `name` is an RFC 1123 DNS subdomain: what metadata.name of a Node or a profile must be. */
export function isDnsSubdomain(name: string): boolean {
  return name.length <= DNS_SUBDOMAIN_MAX && DNS_SUBDOMAIN.test(name);
}

/** Whether `name` is a valid metadata.name for a Lockstep profile object. */
export function isValidProfileObjectName(name: string): boolean {
  return isDnsSubdomain(name);
}

/**
 * The `<label-name>` of a profile: its name when that is a valid label name part, otherwise a
 * readable stem of the name plus a hash of the whole name. Object names may be 253 characters long
 * while a label name part allows 63, hence the shortening.
 */
export function profileLabelName(name: string): string {
  if (isValidLabelNamePart(name) && !SHORTENED_SUFFIX.test(name)) return name;
  const hash = sha256Hex(name).slice(0, HASH_HEX_LENGTH);
  return `${labelStem(name)}_${hash}`;
}

// The stem only helps a human reading `kubectl get node --show-labels`; the hash carries identity.
// It must start with an alphanumeric character; the hash supplies the required alphanumeric end.
function labelStem(name: string): string {
  // profileLabelKeyCel below assumes what this gives for a profile object's name (a DNS subdomain):
  // its first SHORTENED_STEM_MAX characters, unchanged.
  const stem = name
    .slice(0, SHORTENED_STEM_MAX)
    .replace(/[^-a-zA-Z0-9_.]/g, "-")
    .replace(/^[^a-zA-Z0-9]+/, "");
  return stem === "" ? "p" : stem;
}

/**
 * CEL (of a string): what profileLabelName gives for the name `name` (a CEL expression), as far as CEL
 * can say it: CEL has no SHA-256, so a name profileLabelName shortens gives its stem and the `_` that
 * precedes the hash (no label name ends in `_`, so the two cannot be confused). The stem is exact for a
 * profile object's name (a DNS subdomain, which labelStem keeps as it is); another name has no profile.
 * profileLabelKeyIsCel compares a key with it.
 */
export function profileLabelNameCel(name: string): string {
  const verbatim = `size(${name}) <= ${LABEL_NAME_MAX} && ${name}.matches('${inCelString(LABEL_NAME_PATTERN)}') && !${name}.matches('${SHORTENED_SUFFIX_PATTERN}')`;
  const stem = `(size(${name}) > ${SHORTENED_STEM_MAX} ? ${name}.substring(0, ${SHORTENED_STEM_MAX}) : ${name})`;
  return `(${verbatim} ? ${name} : ${stem} + '_')`;
}

/**
 * CEL (of a bool): the map `labels` has the key `prefix` + the label name profileLabelNameCel gave
 * (`labelName`): that key exactly, or, for a shortened name, a key with its stem, `_` and 12 hex digits.
 */
export function hasProfileLabelKeyCel(labels: string, prefix: string, labelName: string): string {
  if (/['\\]/.test(prefix)) throw new Error(`cannot quote ${prefix} for CEL`);
  return (
    `(!${labelName}.endsWith('_') ? ('${prefix}' + ${labelName}) in ${labels} : ${labels}.exists(k, ` +
    `k.startsWith('${prefix}' + ${labelName}) && size(k) == ${prefix.length + HASH_HEX_LENGTH} + size(${labelName}) && ` +
    `k.matches('${SHORTENED_SUFFIX_PATTERN}')))`
  );
}

export function profileLabelKey(kind: ProfileKind, name: string): string {
  return PROFILE_LABEL_PREFIX[kind] + profileLabelName(name);
}

/** The Node label that says a profile failed on that node (set only then). */
export function failedLabelKey(kind: ProfileKind, name: string): string {
  return FAILED_LABEL_PREFIX[kind] + profileLabelName(name);
}

/** The Node label that records the value a nodeSelector key had when the agent last synced. */
export function selectorSyncedLabelKey(selectorKey: string): string {
  return SELECTOR_SYNCED_PREFIX + profileLabelName(selectorKey);
}

export interface ParsedProfileLabelKey {
  kind: ProfileKind;
  labelName: string;
}

/** The inverse of profileLabelKey up to the label name (a shortened name cannot be expanded). */
export function parseProfileLabelKey(key: string): ParsedProfileLabelKey | undefined {
  for (const kind of PROFILE_KINDS) {
    const prefix = PROFILE_LABEL_PREFIX[kind];
    if (!key.startsWith(prefix)) continue;
    const labelName = key.slice(prefix.length);
    return isValidLabelNamePart(labelName) ? { kind, labelName } : undefined;
  }
  return undefined;
}

/**
 * The Node label keys the agent sets, whole: its presence and capability labels and the revision label
 * of each kind (ADR 0024). With AGENT_NODE_LABEL_PREFIXES, the only keys its admission policy lets it
 * change on its own Node (DESIGN invariant 5, src/manifests/admission.ts).
 */
export const AGENT_NODE_LABEL_KEYS: readonly string[] = [
  AGENT_LABEL,
  APPARMOR_LABEL,
  ...Object.values(SYNCED_REVISION_LABEL),
];

/** The prefixes of the Node label keys the agent sets per profile (failures) and per nodeSelector key. */
export const AGENT_NODE_LABEL_PREFIXES: readonly string[] = [
  ...Object.values(FAILED_LABEL_PREFIX),
  SELECTOR_SYNCED_PREFIX,
];

/**
 * Whether a label key on a Node is one the agent sets (DESIGN invariant 5): it removes every such key it
 * does not set now. The pods' in-use prefixes are not among them: no released agent wrote those on a
 * Node (ADR 0024, ADR 0034), and the agent may not touch them there.
 */
export function isLockstepLabelKey(key: string): boolean {
  return (
    AGENT_NODE_LABEL_KEYS.includes(key) ||
    AGENT_NODE_LABEL_PREFIXES.some(
      (prefix) => key.startsWith(prefix) && isValidLabelNamePart(key.slice(prefix.length)),
    )
  );
}

/**
 * The version label value for a rendered profile: a short hash of its node-independent content.
 * Agent and controller both compare against it to decide whether a node holds the current profile.
 */
export function profileVersion(content: string): string {
  return sha256Hex(content).slice(0, HASH_HEX_LENGTH);
}

/**
 * The kernel's name for the AppArmorProfile `name`: what the policy text declares, what the agent loads
 * and unloads and finds in the kernel's list, and what a pod names in `localhostProfile`.
 */
export function appArmorKernelName(name: string): string {
  return `${APPARMOR_KERNEL_NAME_PREFIX}${name}`;
}

/**
 * The AppArmorProfile a kernel (or pod's Localhost) AppArmor name belongs to, or undefined for a name
 * that is not Lockstep's: one without the prefix (the runtime's, the host's), or with the prefix but
 * no valid object name after it (which no AppArmorProfile can have).
 */
export function appArmorObjectName(kernelName: string): string | undefined {
  if (!kernelName.startsWith(APPARMOR_KERNEL_NAME_PREFIX)) return undefined;
  const name = kernelName.slice(APPARMOR_KERNEL_NAME_PREFIX.length);
  return isValidProfileObjectName(name) ? name : undefined;
}

/** What a pod writes in `securityContext.{seccomp,appArmor}Profile.localhostProfile`. */
export function localhostProfileFor(kind: ProfileKind, name: string): string {
  return kind === "seccomp" ? seccompLocalhostProfile(name) : appArmorKernelName(name);
}

/** Go's path.Clean (filepath.Clean on Linux): the lexical cleaning the kubelet's filepath.Join applies. */
export function cleanPath(path: string): string {
  const rooted = path.startsWith("/");
  const out: string[] = [];
  for (const element of path.split("/")) {
    if (element === "" || element === ".") continue;
    if (element === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      // Above the root there is nothing to climb to; a relative path keeps its leading "..".
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(element);
  }
  const joined = out.join("/");
  return rooted ? `/${joined}` : joined || ".";
}

/**
 * Why the API server refuses a `localhostProfile` (k8s.io/kubernetes pkg/apis/core/validation
 * validateLocalDescendingPath): an absolute path or a `..` element. Undefined when it accepts it.
 */
export function refusedLocalhostPath(localhostProfile: string): string | undefined {
  if (localhostProfile.startsWith("/")) return "must be a relative path";
  if (localhostProfile.split("/").includes("..")) return "must not contain '..'";
  return undefined;
}

/** What a pod's seccomp `localhostProfile` names, as far as Lockstep is concerned. */
export type SeccompLocalhostTarget =
  /** A file outside Lockstep's directory: someone else's profile, left alone. */
  | { kind: "elsewhere" }
  /** `<seccomp root>/lockstep/<name>.json`: the SeccompProfile `name`. */
  | { kind: "profile"; name: string }
  /** Inside Lockstep's directory but no file Lockstep writes (`lockstep/sub/x.json`, `lockstep/X.json`). */
  | { kind: "not-a-profile-file"; cleaned: string }
  /** A path the API server refuses (absolute, `..`); `reason` is its wording. */
  | { kind: "refused"; reason: string };

/**
 * Resolves a `localhostProfile` exactly as the kubelet does: it opens
 * `filepath.Join(<kubelet-root>/seccomp, localhostProfile)` (pkg/kubelet/kuberuntime/helpers.go,
 * fieldProfile), so every spelling that cleans to `lockstep/<name>.json` (`./lockstep/x.json`,
 * `lockstep//x.json`, `lockstep/./x.json`, `lockstep/x.json/`) loads the file the agent wrote for `name`.
 * Paths with `..` or a leading `/` are refused by the API server's validation; since mutating
 * webhooks run before it, they are reported here too rather than passed through.
 */
export function resolveSeccompLocalhost(localhostProfile: string): SeccompLocalhostTarget {
  const reason = refusedLocalhostPath(localhostProfile);
  if (reason !== undefined) return { kind: "refused", reason };
  // Without ".." or a leading "/", Join(root, p) is root + "/" + Clean(p): the root does not matter.
  const cleaned = cleanPath(localhostProfile);
  const dir = `${SECCOMP_LOCALHOST_DIR}/`;
  if (cleaned !== SECCOMP_LOCALHOST_DIR && !cleaned.startsWith(dir)) return { kind: "elsewhere" };
  const file = cleaned.slice(dir.length);
  const name = file.endsWith(SECCOMP_FILE_SUFFIX) ? file.slice(0, -SECCOMP_FILE_SUFFIX.length) : "";
  return isValidProfileObjectName(name) ? { kind: "profile", name } : { kind: "not-a-profile-file", cleaned };
}

/**
 * A CEL-compatible (RE2) pattern for the `localhostProfile` spellings that name something in
 * Lockstep's directory or that the API server refuses: the matchConditions' counterpart of
 * resolveSeccompLocalhost (its kind is anything but "elsewhere" exactly when this matches; a
 * property test holds the two together).
 */
export function seccompLocalhostPattern(): string {
  const dir = SECCOMP_LOCALHOST_DIR.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  // Leading "./" elements (with any run of slashes), then the directory as a whole element; or an
  // absolute path; or a ".." element anywhere.
  return `^(\\./+)*${dir}(/|$)|^/|(^|/)\\.\\.(/|$)`;
}
