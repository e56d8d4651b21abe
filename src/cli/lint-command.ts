// `lockstep lint`: every Lockstep profile (of either kind) and plain OCI seccomp JSON in the files,
// directories and stdin it is given, judged by the pure rules in seccomp/lint.ts and apparmor/lint.ts,
// printed as text, JSON or SARIF. Documents that are not profiles are skipped and listed; profiles in
// another tool's format and unreadable files are input errors (exit 2) that name the file and document.

import { parseArgs } from "node:util";
import { parseAppArmorProfile } from "../api/apparmor.ts";
import { APPARMOR_PROFILE_KIND, SECCOMP_PROFILE_KIND } from "../api/constants.ts";
import { renderAppArmorProfiles } from "../api/profiles.ts";
import { lintAppArmor } from "./apparmor/lint.ts";
import { oneOfFlag } from "./args.ts";
import { classifyDocument } from "./document-kinds.ts";
import type { Finding, Severity } from "./findings.ts";
import { documentLabel, objectLabel, readInputs, type SourceDocument, UserError } from "./inputs.ts";
import { parseOciSeccomp, seccompProfileRules } from "./profile-files.ts";
import { formatFindings, type LabelledFinding, type LintedProfile, lintExitCode } from "./report.ts";
import { sarifLog } from "./sarif.ts";
import { lintSeccomp } from "./seccomp/lint.ts";

export const LINT_OUTPUTS = ["text", "json", "sarif"] as const;

export const LINT_HELP = `usage: lockstep lint INPUT... [--fail-on error|warning] [--output text|json|sarif]

Checks every SeccompProfile and AppArmorProfile, and plain OCI seccomp JSON, in the INPUTs: files,
directories (every .yaml, .yml and .json file below them) and - for stdin; a file may hold several
YAML documents. A SeccompProfile is checked as its author wrote it, without inherited rules, for
dangerous allowances (namespace creation, bpf, mount, ptrace, kexec_load, init_module, keyctl,
userfaultfd, unfiltered personality, socket letting AF_VSOCK through), unknown syscalls, rules that
can never match and conditions runc ORs; rules are read as runc applies them. An AppArmorProfile's
structured form is checked for complain mode and capabilities that reach the host; its policy text
is compiled by apparmor_parser on each node (lockstep convert prints it). Documents that are not
profiles (a Deployment, a ConfigMap) are skipped and listed on stderr. See docs/cli.md for every rule.

  --output text|json|sarif  findings as lines, as a JSON array (each with a fix), or as SARIF 2.1.0
                            for code-scanning tools (default text)

Exit code: 0 when no finding reaches --fail-on (default error), 1 when one does, 2 on bad input
(an unreadable file, a profile in Docker's, podman's or security-profiles-operator's format, an
invalid profile) or when the inputs hold no profile at all.`;

/** The JSON Pointer of a finding's patch, from the linted rules to the document: `/spec` for an object. */
function inDocument(finding: Finding, pointerPrefix: string): Finding {
  return {
    ...finding,
    fix: {
      ...finding.fix,
      patch: finding.fix.patch.map((op) => ({ ...op, path: `${pointerPrefix}${op.path}` })),
    },
  };
}

function labelled(
  doc: SourceDocument,
  profile: string,
  findings: readonly Finding[],
  inSpec: boolean,
): LabelledFinding[] {
  return findings.map((f) => {
    const path = `${inSpec ? "spec." : ""}${f.path}`;
    const line = doc.lineOf(path);
    return {
      ...inDocument(f, inSpec ? "/spec" : ""),
      path,
      profile,
      file: doc.file,
      document: doc.index,
      ...(line === undefined ? {} : { line }),
    };
  });
}

function objectName(value: unknown): string {
  const name = (value as { metadata?: { name?: unknown } }).metadata?.name;
  return typeof name === "string" ? name : "<unnamed>";
}

/** One document linted: its findings, or the input error it is. */
function lintDocument(
  doc: SourceDocument,
  seccompObjects: readonly unknown[],
): { profile: LintedProfile } | { error: string } | { skipped: string } {
  const kind = classifyDocument(doc.value);
  const where = documentLabel(doc);
  try {
    switch (kind.type) {
      case "not-a-profile":
        return { skipped: `${where}: ${kind.message}` };
      case "foreign-profile":
        return { error: `${where}: ${kind.message}` };
      case "oci-seccomp": {
        const own = parseOciSeccomp(doc.value, where);
        return { profile: { label: where, findings: labelled(doc, where, lintSeccomp(own), false) } };
      }
      case "seccomp-profile": {
        const label = objectLabel(doc, SECCOMP_PROFILE_KIND, objectName(doc.value));
        const { own, inheritsRules } = seccompProfileRules(doc.value, label, seccompObjects);
        return {
          profile: { label, findings: labelled(doc, label, lintSeccomp(own, { inheritsRules }), true) },
        };
      }
      case "apparmor-profile": {
        const label = objectLabel(doc, APPARMOR_PROFILE_KIND, objectName(doc.value));
        const parsed = parseAppArmorProfile(doc.value);
        if (!parsed.ok) return { error: `${where}: ${parsed.message}` };
        const [rendered] = renderAppArmorProfiles([
          { name: parsed.value.metadata.name, spec: parsed.value.spec },
        ]);
        if (rendered !== undefined && !rendered.ok) return { error: `${where}: ${rendered.message}` };
        return {
          profile: {
            label,
            findings: labelled(doc, label, lintAppArmor(parsed.value.spec), true),
            note: "its policy text is compiled by apparmor_parser on each node",
          },
        };
      }
    }
  } catch (error) {
    if (error instanceof UserError) return { error: error.message };
    throw error;
  }
}

export function lintCommand(argv: string[], readStdin?: () => string): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "fail-on": { type: "string", default: "error" },
      output: { type: "string", default: "text" },
    },
  });
  if (positionals.length === 0)
    throw new UserError("usage: lockstep lint INPUT... [--fail-on error|warning] [--output text|json|sarif]");
  const failOn: Severity = oneOfFlag("fail-on", values["fail-on"], ["error", "warning"] as const);
  const output = oneOfFlag("output", values.output, LINT_OUTPUTS);

  const { documents, problems, skipped } = readInputs(positionals, readStdin);
  const seccompObjects = documents
    .map((d) => d.value)
    .filter((v) => classifyDocument(v).type === "seccomp-profile");
  const errors = problems.map((p) => p.message);
  const notes = skipped.map((s) => `${s.file}: ${s.message}`);
  const profiles: LintedProfile[] = [];
  for (const doc of documents) {
    const result = lintDocument(doc, seccompObjects);
    if ("profile" in result) profiles.push(result.profile);
    else if ("error" in result) errors.push(result.error);
    else notes.push(result.skipped);
  }
  const findings = profiles.flatMap((p) => p.findings);

  for (const note of notes) process.stderr.write(`lockstep: skipped ${note}\n`);
  for (const error of errors) process.stderr.write(`lockstep: ${error}\n`);
  if (profiles.length === 0 && errors.length === 0)
    process.stderr.write(
      "lockstep: no profile to lint in the input (SeccompProfile, AppArmorProfile or OCI seccomp JSON)\n",
    );
  if (output === "json") process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
  else if (output === "sarif")
    process.stdout.write(`${JSON.stringify(sarifLog(findings, process.cwd()), null, 2)}\n`);
  else process.stdout.write(formatFindings(profiles));
  if (errors.length > 0 || profiles.length === 0) return 2;
  return lintExitCode(findings, failOn);
}
