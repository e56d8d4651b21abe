// Names every part of Lockstep agrees on. They are part of the contract in DESIGN.md: changing one
// is a breaking change for nodes and pods already labelled, so they live in exactly one place.

export const GROUP = "lockstep.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}` as const;

export const SECCOMP_PROFILE_KIND = "SeccompProfile";
export const APPARMOR_PROFILE_KIND = "AppArmorProfile";
export const SECCOMP_PROFILE_PLURAL = "seccompprofiles";
export const APPARMOR_PROFILE_PLURAL = "apparmorprofiles";

/** Which of the two profile types a label, a pod reference or a rendered file belongs to. */
export type ProfileKind = "seccomp" | "apparmor";
export const PROFILE_KINDS: readonly ProfileKind[] = ["seccomp", "apparmor"];

/** The object kind (as written in `kind:`) for each profile kind. */
export const OBJECT_KIND: Readonly<Record<ProfileKind, string>> = {
  seccomp: SECCOMP_PROFILE_KIND,
  apparmor: APPARMOR_PROFILE_KIND,
};

/** The resource (as in `kubectl get seccompprofiles` and the API path) for each profile kind. */
export const OBJECT_PLURAL: Readonly<Record<ProfileKind, string>> = {
  seccomp: SECCOMP_PROFILE_PLURAL,
  apparmor: APPARMOR_PROFILE_PLURAL,
};

/**
 * Where Events about profiles are recorded: profiles are cluster-scoped, and `kubectl describe` looks
 * for their Events in `default`, as it does for Nodes.
 */
export const PROFILE_EVENTS_NAMESPACE = "default";

/** The API path of a profile kind's collection, or of one profile in it. */
export function profilePath(kind: ProfileKind, name?: string): string {
  const collection = `/apis/${GROUP}/${VERSION}/${OBJECT_PLURAL[kind]}`;
  return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
}

// A label key is `<prefix>/<name>`; the prefix is a DNS subdomain. One prefix per profile kind keeps
// the two namespaces apart: a seccomp and an AppArmor profile may share a name. These keys are the
// pods' in-use labels; no agent writes them on a Node (ADR 0024), and nothing reads them there.
export const SECCOMP_LABEL_PREFIX = `seccomp.${GROUP}/`;
export const APPARMOR_LABEL_PREFIX = `apparmor.${GROUP}/`;
export const PROFILE_LABEL_PREFIX: Readonly<Record<ProfileKind, string>> = {
  seccomp: SECCOMP_LABEL_PREFIX,
  apparmor: APPARMOR_LABEL_PREFIX,
};

/**
 * Set by the agent on its Node, one per profile kind: the profile revision up to which this node has
 * caught up. Every profile of that kind whose rendering's revision (renderingRevision in node-profiles.ts) is at most
 * this number and that belongs on the node is installed here at that version or a newer one, or the
 * node carries its failure label. A decimal integer, so the scheduler can compare it (`Gt`).
 * See docs/adr/0024-node-labels-that-scale.md.
 */
export const SYNCED_REVISION_LABEL: Readonly<Record<ProfileKind, string>> = {
  seccomp: `${GROUP}/seccomp-revision`,
  apparmor: `${GROUP}/apparmor-revision`,
};

/**
 * Set by the agent on its Node only for a profile that belongs there but is not installed at its
 * current version (invalid, refused, name taken, write or load failed): `<prefix><label-name>`.
 * Apart from the in-use pod labels' prefixes, so an older webhook's `Exists` on
 * `seccomp.lockstep.dev/<name>` can never take a failure for an installation.
 */
export const FAILED_LABEL_PREFIX: Readonly<Record<ProfileKind, string>> = {
  seccomp: `failed.seccomp.${GROUP}/`,
  apparmor: `failed.apparmor.${GROUP}/`,
};

/**
 * Set by the agent on its Node, `<prefix><label-name of K>: <value>`, for each label key K some
 * profile's nodeSelector names: the node's value of K when the agent last synced. A pod requires it
 * next to K itself, so a node relabelled into a profile's nodeSelector takes no pod that needs that
 * profile until its agent has installed it (the revision alone was reached before the relabel).
 */
export const SELECTOR_SYNCED_PREFIX = `selector.${GROUP}/`;

/** Set by the agent on its Node once it is ready; the value is the agent's version. */
export const AGENT_LABEL = `${GROUP}/agent`;

/** Set by the agent on its Node: whether the kernel can load AppArmor profiles at all. */
export const APPARMOR_LABEL = `${GROUP}/apparmor`;
export const APPARMOR_LABEL_VALUES = ["enabled", "unavailable"] as const;
export type AppArmorLabelValue = (typeof APPARMOR_LABEL_VALUES)[number];

/** Keeps a profile object (and so its files on nodes) alive while a pod still uses it. */
export const IN_USE_FINALIZER = `${GROUP}/in-use-protection`;

/** The built-in base profile name a SeccompProfile may inherit from (containerd's default). */
export const RUNTIME_DEFAULT_PROFILE_NAME = "runtime/default";

// --- how Lockstep is installed: names the manifests (src/manifests/) and the running parts share ----------
// Runtime values live here, so the running webhook does not load the YAML generator.

export const LOCKSTEP_NAMESPACE = "lockstep-system";
/** The webhook server's one route for AdmissionReviews, whichever address the API server reaches it at. */
export const WEBHOOK_PATH = "/mutate";
export const WEBHOOK_CONFIGURATION_NAME = "lockstep-webhook";
/**
 * How long the API server waits for the webhook's answer (timeoutSeconds; the API server allows at most
 * 30). A request the webhook has not fully received by then is answered to nobody, so the webhook's
 * server cuts it off at that age (server.ts).
 */
export const WEBHOOK_TIMEOUT_SECONDS = 5;
/** The Secret the webhook keeps its CA and serving certificate in (--secret; deploy/webhook/rbac.yaml). */
export const WEBHOOK_TLS_SECRET = "lockstep-webhook-tls";
export const SERVICE_ACCOUNTS = {
  agent: "lockstep-agent",
  controller: "lockstep-controller",
  webhook: "lockstep-webhook",
} as const;

/** The username the API server gives a service account's tokens. */
export function serviceAccountUser(account: keyof typeof SERVICE_ACCOUNTS): string {
  return `system:serviceaccount:${LOCKSTEP_NAMESPACE}:${SERVICE_ACCOUNTS[account]}`;
}

/**
 * Marks a SeccompProfile as a ProfileRecording's recorder (value `<namespace>/<recording>`), and a pod as
 * recorded by one (value `<recording>`, the pod's own namespace). The agent reports calls only for pods
 * carrying it whose recorder profile is live; the controller creates and deletes only profiles carrying
 * it (docs/adr/0039-profile-recording.md).
 */
export const RECORDING_ANNOTATION = `${GROUP}/recording`;
