// The Kubernetes SIG's security-profiles-operator (SPO) SeccompProfile and AppArmorProfile objects
// (group security-profiles-operator.x-k8s.io; v1alpha1, v1beta1 and v1 as its CRDs define them,
// api/seccompprofile/*/seccompprofile_types.go and api/apparmorprofile/*/apparmorprofile_types.go in
// kubernetes-sigs/security-profiles-operator) as Lockstep objects, with a note for everything that does
// not carry over. Pure: `lockstep import` (src/cli/import-command.ts) reads the files and prints.
// Every object produced is checked against the schemas the cluster's parts parse with before it is
// returned, so what is printed is what the API server and the agent accept.
import * as z from "zod";
import { PROFILE_PATH_PATTERN, parseAppArmorProfile } from "../../api/apparmor.ts";
import { API_VERSION, APPARMOR_PROFILE_KIND, SECCOMP_PROFILE_KIND } from "../../api/constants.ts";
import { appArmorKernelName, isValidProfileObjectName } from "../../api/labels.ts";
import { renderAppArmorProfiles } from "../../api/profiles.ts";
import { parseSeccompProfile, type SeccompSyscall } from "../../api/seccomp.ts";
import { isKnownSyscall } from "../../api/syscalls.ts";
import { SPO_GROUP } from "../document-kinds.ts";

/** Where SPO's agent writes a seccomp profile under the kubelet's seccomp root, as pods reference it. */
export function spoLocalhostProfile(namespace: string | undefined, name: string): string {
  const file = name.endsWith(".json") ? name : `${name}.json`;
  return namespace === undefined ? `operator/${file}` : `operator/${namespace}/${file}`;
}

/** Where Lockstep's agent writes it (DESIGN: `<kubelet-root>/seccomp/lockstep/<name>.json`). */
export function lockstepLocalhostProfile(name: string): string {
  return `lockstep/${name}.json`;
}

