// Which Lockstep profiles a pod needs. Pure: the webhook calls it on the pod in an AdmissionReview,
// after parsing it with AdmittedPodSchema (only the fields Lockstep reads; a malformed one is refused
// with the field named, never a TypeError).
//
// Seccomp: a Localhost profile whose path the kubelet resolves into Lockstep's directory
// (resolveSeccompLocalhost: `./lockstep/x.json` is `lockstep/x.json`; other localhost paths are someone
// else's and left alone), at pod level and in every container, init container and ephemeral container.
// AppArmor: a Localhost profile named `lockstep.<name>` (appArmorObjectName: the kernel name of the
// AppArmorProfile `name`), through the `appArmorProfile` field (pod and container level) or the legacy
// per-container annotation `localhost/lockstep.<name>`; any other Localhost name is the runtime's or the
// host's and left alone (docs/adr/0027-apparmor-kernel-names.md).
import * as z from "zod";
import { OBJECT_KIND, PROFILE_LABEL_PREFIX, type ProfileKind } from "./constants.ts";
import { appArmorObjectName, isDnsSubdomain, resolveSeccompLocalhost } from "./labels.ts";
import { APPARMOR_KERNEL_NAME_PREFIX } from "./paths.ts";

export const LEGACY_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/";
export const LEGACY_APPARMOR_LOCALHOST = "localhost/";

/** The pod subresource `kubectl debug` adds ephemeral containers through (UPDATE). */
export const EPHEMERAL_CONTAINERS_SUBRESOURCE = "ephemeralcontainers";

/**
 * Lists longer than this are refused (far beyond any real pod: the API server sets no count, but a pod
 * must fit etcd's 1.5 MiB), so the review's work and its patch (every term copied with the requirements)
 * stay bounded whatever a client sends. docs/adr/0032-webhook-bounded-work.md.
 */
export const MAX_POD_CONTAINERS = 1024;
export const MAX_NODE_SELECTOR_TERMS = 256;
export const MAX_TERM_REQUIREMENTS = 256;

/**
 * A list parsed element by element up to the first one that does not parse, whose issues alone are
 * reported: `z.array` reports every bad element, and 600 KB of `[1,1,...]` made 300,000 issues and a
 * 22 MB message (456 MiB resident). With this a malformed pod has at most as many issues as the schema
 * has fields, however long its lists.
 */
export function firstIssueList<T extends z.ZodType>(element: T, max?: number) {
  const list = z.array(z.unknown());
  return (max === undefined ? list : list.max(max, `must have at most ${max} items`)).transform(
    (items, ctx) => {
      const parsed: z.output<T>[] = [];
      for (let i = 0; i < items.length; i++) {
        const result = element.safeParse(items[i]);
        if (!result.success) {
          for (const issue of result.error.issues)
            ctx.addIssue({
              code: "custom",
              message: issue.message,
              path: [i, ...issue.path],
              input: undefined,
            });
          return z.NEVER;
        }
        parsed.push(result.data);
      }
      return parsed;
    },
  );
}

/** Labels or annotations beyond this many are refused (far beyond any real pod). */
export const MAX_POD_MAP_ENTRIES = 1024;

/**
 * A map of strings (labels, annotations), counted before it is read and reported at its first value that
 * is not a string: `z.record` took 460 ms for 49,000 labels of numbers in one 500 KB review.
 */
const StringMapSchema = z
  .custom<Record<string, unknown>>(
    (value) => typeof value === "object" && value !== null && !Array.isArray(value),
    "expected a map of strings",
  )
  .transform((entries, ctx) => {
    const keys = Object.keys(entries);
    if (keys.length > MAX_POD_MAP_ENTRIES) {
      ctx.addIssue({
        code: "custom",
        message: `must have at most ${MAX_POD_MAP_ENTRIES} entries`,
        input: undefined,
      });
      return z.NEVER;
    }
    for (const key of keys)
      if (typeof entries[key] !== "string") {
        ctx.addIssue({
          code: "custom",
          message: `expected a string, got ${typeof entries[key]}`,
          path: [key],
          input: undefined,
        });
        return z.NEVER;
      }
    return entries as Record<string, string>;
  });

