// `lockstep import`: a Docker or podman seccomp profile (archMap, includes/excludes by capability,
// architecture and kernel) as the SeccompProfile that enforces what that engine would, resolved by the
// pure functions in src/cli/seccomp/import.ts.
import { basename, extname } from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { LINUX_CAPABILITIES } from "../api/apparmor.ts";
import { formatIssuePath } from "../api/common.ts";
import { isValidProfileObjectName } from "../api/labels.ts";
import { renderSeccompForNode, serializeSeccomp } from "../api/render-seccomp.ts";
import { RUNTIME_DEFAULT_CAPABILITIES, RUNTIME_DEFAULT_SOURCE } from "../api/runtime-default.ts";
import { LinuxSeccompSchema } from "../api/seccomp.ts";
import { classifyDocument, SPO_GROUP } from "./document-kinds.ts";
import { documentLabel, type ReadInputs, readInputs } from "./inputs.ts";
import { hostNodeArch, profileNameFlag, seccompProfileYaml, UserError } from "./profile-files.ts";
import {
  CONTAINER_ENGINES,
  ContainerEngineSchema,
  EngineSeccompSchema,
  engineOf,
  IMPORT_ARCHES,
  mergeArchitectures,
  parseKernelVersion,
  resolveEngineProfile,
} from "./seccomp/import.ts";
import { importSpoDocuments } from "./spo/import.ts";

function isSpoDocument(value: unknown): boolean {
  const apiVersion = (value as { apiVersion?: unknown } | null)?.apiVersion;
  return typeof apiVersion === "string" && apiVersion.startsWith(`${SPO_GROUP}/`);
}

/**
 * SPO manifests as Lockstep objects on stdout; notes on stderr, each naming the file, the document and
 * the object. Documents that are not SPO objects are skipped and listed.
 */
function importSpo({ documents, problems }: ReadInputs, output: "yaml" | "json"): number {
  const objects: unknown[] = [];
  let failed = problems.length > 0;
  for (const problem of problems) process.stderr.write(`lockstep: ${problem.message}\n`);
  const spoDocs = documents.filter((d) => isSpoDocument(d.value));
  for (const doc of documents.filter((d) => !isSpoDocument(d.value))) {
    const kind = classifyDocument(doc.value);
    process.stderr.write(
      `lockstep: skipped ${documentLabel(doc)}: ${"message" in kind ? kind.message : "not a security-profiles-operator object"}\n`,
    );
  }
  const results = importSpoDocuments(spoDocs.map((d) => d.value));
  results.forEach((result, i) => {
    const doc = spoDocs[i] as (typeof spoDocs)[number];
    const where = `${doc.file} (${doc.count > 1 ? `document ${doc.index}, ` : ""}${result.source})`;
    for (const note of result.notes) process.stderr.write(`lockstep: ${where}: ${note}\n`);
    if (result.error !== undefined) {
      failed = true;
      process.stderr.write(`lockstep: ${where}: not imported: ${result.error}\n`);
    }
    if (result.object !== undefined) objects.push(result.object);
  });
  process.stderr.write(
    `lockstep: imported ${objects.length} of ${results.length} security-profiles-operator objects\n`,
  );
  process.stdout.write(
    output === "json"
      ? `${JSON.stringify(objects, null, 2)}\n`
      : objects.map((o) => stringify(o)).join("---\n"),
  );
  return failed ? 2 : 0;
}

const USAGE =
  "usage: lockstep import FILE [--arch ARCH...] [--capabilities default|CAP,...] [--kernel VERSION] [--engine docker|podman] [--name NAME] [--output yaml|json]\n       lockstep import SPO-INPUT... [--output yaml|json]";

export const IMPORT_HELP = `${USAGE}

With security-profiles-operator (SPO) manifests (apiVersion ${SPO_GROUP}/..., files,
directories or - for stdin, one or many documents): prints a Lockstep SeccompProfile or
AppArmorProfile for each SPO SeccompProfile and AppArmorProfile, as multi-document YAML (or a JSON
list), and says on stderr what did not carry over (namespaces, notify listeners, oci:// bases, ptrace
rules, ...) and how pods' references change. Exit code 2 when a profile could not be carried over at
all (the others are still printed). docs/migrating-from-spo.md has the side-by-side guide.

Otherwise reads a Docker (moby) or podman (containers-common) seccomp profile and prints what that engine would
hand runc for a container on nodes of each ARCH, as a SeccompProfile (yaml, the default) or plain OCI
linux.seccomp JSON:
  --arch ARCH          kubernetes.io/arch of the nodes: ${IMPORT_ARCHES.join(", ")} (default: this machine's, ${hostNodeArch()}).
                       Repeat it for several; rules only some of them keep are listed on stderr.
  --capabilities LIST  the container's capabilities: "default" (containerd ${RUNTIME_DEFAULT_SOURCE.version}'s default set, which a
                       Kubernetes container has unless it adds or drops some) and/or CAP_... names,
                       comma-separated, e.g. default,CAP_SYS_PTRACE (default: default)
  --kernel VERSION     the nodes' kernel, for Docker's minKernel conditions (default: assume one newer
                       than every minKernel in the file; stderr lists those rules)
  --engine ENGINE      docker or podman (default: podman when the file uses podman's errno fields)
  --name NAME          metadata.name (default: the file name)`;