const MetadataSchema = z.looseObject({
  name: z.string().min(1),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const SpoObjectSchema = z.looseObject({
  apiVersion: z.string().startsWith(`${SPO_GROUP}/`),
  kind: z.string(),
  metadata: MetadataSchema,
  spec: z.record(z.string(), z.unknown()).optional(),
});
type SpoObject = z.infer<typeof SpoObjectSchema>;

/** What one SPO object became: the Lockstep object (or none) and what did not carry over. */
export interface SpoImport {
  /** `SeccompProfile "web"` (with the namespace when it had one), for messages. */
  source: string;
  object?: Record<string, unknown>;
  /** Things the object had that the Lockstep object does not, or does differently. */
  notes: string[];
  /** Why no object could be made (the object is then undefined). */
  error?: string;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function withoutEmpty<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(
    Object.entries(value).filter(
      ([, field]) =>
        field !== undefined &&
        !(Array.isArray(field) && field.length === 0) &&
        !(
          typeof field === "object" &&
          field !== null &&
          !Array.isArray(field) &&
          Object.keys(field).length === 0
        ),
    ),
  ) as T;
}

/** The labels and annotations a Lockstep object keeps: the user's, not SPO's own bookkeeping. */
function carriedMetadata(spo: SpoObject, name: string) {
  const own = (record: Record<string, string> | undefined) =>
    record === undefined
      ? undefined
      : Object.fromEntries(Object.entries(record).filter(([key]) => !key.includes("spo.x-k8s.io")));
  return withoutEmpty({ name, labels: own(spo.metadata.labels), annotations: own(spo.metadata.annotations) });
}

/** The object's name as a Lockstep name: SPO allowed a `.json` ending that names the file. */
function lockstepName(spo: SpoObject, notes: string[]): string | undefined {
  let name = spo.metadata.name;
  if (name.endsWith(".json")) {
    name = name.slice(0, -".json".length);
    notes.push(
      `metadata.name: ${spo.metadata.name} becomes ${name} (Lockstep adds .json to the file itself)`,
    );
  }
  return isValidProfileObjectName(name) ? name : undefined;
}

/**
 * How every import starts: the object named for messages (SpoImport.source), the notes so far, and its
 * Lockstep name, or the import refused when it has none.
 */
function startImport(
  spo: SpoObject,
  kind: string,
): { source: string; notes: string[]; name: string } | { refused: SpoImport } {
  const namespace = spo.metadata.namespace;
  const source = `${kind} ${JSON.stringify(spo.metadata.name)}${namespace ? ` in namespace ${namespace}` : ""}`;
  const notes: string[] = [];
  const name = lockstepName(spo, notes);
  if (name === undefined)
    return {
      refused: {
        source,
        notes,
        error: `metadata.name: ${spo.metadata.name} is not a valid Lockstep object name`,
      },
    };
  return { source, notes, name };
}

/** Disabled in SPO: `spec.state: Disabled` (v1) or `spec.disabled: true` (v1alpha1, v1beta1). */
function isDisabled(spec: Record<string, unknown>): boolean {
  return spec.state === "Disabled" || spec.disabled === true;
}

const SECCOMP_SPEC_FIELDS = new Set([
  "baseProfileName",
  "defaultAction",
  "architectures",
  "syscalls",
  "flags",
  "listenerPath",
  "listenerMetadata",
  "state",
  "disabled",
]);

/** SPO's errnoRet: a string in v1beta1 (`"1"`), a number in v1; empty or 0 means unset (EPERM). */
function errnoOf(value: unknown): number | undefined {
  const number = typeof value === "string" ? Number(value) : value;
  return typeof number === "number" && Number.isInteger(number) && number > 0 ? number : undefined;
}

function seccompRule(rule: unknown, where: string, notes: string[]): SeccompSyscall | undefined {
  const r = (rule ?? {}) as Record<string, unknown>;
  const names = asArray(r.names).filter((n): n is string => typeof n === "string");
  const unknown = names.filter((n) => !isKnownSyscall(n));
  if (unknown.length > 0)
    notes.push(
      `${where}.names: left out ${unknown.join(", ")}: no syscall of that name (libseccomp's table), which runc would skip anyway`,
    );
  const known = names.filter(isKnownSyscall);
  if (known.length === 0) return undefined;
  const errnoRet = errnoOf(r.errnoRet);
  const args = asArray(r.args).map((arg) => {
    const a = (arg ?? {}) as Record<string, unknown>;
    // SPO omits value and valueTwo when they are 0 (omitempty); Lockstep's schema wants value written.
    return withoutEmpty({ index: a.index, value: a.value ?? 0, valueTwo: a.valueTwo, op: a.op });
  });
  return withoutEmpty({
    names: known,
    action: r.action as SeccompSyscall["action"],
    errnoRet,
    args: args.length > 0 ? (args as SeccompSyscall["args"]) : undefined,
  }) as SeccompSyscall;
}

/**
 * One SPO SeccompProfile as a Lockstep SeccompProfile. `spoNames` are the SeccompProfiles being imported
 * with it, so a baseProfileName can be checked against them.
 */
export function importSpoSeccompProfile(spo: SpoObject, spoNames: ReadonlySet<string>): SpoImport {
  const start = startImport(spo, SECCOMP_PROFILE_KIND);
  if ("refused" in start) return start.refused;
  const { source, notes, name } = start;
  const namespace = spo.metadata.namespace;
  const spec = spo.spec ?? {};
  if (spec.listenerPath || spec.listenerMetadata)
    return {
      source,
      notes,
      error:
        "listenerPath: a seccomp notify listener, which Lockstep does not run; this profile cannot be carried over",
    };
  const usesNotify =
    spec.defaultAction === "SCMP_ACT_NOTIFY" ||
    asArray(spec.syscalls).some((r) => (r as { action?: unknown } | null)?.action === "SCMP_ACT_NOTIFY");
  if (usesNotify)
    return {
      source,
      notes,
      error: "SCMP_ACT_NOTIFY needs a seccomp notify listener, which Lockstep does not run",
    };
  for (const field of Object.keys(spec).filter((f) => !SECCOMP_SPEC_FIELDS.has(f)))
    notes.push(`spec.${field}: not carried over (Lockstep has no such field)`);

  let baseProfileName: string | undefined;
  const base = typeof spec.baseProfileName === "string" ? spec.baseProfileName : "";
  if (base.startsWith("oci://"))
    return {
      source,
      notes,
      error: `baseProfileName ${base}: Lockstep does not pull profiles from registries; import the base profile's manifest and name it in baseProfileName`,
    };
  if (base !== "") {
    const baseName = base.endsWith(".json") ? base.slice(0, -".json".length) : base;
    baseProfileName = baseName;
    notes.push(
      `baseProfileName ${base}: SPO unions the base's rules with this profile's; Lockstep lets this profile's rules replace the base's rule for each name they list, so the two differ only where both name a syscall`,
    );
    if (!spoNames.has(baseName))
      notes.push(
        `baseProfileName ${base}: not in the input; import its manifest too (until it exists the profile is not installed, reason BaseNotFound), or use baseProfileName: runtime/default`,
      );
  }
  if (namespace !== undefined)
    notes.push(
      `namespace ${namespace}: Lockstep's SeccompProfile is cluster-scoped; pods reference localhostProfile ${lockstepLocalhostProfile(name)} instead of ${spoLocalhostProfile(namespace, spo.metadata.name)}`,
    );
  else
    notes.push(
      `pods reference localhostProfile ${lockstepLocalhostProfile(name)} instead of ${spoLocalhostProfile(undefined, spo.metadata.name)}`,
    );
  const syscalls = asArray(spec.syscalls).flatMap(
    (rule, i) => seccompRule(rule, `spec.syscalls[${i}]`, notes) ?? [],
  );
  const object = {
    apiVersion: API_VERSION,
    kind: SECCOMP_PROFILE_KIND,
    metadata: carriedMetadata(spo, name),
    spec: withoutEmpty({
      baseProfileName,
      defaultAction: spec.defaultAction,
      architectures: spec.architectures,
      flags: spec.flags,
      syscalls,
      disabled: isDisabled(spec) ? true : undefined,
    }),
  };
  const parsed = parseSeccompProfile(object);
  if (!parsed.ok) return { source, notes, error: parsed.message };
  return { source, object, notes };
}

const APPARMOR_SPEC_FIELDS = new Set(["policy", "abstract", "mode", "complainMode", "state", "disabled"]);
const ABSTRACT_FIELDS = new Set(["executable", "filesystem", "network", "capability", "ptrace"]);

/**
 * The first `profile NAME` declaration of a policy text (a bare or quoted name): SPO loads a raw policy
 * under the name it declares, Lockstep under `lockstep.<object name>`, which the text must declare. Import
 * renames that one declaration; apparmor_parser still judges the whole text on every node.
 */
const DECLARED_PROFILE = /^(\s*profile\s+)("?)([^\s"{]+)\2(?=[\s{])/m;

/** One SPO AppArmorProfile as a Lockstep AppArmorProfile. */
export function importSpoAppArmorProfile(spo: SpoObject): SpoImport {
  const start = startImport(spo, APPARMOR_PROFILE_KIND);
  if ("refused" in start) return start.refused;
  const { source, notes, name } = start;
  const spec = spo.spec ?? {};
  for (const field of Object.keys(spec).filter((f) => !APPARMOR_SPEC_FIELDS.has(f)))
    notes.push(`spec.${field}: not carried over (Lockstep has no such field)`);
  const complain = spec.mode === "Complain" || spec.complainMode === true;
  const mode = complain ? "complain" : "enforce";
  let lockstepSpec: Record<string, unknown>;
  if (typeof spec.policy === "string" && spec.policy.trim() !== "") {
    const kernelName = appArmorKernelName(name);
    const declared = DECLARED_PROFILE.exec(spec.policy);
    const policy =
      declared && declared[3] !== kernelName
        ? spec.policy.replace(DECLARED_PROFILE, `$1$2${kernelName}$2`)
        : spec.policy;
    lockstepSpec = { rawPolicy: policy, mode };
    notes.push(
      declared && declared[3] !== kernelName
        ? `spec.policy: carried over as rawPolicy, its profile ${declared[3]} declared as ${kernelName}, the kernel name Lockstep loads for this object (docs/adr/0027-apparmor-kernel-names.md); judged by apparmor_parser on each node`
        : "spec.policy: carried over as rawPolicy, judged by apparmor_parser on each node; the profile it declares must be the one Lockstep loads for this object (lockstep lint and the agent say so if not)",
    );
  } else {
    const abstract = (spec.abstract ?? {}) as Record<string, Record<string, unknown> | undefined>;
    for (const field of Object.keys(abstract).filter((f) => !ABSTRACT_FIELDS.has(f)))
      notes.push(`spec.abstract.${field}: not carried over (Lockstep has no such field)`);
    const strings = (value: unknown) => asArray(value).filter((v): v is string => typeof v === "string");
    // SPO's patterns allow AppArmor variables (@{pid}) and spaces, which Lockstep's structured paths do
    // not; those need rawPolicy.
    const paths = (value: unknown, field: string) => {
      const all = strings(value);
      const kept = all.filter((p) => new RegExp(PROFILE_PATH_PATTERN).test(p));
      const left = all.filter((p) => !kept.includes(p));
      if (left.length > 0)
        notes.push(
          `${field}: left out ${left.join(", ")}: AppArmor variables, braces and spaces need rawPolicy in Lockstep`,
        );
      return kept;
    };
    const executable = abstract.executable ?? {};
    const filesystem = abstract.filesystem ?? {};
    const libraries = paths(executable.allowedLibraries, "spec.abstract.executable.allowedLibraries");
    if (libraries.length > 0)
      notes.push(
        "spec.abstract.executable.allowedLibraries: carried over as paths.readOnly (libraries are read and mapped, which readOnly allows)",
      );
    const network = abstract.network ?? {};
    const protocols = (network.allowedProtocols ?? {}) as Record<string, unknown>;
    const tcp = protocols.allowTcp === true || protocols.allowTCP === true;
    const udp = protocols.allowUdp === true || protocols.allowUDP === true;
    if (network.allowRaw === true)
      notes.push("spec.abstract.network.allowRaw: not carried over; raw sockets need rawPolicy in Lockstep");
    if (abstract.ptrace !== undefined)
      notes.push("spec.abstract.ptrace: not carried over; ptrace rules need rawPolicy in Lockstep");
    lockstepSpec = withoutEmpty({
      executables: paths(executable.allowedExecutables, "spec.abstract.executable.allowedExecutables"),
      paths: withoutEmpty({
        readOnly: [
          ...paths(filesystem.readOnlyPaths, "spec.abstract.filesystem.readOnlyPaths"),
          ...libraries,
        ],
        writeOnly: paths(filesystem.writeOnlyPaths, "spec.abstract.filesystem.writeOnlyPaths"),
        readWrite: paths(filesystem.readWritePaths, "spec.abstract.filesystem.readWritePaths"),
      }),
      network:
        tcp || udp
          ? { families: ["inet", "inet6"], protocols: [...(tcp ? ["tcp"] : []), ...(udp ? ["udp"] : [])] }
          : undefined,
      capabilities: strings(abstract.capability?.allowedCapabilities),
      mode,
    });
  }
  if (isDisabled(spec)) lockstepSpec.disabled = true;
  if (spo.metadata.namespace !== undefined)
    notes.push(
      `namespace ${spo.metadata.namespace}: Lockstep's AppArmorProfile is cluster-scoped (the kernel's AppArmor profiles are node-wide)`,
    );
  notes.push(
    `pods reference the AppArmor profile Lockstep loads for ${name} (docs/migrating-from-spo.md), instead of SPO's ${spo.metadata.name}`,
  );
  const object = {
    apiVersion: API_VERSION,
    kind: APPARMOR_PROFILE_KIND,
    metadata: carriedMetadata(spo, name),
    spec: lockstepSpec,
  };
  const parsed = parseAppArmorProfile(object);
  if (!parsed.ok) return { source, notes, error: parsed.message };
  const [rendered] = renderAppArmorProfiles([{ name, spec: parsed.value.spec }]);
  if (rendered !== undefined && !rendered.ok) return { source, notes, error: rendered.message };
  return { source, object, notes };
}

/**
 * Every SPO object among `documents`: profiles imported, other SPO kinds (ProfileBinding,
 * ProfileRecording, ...) and non-SPO documents reported. Names must be unique once namespaces are
 * gone: a second profile of a name is an error, not a silent overwrite.
 */
export function importSpoDocuments(documents: readonly unknown[]): SpoImport[] {
  const spo = documents.map((doc) => SpoObjectSchema.safeParse(doc));
  const seccompNames = new Set(
    spo.flatMap((p) =>
      p.success && p.data.kind === SECCOMP_PROFILE_KIND ? [p.data.metadata.name.replace(/\.json$/, "")] : [],
    ),
  );
  const seen = new Map<string, string>();
  return spo.map((parsed, i) => {
    if (!parsed.success) {
      const kind = (documents[i] as { kind?: unknown } | null)?.kind;
      return {
        source: `document ${i + 1}`,
        notes: [],
        error: `not a security-profiles-operator object${typeof kind === "string" ? ` (a ${kind})` : ""}; import reads SPO's SeccompProfiles and AppArmorProfiles`,
      };
    }
    const object = parsed.data;
    const result =
      object.kind === SECCOMP_PROFILE_KIND
        ? importSpoSeccompProfile(object, seccompNames)
        : object.kind === APPARMOR_PROFILE_KIND
          ? importSpoAppArmorProfile(object)
          : {
              source: `${object.kind} ${JSON.stringify(object.metadata.name)}`,
              notes: [],
              error: `Lockstep has no ${object.kind}: ${SPO_KIND_REPLACEMENTS[object.kind] ?? "docs/migrating-from-spo.md says what takes its place"}`,
            };
    const name = (result.object?.metadata as { name?: string } | undefined)?.name;
    if (name !== undefined) {
      const key = `${object.kind}/${name}`;
      const earlier = seen.get(key);
      if (earlier !== undefined)
        return {
          ...result,
          object: undefined,
          error: `${object.kind} ${name} is also ${earlier}: Lockstep's profiles are cluster-scoped, so names must be unique across namespaces; rename one`,
        };
      seen.set(key, result.source);
    }
    return result;
  });
}

/** What takes the place of SPO's other kinds. */
const SPO_KIND_REPLACEMENTS: Readonly<Record<string, string>> = {
  ProfileBinding:
    "set securityContext.seccompProfile / appArmorProfile in the workload; Lockstep's webhook then keeps the pod on nodes that hold the profile",
  ProfileRecording: "record with `lockstep record -- COMMAND`",
  SelinuxProfile: "Lockstep does not manage SELinux",
  RawSelinuxProfile: "Lockstep does not manage SELinux",
  SecurityProfilesOperatorDaemon: "Lockstep's agent is configured by its DaemonSet (deploy/)",
  SecurityProfileNodeStatus:
    "Lockstep records what each node holds in the node's labels (lockstep node NODE)",
};
