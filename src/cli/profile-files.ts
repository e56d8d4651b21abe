// Reading profile files for the CLI: YAML (one or more documents) or JSON, holding SeccompProfile /
// AppArmorProfile objects or plain OCI `linux.seccomp` JSON. Every problem becomes a UserError that
// names the file, the field and what is wrong; rendering goes through src/api/profiles.ts, the same
// functions the node agent uses.
import { arch } from "node:os";
import { stringify } from "yaml";
import type * as z from "zod";
import { formatIssuePath } from "../api/common.ts";
import { API_VERSION, APPARMOR_PROFILE_KIND, SECCOMP_PROFILE_KIND } from "../api/constants.ts";
import { isValidProfileObjectName } from "../api/labels.ts";
import { renderSeccompProfiles } from "../api/profiles.ts";
import {
  type LinuxSeccomp,
  LinuxSeccompSchema,
  OciSeccompSchema,
  parseSeccompProfile,
  SeccompProfileSchema,
} from "../api/seccomp.ts";
import { classifyDocument } from "./document-kinds.ts";

/** The words every message about a Docker or podman field carries (engineFieldsMessage). */
const IMPORT_POINTER = "`lockstep import FILE`";

import { readFileDocuments, UserError } from "./inputs.ts";

export { UserError };

/** `kubernetes.io/arch` of this machine, from Node's `process.arch` names. */
const KUBE_ARCH: Readonly<Record<string, string>> = {
  x64: "amd64",
  ia32: "386",
  arm64: "arm64",
  arm: "arm",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
};

export function hostNodeArch(): string {
  return KUBE_ARCH[arch()] ?? arch();
}

/** The documents of a YAML or JSON file (or `-`, stdin), empty documents left out. */
export function readDocuments(file: string): unknown[] {
  return readFileDocuments(file).map((doc) => doc.value);
}

function kindOf(doc: unknown): string | undefined {
  const kind = (doc as { kind?: unknown } | null)?.kind;
  return typeof kind === "string" ? kind : undefined;
}

// A name missing from our syscall table is the one schema failure lint, diff and merge tolerate: lint
// reports it as a finding, and a recording keeps names newer than the table.
function isUnknownSyscallIssue(issue: z.core.$ZodIssue): boolean {
  return issue.path.at(-2) === "names" && issue.message.startsWith("unknown syscall");
}

/**
 * Parses with `schema`, accepting the input as is when the only problems are unknown syscall names
 * (the names are still strings, so the value has the schema's shape).
 */
function parseToleratingUnknownSyscalls<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const blocking = result.error.issues.filter((issue) => !isUnknownSyscallIssue(issue));
  if (blocking.length === 0) return input as T;
  // A Docker or podman field explains the other issues (a rule with the old `name` also lacks `names`):
  // its pointer to `lockstep import` comes first.
  const first = (blocking.find((issue) => issue.message.includes(IMPORT_POINTER)) ??
    blocking[0]) as z.core.$ZodIssue;
  const where = formatIssuePath(first.path);
  throw new UserError(`${what}: ${where === "" ? "" : `${where}: `}${first.message}`);
}

/**
 * A SeccompProfile's own rules (its spec, with an inherited defaultAction filled in from its bases
 * among `seccompObjects`), as lint judges them, and whether it inherits rules.
 */
export function seccompProfileRules(
  value: unknown,
  label: string,
  seccompObjects: readonly unknown[],
): { own: LinuxSeccomp; inheritsRules: boolean } {
  const spec = parseToleratingUnknownSyscalls(SeccompProfileSchema, value, label).spec;
  let inherited: LinuxSeccomp | undefined;
  if (spec.defaultAction === undefined) {
    const name = (value as { metadata?: { name?: string } }).metadata?.name ?? "<unnamed>";
    try {
      inherited = LinuxSeccompSchema.parse(JSON.parse(renderAmong(label, name, seccompObjects, undefined)));
    } catch {
      inherited = undefined;
    }
  }
  const own: LinuxSeccomp = {
    defaultAction: spec.defaultAction ?? inherited?.defaultAction ?? "SCMP_ACT_ERRNO",
    syscalls: spec.syscalls ?? [],
  };
  const defaultErrnoRet =
    spec.defaultAction === undefined ? inherited?.defaultErrnoRet : spec.defaultErrnoRet;
  if (defaultErrnoRet !== undefined) own.defaultErrnoRet = defaultErrnoRet;
  if (spec.architectures) own.architectures = spec.architectures;
  return { own, inheritsRules: spec.baseProfileName !== undefined };
}

/**
 * Plain OCI `linux.seccomp` JSON as the runtime spec allows it (no `syscalls` means none), as the rules
 * lint and diff judge: the notify listener fields name a socket, not a rule, and are left out.
 */
