// The kernel half of `apparmor_parser --replace --binary` for fake-apparmor-parser.sh: puts each
// profile of a compiled policy into the fake securityfs list as `<name> (<mode>)`, replacing a profile
// of the same name, as the kernel's .replace interface does. Reads the policy with the agent's own
// reader (node-agent/compiled-policy.ts), which compiled-policy.test.ts checks against the real
// parser's own account of the same policies (-N names, -d modes).
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { readCompiledPolicy } from "../../node-agent/compiled-policy.ts";

const [profilesFile, policyFile] = process.argv.slice(2);
if (!profilesFile || !policyFile) throw new Error("usage: fake-kernel-load.ts PROFILES_FILE POLICY_FILE");
const loaded = readCompiledPolicy(readFileSync(policyFile));
const names = new Set(loaded.map((p) => p.name));
const kept = readFileSync(profilesFile, "utf8")
  .split("\n")
  .filter((line) => line !== "" && !names.has(line.replace(/ \([a-z]+\)$/, "")));
const lines = [...kept, ...loaded.map((p) => `${p.name} (${p.mode})`)];
writeFileSync(`${profilesFile}.new`, lines.map((l) => `${l}\n`).join(""));
renameSync(`${profilesFile}.new`, profilesFile);
