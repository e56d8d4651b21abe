// The kernel as the authority on compiled AppArmor policy: compiles policies with the agent's own
// apparmor_parser arguments on the host (no AppArmor in its kernel: ABI v5) and in the AppArmor guest
// (ABI v7), has the guest's kernel load each result and report what it made of it, and puts the kernel's
// account in the terms of the agent's reader (node-agent/compiled-policy.ts) so the two can be compared
// field by field. The guest's side is a shell script: forking node for each of some 300 parser runs and
// probes costs minutes under User-Mode Linux, forking a shell a fraction of that.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { COMPILE_ARGS, COMPLAIN_ARG } from "../../node-agent/apparmor.ts";
import { type CompiledProfile, readCompiledPolicy } from "../../node-agent/compiled-policy.ts";
import { type AppArmorGuest, shellQuote } from "./uml.ts";

const PARSER = "/usr/sbin/apparmor_parser";
/** What the kernel made of one compiled policy. */
export interface KernelObservation {
  id: string;
  /** apparmor_parser --replace --binary's exit status, and what it said. */
  loadStatus: number;
  loadError: string;
  /** The kernel's profile list (securityfs apparmor/profiles), `[:ns:]name (mode)` per line. */
  listing: string[];
  /** Each profile's apparmorfs `attach` file, by its listed name. */
  attach: Record<string, string>;
  /** Per child profile: whether a process confined by its parent could change into it (a hat). */
  hats: Record<string, boolean | null>;
  /** The label of a program run from the case's `exec` path, when it has one. */
  execLabel: string | undefined;
  /** The profile list after unloading everything again. */
  leftAfterRemoval: string[];
}

/** One profile in the reader's terms, as the reader or the kernel tells it. */
export interface ProfileAccount {
  name: string;
  namespace: string | undefined;
  mode: string;
  attachment: string | undefined;
  matchesExecutables: boolean;
  /** For a child profile (`parent//child`): whether it is a hat; null for a profile of its own. */
  hat: boolean | null;
}

/**
 * The kernel's account. apparmorfs's `attach` file (apparmorfs.c, seq_profile_attach_show) holds the
 * attachment string, `<unknown>` for an exec-match DFA without one, or else the profile's own name (a
 * child's own part of it);
 * the kernel also attaches a profile without a DFA whose name equals an executable's path (domain.c,
 * __attach_match), which only a name starting with `/` can.
 */
export function kernelAccount(observation: KernelObservation): ProfileAccount[] {
  return observation.listing.map((line) => {
    const match = /^(?::([^:]*):(?:\/\/)?)?(.*) \(([^()]*)\)$/.exec(line);
    if (!match) throw new Error(`unexpected line in the kernel's profile list: ${JSON.stringify(line)}`);
    const [, namespace, name = "", mode = ""] = match;
    const key = namespace === undefined ? name : `:${namespace}://${name}`;
    // The file names a child by its own part of the name (`hat` of `web//hat`).
    const own = name.split("//").at(-1) ?? name;
    const attach = observation.attach[key] ?? own;
    return {
      name,
      namespace,
      mode,
      attachment: attach !== "<unknown>" && attach !== own ? attach : undefined,
      matchesExecutables: attach !== own || name.startsWith("/"),
      hat: name.includes("//") ? (observation.hats[key] ?? null) : null,
    };
  });
}

/** The reader's account, in the same terms. */
export function readerAccount(profiles: readonly CompiledProfile[]): ProfileAccount[] {
  return profiles.map((p) => ({
    name: p.name,
    namespace: p.namespace,
    mode: p.mode,
    attachment: p.attachment === p.name ? undefined : p.attachment,
    matchesExecutables: p.matchesExecutables,
    hat: p.name.includes("//") ? p.hat : null,
  }));
}

