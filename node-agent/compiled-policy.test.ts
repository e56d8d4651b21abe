import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type ProfileAccount, readerAccount, sortedAccounts } from "../test/harness/apparmor-kernel.ts";
import { parserComplaint } from "./apparmor.ts";
import { readCompiledPolicy } from "./compiled-policy.ts";
import { includedFiles } from "./policy-check.ts";

// The element encoding of policy_unpack.c, written out by hand for the shapes the reader must refuse.
const name = (n: string) => [4, n.length + 1, 0, ...Buffer.from(`${n}\0`)];
const u32 = (v: number) => [2, v & 0xff, (v >> 8) & 0xff, 0, 0];
const str = (s: string) => [5, s.length + 1, 0, ...Buffer.from(`${s}\0`)];

describe("readCompiledPolicy", () => {
  it("reads a minimal profile: name, namespace, mode", () => {
    const bytes = [
      ...name("version"),
      ...u32(5),
      ...name("namespace"),
      ...str("ns"),
      ...name("profile"),
      7,
      ...str("web"),
      ...name("flags"),
      7,
      ...u32(0),
      ...u32(2),
      ...u32(0),
      8,
      8,
    ];
    expect(readCompiledPolicy(Uint8Array.from(bytes))).toEqual([
      {
        name: "web",
        namespace: "ns",
        attachment: undefined,
        matchesExecutables: false,
        mode: "kill",
        hat: false,
        children: [],
      },
    ]);
  });

  it("reads a v7 header's force-complain flag as complain for every profile, whatever its own mode", () => {
    const profile = (n: string, mode: number) => [
      ...name("profile"),
      7,
      ...str(n),
      ...name("flags"),
      7,
      ...u32(0),
      ...u32(mode),
      ...u32(0),
      8,
      8,
    ];
    const stream = (version: number) => [
      ...name("version"),
      ...u32(version),
      ...profile("web", 2),
      ...profile("other", 3),
    ];
    expect(readCompiledPolicy(Uint8Array.from(stream(0x202807))).map((p) => p.mode)).toEqual([
      "complain",
      "complain",
    ]);
    expect(readCompiledPolicy(Uint8Array.from(stream(0x202007))).map((p) => p.mode)).toEqual([
      "kill",
      "unconfined",
    ]);
  });

  it("puts every profile in the first namespace a header names, as the kernel loads them", () => {
    const bytes = [
      ...name("version"),
      ...u32(5),
      ...name("profile"),
      7,
      ...str("other"),
      8,
      ...name("version"),
      ...u32(5),
      ...name("namespace"),
      ...str("evil"),
      ...name("profile"),
      7,
      ...str("web"),
      8,
    ];
    expect(readCompiledPolicy(Uint8Array.from(bytes)).map((p) => [p.name, p.namespace])).toEqual([
      ["other", "evil"],
      ["web", "evil"],
    ]);
  });

  it.each([
    ["truncated", [...name("version"), 2, 5]],
    [
      "an ABI the kernel does not read (v4)",
      [...name("version"), ...u32(4), ...name("profile"), 7, ...str("web"), 8],
    ],
    [
      "an ABI the kernel does not read (v10)",
      [...name("version"), ...u32(10), ...name("profile"), 7, ...str("web"), 8],
    ],
    ["a profile before any version header", [...name("profile"), 7, ...str("web"), 8]],
    ["an unknown element", [...name("profile"), 7, 42]],
    ["an unclosed struct", [...name("profile"), 7, ...str("web")]],
    ["a profile without a name", [...name("profile"), 7, ...u32(1), 8]],
  ])("refuses %s input instead of guessing", (_case, bytes) => {
    expect(() => readCompiledPolicy(Uint8Array.from(bytes))).toThrow();
  });
});

describe("readCompiledPolicy on the parser's real output, against the kernel's account of it", () => {
  // Compiled on a host without AppArmor (ABI v5) and in a guest whose kernel has it (ABI v7, where
  // --Complain is a header flag), each loaded by that kernel; regenerate.ts there made them.
  const dir = join(import.meta.dirname, "../test/fixtures/apparmor-compiled");
  const kernel: Record<string, ProfileAccount[]> = JSON.parse(readFileSync(join(dir, "kernel.json"), "utf8"));
  const fixtures = readdirSync(dir).filter((f) => f.endsWith(".bin"));

  it("covers both formats, with and without --Complain", () => {
    for (const form of ["host", "host-complain", "guest", "guest-complain"])
      expect(fixtures.filter((f) => f.endsWith(`.${form}.bin`)).length).toBeGreaterThanOrEqual(10);
  });

  it.each(fixtures)("%s", (fixture) => {
    // JSON has no undefined: compare as the kernel's account was stored.
    const read = JSON.parse(
      JSON.stringify(sortedAccounts(readerAccount(readCompiledPolicy(readFileSync(join(dir, fixture)))))),
    );
    expect(read).toEqual(kernel[fixture.replace(/\.bin$/, "")]);
  });
});

describe("parserComplaint", () => {
  it("keeps the parser's words about the policy and the standard files, not the cache note", () => {
    expect(
      parserComplaint(
        "Cache read/write disabled: interface file missing.\nAppArmor parser error for spec.rawPolicy in profile spec.rawPolicy at line 4: syntax error\n",
      ),
    ).toBe("AppArmor parser error for spec.rawPolicy in profile spec.rawPolicy at line 4: syntax error");
  });

  it("says only which other file failed, never what the parser quoted from it", () => {
    expect(
      parserComplaint(
        "AppArmor parser error for spec.rawPolicy in profile /var/run/secrets/kubernetes.io/serviceaccount/token at line 1: Lexer found unexpected character: '.' (0x2e)",
      ),
    ).toBe(
      "AppArmor parser error in /var/run/secrets/kubernetes.io/serviceaccount/token, outside the standard abstractions and tunables",
    );
  });
});

describe("includedFiles", () => {
  it("lists the preprocessor's markers, not text that looks like them", () => {
    expect(
      includedFiles('##included <tunables/global>\n  # ##included <local/x>\n##included "/etc/x"\n'),
    ).toEqual(["<tunables/global>", '"/etc/x"']);
  });
});
