// Hostile policies against the real apparmor_parser through the agent's judge (judgeAndCompile under
// parser-runner.ts's limits): parser bombs are refused at a limit, with a message that says what to
// change; inputs the parser itself refuses stay its refusal; large but honest policies still pass.
// How each fixture was made and what it costs without limits: test/fixtures/apparmor-hostile/SOURCES.md.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type AppArmorPaths, judgeAndCompile, type PolicyJudgement } from "./apparmor.ts";

const paths: AppArmorPaths = {
  securityfs: "/nonexistent",
  enabledParameter: "/nonexistent",
  parser: "/usr/sbin/apparmor_parser",
  bootId: "/nonexistent",
};
const hostile = (file: string) =>
  readFileSync(join(import.meta.dirname, "../test/fixtures/apparmor-hostile", file), "utf8");

function judge(text: string): Promise<PolicyJudgement> {
  return judgeAndCompile(paths, text, { name: "hostile", mode: "enforce" });
}

// Each takes seconds of the parser on a busy 2-core machine before a limit stops it.
describe("hostile policies", { timeout: 60_000 }, () => {
  it.each([
    ["overlapping-globs.apparmor", "100 overlapping globs in 1.8 KB"],
    ["overlapping-globs-small.apparmor", "10 overlapping globs in 200 bytes"],
    ["variable-expansion.apparmor", "variables that square each other in 116 bytes"],
  ])("%s (%s) is refused at the memory limit, for good", async (file) => {
    const judged = await judge(hostile(file));
    expect(judged).toMatchObject({
      ok: false,
      duration: "lasting",
      message: expect.stringMatching(
        /^apparmor_parser exceeded its memory limit \(64 MiB\) compiling the policy: simplify the policy/,
      ),
    });
  });

  it.each([
    ["nested-braces.apparmor", /Exceeded maximum nesting of \{\}/],
    ["long-token.apparmor", /input buffer overflow/],
  ])("%s is the parser's own refusal", async (file, message) => {
    const judged = await judge(hostile(file));
    expect(judged).toMatchObject({ ok: false, duration: "lasting", message: expect.stringMatching(message) });
  });

  it("a policy of 3000 rules (59 KB, near the 64 KiB rawPolicy limit) passes within the limits", async () => {
    expect((await judge(hostile("many-rules.apparmor"))).ok).toBe(true);
  });

  it("a policy including every abstraction this node has compiles within the limits", async () => {
    const abstractions = readdirSync("/etc/apparmor.d/abstractions", { withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => `  include <abstractions/${e.name}>`);
    expect(abstractions.length).toBeGreaterThan(50);
    const text = `abi <abi/3.0>,\ninclude <tunables/global>\nprofile hostile {\n${abstractions.join("\n")}\n}\n`;
    // Compiled in full: what is refused is what some abstractions declare (child profiles), read from
    // the compiled policy, never a limit.
    const judged = await judge(text);
    expect(judged.ok ? "compiled" : judged.message).toMatch(/^compiled$|declares the child profile/);
    expect(judged.ok ? "" : judged.message).not.toMatch(/limit/);
  });
});
