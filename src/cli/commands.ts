// `lockstep convert`, `lint` and `diff`: read files, call the pure functions in src/api, print.
import { parseArgs } from "node:util";
import { parseAppArmorProfile } from "../api/apparmor.ts";
import { APPARMOR_PROFILE_KIND } from "../api/constants.ts";
import { renderAppArmorProfiles } from "../api/profiles.ts";
import {
  effectiveSeccomp,
  hostNodeArch,
  profileNameFlag,
  readDocuments,
  readSeccompDocuments,
  renderSeccompFile,
  UserError,
  wrapOciSeccompFile,
} from "./profile-files.ts";
import { formatDiff, formatFindings, type LabelledFinding, lintExitCode } from "./report.ts";
import { diffSeccomp } from "./seccomp/diff.ts";
import { lintSeccomp } from "./seccomp/lint.ts";

export const CONVERT_HELP = `usage: lockstep convert FILE [--node-arch ARCH] [--base FILE...]
       lockstep convert OCI.json --name NAME

Prints the first profile in FILE byte for byte as the node agent writes it on a node whose
kubernetes.io/arch is ARCH (amd64, arm64, s390x, ...; default: this machine's, ${hostNodeArch()}):
a SeccompProfile as plain OCI linux.seccomp JSON (inheritance resolved, architectures for the node),
an AppArmorProfile as AppArmor policy text. SeccompProfiles it inherits from (baseProfileName) may be
further documents of FILE or in --base files; runtime/default is built in.

With --name, FILE is plain OCI linux.seccomp JSON and convert prints it as a SeccompProfile named
NAME, ready for kubectl apply. (Docker or podman JSON with archMap, includes or excludes: lockstep import.)`;

export const LINT_HELP = `usage: lockstep lint FILE... [--fail-on error|warning] [--output text|json]

Checks every SeccompProfile in the FILEs (each as its author wrote it, without inherited rules) and
plain OCI seccomp JSON for dangerous allowances (namespace creation, bpf, mount, ptrace, kexec_load,
init_module, keyctl, userfaultfd, unfiltered personality, socket letting AF_VSOCK through), unknown
syscalls, rules that can never match and conditions runc ORs (several on one argument). Rules are
read as runc applies them. See docs/cli.md for every rule.

Exit code: 0 when no finding reaches --fail-on (default error), 1 when one does, 2 on bad input.`;

export const DIFF_HELP = `usage: lockstep diff A B [--base FILE...] [--node-arch ARCH]

Prints the syscalls profile A allows that B does not, and the other way round, after resolving each
to what it enforces on a node whose kubernetes.io/arch is ARCH (default: this machine's, ${hostNodeArch()};
inheritance included, runtime/default with that architecture's own calls; for an allow-by-default
profile: every known syscall it does not deny unconditionally). A syscall allowed only under argument
conditions counts as allowed.
Exit code 0 when both allow the same, 1 when they differ, 2 on bad input.`;

export function convertCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "node-arch": { type: "string", default: hostNodeArch() },
      base: { type: "string", multiple: true, default: [] },
      name: { type: "string" },
    },
  });
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0)
    throw new UserError(
      "usage: lockstep convert FILE [--node-arch ARCH] [--base FILE...] | OCI.json --name NAME",
    );
  if (values.name !== undefined) {
    process.stdout.write(wrapOciSeccompFile(file, profileNameFlag(values.name)));
    return 0;
  }
  const first = readDocuments(file)[0] as { kind?: unknown };
  if (first.kind === APPARMOR_PROFILE_KIND) {
    const parsed = parseAppArmorProfile(first);
    if (!parsed.ok) throw new UserError(`${file}: ${parsed.message}`);
    const [rendered] = renderAppArmorProfiles([
      { name: parsed.value.metadata.name, spec: parsed.value.spec },
    ]);
    if (!rendered?.ok)
      throw new UserError(`${file}: ${rendered && !rendered.ok ? rendered.message : "cannot render"}`);
    process.stdout.write(rendered.contentFor(values["node-arch"]));
    return 0;
  }
  process.stdout.write(renderSeccompFile(file, values["node-arch"], values.base));
  return 0;
}

export function lintCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "fail-on": { type: "string", default: "error" },
      output: { type: "string", default: "text" },
    },
  });
  if (positionals.length === 0)
    throw new UserError("usage: lockstep lint FILE... [--fail-on error|warning] [--output text|json]");
  const failOn = values["fail-on"];
  if (failOn !== "error" && failOn !== "warning")
    throw new UserError(`--fail-on ${failOn}: must be error or warning`);
  if (values.output !== "text" && values.output !== "json")
    throw new UserError(`--output ${values.output}: must be text or json`);
  const documents = positionals.flatMap(readSeccompDocuments);
  const findings: LabelledFinding[] = documents.flatMap((doc) =>
    lintSeccomp(doc.own, { inheritsRules: doc.inheritsRules }).map((f) => ({
      ...f,
      profile: doc.label,
      path: doc.pathPrefix + f.path,
    })),
  );
  process.stdout.write(
    values.output === "json"
      ? `${JSON.stringify(findings, null, 2)}\n`
      : formatFindings(
          findings,
          documents.map((d) => d.label),
        ),
  );
  return lintExitCode(findings, failOn);
}

export function diffCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      base: { type: "string", multiple: true, default: [] },
      "node-arch": { type: "string", default: hostNodeArch() },
    },
  });
  const [a, b, ...extra] = positionals;
  if (!a || !b || extra.length > 0)
    throw new UserError("usage: lockstep diff A B [--base FILE...] [--node-arch ARCH]");
  const nodeArch = values["node-arch"];
  const diff = diffSeccomp(
    effectiveSeccomp(a, values.base, nodeArch),
    effectiveSeccomp(b, values.base, nodeArch),
  );
  process.stdout.write(formatDiff(a, b, diff));
  return diff.onlyA.length + diff.onlyB.length === 0 ? 0 : 1;
}
