#!/usr/bin/env node
// lockstep: record, convert, lint and diff seccomp (and AppArmor) profiles.
import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { arch as hostArch, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { parseArgs } from "node:util";
import { parseAllDocuments, stringify } from "yaml";
import { parseAppArmorProfile } from "../api/apparmor.ts";
import { API_VERSION, SECCOMP_PROFILE_KIND } from "../api/constants.ts";
import { diffSeccomp } from "../api/diff-seccomp.ts";
import { type Finding, lintSeccomp } from "../api/lint-seccomp.ts";
import { renderAppArmorProfiles, renderSeccompProfiles } from "../api/profiles.ts";
import { allowedSyscalls, profileFromSyscalls, syscallsInTrace } from "../api/record.ts";
import { type LinuxSeccomp, LinuxSeccompSchema, parseSeccompProfile } from "../api/seccomp.ts";

class UserError extends Error {}

const HELP: Record<string, string> = {
  main: `lockstep: record, convert, lint and diff seccomp profiles for Lockstep

usage: lockstep <command> [options]

commands:
  record   run a command under strace and print a minimal SeccompProfile for it
  convert  print a profile exactly as the node agent writes it (OCI JSON, or AppArmor text)
  lint     report dangerous allowances, unknown syscalls and rules that never match
  diff     show what one profile allows that the other does not

lockstep <command> --help shows a command's options.`,
  record: `usage: lockstep record [--name N] [--output yaml|json] [--merge FILE...] [--progress] -- COMMAND [ARGS...]

Runs COMMAND under strace (following every thread and child), collects the syscalls it makes, adds
the few the container runtime needs after it applies the filter, and prints a profile that allows
exactly those and denies everything else with EPERM. The command's own output goes to stderr.

  --name N          metadata.name of the SeccompProfile (default: recorded)
  --output yaml     a SeccompProfile for kubectl apply (default); json: plain OCI linux.seccomp
  --merge FILE      also allow what earlier recordings (SeccompProfile YAML or OCI JSON) allow; repeatable
  --progress        a progress line on stderr (default when stderr is a terminal)`,
  convert: `usage: lockstep convert FILE [--node-arch ARCH] [--base FILE...]

Prints the profile in FILE exactly as the node agent writes it on a node of architecture ARCH
(kubernetes.io/arch: amd64, arm64, ...; default: this machine's): a SeccompProfile as plain OCI JSON
(inheritance resolved), an AppArmorProfile as AppArmor text. Base profiles it inherits from may be
in FILE itself or in --base files.`,
  lint: `usage: lockstep lint FILE [--fail-on error|warning] [--output text|json]

Exit code: 0 when no finding reaches --fail-on (default error), 1 when one does, 2 on bad input.`,
  diff: `usage: lockstep diff A B

Prints the syscalls A allows that B does not, and the other way round. Exit code 0 when they allow
the same, 1 when they differ.`,
};

function readDocuments(file: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new UserError(
      `${file}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(error)}`,
    );
  }
  const docs = parseAllDocuments(text);
  for (const doc of docs)
    if (doc.errors.length > 0) {
      const e = doc.errors[0];
      throw new UserError(
        `${file}: not YAML or JSON (line ${e?.linePos?.[0].line ?? "?"}): ${e?.message.split("\n")[0]}`,
      );
    }
  return docs.map((d) => d.toJS()).filter((d) => d !== null && d !== undefined);
}

const KUBE_ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
};

interface SeccompSource {
  /** The profile's name (SeccompProfile) or the file name (plain OCI JSON). */
  name: string;
  seccomp: LinuxSeccomp;
  json: string | undefined;
}

/** The first profile in `file`, resolved: a SeccompProfile (inheritance via the same file or `bases`) or plain OCI JSON. */
function loadSeccomp(file: string, nodeArch: string | undefined, bases: string[] = []): SeccompSource {
  const docs = readDocuments(file);
  const first = docs[0] as { kind?: string } | undefined;
  if (!first) throw new UserError(`${file}: empty file`);
  if (first.kind === SECCOMP_PROFILE_KIND) {
    const all = [...docs, ...bases.flatMap(readDocuments)].filter(
      (d) => (d as { kind?: string }).kind === SECCOMP_PROFILE_KIND,
    );
    const refs = all.map((d) => {
      const parsed = parseSeccompProfile(d);
      if (!parsed.ok) throw new UserError(`${file}: ${parsed.message}`);
      return { name: parsed.value.metadata.name, spec: parsed.value.spec };
    });
    const rendered = renderSeccompProfiles(refs)[0];
    if (!rendered) throw new UserError(`${file}: no SeccompProfile`);
    if (!rendered.ok) throw new UserError(`${file}: ${rendered.message}`);
    const json = rendered.contentFor(nodeArch);
    return { name: rendered.name, seccomp: LinuxSeccompSchema.parse(JSON.parse(json)), json };
  }
  if (first.kind !== undefined) throw new UserError(`${file}: a ${first.kind} is not a seccomp profile`);
  const parsed = LinuxSeccompSchema.safeParse(first);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UserError(
      `${file}: not a seccomp profile: ${issue?.path.join(".") || "(top)"}: ${issue?.message}`,
    );
  }
  return { name: file, seccomp: parsed.data, json: undefined };
}

function findOnPath(command: string): string | undefined {
  if (command.includes("/")) return command;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not here
    }
  }
  return undefined;
}