/** In the kernel list's order-free form. */
export function sortedAccounts(accounts: readonly ProfileAccount[]): ProfileAccount[] {
  const key = (a: ProfileAccount) => `${a.namespace ?? ""}:${a.name}`;
  return [...accounts].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

export interface PolicyCase {
  id: string;
  text: string;
  /** A program path the policy's attachment matches: the kernel reports whose label it runs under. */
  exec?: string;
}

export type CompiledForm = "host" | "host-complain" | "guest" | "guest-complain";
export const COMPILED_FORMS: readonly CompiledForm[] = ["host", "host-complain", "guest", "guest-complain"];

export interface CompiledCase {
  id: string;
  form: CompiledForm;
  bytes: Buffer;
  kernel: KernelObservation;
}

/** apparmor_parser on the host, with the agent's arguments. */
export function compileOnHost(policyFile: string, complain: boolean): Buffer {
  return execFileSync(PARSER, [...COMPILE_ARGS, ...(complain ? [COMPLAIN_ARG] : []), policyFile], {
    stdio: ["ignore", "pipe", "ignore"],
  });
}

/**
 * The guest's side: compiles in the guest with the agent's arguments, then for each compiled policy loads
 * it, reports the kernel's profile list, each profile's apparmorfs `attach` file, whether a process
 * confined by a child's parent can change into the child (only a hat allows it) and the label a program
 * from the `exec` path runs under, unloads everything and reports what is left. One line per fact.
 */
const OBSERVER_FUNCTIONS = `
A=/sys/kernel/security/apparmor
cd /tmp
each() { while IFS= read -r line; do printf '%s %s\\n' "$1" "$line"; done < "$2"; }
walk() {
  for d in "$1"/*; do
    [ -d "$d" ] || continue
    read -r name < "$d/name"; read -r attach < "$d/attach"
    printf 'attach %s%s\\t%s\\n' "$2" "$name" "$attach"
    walk "$d/profiles" "$2$name//"
  done
}
observe() {
  id=$1 compiled=$2 exec=$3; shift 3
  echo "=== $id"
  apparmor_parser --replace --binary "$compiled" 2> err; echo "load $?"; each err err
  each list $A/profiles
  walk $A/policy/profiles ""
  for ns in $A/policy/namespaces/*; do [ -d "$ns" ] && walk "$ns/profiles" ":\${ns##*/}://"; done
  for child; do
    aa-exec -p "\${child%%//*}" -- /bin/sh -c 'echo started; echo "changehat 1^$1" > /proc/self/attr/current && echo changed' sh "\${child#*//}" > out 2> /dev/null
    r=null; while read -r said; do case $said in started) r=false;; changed) r=true;; esac; done < out
    printf 'hat %s\\t%s\\n' "$child" $r
  done
  if [ -n "$exec" ]; then "$exec" cat /proc/self/attr/current > out 2> /dev/null; read -r label < out; echo "exec $label"; fi
  for d in $A/policy/profiles/*; do [ -d "$d" ] && read -r name < "$d/name" && printf '%s' "$name" > $A/.remove; done
  for ns in $A/policy/namespaces/*; do [ -d "$ns" ] && printf ':%s:' "\${ns##*/}" > $A/.remove; done
  each left $A/profiles
}
`;

/**
 * About 0.3 s per parser run in the guest (compile or load) and 0.1 s per other program, measured on a
 * loaded 2-core machine (load average 20): some 250 runs for the reader's test.
 */
export const OBSERVER_TIMEOUT_MS = 300_000;

/** The guest's lines, back into one observation per compiled policy. */
export function parseObservations(output: string): KernelObservation[] {
  const observations: KernelObservation[] = [];
  for (const line of output.split("\n")) {
    const space = line.indexOf(" ");
    const [word, rest] = [line.slice(0, space), line.slice(space + 1)];
    if (word === "===") {
      observations.push({
        id: rest,
        loadStatus: -1,
        loadError: "",
        listing: [],
        attach: {},
        hats: {},
        execLabel: undefined,
        leftAfterRemoval: [],
      });
      continue;
    }
    const o = observations.at(-1);
    if (!o) continue;
    const [key = "", value = ""] = rest.split("\t");
    if (word === "load") o.loadStatus = Number(rest);
    else if (word === "err") o.loadError += `${rest}\n`;
    else if (word === "list") o.listing.push(rest);
    else if (word === "attach") o.attach[key] = value;
    else if (word === "hat") o.hats[key] = value === "null" ? null : value === "true";
    else if (word === "exec") o.execLabel = rest || "(denied)";
    else if (word === "left") o.leftAfterRemoval.push(rest);
  }
  return observations.map((o) => ({ ...o, loadError: o.loadError.trim() }));
}

/**
 * Each case compiled in the four forms, each loaded by the guest's kernel, in one boot. Children to
 * probe for hats are the ones the host's compile names (the kernel's list shows any the reader missed).
 */
export async function compileAndObserve(
  guest: AppArmorGuest,
  cases: readonly PolicyCase[],
): Promise<CompiledCase[]> {
  const dir = join(guest.dir, "policies");
  mkdirSync(dir, { recursive: true });
  const file = (id: string, form: CompiledForm | "text") => join(dir, `${id}.${form}`);
  const q = shellQuote;
  const script = [OBSERVER_FUNCTIONS];
  const observe: string[] = [];
  for (const { id, text, exec } of cases) {
    writeFileSync(file(id, "text"), text);
    writeFileSync(file(id, "host"), compileOnHost(file(id, "text"), false));
    writeFileSync(file(id, "host-complain"), compileOnHost(file(id, "text"), true));
    for (const complain of [false, true])
      script.push(
        [PARSER, ...COMPILE_ARGS, ...(complain ? [COMPLAIN_ARG] : []), file(id, "text")].map(q).join(" ") +
          ` > ${q(file(id, complain ? "guest-complain" : "guest"))} 2> /dev/null`,
      );
    const children = readCompiledPolicy(readFileSync(file(id, "host")))
      .map((p) => p.name)
      .filter((n) => n.includes("//"));
    for (const form of COMPILED_FORMS)
      observe.push(["observe", `${id}.${form}`, file(id, form), exec ?? "", ...children].map(q).join(" "));
  }
  const scriptFile = join(dir, "observe.sh");
  writeFileSync(scriptFile, [...script, ...observe, ""].join("\n"));
  const run = await guest.run(["/bin/sh", scriptFile], { timeoutMs: OBSERVER_TIMEOUT_MS });
  if (run.status !== 0)
    throw new Error(
      `the kernel observer failed (status ${run.status}):\n${run.stderr}\n${run.console.slice(-2000)}`,
    );
  return parseObservations(run.stdout).map((kernel) => {
    const dot = kernel.id.lastIndexOf(".");
    const id = kernel.id.slice(0, dot);
    const form = kernel.id.slice(dot + 1) as CompiledForm;
    return { id, form, bytes: readFileSync(file(id, form)), kernel };
  });
}
