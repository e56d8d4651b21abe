import { describe, expect, it } from "vitest";
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

  it.each([
    ["truncated", [...name("version"), 2, 5]],
    ["an unknown element", [...name("profile"), 7, 42]],
    ["an unclosed struct", [...name("profile"), 7, ...str("web")]],
    ["a profile without a name", [...name("profile"), 7, ...u32(1), 8]],
  ])("refuses %s input instead of guessing", (_case, bytes) => {
    expect(() => readCompiledPolicy(Uint8Array.from(bytes))).toThrow();
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