async function record(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: "string", default: "recorded" },
      output: { type: "string", default: "yaml" },
      merge: { type: "string", multiple: true, default: [] },
      progress: { type: "boolean", default: Boolean(process.stderr.isTTY) },
    },
  });
  if (values.output !== "yaml" && values.output !== "json")
    throw new UserError("--output must be yaml or json");
  if (positionals.length === 0)
    throw new UserError("nothing to record: lockstep record -- COMMAND [ARGS...]");
  if (spawnSync("strace", ["-V"], { stdio: "ignore" }).error)
    throw new UserError("strace not found: install it (apt-get install strace)");
  const [command, ...args] = positionals as [string, ...string[]];
  if (!findOnPath(command)) throw new UserError(`command not found: ${command}`);
  const merged = values.merge.flatMap((f) => [...allowedSyscalls(loadSeccomp(f, undefined).seccomp)]);

  const dir = mkdtempSync(join(tmpdir(), "lockstep-record-"));
  const trace = join(dir, "trace");
  try {
    const started = Date.now();
    const child = spawn("strace", ["-f", "-qq", "-o", trace, "--", command, ...args], {
      stdio: ["inherit", process.stderr, process.stderr],
    });
    const timer = values.progress
      ? setInterval(() => {
          let seen = 0;
          try {
            seen = syscallsInTrace(readFileSync(trace, "utf8")).length;
          } catch {
            // strace has not created the file yet
          }
          process.stderr.write(
            `\rrecording ${command}: ${((Date.now() - started) / 1000).toFixed(0)}s, ${seen} distinct syscalls`,
          );
        }, 1000)
      : undefined;
    const code = await new Promise<number>((resolve) =>
      child.on("exit", (c, signal) => resolve(c ?? (signal ? 128 : 1))),
    );
    if (timer) {
      clearInterval(timer);
      process.stderr.write("\n");
    }
    const recorded = syscallsInTrace(readFileSync(trace, "utf8"));
    const { seccomp, unknown } = profileFromSyscalls([...recorded, ...merged]);
    if (unknown.length > 0)
      process.stderr.write(
        `lockstep: kept syscalls missing from the table (a newer kernel's?): ${unknown.join(", ")}\n`,
      );
    process.stderr.write(
      `lockstep: ${command} exited with ${code}; ${recorded.length} syscalls recorded, ${seccomp.syscalls[0]?.names.length} allowed\n`,
    );
    if (values.output === "json") process.stdout.write(`${JSON.stringify(seccomp, null, 2)}\n`);
    else
      process.stdout.write(
        stringify({
          apiVersion: API_VERSION,
          kind: SECCOMP_PROFILE_KIND,
          metadata: { name: values.name },
          spec: seccomp,
        }),
      );
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function convert(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "node-arch": { type: "string", default: KUBE_ARCH[hostArch()] ?? hostArch() },
      base: { type: "string", multiple: true, default: [] },
    },
  });
  const [file] = positionals;
  if (!file) throw new UserError("usage: lockstep convert FILE");
  const first = readDocuments(file)[0] as { kind?: string } | undefined;
  if (first?.kind === "AppArmorProfile") {
    const parsed = parseAppArmorProfile(first);
    if (!parsed.ok) throw new UserError(`${file}: ${parsed.message}`);
    const rendered = renderAppArmorProfiles([
      { name: parsed.value.metadata.name, spec: parsed.value.spec },
    ])[0];
    if (!rendered?.ok)
      throw new UserError(`${file}: ${rendered && !rendered.ok ? rendered.message : "cannot render"}`);
    process.stdout.write(rendered.contentFor(undefined));
    return 0;
  }
  const source = loadSeccomp(file, values["node-arch"], values.base);
  if (source.json === undefined)
    throw new UserError(`${file}: already plain OCI JSON; convert takes a SeccompProfile or AppArmorProfile`);
  process.stdout.write(source.json);
  return 0;
}

function lint(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { "fail-on": { type: "string", default: "error" }, output: { type: "string", default: "text" } },
  });
  const [file] = positionals;
  if (!file) throw new UserError("usage: lockstep lint FILE");
  if (values["fail-on"] !== "error" && values["fail-on"] !== "warning")
    throw new UserError("--fail-on must be error or warning");
  const findings: Finding[] = lintSeccomp(loadSeccomp(file, undefined).seccomp);
  if (values.output === "json") process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
  else {
    for (const f of findings)
      process.stdout.write(`${file}: ${f.severity}: ${f.path}: ${f.message} [${f.rule}]\n`);
    if (findings.length === 0) process.stdout.write(`${file}: no findings\n`);
  }
  const failing = findings.some((f) => f.severity === "error" || values["fail-on"] === "warning");
  return failing ? 1 : 0;
}

function diff(argv: string[]): number {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  const [a, b] = positionals;
  if (!a || !b) throw new UserError("usage: lockstep diff A B");
  const result = diffSeccomp(loadSeccomp(a, undefined).seccomp, loadSeccomp(b, undefined).seccomp);
  process.stdout.write(`only ${a} allows (${result.onlyA.length}): ${result.onlyA.join(" ") || "-"}\n`);
  process.stdout.write(`only ${b} allows (${result.onlyB.length}): ${result.onlyB.join(" ") || "-"}\n`);
  return result.onlyA.length + result.onlyB.length === 0 ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${HELP.main}\n`);
    return command ? 0 : 2;
  }
  const run = { record, convert, lint, diff }[command];
  if (!run) throw new UserError(`unknown command "${command}" (try lockstep --help)`);
  if (rest.includes("--help") || rest.includes("-h")) {
    const dashDash = rest.indexOf("--");
    const help = rest.findIndex((a) => a === "--help" || a === "-h");
    if (dashDash === -1 || help < dashDash) {
      process.stdout.write(`${HELP[command]}\n`);
      return 0;
    }
  }
  return run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  const message =
    error instanceof UserError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
      ? (error as Error).message
      : String(error);
  process.stderr.write(`lockstep: ${message}\n`);
  process.exitCode = 2;
}