/** --capabilities: "default" stands for containerd's default set; names with or without CAP_, any case. */
function capabilitySet(list: string): Set<string> {
  const capabilities = new Set<string>();
  for (const item of list.split(",").map((c) => c.trim())) {
    if (item === "default") {
      for (const cap of RUNTIME_DEFAULT_CAPABILITIES) capabilities.add(cap);
      continue;
    }
    const bare = item.toLowerCase().replace(/^cap_/, "");
    if (!(LINUX_CAPABILITIES as readonly string[]).includes(bare))
      throw new UserError(
        `--capabilities: unknown capability ${JSON.stringify(item)} (give "default" and/or names like CAP_SYS_PTRACE)`,
      );
    capabilities.add(`CAP_${bare.toUpperCase()}`);
  }
  return capabilities;
}

/** The file name as an object name ("default.json" -> "default"), when it makes one. */
function nameFromFile(file: string): string {
  const name = basename(file, extname(file))
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "");
  if (!isValidProfileObjectName(name))
    throw new UserError(`${file}: the file name makes no object name; give one with --name NAME`);
  return name;
}

export function importCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      arch: { type: "string", multiple: true },
      capabilities: { type: "string", default: "default" },
      kernel: { type: "string" },
      engine: { type: "string" },
      name: { type: "string" },
      output: { type: "string", default: "yaml" },
    },
  });
  if (values.output !== "yaml" && values.output !== "json")
    throw new UserError(`--output ${values.output}: must be yaml or json`);
  // SPO's manifests are Kubernetes objects, and any of the inputs holding one makes this an SPO import.
  const inputs = readInputs(positionals);
  if (inputs.documents.some((d) => isSpoDocument(d.value))) return importSpo(inputs, values.output);
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0) throw new UserError(USAGE);
  const [problem] = inputs.problems;
  if (problem !== undefined) throw new UserError(problem.message);
  const arches = [...new Set(values.arch ?? [hostNodeArch()])];
  for (const arch of arches)
    if (!IMPORT_ARCHES.includes(arch))
      throw new UserError(`--arch ${arch}: must be one of ${IMPORT_ARCHES.join(", ")}`);
  const namedEngine =
    values.engine === undefined ? undefined : ContainerEngineSchema.safeParse(values.engine);
  if (namedEngine !== undefined && !namedEngine.success)
    throw new UserError(`--engine ${values.engine}: must be ${CONTAINER_ENGINES.join(" or ")}`);
  const kernel = values.kernel === undefined ? undefined : parseKernelVersion(values.kernel);
  if (values.kernel !== undefined && kernel === undefined)
    throw new UserError(`--kernel ${values.kernel}: expected a version like 6.1 or 6.1.0-13-amd64`);
  const capabilities = capabilitySet(values.capabilities);
  const name = values.name === undefined ? nameFromFile(file) : profileNameFlag(values.name);

  const documents = inputs.documents.map((d) => d.value);
  if (documents.length > 1)
    throw new UserError(`${file}: ${documents.length} documents; import reads one profile`);
  const parsed = EngineSeccompSchema.safeParse(documents[0]);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? "" : formatIssuePath(issue.path);
    throw new UserError(
      `${file}: not a Docker or podman seccomp profile: ${where === "" ? "" : `${where}: `}${issue?.message}`,
    );
  }
  const engine = namedEngine?.data ?? engineOf(parsed.data);

  const results = arches.map((nodeArch) => {
    const result = resolveEngineProfile(parsed.data, { engine, nodeArch, capabilities, kernel });
    if (!result.ok) throw new UserError(`${file}: ${result.message}`);
    return { nodeArch, ...result };
  });
  const { seccomp, onlyOn } = mergeArchitectures(results);
  const assumed = [...new Set(results.flatMap((r) => r.assumedKernels))];
  if (assumed.length > 0)
    process.stderr.write(
      `lockstep: assumed a kernel at least as new as minKernel for ${assumed.join(", ")} (--kernel VERSION decides them)\n`,
    );
  for (const { rule, nodeArches } of onlyOn)
    process.stderr.write(
      `lockstep: ${rule.names.join(", ")}: ${engine} keeps this rule only on ${nodeArches.join(", ")}; the profile has it for all its architectures\n`,
    );
  process.stderr.write(
    `lockstep: ${file} as ${engine} resolves it for ${arches.join(", ")} with ${capabilities.size} capabilities: ${seccomp.syscalls.length} rules\n`,
  );

  if (values.output === "yaml") {
    process.stdout.write(seccompProfileYaml(name, seccomp, file));
    return 0;
  }
  const checked = LinuxSeccompSchema.safeParse(seccomp);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new UserError(`${file}: ${formatIssuePath(issue?.path ?? [])}: ${issue?.message}`);
  }
  process.stdout.write(serializeSeccomp(renderSeccompForNode(checked.data, undefined)));
  return 0;
}
