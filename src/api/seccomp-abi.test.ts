import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERRNO_NUMBERS } from "./seccomp-abi.ts";

describe("ERRNO_NUMBERS", () => {
  it("is the kernel's asm-generic errno table (the UAPI headers installed on this machine)", () => {
    const headers = ["errno-base.h", "errno.h"]
      .map((name) => readFileSync(`/usr/include/asm-generic/${name}`, "utf8"))
      .join("\n");
    const defined: Record<string, number> = {};
    for (const [, name, value] of headers.matchAll(/^#define\s+(E[A-Z0-9]+)\s+(\w+)/gm))
      if (name !== undefined && value !== undefined)
        defined[name] = /^\d+$/.test(value) ? Number(value) : (defined[value] as number);
    expect(ERRNO_NUMBERS).toEqual(defined);
  });
});