const ProfileSettingSchema = z.object({ type: z.string(), localhostProfile: z.string().optional() });
const SecurityContextSchema = z.object({
  seccompProfile: ProfileSettingSchema.optional(),
  appArmorProfile: ProfileSettingSchema.optional(),
});
const ContainerSchema = z.object({
  name: z.string(),
  // Read by ProfileBindings' image globs (binding-match.ts); the API server requires it on a stored pod.
  image: z.string().optional(),
  securityContext: SecurityContextSchema.optional(),
});
const NodeSelectorRequirementSchema = z.object({
  key: z.string(),
  operator: z.string(),
  values: firstIssueList(z.string()).optional(),
});
export const NodeSelectorTermSchema = z.object({
  matchExpressions: firstIssueList(NodeSelectorRequirementSchema, MAX_TERM_REQUIREMENTS).optional(),
  matchFields: firstIssueList(NodeSelectorRequirementSchema, MAX_TERM_REQUIREMENTS).optional(),
});
export type NodeSelectorTerm = z.infer<typeof NodeSelectorTermSchema>;

/** The parts of a Pod Lockstep reads; everything else passes through the webhook untouched. */
export const AdmittedPodSchema = z.object({
  metadata: z
    .object({
      name: z.string().optional(),
      generateName: z.string().optional(),
      namespace: z.string().optional(),
      labels: StringMapSchema.optional(),
      annotations: StringMapSchema.optional(),
    })
    .optional(),
  spec: z.object({
    // Looked up as a Node when set: it must be a name a Node can have.
    nodeName: z
      .string()
      .refine((name) => name === "" || isDnsSubdomain(name), "must be a Node name (an RFC 1123 subdomain)")
      .optional(),
    securityContext: SecurityContextSchema.optional(),
    containers: firstIssueList(ContainerSchema, MAX_POD_CONTAINERS),
    initContainers: firstIssueList(ContainerSchema, MAX_POD_CONTAINERS).optional(),
    ephemeralContainers: firstIssueList(ContainerSchema, MAX_POD_CONTAINERS).optional(),
    affinity: z
      .object({
        nodeAffinity: z
          .object({
            requiredDuringSchedulingIgnoredDuringExecution: z
              .object({
                nodeSelectorTerms: firstIssueList(NodeSelectorTermSchema, MAX_NODE_SELECTOR_TERMS).optional(),
              })
              .optional(),
          })
          .optional(),
      })
      .optional(),
  }),
  status: z.object({ phase: z.string().optional() }).optional(),
});
export type AdmittedPod = z.infer<typeof AdmittedPodSchema>;

type SecurityContext = z.infer<typeof SecurityContextSchema>;

/** Where in the pod a profile setting is. */
export interface SettingSite {
  /** The container that carries it; undefined for a pod-level setting (every container inherits it). */
  container: string | undefined;
  /** Which list the container is in; "pod" for pod-level settings and annotations. */
  group: "pod" | "initContainers" | "containers" | "ephemeralContainers";
  /** The field path, for messages: `spec.containers[0].securityContext.seccompProfile.localhostProfile`. */
  field: string;
}

/** A Lockstep profile the pod needs. */
export interface ProfileReference extends SettingSite {
  kind: ProfileKind;
  name: string;
}

/** A setting that points into Lockstep's directory (or is refused outright) but names no profile. */
export interface InvalidProfileSetting extends SettingSite {
  message: string;
}

export interface PodProfileSettings {
  references: ProfileReference[];
  invalid: InvalidProfileSetting[];
}