export function parseOciSeccomp(input: unknown, file: string): LinuxSeccomp {
  const kind = classifyDocument(input);
  if (kind.type === "foreign-profile" || kind.type === "not-a-profile")
    throw new UserError(
      `${file}: ${kind.type === "not-a-profile" ? "not a seccomp profile: " : ""}${kind.message}`,
    );
  const { listenerPath, listenerMetadata, syscalls, ...rest } = parseToleratingUnknownSyscalls(
    OciSeccompSchema,
    input,
    `${file}: not a seccomp profile`,
  );
  return { ...rest, syscalls: syscalls ?? [] };
}

/** The value of a --name flag, checked as the API server would check metadata.name. */
export function profileNameFlag(name: string): string {
  if (!isValidProfileObjectName(name))
    throw new UserError(
      `--name ${JSON.stringify(name)}: not a valid object name (lower-case letters, digits, '-' and '.')`,
    );
  return name;
}

/**
 * A SeccompProfile (YAML, ready for kubectl apply) around OCI rules, checked against the schema every
 * Lockstep part parses with, so what is printed is what the cluster accepts.
 */
export function seccompProfileYaml(name: string, seccomp: LinuxSeccomp, source: string): string {
  const object = { apiVersion: API_VERSION, kind: SECCOMP_PROFILE_KIND, metadata: { name }, spec: seccomp };
  const parsed = parseSeccompProfile(object);
  if (!parsed.ok) throw new UserError(`${source}: cannot be a SeccompProfile: ${parsed.message}`);
  return stringify(object);
}

/** The plain OCI seccomp JSON in `file` as a SeccompProfile named `name` (YAML). */
export function wrapOciSeccompFile(file: string, name: string): string {
  const [first] = readDocuments(file);
  const kind = kindOf(first);
  if (kind !== undefined)
    throw new UserError(`${file}: --name wraps plain OCI seccomp JSON, but this file holds a ${kind}`);
  const listener = ["listenerPath", "listenerMetadata"].find((field) => Object.hasOwn(Object(first), field));
  if (listener !== undefined)
    throw new UserError(
      `${file}: ${listener}: names a seccomp notify listener, which Lockstep does not run; a SeccompProfile cannot carry it`,
    );
  return seccompProfileYaml(name, parseOciSeccomp(first, file), file);
}

/** The JSON the agent writes for the SeccompProfile `name` among `docs` (its bases among them too). */
export function renderAmong(
  file: string,
  name: string,
  docs: readonly unknown[],
  nodeArch: string | undefined,
): string {
  const all = docs.filter((d) => kindOf(d) === SECCOMP_PROFILE_KIND);
  const refs = all.map((doc) => {
    const parsed = parseSeccompProfile(doc);
    if (!parsed.ok) throw new UserError(`${file}: ${parsed.message}`);
    return { name: parsed.value.metadata.name, spec: parsed.value.spec };
  });
  const rendered = renderSeccompProfiles(refs).find((r) => r.name === name);
  if (!rendered) throw new UserError(`${file}: no SeccompProfile ${JSON.stringify(name)}`);
  if (!rendered.ok)
    throw new UserError(
      `${file}: ${rendered.message}${rendered.reason === "BaseNotFound" ? " (pass the file that defines it with --base FILE)" : ""}`,
    );
  return rendered.contentFor(nodeArch);
}

/**
 * What `file` enforces: the first SeccompProfile resolved (bases from the same file or `baseFiles`) and
 * rendered for a node of `nodeArch` (undefined: node-independent), or plain OCI JSON. A profile without
 * a base is read as written, unknown names included, so recordings that kept names newer than the table
 * still merge and diff.
 */
export function effectiveSeccomp(
  file: string,
  baseFiles: readonly string[] = [],
  nodeArch: string | undefined = undefined,
): LinuxSeccomp {
  return effectiveSeccompOf(file, readDocuments(file), baseFiles, nodeArch);
}

/** effectiveSeccomp for documents already read; `label` names them in messages. */
export function effectiveSeccompOf(
  label: string,
  docs: readonly unknown[],
  baseFiles: readonly string[] = [],
  nodeArch: string | undefined = undefined,
): LinuxSeccomp {
  const first = docs.find((d) => kindOf(d) === SECCOMP_PROFILE_KIND);
  if (first === undefined) {
    const apparmor = docs.some((d) => kindOf(d) === APPARMOR_PROFILE_KIND);
    if (apparmor && docs.length === docs.filter((d) => kindOf(d) === APPARMOR_PROFILE_KIND).length)
      throw new UserError(`${label}: an AppArmorProfile has no seccomp rules; diff takes seccomp profiles`);
    return parseOciSeccomp(docs[0], label);
  }
  const hasBase = (first as { spec?: { baseProfileName?: unknown } }).spec?.baseProfileName !== undefined;
  const name = (first as { metadata?: { name?: string } }).metadata?.name ?? "<unnamed>";
  const objectLabel = `${label} (${SECCOMP_PROFILE_KIND} ${JSON.stringify(name)})`;
  if (!hasBase) return seccompProfileRules(first, objectLabel, docs).own;
  return LinuxSeccompSchema.parse(
    JSON.parse(renderAmong(label, name, [...docs, ...baseFiles.flatMap(readDocuments)], nodeArch)),
  );
}
