// Runs INSIDE the AppArmor guest (uml.ts): the agent's own AppArmor code (node-agent/apparmor.ts:
// detection, judge and compile, load, read-back, replace, remove) against the guest's real securityfs,
// and what the kernel then does to a process confined by the loaded profile. Prints one JSON object
// with every observation; apparmor-agent-kernel.test.ts judges them.
// Usage: node guest-agent-apparmor.ts <scenario.json>   (scenario: { name, text, hostile: {id: text} })
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import {
  DEFAULT_APPARMOR_PATHS,
  detectAppArmor,
  judgeAndCompile,
  loadCompiledProfile,
  loadedProfiles,
  removeProfile,
} from "../../node-agent/apparmor.ts";

const paths = DEFAULT_APPARMOR_PATHS;
const scenario: { name: string; text: string; hostile: Record<string, string> } = JSON.parse(
  readFileSync(process.argv[2] ?? "", "utf8"),
);
const { name, text } = scenario;
const result: Record<string, unknown> = {};

const listing = () =>
  readFileSync("/sys/kernel/security/apparmor/profiles", "utf8").split("\n").filter(Boolean);
const mark = { n: 0 };
/** The kernel's audit lines for this profile since the last call. */
function auditLines(): string[] {
  const lines = execFileSync("dmesg", { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(`profile="${name}"`) && l.includes("apparmor="));
  const fresh = lines.slice(mark.n);
  mark.n = lines.length;
  return fresh.map(
    (l) => /apparmor="(\w+)" operation="(\w+)".* name="([^"]*)"/.exec(l)?.slice(1).join(" ") ?? l,
  );
}
/** cat FILE under the profile: its exit status (output to /dev/null, which abstractions/base allows). */
function confinedCat(file: string): number | null {
  return spawnSync("/bin/sh", [
    "-c",
    `aa-exec -p "$1" -- /usr/bin/cat "$2" > /dev/null 2>&1`,
    "sh",
    name,
    file,
  ]).status;
}

result.detected = await detectAppArmor(paths);
result.loadedAtBoot = [...(await loadedProfiles(paths))];
auditLines();

for (const mode of ["enforce", "complain"] as const) {
  const judged = await judgeAndCompile(paths, text, { name, mode });
  if (!judged.ok) {
    result[mode] = { refused: judged.message };
    continue;
  }
  await loadCompiledProfile(paths, judged.compiled);
  result[mode] = {
    listing: listing(),
    readBack: [...(await loadedProfiles(paths))],
    allowed: confinedCat("/etc/passwd"),
    denyRule: confinedCat("/etc/shadow"),
    unlisted: confinedCat("/etc/hostname"),
    audit: auditLines(),
  };
}

await removeProfile(paths, name);
result.removed = {
  listing: listing(),
  readBack: [...(await loadedProfiles(paths))],
  exec: confinedCat("/etc/passwd"),
};
result.removeAgain = await removeProfile(paths, name).then(
  () => "ok",
  (error: unknown) => String(error),
);
result.hostile = Object.fromEntries(
  await Promise.all(
    Object.entries(scenario.hostile).map(async ([id, policy]) => {
      const judged = await judgeAndCompile(paths, policy, { name, mode: "enforce" });
      return [id, judged.ok ? "accepted" : judged.message];
    }),
  ),
);
result.emptyLoad = await loadCompiledProfile(paths, new Uint8Array()).then(
  async () => ({ ok: true, readBack: [...(await loadedProfiles(paths))] }),
  (error: unknown) => ({ ok: false, error: String(error) }),
);
result.finalListing = listing();
process.stdout.write(`${JSON.stringify(result)}\n`);
