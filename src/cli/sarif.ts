// lint's findings as a SARIF 2.1.0 log (OASIS), the format code-scanning tools (GitHub code scanning,
// GitLab, Azure DevOps) read to show findings inline: one run, the rules in tool.driver.rules, each
// result with its rule, level, message and file location (and line, when lint found it). Pure.
import { isAbsolute, relative } from "node:path";
import { ALL_LINT_RULES, type LintRule, RULE_SUMMARIES } from "./findings.ts";
import { STDIN_NAME } from "./inputs.ts";
import type { LabelledFinding } from "./report.ts";
import { CLI_VERSION } from "./version.ts";

export const SARIF_VERSION = "2.1.0";
export const SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json";
const DOCS = "https://github.com/lockstep-dev/lockstep/blob/main/docs/cli.md#lint";

/** A file name as a relative URI reference (SARIF's artifactLocation.uri): forward slashes, escaped. */
export function artifactUri(file: string, cwd = "/"): string {
  if (file === STDIN_NAME) return "stdin";
  return (isAbsolute(file) ? relative(cwd, file) : file)
    .replace(/\\/g, "/")
    .replace(/^\.\//, "")
    .split("/")
    .map((part) => encodeURIComponent(part))
    .join("/");
}

/** `cwd`: what absolute file names are made relative to (code scanning matches paths from the repository root). */
export function sarifLog(findings: readonly LabelledFinding[], cwd = "/") {
  const ruleIndex = new Map<LintRule, number>(ALL_LINT_RULES.map((rule, i) => [rule, i]));
  return {
    $schema: SARIF_SCHEMA,
    version: SARIF_VERSION,
    runs: [
      {
        tool: {
          driver: {
            name: "lockstep",
            version: CLI_VERSION,
            informationUri: DOCS,
            rules: ALL_LINT_RULES.map((id) => ({
              id,
              name: id,
              shortDescription: { text: RULE_SUMMARIES[id] },
              helpUri: DOCS,
            })),
          },
        },
        results: findings.map((f) => ({
          ruleId: f.rule,
          ruleIndex: ruleIndex.get(f.rule),
          level: f.severity,
          message: { text: `${f.path}: ${f.message}` },
          locations: [
            {
              physicalLocation: {
                artifactLocation: { uri: artifactUri(f.file, cwd) },
                ...(f.line === undefined ? {} : { region: { startLine: f.line } }),
              },
              logicalLocations: [{ fullyQualifiedName: f.path, kind: "member" }],
            },
          ],
          properties: { profile: f.profile, document: f.document, path: f.path, fix: f.fix },
        })),
      },
    ],
  };
}
