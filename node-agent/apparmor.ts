// AppArmor on this node: whether the kernel has it, loading and removing profiles with
// apparmor_parser, and what the kernel really has loaded (its profile list in securityfs).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

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

async function withPolicyFile<T>(text: string, action: (file: string) => Promise<T>): Promise<T> {
  // A private folder (mode 0700 from mkdtemp), removed afterwards: policy text never lands on the node's disk
  // outside the agent's own temporary space.
  const dir = await mkdtemp(join(tmpdir(), "lockstep-apparmor-"));
  try {
    const file = join(dir, "profile");
    await writeFile(file, text, { mode: 0o600 });
    return await action(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function parserError(error: unknown): Error {
  const stderr = (error as { stderr?: string }).stderr?.trim();
  return new Error(stderr ? stderr.split("\n").slice(0, 5).join("; ") : String(error));
}

/** Loads or replaces a profile (`apparmor_parser --replace`); throws with the parser's own message. */
export async function loadProfile(paths: AppArmorPaths, text: string): Promise<void> {
  await withPolicyFile(text, async (file) => {
    try {
      await run(paths.parser, ["--replace", file], { timeout: 60_000 });
    } catch (error) {
      throw parserError(error);
    }
  });
}

/**
 * Unloads a profile. `apparmor_parser --remove` reads only the profile's name from the policy it is
 * given, so an empty profile of that name is enough (the original text may be long gone).
 */
export async function removeProfile(paths: AppArmorPaths, name: string): Promise<void> {
  await withPolicyFile(`profile ${name} {}\n`, async (file) => {
    try {
      await run(paths.parser, ["--remove", file], { timeout: 60_000 });
    } catch (error) {
      throw parserError(error);
    }
  });
}
