// `lockstep convert` and `diff`: read files, call the pure functions in src/api, print.
import { parseArgs } from "node:util";
import { parseAppArmorProfile } from "../api/apparmor.ts";
import { API_VERSION, RUNTIME_DEFAULT_PROFILE_NAME, SECCOMP_PROFILE_KIND } from "../api/constants.ts";
import { renderAppArmorProfiles } from "../api/profiles.ts";
import { oneOfFlag } from "./args.ts";
import { classifyDocument } from "./document-kinds.ts";
import { documentLabel, readInputs, type SourceDocument, UserError } from "./inputs.ts";
import {
  effectiveSeccompOf,
  hostNodeArch,
  profileNameFlag,
  readDocuments,
  renderAmong,
  wrapOciSeccompFile,
} from "./profile-files.ts";
import { diffReport, formatDiffReport } from "./report.ts";
import { diffSeccomp } from "./seccomp/diff.ts";

export const CONVERT_HELP = `usage: lockstep convert INPUT... [--profile NAME] [--node-arch ARCH] [--base FILE...]
       lockstep convert OCI.json --name NAME

Prints one profile byte for byte as the node agent writes it on a node whose kubernetes.io/arch is
ARCH (amd64, arm64, s390x, ...; default: this machine's, ${hostNodeArch()}): a SeccompProfile as plain
OCI linux.seccomp JSON (inheritance resolved, architectures for the node), an AppArmorProfile as
AppArmor policy text. INPUTs are files, directories (their .yaml, .yml and .json files) or - for
stdin; the profile is the one named by --profile, else the first one found. SeccompProfiles it
inherits from (baseProfileName) may be any other document of the INPUTs or of --base files;
runtime/default is built in.

With --name, the one INPUT is plain OCI linux.seccomp JSON and convert prints it as a SeccompProfile
named NAME, ready for kubectl apply. (Docker, podman or security-profiles-operator profiles:
lockstep import.)`;

export const DIFF_HELP = `usage: lockstep diff A B [--base FILE...] [--node-arch ARCH] [--output text|json]

Prints the syscalls profile A allows that B does not, and the other way round, after resolving each
to what it enforces on a node whose kubernetes.io/arch is ARCH (default: this machine's, ${hostNodeArch()};
inheritance included; for an allow-by-default profile: every known syscall it does not deny
unconditionally). A and B are files (or - for stdin), or ${RUNTIME_DEFAULT_PROFILE_NAME} for the built-in default.
Calls that exist only on other architectures (arm_*, breakpoint, cacheflush and set_tls on amd64, say)
are left out. A syscall allowed only under argument conditions counts as allowed.
  --output text|json  the difference as lines or as one JSON object (default text)
Exit code 0 when both allow the same, 1 when they differ, 2 on bad input.`;

function objectName(value: unknown): string | undefined {
  const name = (value as { metadata?: { name?: unknown } } | null)?.metadata?.name;
  return typeof name === "string" ? name : undefined;
}

/** The profile convert prints: the one named `wanted`, or the first Lockstep profile of the inputs. */
function chosenProfile(documents: readonly SourceDocument[], wanted: string | undefined): SourceDocument {
  const profiles = documents.filter((d) => {
    const type = classifyDocument(d.value).type;
    return type === "seccomp-profile" || type === "apparmor-profile";
  });
  if (wanted !== undefined) {
    const named = profiles.filter((d) => objectName(d.value) === wanted);
    if (named.length === 1) return named[0] as SourceDocument;
    throw new UserError(
      named.length === 0
        ? `--profile ${wanted}: no SeccompProfile or AppArmorProfile of that name in the input (found: ${profiles.map((d) => objectName(d.value) ?? "<unnamed>").join(", ") || "none"})`
        : `--profile ${wanted}: ${named.map(documentLabel).join(" and ")} both have that name`,
    );
  }
  const [first] = profiles;
  if (first !== undefined) return first;
  const foreign = documents
    .map((d) => ({ d, kind: classifyDocument(d.value) }))
    .find(({ kind }) => kind.type === "foreign-profile");
  if (foreign !== undefined && foreign.kind.type === "foreign-profile")
    throw new UserError(`${documentLabel(foreign.d)}: ${foreign.kind.message}`);
  const where = documents[0]?.file ?? "the input";
  throw new UserError(
    `${where}: no SeccompProfile or AppArmorProfile in it (plain OCI seccomp JSON is already what the agent writes; --name NAME wraps it into a SeccompProfile)`,
  );
}

