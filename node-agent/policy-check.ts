// What the kernel would get from an AppArmorProfile, judged from apparmor_parser's own results rather
// than from a second reading of the text (DESIGN invariant 9): the files its preprocessor included
// (`-p` marks each with `##included <file>`) and the profiles it compiled (`-S`, read by
// compiled-policy.ts). Pure; node-agent/apparmor.ts runs the parser.
import { type AppArmorMode, isAllowedInclude } from "../src/api/apparmor.ts";
import type { CompiledProfile } from "./compiled-policy.ts";

/** Every file the preprocessor included, in order, as it names them (`<dir/file>` or `"file"`). */
export function includedFiles(preprocessed: string): string[] {
  return [...preprocessed.matchAll(/^##included (<[^>\n]*>|"[^"\n]*")$/gm)].map((m) => m[1] ?? "");
}

/**
 * "line N: <text>" for the first line of the policy that contains one of `needles`, so a refusal
 * points at what to change; a note when none does (the thing came from a variable or an included file).
 */
export function lineOf(text: string, needles: readonly string[]): string {
  const lines = text.split("\n");
  for (const [i, line] of lines.entries())
    if (needles.some((needle) => needle !== "" && line.includes(needle)))
      return `line ${i + 1}: ${JSON.stringify(line.trim())}`;
  return "not written literally in the policy (a variable or an included file)";
}

/** Problems with what the policy included; the standard abstractions include only each other. */
export function includeProblems(text: string, included: readonly string[]): string[] {
  return [...new Set(included)]
    .filter((target) => !isAllowedInclude(target))
    .map(
      (target) =>
        `${lineOf(text, [target.slice(1, -1)])}: includes ${target}; only <tunables/...> and <abstractions/...> may be included (node-local, quoted and absolute includes are refused)`,
    );
}

export interface CompiledExpectation {
  /** The object's kernel name (`lockstep.<name>`, appArmorKernelName): the one profile the policy may declare. */
  name: string;
  /** spec.mode: the policy's own flags may not set any other mode. */
  mode: AppArmorMode;
}

function headerNeedles(name: string): string[] {
  return [`profile ${name} `, `profile ${name}\t`, `profile ${name}{`, `profile "${name}"`];
}

/**
 * Problems with the compiled policy: exactly one profile, the object's kernel name, in the node's own
 * policy namespace, with no hat, child profile or attachment, in the mode spec.mode says. `profiles` come from a compile without
 * --Complain, so the policy's own flags show.
 */
export function compiledProblems(
  text: string,
  expected: CompiledExpectation,
  profiles: readonly CompiledProfile[],
): string[] {
  const { name, mode } = expected;
  const problems: string[] = [];
  for (const profile of profiles) {
    if (profile.namespace !== undefined)
      problems.push(
        `${lineOf(text, [`:${profile.namespace}:`])}: loads "${profile.name}" into the AppArmor policy namespace "${profile.namespace}": Lockstep loads profiles into the node's own namespace only; remove ":${profile.namespace}:"`,
      );
    const [parent = "", ...nested] = profile.name.split("//");
    if (nested.length > 0) {
      const what = profile.hat ? "hat" : "child profile";
      const child = nested.join("//");
      problems.push(
        `${lineOf(text, [`^${child}`, `profile ${child}`, `hat ${child}`])}: declares the ${what} "${profile.name}": Lockstep loads exactly one profile per object, without hats or child profiles`,
      );
    } else if (parent !== name) {
      problems.push(
        `${lineOf(text, [`profile ${parent}`, `profile "${parent}"`, parent])}: declares a second profile "${parent}": an AppArmorProfile loads exactly one profile, "${name}" (its kernel name); make it an object of its own`,
      );
    }
  }
  const own = profiles.find((p) => p.name === name && p.namespace === undefined);
  if (own === undefined) {
    problems.push(
      `declares no profile named "${name}": that is the object's kernel name, which pods give in localhostProfile`,
    );
    return problems;
  }
  if (own.attachment !== undefined || own.matchesExecutables)
    problems.push(
      `${lineOf(text, headerNeedles(name))}: the profile has an attachment${own.attachment ? ` (${own.attachment})` : ""}: the kernel would confine every process on the node that runs a matching program, not only the pods that name it; remove it (pods select the profile by name)`,
    );
  if (own.mode !== "enforce" && !(own.mode === "complain" && mode === "complain"))
    problems.push(
      `${lineOf(text, ["flags", `(${own.mode}`, own.mode])}: the profile's flags set mode ${own.mode}, but spec.mode is ${mode}: the mode comes from spec.mode alone (enforce or complain); remove the mode flag`,
    );
  return problems;
}
