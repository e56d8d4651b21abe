// AppArmor on this node: whether the kernel has it, loading and removing profiles with
// apparmor_parser, and what the kernel really has loaded (its profile list in securityfs).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CompiledProfile, readCompiledPolicy } from "./compiled-policy.ts";
import { BootIdSchema } from "./ownership-record.ts";
import {
  KERNEL_RUN_LIMITS,
  limitMessage,
  type ParserLimits,
  type ParserRun,
  runParser as runGuardedParser,
} from "./parser-runner.ts";
import {
  type CompiledExpectation,
  compiledProblems,
  includedFiles,
  includeProblems,
} from "./policy-check.ts";

export interface AppArmorPaths {
  /** securityfs mount point; the kernel's AppArmor interface is its `apparmor/` folder. */
  securityfs: string;
  /** The module parameter that says whether AppArmor is enabled (`Y`). */
  enabledParameter: string;
  /** The parser command (Debian: /usr/sbin/apparmor_parser). */
  parser: string;
  /** The kernel's boot id: what the kernel has loaded is this boot's (ownership-record.ts). */
  bootId: string;
}

export const DEFAULT_APPARMOR_PATHS: AppArmorPaths = {
  securityfs: "/sys/kernel/security",
  enabledParameter: "/sys/module/apparmor/parameters/enabled",
  parser: "apparmor_parser",
  bootId: "/proc/sys/kernel/random/boot_id",
};

/**
 * This boot's id. Without it the agent cannot tell whether its record's loaded profiles are still its
 * own, so an unreadable or malformed one stops the agent rather than being guessed.
 */
export async function readBootId(paths: AppArmorPaths): Promise<string> {
  const text = (await readFile(paths.bootId, "utf8")).trim();
  const parsed = BootIdSchema.safeParse(text);
  if (!parsed.success)
    throw new Error(`${paths.bootId}: not a boot id: ${JSON.stringify(text.slice(0, 64))}`);
  return parsed.data;
}

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

/** Kernel names of the profiles the kernel has loaded (`<name> (<mode>)` per line), Lockstep's or not. */
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

