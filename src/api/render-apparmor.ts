// From an AppArmorProfile spec to the policy text the agent hands to `apparmor_parser`. Pure; the
// agent owns running the parser. Structured specs are rendered from values the schema already
// restricted to safe tokens; raw policy is checked so that it can define only the profile its object
// is named for and can read no file but the system's tunables and abstractions.

import type { AppArmorProfileSpec } from "./apparmor.ts";
import { FAMILY_PROTOCOLS } from "./apparmor.ts";
import { APPARMOR_PROFILE_KIND } from "./constants.ts";
import { isValidProfileObjectName, profileVersion } from "./labels.ts";

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

/** The version label value of a rendered profile. */
export function appArmorProfileVersion(text: string): string {
  return profileVersion(text);
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
    `profile ${name} flags=(${flags.join(",")}) {`,
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

// The AppArmor lexer honours `include`, `#include` and `abi` anywhere a token may start, even in the
// middle of a line after a rule, so every such word is found wherever it is and must be a whole line
// of one of these allowed forms.
const FILE_DIRECTIVE = /(?<![A-Za-z0-9_/.@-])(?:include|abi)(?![A-Za-z0-9_])/g;
const ALLOWED_INCLUDE = /^#?include(?:\s+if\s+exists)?\s+<(?:tunables|abstractions)\/[A-Za-z0-9._/-]+>$/;
const ALLOWED_ABI = /^abi\s+<abi\/[A-Za-z0-9._-]+>\s*,$/;

function checkRawPolicy(name: string, spec: AppArmorProfileSpec): AppArmorRendering {
  const text = spec.rawPolicy ?? "";
  if (text.includes("\0")) return failure(name, "spec.rawPolicy: contains a NUL character");
  const directiveProblem = fileDirectiveProblem(text);
  if (directiveProblem !== undefined) return failure(name, `spec.rawPolicy: ${directiveProblem}`);
  const blocks = topLevelBlocks(text);
  if (typeof blocks === "string") return failure(name, `spec.rawPolicy: ${blocks}`);
  if (blocks.length !== 1)
    return failure(name, `spec.rawPolicy: must define exactly one top-level profile, found ${blocks.length}`);
  const [block] = blocks as [TopLevelBlock];
  const header = PROFILE_HEADER.exec(block.header);
  if (header === null)
    return failure(name, `spec.rawPolicy: the profile must be declared as "profile ${name} [flags=(...)] {"`);
  if (header[1] !== name)
    return failure(
      name,
      `spec.rawPolicy: declares profile ${JSON.stringify(header[1])}, must be ${JSON.stringify(name)}`,
    );
  const withMode = spec.mode === "complain" ? addComplainFlag(block.header) : block.header;
  return { ok: true, text: text.slice(0, block.headerStart) + withMode + text.slice(block.headerEnd) };
}

function fileDirectiveProblem(text: string): string | undefined {
  const lines = text.split("\n");
  let lineStart = 0;
  for (const line of lines) {
    FILE_DIRECTIVE.lastIndex = 0;
    if (FILE_DIRECTIVE.test(line)) {
      const directive = line.trim();
      if (!(ALLOWED_INCLUDE.test(directive) || ALLOWED_ABI.test(directive)) || directive.includes(".."))
        return `line ${lineNumber(text, lineStart)}: ${JSON.stringify(directive)}: only whole-line includes of <tunables/...> or <abstractions/...> and "abi <abi/...>," are allowed (the word include/abi may not appear elsewhere)`;
    }
    lineStart += line.length + 1;
  }
  return undefined;
}

function lineNumber(text: string, offset: number): number {
  return text.slice(0, offset).split("\n").length;
}

// `profile <name> [attachment] [flags=(...)]`, as written on the line that opens the block.
const PROFILE_HEADER = /^\s*profile\s+(\S+)(?:\s+\/\S*)?(?:\s+flags\s*=\s*\(([^)]*)\))?\s*$/;

interface TopLevelBlock {
  header: string;
  headerStart: number;
  headerEnd: number;
}

/**
 * The blocks at brace depth 0, each with the text on its opening line before the `{`. A `{` that
 * follows whitespace or `)` opens a block; one that follows anything else is a glob alternation
 * (`/etc/{a,b}`) or a variable (`@{HOME}`). Quoted strings and comments are skipped.
 */
function topLevelBlocks(text: string): TopLevelBlock[] | string {
  const blocks: TopLevelBlock[] = [];
  const stack: ("block" | "group")[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    const previous = i === 0 ? "\n" : (text[i - 1] ?? "\n");
    if (char === '"') {
      i = closingQuote(text, i);
      if (i === -1) return "unterminated quoted string";
    } else if (char === "#" && /[\s{},]/.test(previous)) {
      const end = text.indexOf("\n", i);
      i = end === -1 ? text.length : end;
    } else if (char === "{") {
      const kind = /[\s)]/.test(previous) ? "block" : "group";
      if (kind === "block" && !stack.includes("block")) {
        const headerStart = text.lastIndexOf("\n", i) + 1;
        blocks.push({ header: text.slice(headerStart, i), headerStart, headerEnd: i });
      }
      stack.push(kind);
    } else if (char === "}") {
      if (stack.pop() === undefined) return `unbalanced "}" at line ${lineNumber(text, i)}`;
    }
  }
  return stack.length === 0 ? blocks : 'unbalanced "{": a block is never closed';
}

function closingQuote(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === "\\") i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

function addComplainFlag(header: string): string {
  const match = PROFILE_HEADER.exec(header);
  const flags = match?.[2];
  if (flags === undefined) return `${header.trimEnd()} flags=(complain) `;
  const list = flags
    .split(/[\s,]+/)
    .filter((flag) => flag !== "" && flag !== "enforce" && flag !== "complain");
  return header.replace(/flags\s*=\s*\([^)]*\)/, `flags=(${[...list, "complain"].join(",")})`);
}

function failure(name: string, problem: string): AppArmorRendering {
  return { ok: false, message: `${APPARMOR_PROFILE_KIND} ${JSON.stringify(name)}: ${problem}` };
}
