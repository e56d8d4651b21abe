// The AppArmorProfile API. A profile is either described structurally (executables, paths, network,
// capabilities), which Lockstep renders into AppArmor policy, or given as expert raw policy text.
// Structured values are spliced into policy text, so each one is validated to a character set in
// which it can only ever be the single token it claims to be: no newline, comma, brace, quote or
// comment can reach the rendered profile.

import * as z from "zod";
import {
  NodeSelectorSchema,
  ObjectMetaSchema,
  oneOf,
  type Parsed,
  ProfileStatusSchema,
  parseObject,
  parseSpec,
} from "./common.ts";
import { API_VERSION, APPARMOR_PROFILE_KIND } from "./constants.ts";
import { LIMITS } from "./limits.ts";

// Absolute paths with AppArmor's simple globs (`*`, `**`, `?`). Left out on purpose: whitespace and
// quotes (token boundaries), `,` (rule terminator), `{` `}` (alternation, blocks and `@{variables}`),
// `#` (comments), `[` `]` `^` `\` and the rest, which a profile author can still use in rawPolicy.
export const PROFILE_PATH_PATTERN = "^/[A-Za-z0-9._\\-/*?+=:@~%]*$";
const PROFILE_PATH = new RegExp(PROFILE_PATH_PATTERN);
const PROFILE_PATH_MAX = LIMITS.pathLength;

export const ProfilePathSchema = z
  .string()
  .max(PROFILE_PATH_MAX)
  .refine((path) => PROFILE_PATH.test(path), {
    error: (issue) =>
      `invalid path ${JSON.stringify(issue.input)}: must be absolute and use only letters, digits, . _ - / * ? + = : @ ~ % (put anything else in rawPolicy)`,
  });

export const NETWORK_FAMILIES = ["inet", "inet6", "unix", "netlink", "packet"] as const;
export const NETWORK_PROTOCOLS = ["tcp", "udp", "icmp"] as const;
export type NetworkFamily = (typeof NETWORK_FAMILIES)[number];
export type NetworkProtocol = (typeof NETWORK_PROTOCOLS)[number];

/** Which protocols AppArmor accepts with each address family (`network inet6 icmp` is an error). */
export const FAMILY_PROTOCOLS: Readonly<Record<NetworkFamily, readonly NetworkProtocol[]>> = {
  inet: ["tcp", "udp", "icmp"],
  inet6: ["tcp", "udp"],
  unix: [],
  netlink: [],
  packet: [],
};

/** capabilities(7), as AppArmor spells them: lower case, without CAP_. */
export const LINUX_CAPABILITIES = [
  "chown",
  "dac_override",
  "dac_read_search",
  "fowner",
  "fsetid",
  "kill",
  "setgid",
  "setuid",
  "setpcap",
  "linux_immutable",
  "net_bind_service",
  "net_broadcast",
  "net_admin",
  "net_raw",
  "ipc_lock",
  "ipc_owner",
  "sys_module",
  "sys_rawio",
  "sys_chroot",
  "sys_ptrace",
  "sys_pacct",
  "sys_admin",
  "sys_boot",
  "sys_nice",
  "sys_resource",
  "sys_time",
  "sys_tty_config",
  "mknod",
  "lease",
  "audit_write",
  "audit_control",
  "setfcap",
  "mac_override",
  "mac_admin",
  "syslog",
  "wake_alarm",
  "block_suspend",
  "audit_read",
  "perfmon",
  "bpf",
  "checkpoint_restore",
] as const;

