import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { KNOWN_SYSCALLS, LIBSECCOMP_SYSCALLS, NEWER_KERNEL_SYSCALLS } from "./syscalls.ts";

const fixture = (name: string) =>
  readFileSync(`${import.meta.dirname}/../../test/fixtures/seccomp/${name}`, "utf8");

describe("the syscall table", () => {
  it("is libseccomp's src/syscalls.csv, name for name (the fixture records which version)", () => {
    const published = fixture("libseccomp-syscalls.txt")
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"));
    expect([...LIBSECCOMP_SYSCALLS].sort()).toEqual([...published].sort());
  });

  it("adds only names newer kernels have and libseccomp's table does not", () => {
    for (const name of NEWER_KERNEL_SYSCALLS) expect(LIBSECCOMP_SYSCALLS).not.toContain(name);
    expect(KNOWN_SYSCALLS.size).toBe(LIBSECCOMP_SYSCALLS.length + NEWER_KERNEL_SYSCALLS.length);
  });
});