/** Every document of the inputs; the first unreadable input stops the command. */
function documentsOf(operands: readonly string[]): SourceDocument[] {
  const { documents, problems } = readInputs(operands);
  const [problem] = problems;
  if (problem !== undefined) throw new UserError(problem.message);
  return documents;
}

export function convertCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "node-arch": { type: "string", default: hostNodeArch() },
      base: { type: "string", multiple: true, default: [] },
      name: { type: "string" },
      profile: { type: "string" },
    },
  });
  if (positionals.length === 0)
    throw new UserError(
      "usage: lockstep convert INPUT... [--profile NAME] [--node-arch ARCH] [--base FILE...] | OCI.json --name NAME",
    );
  if (values.name !== undefined) {
    const [file, ...extra] = positionals;
    if (file === undefined || extra.length > 0)
      throw new UserError("convert --name wraps one plain OCI seccomp JSON file: name exactly one");
    process.stdout.write(wrapOciSeccompFile(file, profileNameFlag(values.name)));
    return 0;
  }
  const documents = documentsOf(positionals);
  const chosen = chosenProfile(documents, values.profile);
  const label = documentLabel(chosen);
  if (classifyDocument(chosen.value).type === "apparmor-profile") {
    const parsed = parseAppArmorProfile(chosen.value);
    if (!parsed.ok) throw new UserError(`${label}: ${parsed.message}`);
    const [rendered] = renderAppArmorProfiles([
      { name: parsed.value.metadata.name, spec: parsed.value.spec },
    ]);
    if (!rendered?.ok)
      throw new UserError(`${label}: ${rendered && !rendered.ok ? rendered.message : "cannot render"}`);
    process.stdout.write(rendered.contentFor(values["node-arch"]));
    return 0;
  }
  const all = [...documents.map((d) => d.value), ...values.base.flatMap(readDocuments)];
  process.stdout.write(renderAmong(label, objectName(chosen.value) ?? "<unnamed>", all, values["node-arch"]));
  return 0;
}

/** runtime/default as an operand: a SeccompProfile that inherits it and adds nothing. */
const RUNTIME_DEFAULT_OPERAND = {
  apiVersion: API_VERSION,
  kind: SECCOMP_PROFILE_KIND,
  metadata: { name: "runtime-default" },
  spec: { baseProfileName: RUNTIME_DEFAULT_PROFILE_NAME },
};

export function diffCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      base: { type: "string", multiple: true, default: [] },
      "node-arch": { type: "string", default: hostNodeArch() },
      output: { type: "string", default: "text" },
    },
  });
  const [a, b, ...extra] = positionals;
  if (!a || !b || extra.length > 0)
    throw new UserError("usage: lockstep diff A B [--base FILE...] [--node-arch ARCH] [--output text|json]");
  const output = oneOfFlag("output", values.output, ["text", "json"] as const);
  const nodeArch = values["node-arch"];
  const resolve = (operand: string) =>
    operand === RUNTIME_DEFAULT_PROFILE_NAME
      ? effectiveSeccompOf(operand, [RUNTIME_DEFAULT_OPERAND], values.base, nodeArch)
      : effectiveSeccompOf(operand, readDocuments(operand), values.base, nodeArch);
  const diff = diffSeccomp(resolve(a), resolve(b), nodeArch);
  const report = diffReport(a, b, nodeArch, diff);
  process.stdout.write(output === "json" ? `${JSON.stringify(report, null, 2)}\n` : formatDiffReport(report));
  return diff.onlyA.length + diff.onlyB.length === 0 ? 0 : 1;
}
