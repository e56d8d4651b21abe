// Reading profile files for the CLI: YAML (one or more documents) or JSON, holding SeccompProfile /
// AppArmorProfile objects or plain OCI `linux.seccomp` JSON. Every problem becomes a UserError that
// names the file, the field and what is wrong; rendering goes through src/api/profiles.ts, the same
// functions the node agent uses.
import { readFileSync } from "node:fs";
import { arch } from "node:os";
import { parseAllDocuments, stringify } from "yaml";
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

/** A mistake in the user's input: printed without a stack trace, exit code 2. */
export class UserError extends Error {}

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

/** The documents of a YAML or JSON file, empty documents left out. */
export function readDocuments(file: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(`${file}: ${code === "ENOENT" ? "no such file" : (error as Error).message}`);
  }
  const docs = parseAllDocuments(text);
  for (const doc of docs) {
    const problem = doc.errors[0];
    if (problem) {
      const line = problem.linePos?.[0].line;
      throw new UserError(
        `${file}${line === undefined ? "" : `:${line}`}: not valid YAML or JSON: ${problem.message.split("\n")[0]}`,
      );
    }
  }
  const values = docs.map((d) => d.toJS()).filter((d) => d !== null && d !== undefined);
  if (values.length === 0) throw new UserError(`${file}: empty file, expected a profile`);
  return values;
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
  const first = blocking[0] as z.core.$ZodIssue;
  const where = formatIssuePath(first.path);
  throw new UserError(`${what}: ${where === "" ? "" : `${where}: `}${first.message}`);
}

export interface SeccompDocument {
  /** What to call it in messages: `file (SeccompProfile "name")` or the file name. */
  label: string;
  /** The profile's own rules (before inheritance): what its author wrote. */
  own: LinuxSeccomp;
  /** Where `own`'s fields are in the file: `spec.` for a SeccompProfile, `` for OCI JSON. */
  pathPrefix: string;
  /** It has a baseProfileName, whose rules its own replace name by name. */
  inheritsRules: boolean;
}

/**
 * Every seccomp profile in `file` as its author wrote it: SeccompProfile documents (their spec, with an
 * inherited defaultAction filled in) or one plain OCI `linux.seccomp` object. AppArmorProfiles are skipped.
 */
export function readSeccompDocuments(file: string): SeccompDocument[] {
  const docs = readDocuments(file);
  const profiles = docs.filter((d) => kindOf(d) === SECCOMP_PROFILE_KIND);
  if (profiles.length === 0) {
    const first = docs[0];
    const kind = kindOf(first);
    if (kind === APPARMOR_PROFILE_KIND)
      throw new UserError(
        `${file}: an AppArmorProfile has no seccomp rules; lint and diff take seccomp profiles`,
      );
    if (kind !== undefined)
      throw new UserError(
        `${file}: a ${kind} is not a profile (expected SeccompProfile or OCI seccomp JSON)`,
      );
    return [{ label: file, own: parseOciSeccomp(first, file), pathPrefix: "", inheritsRules: false }];
  }
  return profiles.map((doc) => {
    const name = (doc as { metadata?: { name?: string } }).metadata?.name ?? "<unnamed>";
    const label = `${file} (${SECCOMP_PROFILE_KIND} ${JSON.stringify(name)})`;
    const profile = parseToleratingUnknownSyscalls(SeccompProfileSchema, doc, label);
    const spec = profile.spec;
    const inherited = spec.defaultAction === undefined ? resolveSeccomp(file, name, []) : undefined;
    const own: LinuxSeccomp = {
      defaultAction: spec.defaultAction ?? inherited?.defaultAction ?? "SCMP_ACT_ERRNO",
      syscalls: spec.syscalls ?? [],
    };
    const defaultErrnoRet =
      spec.defaultAction === undefined ? inherited?.defaultErrnoRet : spec.defaultErrnoRet;
    if (defaultErrnoRet !== undefined) own.defaultErrnoRet = defaultErrnoRet;
    if (spec.architectures) own.architectures = spec.architectures;
    return { label, own, pathPrefix: "spec.", inheritsRules: spec.baseProfileName !== undefined };
  });
}

/**
 * Plain OCI `linux.seccomp` JSON as the runtime spec allows it (no `syscalls` means none), as the rules
 * lint and diff judge: the notify listener fields name a socket, not a rule, and are left out.
 */
export function parseOciSeccomp(input: unknown, file: string): LinuxSeccomp {
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

/**
 * The JSON the node agent writes for the first SeccompProfile in `file` on a node of `nodeArch`,
 * inheritance resolved against the other SeccompProfiles in `file` and in `baseFiles`.
 */
export function renderSeccompFile(
  file: string,
  nodeArch: string | undefined,
  baseFiles: readonly string[],
): string {
  const docs = readDocuments(file);
  const first = docs.find((d) => kindOf(d) === SECCOMP_PROFILE_KIND);
  if (!first)
    throw new UserError(
      `${file}: no SeccompProfile or AppArmorProfile in it (plain OCI seccomp JSON is already what the agent writes; --name NAME wraps it into a SeccompProfile)`,
    );
  const name = (first as { metadata?: { name?: string } }).metadata?.name ?? "<unnamed>";
  return renderNamed(file, name, docs, baseFiles, nodeArch);
}

function renderNamed(
  file: string,
  name: string,
  docs: readonly unknown[],
  baseFiles: readonly string[],
  nodeArch: string | undefined,
): string {
  const all = [...docs, ...baseFiles.flatMap(readDocuments)].filter(
    (d) => kindOf(d) === SECCOMP_PROFILE_KIND,
  );
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

function resolveSeccomp(file: string, name: string, baseFiles: readonly string[]): LinuxSeccomp | undefined {
  try {
    return LinuxSeccompSchema.parse(
      JSON.parse(renderNamed(file, name, readDocuments(file), baseFiles, undefined)),
    );
  } catch {
    return undefined;
  }
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
  const docs = readDocuments(file);
  const first = docs.find((d) => kindOf(d) === SECCOMP_PROFILE_KIND);
  if (first === undefined) return readSeccompDocuments(file)[0]?.own as LinuxSeccomp;
  const hasBase = (first as { spec?: { baseProfileName?: unknown } }).spec?.baseProfileName !== undefined;
  if (!hasBase) return (readSeccompDocuments(file)[0] as SeccompDocument).own;
  const name = (first as { metadata?: { name?: string } }).metadata?.name ?? "<unnamed>";
  return LinuxSeccompSchema.parse(JSON.parse(renderNamed(file, name, docs, baseFiles, nodeArch)));
}
