// AppArmor on this node: whether the kernel has it, loading and removing profiles with
// apparmor_parser, and what the kernel really has loaded (its profile list in securityfs).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type CompiledProfile, readCompiledPolicy } from "./compiled-policy.ts";
import {
  type CompiledExpectation,
  compiledProblems,
  includedFiles,
  includeProblems,
} from "./policy-check.ts";

const run = promisify(execFile);

export interface AppArmorPaths {
  /** securityfs mount point; the kernel's AppArmor interface is its `apparmor/` folder. */
  securityfs: string;
  /** The module parameter that says whether AppArmor is enabled (`Y`). */
  enabledParameter: string;
  /** The parser command (Debian: /usr/sbin/apparmor_parser). */
  parser: string;
}

export const DEFAULT_APPARMOR_PATHS: AppArmorPaths = {
  securityfs: "/sys/kernel/security",
  enabledParameter: "/sys/module/apparmor/parameters/enabled",
  parser: "apparmor_parser",
};

/** Both must hold: the module is enabled and its securityfs interface is mounted where we can use it. */
export async function detectAppArmor(paths: AppArmorPaths): Promise<boolean> {
  try {
    const enabled = (await readFile(paths.enabledParameter, "utf8")).trim();
    if (enabled !== "Y") return false;
    await readFile(join(paths.securityfs, "apparmor", "profiles"), "utf8");
    return true;
  } catch {
    return false;
  }
}

/** Names of the profiles the kernel has loaded (`<name> (<mode>)` per line). */
export async function loadedProfiles(paths: AppArmorPaths): Promise<Set<string>> {
  const text = await readFile(join(paths.securityfs, "apparmor", "profiles"), "utf8");
  return new Set(
    text
      .split("\n")
      .map((line) => line.replace(/ \((enforce|complain|kill|unconfined|prompt)\)$/, "").trim())
      .filter((line) => line !== ""),
  );
}

// The policy file's name inside the private folder: the parser names it in its messages, which reach
// the InstallFailed Event, so it says where the text came from.
const POLICY_FILE = "spec.rawPolicy";
// Bounds one parser run: an include of a device or a huge file must not hang or swamp the agent.
const PARSER_LIMITS = { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 };

