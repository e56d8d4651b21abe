// The boot id the agent's ownership record is kept against: read from the kernel's file, never guessed.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type AppArmorPaths, DEFAULT_APPARMOR_PATHS, readBootId } from "./apparmor.ts";

const dir = mkdtempSync(join(tmpdir(), "lockstep-boot-id-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const withFile = (text: string): AppArmorPaths => {
  const file = join(dir, `boot_id-${Math.random()}`);
  writeFileSync(file, text);
  return { ...DEFAULT_APPARMOR_PATHS, bootId: file };
};

describe("readBootId", () => {
  it("reads this machine's kernel boot id", async () => {
    expect(await readBootId(DEFAULT_APPARMOR_PATHS)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-/);
  });

  it.each([
    ["empty", ""],
    ["garbage", "not a boot id\n"],
    ["a path", "../../etc/passwd\n"],
    ["two ids", "6f1d1c3e-5a7b-4c2d-9e8f-0a1b2c3d4e5f 6f1d1c3e-5a7b-4c2d-9e8f-0a1b2c3d4e5f\n"],
  ])("refuses %s: the agent stops rather than guess which boot it is in", async (_case, text) => {
    await expect(readBootId(withFile(text))).rejects.toThrow(/not a boot id/);
  });

  it("refuses a missing file", async () => {
    await expect(readBootId({ ...DEFAULT_APPARMOR_PATHS, bootId: join(dir, "missing") })).rejects.toThrow(
      /ENOENT/,
    );
  });
});
