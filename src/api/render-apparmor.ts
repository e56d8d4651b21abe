// From an AppArmorProfile spec to the policy text the agent hands to `apparmor_parser`. Pure; the
// agent owns running the parser. Structured specs are rendered from values the schema already
// restricted to safe tokens; raw policy passes through unchanged after the cheap checks below, and
// the agent has the parser judge the rest.

import type { AppArmorMode, AppArmorProfileSpec } from "./apparmor.ts";
import { declaresProfileName, FAMILY_PROTOCOLS, forbiddenIncludeLine } from "./apparmor.ts";
import { APPARMOR_PROFILE_KIND } from "./constants.ts";
import { appArmorKernelName, isValidProfileObjectName, profileVersion } from "./labels.ts";

export type AppArmorRendering = { ok: true; text: string } | { ok: false; message: string };

// Profiles run inside containers: paths can be outside the container's mount namespace view
// (attach_disconnected) and files can be deleted while open (mediate_deleted). Container runtimes'
// own default profiles set both for the same reason.
const BASE_FLAGS = ["attach_disconnected", "mediate_deleted"];

export function renderAppArmorProfile(name: string, spec: AppArmorProfileSpec): AppArmorRendering {
  if (!isValidProfileObjectName(name)) return failure(name, `invalid profile name ${JSON.stringify(name)}`);
  return spec.rawPolicy === undefined
    ? { ok: true, text: renderStructured(name, spec) }
    : checkRawPolicy(name, spec);
}

/**
 * The version label value of a rendered profile. The mode is part of it: a raw policy keeps its text
 * when only spec.mode changes, and the agent must load it again (apparmor_parser --Complain).
 */
export function appArmorProfileVersion(text: string, mode: AppArmorMode): string {
  return profileVersion(`${mode}\n${text}`);
}

function renderStructured(name: string, spec: AppArmorProfileSpec): string {
  const flags = spec.mode === "complain" ? [...BASE_FLAGS, "complain"] : BASE_FLAGS;
  const rules = [
    // `r` as well as `ix`: a script is read by its interpreter, and a binary needs mapping.
    ...(spec.executables ?? []).map((path) => `${path} rix,`),
    ...(spec.paths?.readOnly ?? []).map((path) => `${path} r,`),
    ...(spec.paths?.readWrite ?? []).map((path) => `${path} rw,`),
    ...(spec.paths?.writeOnly ?? []).map((path) => `${path} w,`),
    ...networkRules(spec.network),
    ...(spec.capabilities ?? []).map((capability) => `capability ${capability},`),
  ];
  return [
    "#include <tunables/global>",
    "",
    `profile ${appArmorKernelName(name)} flags=(${flags.join(",")}) {`,
    "  #include <abstractions/base>",
    ...[...new Set(rules)].map((rule) => `  ${rule}`),
    "}",
    "",
  ].join("\n");
}

/**
 * Protocols narrow the inet families only (AppArmor has no `network unix tcp`); other families are
 * allowed whole. Protocols without families allow that protocol over any family.
 */
function networkRules(network: AppArmorProfileSpec["network"]): string[] {
  const protocols = network?.protocols ?? [];
  const families = network?.families;
  if (families === undefined) return protocols.map((protocol) => `network ${protocol},`);
  return families.flatMap((family) => {
    const applicable = protocols.filter((protocol) => FAMILY_PROTOCOLS[family].includes(protocol));
    return applicable.length === 0
      ? [`network ${family},`]
      : applicable.map((protocol) => `network ${family} ${protocol},`);
  });
}

// A raw policy is handed to the node unchanged: a published profile that follows the rules loads as
// written. Only what is cheap and certain is checked here (the same checks as the CRD's CEL rules, so
// the API server, the controller and the CLI agree); what the policy really declares (how many
// profiles, their names, attachments and flags) is decided on the node by apparmor_parser itself, from
// the policy it compiled (node-agent/policy-check.ts).
function checkRawPolicy(name: string, spec: AppArmorProfileSpec): AppArmorRendering {
  const text = spec.rawPolicy ?? "";
  if (text.includes("\0")) return failure(name, "spec.rawPolicy: contains a NUL character");
  const include = forbiddenIncludeLine(text);
  if (include !== undefined)
    return failure(
      name,
      `spec.rawPolicy: line ${include.line}: ${JSON.stringify(include.text)}: may include only <tunables/...> and <abstractions/...> (node-local, quoted and absolute includes are refused)`,
    );
  const kernelName = appArmorKernelName(name);
  if (!declaresProfileName(text, kernelName))
    return failure(
      name,
      `spec.rawPolicy: must declare "profile ${kernelName} {" (or "profile "${kernelName}" {"): the profile's name in the kernel is "${kernelName}", the name pods give in localhostProfile`,
    );
  return { ok: true, text };
}

function failure(name: string, problem: string): AppArmorRendering {
  return { ok: false, message: `${APPARMOR_PROFILE_KIND} ${JSON.stringify(name)}: ${problem}` };
}