async function withPolicyFile<T>(
  content: string | Uint8Array,
  action: (file: string, dir: string) => Promise<T>,
): Promise<T> {
  // A private, otherwise empty folder (mode 0700 from mkdtemp), removed afterwards: policy text never
  // lands on the node's disk outside the agent's own temporary space, and a bare relative include
  // resolves against this empty folder and finds nothing.
  const dir = await mkdtemp(join(tmpdir(), "lockstep-apparmor-"));
  try {
    await writeFile(join(dir, POLICY_FILE), content, { mode: 0o600 });
    // Relative to `dir`, where the parser runs: its messages then name the file "spec.rawPolicy".
    return await action(POLICY_FILE, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface ParserRun {
  ok: boolean;
  stdout: Buffer;
  stderr: string;
}

async function runParser(paths: AppArmorPaths, args: string[], cwd: string): Promise<ParserRun> {
  try {
    const { stdout, stderr } = await run(paths.parser, args, { cwd, encoding: "buffer", ...PARSER_LIMITS });
    return { ok: true, stdout, stderr: stderr.toString("utf8") };
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer; message?: string };
    return {
      ok: false,
      stdout: e.stdout ?? Buffer.alloc(0),
      stderr: e.stderr?.toString("utf8") || String(e.message ?? error),
    };
  }
}

/**
 * The parser's complaint, fit for an Event: its own lines about the policy, without the note that
 * this kernel has no cache interface, and without the text of a file outside the standard
 * abstractions and tunables (an include that got past the cheap check must not read a secret of the
 * agent's container out through an error message).
 */
export function parserComplaint(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("Cache read/write disabled"))
    .map((line) => {
      const file = /^AppArmor parser error for \S+ in profile (.+?) at line \d+:/.exec(line)?.[1];
      const standard = file === POLICY_FILE || /\/(tunables|abstractions)\//.test(file ?? "/tunables/");
      return standard
        ? line
        : `AppArmor parser error in ${file}, outside the standard abstractions and tunables`;
    });
  return lines.slice(0, 5).join("; ") || "apparmor_parser failed without a message";
}

/** How the agent has apparmor_parser compile a policy for this kernel without loading it (`-Q -K -S`). */
export const COMPILE_ARGS = ["--skip-kernel-load", "--skip-cache", "--stdout"] as const;
/** Added to COMPILE_ARGS for spec.mode complain. */
export const COMPLAIN_ARG = "--Complain";

export type PolicyJudgement = { ok: true; compiled: Buffer } | { ok: false; message: string };

/**
 * Has apparmor_parser judge a profile and compile it for this kernel: the files it included must be
 * standard abstractions and tunables, and what it compiled must be exactly one profile named as the
 * object, without attachment, hat or child, in spec.mode. On success the compiled bytes are what
 * loadCompiledProfile hands the kernel, so what was judged is what is loaded.
 */
export async function judgeAndCompile(
  paths: AppArmorPaths,
  text: string,
  expected: CompiledExpectation,
): Promise<PolicyJudgement> {
  return withPolicyFile(text, async (file, dir) => {
    const preprocessed = await runParser(paths, ["--preprocess", file], dir);
    const includes = includeProblems(text, includedFiles(preprocessed.stdout.toString("utf8")));
    if (includes.length > 0) return { ok: false, message: includes.join("; ") };
    if (!preprocessed.ok) return { ok: false, message: parserComplaint(preprocessed.stderr) };
    // Compiled as written first (no --Complain), so the policy's own mode flags show.
    const asWritten = await runParser(paths, [...COMPILE_ARGS, file], dir);
    if (!asWritten.ok) return { ok: false, message: parserComplaint(asWritten.stderr) };
    let profiles: CompiledProfile[];
    try {
      profiles = readCompiledPolicy(asWritten.stdout);
    } catch (error) {
      return { ok: false, message: `apparmor_parser produced output Lockstep cannot read: ${String(error)}` };
    }
    const problems = compiledProblems(text, expected, profiles);
    if (problems.length > 0) return { ok: false, message: problems.join("; ") };
    if (expected.mode === "enforce") return { ok: true, compiled: asWritten.stdout };
    const complain = await runParser(paths, [...COMPILE_ARGS, COMPLAIN_ARG, file], dir);
    if (!complain.ok) return { ok: false, message: parserComplaint(complain.stderr) };
    const modes = readCompiledPolicy(complain.stdout).map((p) => p.mode);
    if (modes.some((m) => m !== "complain"))
      return { ok: false, message: `apparmor_parser --Complain produced modes ${modes.join(", ")}` };
    return { ok: true, compiled: complain.stdout };
  });
}

/** Loads or replaces the profile in compiled form (`apparmor_parser --replace --binary`). */
export async function loadCompiledProfile(paths: AppArmorPaths, compiled: Uint8Array): Promise<void> {
  await withPolicyFile(compiled, async (file, dir) => {
    const result = await runParser(paths, ["--replace", "--binary", file], dir);
    if (!result.ok) throw new Error(parserComplaint(result.stderr));
  });
}

/**
 * Unloads a profile. `apparmor_parser --remove` reads only the profile's name from the policy it is
 * given, so an empty profile of that name is enough (the original text may be long gone). Quoted: the
 * name is one of Lockstep's object names, and quoting keeps it one token whatever it is.
 */
export async function removeProfile(paths: AppArmorPaths, name: string): Promise<void> {
  await withPolicyFile(`profile "${name}" {}\n`, async (file, dir) => {
    const result = await runParser(paths, ["--remove", file], dir);
    if (!result.ok) throw new Error(parserComplaint(result.stderr));
  });
}