export const AppArmorNetworkSchema = z
  .strictObject({
    families: z.array(oneOf(NETWORK_FAMILIES, "network family")).optional(),
    protocols: z.array(oneOf(NETWORK_PROTOCOLS, "network protocol")).optional(),
  })
  .superRefine((network, ctx) => {
    // Protocols narrow the inet families; a family they leave with nothing allowed is a mistake.
    if (network.protocols === undefined || network.protocols.length === 0) return;
    for (const [i, family] of (network.families ?? []).entries()) {
      const allowed = FAMILY_PROTOCOLS[family];
      if (allowed.length > 0 && !network.protocols.some((protocol) => allowed.includes(protocol)))
        ctx.addIssue({
          code: "custom",
          path: ["families", i],
          message: `none of the protocols (${network.protocols.join(", ")}) applies to ${family}; ${family} allows ${allowed.join(", ")}`,
        });
    }
  });
export type AppArmorNetwork = z.infer<typeof AppArmorNetworkSchema>;

export const AppArmorPathsSchema = z.strictObject({
  readOnly: z.array(ProfilePathSchema).max(LIMITS.pathsPerList).optional(),
  readWrite: z.array(ProfilePathSchema).max(LIMITS.pathsPerList).optional(),
  writeOnly: z.array(ProfilePathSchema).max(LIMITS.pathsPerList).optional(),
});
export type AppArmorPaths = z.infer<typeof AppArmorPathsSchema>;

export const APPARMOR_MODES = ["enforce", "complain"] as const;
export const DEFAULT_APPARMOR_MODE = "enforce" satisfies (typeof APPARMOR_MODES)[number];
export type AppArmorMode = (typeof APPARMOR_MODES)[number];

// What a raw policy may include: the system's tunables and abstractions, nothing node-local
// (`local/...`), quoted, relative or absolute (DESIGN invariant 9). One definition serves the CRD's CEL
// rule, the renderer (controller and CLI) and the agent, which checks every file apparmor_parser
// really included against isAllowedInclude.
export const ALLOWED_INCLUDE_DIRS = ["tunables", "abstractions"] as const;

/** An include target as apparmor_parser reports it: `<dir/file>` (search path) or `"file"`. */
export function isAllowedInclude(target: string): boolean {
  const inner = /^<([^<>]+)>$/.exec(target)?.[1];
  if (inner === undefined || inner.split("/").includes("..")) return false;
  return ALLOWED_INCLUDE_DIRS.some((dir) => inner.startsWith(`${dir}/`) && inner.length > dir.length + 1);
}

/**
 * Regex alternatives (escape sequences as text, never raw newlines, so the pattern can sit inside a CEL
 * string literal) matching the start of any string that differs from every one of `prefixes`.
 */
function divergesFrom(prefixes: readonly string[], prefix = ""): string[] {
  const next = [
    ...new Set(prefixes.filter((p) => p.length > prefix.length).map((p) => p.charAt(prefix.length))),
  ];
  if (next.length === 0) return [];
  return [
    String.raw`${prefix}[^${next.join("")}>\n]`,
    ...next.flatMap((c) =>
      divergesFrom(
        prefixes.filter((p) => p.startsWith(prefix + c)),
        prefix + c,
      ),
    ),
  ];
}

/**
 * A line holding an include directive whose target is quoted, a path (`/`, `.`), or in `<...>` but not
 * `<tunables/...>` or `<abstractions/...>`, or climbing out with `..`. (A bare word is resolved against
 * the agent's empty private folder, where it finds nothing.) Written for RE2 (CEL) and JavaScript alike, so no lookaround. The lexer honours
 * `include` and `#include` wherever a token may start, also after a rule on the same line; text after
 * a `#` that is not `#include` is a comment, so a comment that mentions "include <local/x>" passes. An
 * include hidden behind a `#` inside a quoted string on the same line escapes this cheap check; the
 * agent catches it from the parser's own list of included files.
 */
export const FORBIDDEN_INCLUDE_PATTERN = [
  String.raw`(^|\n)([^#\n]*[ \t,{}])?#?include[ \t]+(if[ \t]+exists[ \t]+)?`,
  String.raw`(["/.]|<(${divergesFrom(ALLOWED_INCLUDE_DIRS.map((d) => `${d}/`)).join("|")})|<[^>\n]*[.][.])`,
].join("");
const FORBIDDEN_INCLUDE = new RegExp(FORBIDDEN_INCLUDE_PATTERN);