function fromSecurityContext(ctx: SecurityContext | undefined, site: SettingSite, out: PodProfileSettings) {
  const seccomp = ctx?.seccompProfile;
  if (seccomp?.type === "Localhost" && seccomp.localhostProfile !== undefined) {
    const field = `${site.field}.seccompProfile.localhostProfile`;
    const path = seccomp.localhostProfile;
    const target = resolveSeccompLocalhost(path);
    const at = { ...site, field };
    if (target.kind === "profile") out.references.push({ ...at, kind: "seccomp", name: target.name });
    else if (target.kind === "refused")
      out.invalid.push({
        ...at,
        message: `${JSON.stringify(path)} ${target.reason} (the kubelet resolves it against its seccomp root)`,
      });
    else if (target.kind === "not-a-profile-file")
      out.invalid.push({
        ...at,
        message: `${JSON.stringify(path)} is the file ${JSON.stringify(target.cleaned)} in Lockstep's directory, which no ${OBJECT_KIND.seccomp} has: write lockstep/<name>.json`,
      });
  }
  const appArmor = ctx?.appArmorProfile;
  if (appArmor?.type === "Localhost" && appArmor.localhostProfile !== undefined)
    fromAppArmorName(
      appArmor.localhostProfile,
      { ...site, field: `${site.field}.appArmorProfile.localhostProfile` },
      out,
    );
}

/**
 * A Localhost AppArmor name: Lockstep's when it carries the kernel-name prefix, then it must name an
 * object (`lockstep.Web` never can: no AppArmorProfile has that name, and no node loads it).
 */
function fromAppArmorName(kernelName: string, at: SettingSite, out: PodProfileSettings): void {
  if (!isLockstepAppArmorName(kernelName)) return;
  const name = appArmorObjectName(kernelName);
  if (name !== undefined) out.references.push({ ...at, kind: "apparmor", name });
  else
    out.invalid.push({
      ...at,
      message: `${JSON.stringify(kernelName)} names no ${OBJECT_KIND.apparmor}: after "${APPARMOR_KERNEL_NAME_PREFIX}" must come the object's name (lower-case letters, digits, "-" and ".")`,
    });
}

/** Whether a Localhost AppArmor name is in Lockstep's name space (the webhook's matchCondition tests the same). */
export function isLockstepAppArmorName(kernelName: string): boolean {
  return kernelName.startsWith(APPARMOR_KERNEL_NAME_PREFIX);
}

/** Every Lockstep profile setting in the pod, in the order a reader of the pod meets them. */
export function podProfileSettings(pod: AdmittedPod): PodProfileSettings {
  const out: PodProfileSettings = { references: [], invalid: [] };
  const spec = pod.spec;
  fromSecurityContext(
    spec.securityContext,
    { container: undefined, group: "pod", field: "spec.securityContext" },
    out,
  );
  for (const group of ["initContainers", "containers", "ephemeralContainers"] as const)
    (spec[group] ?? []).forEach((c, i) => {
      fromSecurityContext(
        c.securityContext,
        { container: c.name, group, field: `spec.${group}[${i}].securityContext` },
        out,
      );
    });
  for (const [key, value] of Object.entries(pod.metadata?.annotations ?? {})) {
    if (!key.startsWith(LEGACY_APPARMOR_ANNOTATION_PREFIX) || !value.startsWith(LEGACY_APPARMOR_LOCALHOST))
      continue;
    fromAppArmorName(
      value.slice(LEGACY_APPARMOR_LOCALHOST.length),
      {
        container: key.slice(LEGACY_APPARMOR_ANNOTATION_PREFIX.length),
        group: "pod",
        field: `metadata.annotations["${key}"]`,
      },
      out,
    );
  }
  return out;
}

/** The distinct profiles among the references, each once. */
export function distinctProfiles(refs: readonly ProfileReference[]): { kind: ProfileKind; name: string }[] {
  const seen = new Map<string, { kind: ProfileKind; name: string }>();
  for (const { kind, name } of refs) seen.set(`${kind}/${name}`, { kind, name });
  return [...seen.values()];
}

/** How a setting reads in a message: `container "web"` or `the pod`. */
export function describeReferrer(site: SettingSite): string {
  return site.container === undefined ? "the pod" : `container ${JSON.stringify(site.container)}`;
}

/**
 * Whether a pod label key is one the webhook owns: the in-use labels the controller selects pods by.
 * The webhook sets exactly these on CREATE and a ValidatingAdmissionPolicy keeps them as they are.
 */
export function isPodInUseLabelKey(key: string): boolean {
  return Object.values(PROFILE_LABEL_PREFIX).some((prefix) => key.startsWith(prefix));
}
