#!/usr/bin/env node
// lockstep: record, convert, import, lint and diff seccomp (and AppArmor) profiles. docs/cli.md documents every
// command; `lockstep <command> --help` prints its flags. No environment variables are read except PATH
// (to find strace and the recorded command), and the kubeconfig ones `node` reads as kubectl does.
// Exit codes: 0 success (lint: no failing finding; diff: no difference), 1 lint findings / diff differences,
// 2 bad usage or input (a message on stderr, never a stack trace).
import { parseArgsProblem } from "./args.ts";
import { CONVERT_HELP, convertCommand, DIFF_HELP, diffCommand } from "./commands.ts";
import { IMPORT_HELP, importCommand } from "./import-command.ts";
import { LINT_HELP, lintCommand } from "./lint-command.ts";
import { NODE_HELP, nodeCommand } from "./node-command.ts";
import { UserError } from "./profile-files.ts";
import { RECORD_HELP, recordCommand } from "./record-command.ts";
import { CLI_VERSION } from "./version.ts";

const MAIN_HELP = `lockstep: record, convert, lint and diff seccomp profiles for Lockstep

usage: lockstep <command> [options]
       lockstep --version

commands:
  record   run a command under strace and print a minimal SeccompProfile for it
  convert  print a profile exactly as the node agent writes it (OCI JSON, or AppArmor text)
  import   turn Docker, podman and security-profiles-operator profiles into Lockstep profiles
  lint     report dangerous allowances, unknown syscalls and rules that never match (files, dirs, stdin)
  diff     show what one profile allows that the other does not
  node     list the profiles a node holds, lacks and failed, from the cluster

lockstep <command> --help shows a command's options.`;

const COMMANDS: Record<string, { help: string; run: (argv: string[]) => number | Promise<number> }> = {
  record: { help: RECORD_HELP, run: recordCommand },
  convert: { help: CONVERT_HELP, run: convertCommand },
  import: { help: IMPORT_HELP, run: importCommand },
  lint: { help: LINT_HELP, run: lintCommand },
  diff: { help: DIFF_HELP, run: diffCommand },
  node: { help: NODE_HELP, run: nodeCommand },
};

/** Whether `--help` is one of the command's own flags (after `--` it belongs to the recorded command). */
function asksForHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === "--help" || a === "-h");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-v" || name === "version") {
    process.stdout.write(`lockstep ${CLI_VERSION}\n`);
    return 0;
  }
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${MAIN_HELP}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UserError(`unknown command "${name}" (lockstep --help lists them)`);
  if (asksForHelp(rest)) {
    process.stdout.write(`${command.help}\n`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    // parseArgs' own errors (unknown flag, missing value) are user errors too, in the command's words.
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))
      throw new UserError(parseArgsProblem(name, error as Error & { code?: string }));
    throw error;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`lockstep: ${error instanceof UserError ? error.message : (error as Error).stack}\n`);
  process.exitCode = 2;
}
