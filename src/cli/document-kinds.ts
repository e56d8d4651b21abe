// What a document read by the CLI is, before any schema is applied: a Lockstep profile of either kind,
// plain OCI seccomp JSON, a profile in another tool's format (Docker, podman, the SIG's
// security-profiles-operator) that `lockstep import` reads, or something that is not a profile at all.
// Pure, so every command tells the user the same thing about the same document.
import { API_VERSION, APPARMOR_PROFILE_KIND, GROUP, SECCOMP_PROFILE_KIND } from "../api/constants.ts";
import { ENGINE_ONLY_PROFILE_FIELDS, ENGINE_ONLY_RULE_FIELDS } from "../api/seccomp.ts";

/** The API group of the Kubernetes SIG's security-profiles-operator (SPO). */
export const SPO_GROUP = "security-profiles-operator.x-k8s.io";
/** SPO's kinds `lockstep import` reads. */
export const SPO_IMPORTED_KINDS = [SECCOMP_PROFILE_KIND, APPARMOR_PROFILE_KIND] as const;

export type DocumentKind =
  | { type: "seccomp-profile" }
  | { type: "apparmor-profile" }
  | { type: "oci-seccomp" }
  /** A profile in another tool's format: `lockstep import` turns it into Lockstep objects. */
  | { type: "foreign-profile"; message: string }
  /** Not a profile: left alone by commands that search many files. */
  | { type: "not-a-profile"; message: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether a document carries Docker's or podman's own fields (archMap, a rule's name/includes/...). */
export function hasEngineFields(value: Record<string, unknown>): boolean {
  if (Object.keys(ENGINE_ONLY_PROFILE_FIELDS).some((field) => Object.hasOwn(value, field))) return true;
  const rules = Array.isArray(value.syscalls) ? value.syscalls : [];
  return rules.some(
    (rule) =>
      isObject(rule) && Object.keys(ENGINE_ONLY_RULE_FIELDS).some((field) => Object.hasOwn(rule, field)),
  );
}

/** The message for an SPO object: what it is and the command that carries it over. */
export function spoMessage(kind: string, apiVersion: string): string {
  return (SPO_IMPORTED_KINDS as readonly string[]).includes(kind)
    ? `this is a security-profiles-operator ${kind} (${apiVersion}): run \`lockstep import FILE\` to turn it into a Lockstep ${kind} (docs/migrating-from-spo.md)`
    : `a security-profiles-operator ${kind} (${apiVersion}): Lockstep has no ${kind}; docs/migrating-from-spo.md says what takes its place`;
}

export const ENGINE_PROFILE_MESSAGE =
  "a Docker or podman seccomp profile (it has their own fields: archMap, includes, excludes, or a rule's old single `name`): run `lockstep import FILE`, which resolves it as that engine would";

export function classifyDocument(value: unknown): DocumentKind {
  if (!isObject(value))
    return {
      type: "not-a-profile",
      message: `${Array.isArray(value) ? "a list" : `a ${typeof value}`}, not a profile`,
    };
  const { kind, apiVersion } = value;
  if (typeof kind === "string" || typeof apiVersion === "string") {
    const kindText = typeof kind === "string" ? kind : "object without a kind";
    const version = typeof apiVersion === "string" ? apiVersion : "";
    if (version.startsWith(`${SPO_GROUP}/`))
      return { type: "foreign-profile", message: spoMessage(kindText, version) };
    const lockstepKind = kind === SECCOMP_PROFILE_KIND || kind === APPARMOR_PROFILE_KIND;
    if (lockstepKind && version === API_VERSION)
      return { type: kind === SECCOMP_PROFILE_KIND ? "seccomp-profile" : "apparmor-profile" };
    if (lockstepKind && version.startsWith(`${GROUP}/`))
      return {
        type: "foreign-profile",
        message: `apiVersion ${version}: this Lockstep serves ${API_VERSION}; write apiVersion: ${API_VERSION}`,
      };
    if (lockstepKind)
      return {
        type: "foreign-profile",
        message: `a ${kind} of apiVersion ${JSON.stringify(version)}, not Lockstep's (${API_VERSION}); if it is another tool's, \`lockstep import\` reads Docker, podman and security-profiles-operator profiles`,
      };
    return {
      type: "not-a-profile",
      message: `a ${kindText}${version === "" ? "" : ` (${version})`} is not a profile`,
    };
  }
  if (hasEngineFields(value)) return { type: "foreign-profile", message: ENGINE_PROFILE_MESSAGE };
  if (Object.hasOwn(value, "defaultAction") || Object.hasOwn(value, "syscalls"))
    return { type: "oci-seccomp" };
  return {
    type: "not-a-profile",
    message: "no kind and no defaultAction or syscalls: neither a profile object nor OCI seccomp JSON",
  };
}