/** One guarded run (parser-runner.ts: limits, killed with the agent). */
function runParser(
  paths: AppArmorPaths,
  args: string[],
  cwd: string,
  options: JudgeOptions = {},
): Promise<ParserRun> {
  return runGuardedParser(paths.parser, args, { cwd, ...options });
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

/** The parser's version line (`AppArmor parser version 3.0.8`): a refusal is remembered per version. */
export async function parserVersion(paths: AppArmorPaths): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "lockstep-apparmor-"));
  try {
    const result = await runParser(paths, ["--version"], dir, { limits: KERNEL_RUN_LIMITS });
    const first = result.stdout.toString("utf8").split("\n")[0]?.trim() ?? "";
    if (!result.ok || first === "")
      throw new Error(`apparmor_parser --version: ${result.notJudged ?? parserComplaint(result.stderr)}`);
    return first;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * How long a refusal holds: `lasting` for a verdict on the text itself (the parser's complaint, a
 * problem with what it compiled, its memory or CPU-time limit), which the same parser gives the same
 * text every time; `this-run` for the wall-clock limit, which a busy node may hit with a policy that is
 * fine; `none` when the parser could not be run at all, which says nothing about the policy.
 */
export type RefusalDuration = "lasting" | "this-run" | "none";

export type PolicyJudgement =
  | { ok: true; compiled: Buffer }
  | { ok: false; message: string; duration: RefusalDuration };

export interface JudgeOptions {
  limits?: ParserLimits;
  /** Stops the parser (its whole process group) at once, as the agent stops. */
  signal?: AbortSignal;
}

function refused(message: string): PolicyJudgement {
  return { ok: false, message, duration: "lasting" };
}

/** A failed run's judgement: its limit, or that it could not run, or the parser's complaint. */
function failedRun(run: ParserRun, limits: ParserLimits | undefined): PolicyJudgement {
  if (run.notJudged !== undefined) return { ok: false, message: run.notJudged, duration: "none" };
  if (run.exceeded !== undefined)
    return {
      ok: false,
      message: limitMessage(run.exceeded, limits),
      duration: run.exceeded === "time" ? "this-run" : "lasting",
    };
  return refused(parserComplaint(run.stderr));
}

/** How the agent has apparmor_parser compile a policy for this kernel without loading it (`-Q -K -S`). */
export const COMPILE_ARGS = ["--skip-kernel-load", "--skip-cache", "--stdout"] as const;
/** Added to COMPILE_ARGS for spec.mode complain. */
export const COMPLAIN_ARG = "--Complain";

/**
 * Has apparmor_parser judge a profile and compile it for this kernel: the files it included must be
 * standard abstractions and tunables, and what it compiled must be exactly one profile named with the
 * object's kernel name (`lockstep.<name>`), without attachment, hat or child, in spec.mode. On success the compiled bytes are what
 * loadCompiledProfile hands the kernel, so what was judged is what is loaded.
 */
export async function judgeAndCompile(
  paths: AppArmorPaths,
  text: string,
  expected: CompiledExpectation,
  options: JudgeOptions = {},
): Promise<PolicyJudgement> {
  return withPolicyFile(text, async (file, dir) => {
    const preprocessed = await runParser(paths, ["--preprocess", file], dir, options);
    if (preprocessed.notJudged !== undefined || preprocessed.exceeded !== undefined)
      return failedRun(preprocessed, options.limits);
    const includes = includeProblems(text, includedFiles(preprocessed.stdout.toString("utf8")));
    if (includes.length > 0) return refused(includes.join("; "));
    if (!preprocessed.ok) return failedRun(preprocessed, options.limits);
    // Compiled as written first (no --Complain), so the policy's own mode flags show.
    const asWritten = await runParser(paths, [...COMPILE_ARGS, file], dir, options);
    if (!asWritten.ok) return failedRun(asWritten, options.limits);
    let profiles: CompiledProfile[];
    try {
      profiles = readCompiledPolicy(asWritten.stdout);
    } catch (error) {
      return refused(`apparmor_parser produced output Lockstep cannot read: ${String(error)}`);
    }
    const problems = compiledProblems(text, expected, profiles);
    if (problems.length > 0) return refused(problems.join("; "));
    if (expected.mode === "enforce") return { ok: true, compiled: asWritten.stdout };
    const complain = await runParser(paths, [...COMPILE_ARGS, COMPLAIN_ARG, file], dir, options);
    if (!complain.ok) return failedRun(complain, options.limits);
    const modes = readCompiledPolicy(complain.stdout).map((p) => p.mode);
    if (modes.some((m) => m !== "complain"))
      return refused(`apparmor_parser --Complain produced modes ${modes.join(", ")}`);
    return { ok: true, compiled: complain.stdout };
  });
}

/** Loads or replaces the profile in compiled form (`apparmor_parser --replace --binary`). */
export async function loadCompiledProfile(paths: AppArmorPaths, compiled: Uint8Array): Promise<void> {
  await withPolicyFile(compiled, async (file, dir) => {
    const result = await runParser(paths, ["--replace", "--binary", file], dir, {
      limits: KERNEL_RUN_LIMITS,
    });
    if (!result.ok) throw new Error(result.notJudged ?? parserComplaint(result.stderr));
  });
}

/**
 * Unloads a profile by its kernel name (`lockstep.<object name>`). `apparmor_parser --remove` reads
 * only the profile's name from the policy it is given, so an empty profile of that name is enough (the
 * original text may be long gone). Quoted: the name is made of a Lockstep object name, and quoting
 * keeps it one token whatever it is.
 */
export async function removeProfile(paths: AppArmorPaths, kernelName: string): Promise<void> {
  await withPolicyFile(`profile "${kernelName}" {}\n`, async (file, dir) => {
    const result = await runParser(paths, ["--remove", file], dir, { limits: KERNEL_RUN_LIMITS });
    if (!result.ok) throw new Error(result.notJudged ?? parserComplaint(result.stderr));
  });
}
