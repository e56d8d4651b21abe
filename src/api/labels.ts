// Label names and values shared by the agent (which writes node labels), the controller (which reads
// them to derive status) and the webhook (which writes pod labels and affinity). All three must
// compute exactly the same strings, so this module is the only place they are made.

import { createHash } from "node:crypto";
import {
  AGENT_LABEL,
  APPARMOR_LABEL,
  PROFILE_KINDS,
  PROFILE_LABEL_PREFIX,
  type ProfileKind,
  SECCOMP_LOCALHOST_DIR,
} from "./constants.ts";

/** The name part of a label key (k8s.io/apimachinery validation.IsQualifiedName). */
const LABEL_NAME_PART = /^[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/;
const LABEL_NAME_MAX = 63;

/** A label value (validation.IsValidLabelValue); empty is allowed. */
const LABEL_VALUE = /^([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)?$/;

/** metadata.name of a cluster-scoped custom resource: an RFC 1123 DNS subdomain. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_SUBDOMAIN_MAX = 253;

const HASH_HEX_LENGTH = 12;

// A shortened label name always ends in "_" + 12 hex digits. Object names cannot contain "_", and a
// name that happens to look like this is shortened too, so a name kept verbatim can never equal a
// shortened one: the mapping is injective up to a 48-bit hash collision.
const SHORTENED_SUFFIX = /_[0-9a-f]{12}$/;
const SHORTENED_STEM_MAX = LABEL_NAME_MAX - 1 - HASH_HEX_LENGTH;

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

export function isValidLabelNamePart(name: string): boolean {
  return name.length <= LABEL_NAME_MAX && LABEL_NAME_PART.test(name);
}

export function isValidLabelValue(value: string): boolean {
  return value.length <= LABEL_NAME_MAX && LABEL_VALUE.test(value);
}

/** Whether `name` is a valid metadata.name for a Lockstep profile object. */
export function isValidProfileObjectName(name: string): boolean {
  return name.length <= DNS_SUBDOMAIN_MAX && DNS_SUBDOMAIN.test(name);
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
  const stem = name
    .slice(0, SHORTENED_STEM_MAX)
    .replace(/[^-a-zA-Z0-9_.]/g, "-")
    .replace(/^[^a-zA-Z0-9]+/, "");
  return stem === "" ? "p" : stem;
}

export function profileLabelKey(kind: ProfileKind, name: string): string {
  return PROFILE_LABEL_PREFIX[kind] + profileLabelName(name);
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
 * Whether a label key belongs to Lockstep. The agent may change only these keys on its Node
 * (DESIGN invariant 5), and it removes profile keys it no longer backs with a file or a loaded profile.
 */
export function isLockstepLabelKey(key: string): boolean {
  return key === AGENT_LABEL || key === APPARMOR_LABEL || parseProfileLabelKey(key) !== undefined;
}

/**
 * The version label value for a rendered profile: a short hash of its node-independent content.
 * Agent and controller both compare against it to decide whether a node holds the current profile.
 */
export function profileVersion(content: string): string {
  return sha256Hex(content).slice(0, HASH_HEX_LENGTH);
}

/** What a pod writes in `securityContext.{seccomp,appArmor}Profile.localhostProfile`. */
export function localhostProfileFor(kind: ProfileKind, name: string): string {
  return kind === "seccomp" ? `${SECCOMP_LOCALHOST_DIR}/${name}.json` : name;
}

/**
 * The SeccompProfile a pod's `localhostProfile` refers to, or undefined when the path is not one
 * Lockstep writes. Strict on purpose: the kubelet joins this path onto its seccomp root, so anything
 * with extra slashes or `..` names some other file and is none of Lockstep's business.
 */
export function profileNameFromSeccompLocalhost(localhostProfile: string): string | undefined {
  const prefix = `${SECCOMP_LOCALHOST_DIR}/`;
  const suffix = ".json";
  if (!localhostProfile.startsWith(prefix) || !localhostProfile.endsWith(suffix)) return undefined;
  const name = localhostProfile.slice(prefix.length, localhostProfile.length - suffix.length);
  return isValidProfileObjectName(name) ? name : undefined;
}