/** The first line (1-based) with a forbidden include, and its text; undefined when there is none. */
export function forbiddenIncludeLine(text: string): { line: number; text: string } | undefined {
  const match = FORBIDDEN_INCLUDE.exec(text);
  if (match === null) return undefined;
  const start = match.index + (match[1] ?? "").length;
  const end = text.indexOf("\n", start);
  return {
    line: text.slice(0, start).split("\n").length,
    text: text.slice(start, end === -1 ? undefined : end).trim(),
  };
}

/**
 * Whether a raw policy declares the profile its object names (`profile <name> ` or `profile "<name>"`),
 * the same test as the CRD's object rule. The agent then checks with apparmor_parser that it declares
 * only that one.
 */
export function declaresProfileName(text: string, name: string): boolean {
  return text.includes(`profile ${name}`) || text.includes(`profile "${name}"`);
}

const STRUCTURED_FIELDS = ["executables", "paths", "network", "capabilities"] as const;

export const AppArmorProfileSpecSchema = z
  .strictObject({
    /** Programs the confined process may run, inheriting this profile (AppArmor `ix`). */
    executables: z.array(ProfilePathSchema).max(LIMITS.pathsPerList).optional(),
    paths: AppArmorPathsSchema.optional(),
    network: AppArmorNetworkSchema.optional(),
    capabilities: z.array(oneOf(LINUX_CAPABILITIES, "capability")).max(LIMITS.capabilities).optional(),
    /** A complete profile in AppArmor's own language, for what the structured form cannot say. */
    rawPolicy: z.string().min(1).max(LIMITS.rawPolicyBytes).optional(),
    mode: oneOf(APPARMOR_MODES, "mode").default(DEFAULT_APPARMOR_MODE),
    nodeSelector: NodeSelectorSchema.optional(),
    disabled: z.boolean().optional(),
  })
  .superRefine((spec, ctx) => {
    const paths = [
      ...(spec.executables ?? []),
      ...(spec.paths?.readOnly ?? []),
      ...(spec.paths?.readWrite ?? []),
      ...(spec.paths?.writeOnly ?? []),
    ];
    if (paths.reduce((n, path) => n + path.length, 0) > LIMITS.policyPathBytes)
      ctx.addIssue({
        code: "custom",
        path: ["paths"],
        message: `at most ${LIMITS.policyPathBytes} characters of paths in executables and paths together: use globs, or a rawPolicy`,
      });
    if (spec.rawPolicy === undefined) return;
    for (const field of STRUCTURED_FIELDS)
      if (spec[field] !== undefined)
        ctx.addIssue({
          code: "custom",
          path: [field],
          message: "cannot be combined with rawPolicy: give either the structured fields or rawPolicy",
        });
  });
export type AppArmorProfileSpec = z.infer<typeof AppArmorProfileSpecSchema>;
export type AppArmorProfileSpecInput = z.input<typeof AppArmorProfileSpecSchema>;

export const AppArmorProfileStatusSchema = ProfileStatusSchema;
export type AppArmorProfileStatus = z.infer<typeof AppArmorProfileStatusSchema>;

export const AppArmorProfileSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(APPARMOR_PROFILE_KIND),
  metadata: ObjectMetaSchema,
  spec: AppArmorProfileSpecSchema,
  status: AppArmorProfileStatusSchema.optional(),
});
export type AppArmorProfile = z.infer<typeof AppArmorProfileSchema>;

export function parseAppArmorProfileSpec(name: string, input: unknown): Parsed<AppArmorProfileSpec> {
  return parseSpec(AppArmorProfileSpecSchema, APPARMOR_PROFILE_KIND, name, input);
}

export function parseAppArmorProfile(input: unknown): Parsed<AppArmorProfile> {
  return parseObject(AppArmorProfileSchema, APPARMOR_PROFILE_KIND, input);
}
