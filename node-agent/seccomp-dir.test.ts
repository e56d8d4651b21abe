// The agent's folder, entry by entry, on a real file system: what it reads, what it leaves alone and
// why, and which leftovers it removes at start.
import { execFileSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OWNERSHIP_RECORD_FILE } from "./ownership-record.ts";
import { EMPTY_REFUSAL_MEMO, REFUSAL_MEMO_FILE, rememberRefusal } from "./refusal-memo.ts";
import { SeccompDir } from "./seccomp-dir.ts";

const BOOT = "6f1d1c3e-5a7b-4c2d-9e8f-0a1b2c3d4e5f";
let root: string;
let dir: SeccompDir;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), "lockstep-seccomp-dir-"));
  dir = new SeccompDir(root);
  await dir.ensure();
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("SeccompDir", () => {
  it("reads every readable profile file and says why it leaves each other entry alone", async () => {
    writeFileSync(join(dir.path, "web.json"), "{}");
    mkdirSync(join(dir.path, "a-dir.json"));
    execFileSync("mkfifo", [join(dir.path, "a-fifo.json")]);
    writeFileSync(join(root, "outside.json"), "secret");
    symlinkSync(join(root, "outside.json"), join(dir.path, "a-link.json"));
    writeFileSync(join(dir.path, "README"), "notes");
    mkdirSync(join(dir.path, ".tmp-0123456789abcdef"));
    writeFileSync(join(dir.path, ".tmp-fedcba9876543210"), "half a write");
    const state = await dir.observe();
    expect(state.files).toEqual(new Map([["web", "{}"]]));
    expect(state.unusable).toEqual(
      new Map([
        ["a-dir.json", "a directory"],
        ["a-fifo.json", "a FIFO"],
        ["a-link.json", "a symbolic link"],
        ["README", "not a profile file name (a file)"],
        [".tmp-0123456789abcdef", "not a profile file name (a directory)"],
      ]),
    );
  });

  it("sees every change to a file it read before, even one that keeps its size and mtime", async () => {
    const file = join(dir.path, "web.json");
    writeFileSync(file, '{"a":1}');
    expect((await dir.observe()).files.get("web")).toBe('{"a":1}');
    const before = lstatSync(file);
    // Same length, and the mtime set back: only the change time (which no caller can set) differs.
    writeFileSync(file, '{"b":2}');
    utimesSync(file, before.atime, before.mtime);
    expect((await dir.observe()).files.get("web")).toBe('{"b":2}');
    // Replaced by a symbolic link to a file with the old content: not read through.
    writeFileSync(join(root, "old.json"), '{"a":1}');
    rmSync(file);
    symlinkSync(join(root, "old.json"), file);
    const state = await dir.observe();
    expect(state.files.has("web")).toBe(false);
    expect(state.unusable.get("web.json")).toBe("a symbolic link");
    // A file again, with the content first read: read anew, not taken from before.
    rmSync(file);
    writeFileSync(file, '{"a":1}');
    expect((await dir.observe()).files.get("web")).toBe('{"a":1}');
    writeFileSync(file, '{"c":3}');
    expect((await dir.observe()).files.get("web")).toBe('{"c":3}');
  });

  it("removes at start only regular files with its own temporary name pattern", async () => {
    writeFileSync(join(dir.path, ".tmp-fedcba9876543210"), "half a write");
    mkdirSync(join(dir.path, ".tmp-0123456789abcdef"));
    writeFileSync(join(dir.path, ".tmp-not-ours"), "someone's");
    expect(await dir.removeTemporaryFiles()).toBe(1);
    expect(existsSync(join(dir.path, ".tmp-fedcba9876543210"))).toBe(false);
    expect(lstatSync(join(dir.path, ".tmp-0123456789abcdef")).isDirectory()).toBe(true);
    expect(readFileSync(join(dir.path, ".tmp-not-ours"), "utf8")).toBe("someone's");
  });

  it("keeps its ownership record beside the profiles, where a pod cannot name it", async () => {
    expect(await dir.readRecord()).toEqual({ state: "absent" });
    const record = { bootId: BOOT, seccomp: ["web"], appArmor: { aa: "0123456789ab", loading: null } };
    await dir.writeRecord(record);
    expect(await dir.readRecord()).toEqual({ state: "ok", record });
    expect((await dir.observe()).unusable.has(OWNERSHIP_RECORD_FILE)).toBe(false);
  });

  it.each([
    [
      "a name that is no object's",
      '{"seccomp": ["../etc"], "appArmor": {}}',
      /seccomp\.0: not a profile object name/,
    ],
    ["garbage", "\u0000\u00ff not json", /is not a valid ownership record/],
    [
      "a truncated record",
      `{"bootId": "${BOOT}", "seccomp": ["web"], "appA`,
      /is not a valid ownership record/,
    ],
    ["an empty file", "", /is not a valid ownership record/],
    ["a boot id that is none", '{"bootId": "../x", "seccomp": [], "appArmor": {}}', /bootId/],
    ["JSON of another shape", "[]", /is not a valid ownership record/],
  ])("reads %s as unreadable, never as a record", async (_case, text, problem) => {
    writeFileSync(join(dir.path, OWNERSHIP_RECORD_FILE), text);
    const read = await dir.readRecord();
    expect(read.state).toBe("unreadable");
    expect(read.state === "unreadable" && read.problem).toMatch(problem);
  });

  it("reads a record that is a directory or a symbolic link as unreadable, and moves the entry itself aside", async () => {
    const target = join(root, "elsewhere");
    writeFileSync(target, JSON.stringify({ bootId: BOOT, seccomp: ["web"], appArmor: {} }));
    symlinkSync(target, join(dir.path, OWNERSHIP_RECORD_FILE));
    expect(await dir.readRecord()).toEqual({
      state: "unreadable",
      problem: "cannot be read as a regular file (ELOOP)",
    });
    const aside = await dir.setRecordAside(new Date("2026-01-02T03:04:05.678Z"));
    expect(aside).toBe(`${OWNERSHIP_RECORD_FILE}.unreadable-2026-01-02T03-04-05-678Z`);
    expect(lstatSync(join(dir.path, aside)).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, "utf8")).toContain(BOOT);
    expect(await dir.readRecord()).toEqual({ state: "absent" });

    mkdirSync(join(dir.path, OWNERSHIP_RECORD_FILE));
    expect(await dir.readRecord()).toMatchObject({ state: "unreadable" });
    const second = await dir.setRecordAside(new Date("2026-01-02T03:04:06Z"));
    expect(lstatSync(join(dir.path, second)).isDirectory()).toBe(true);
    // Neither is taken for a profile file or reported as a stranger's entry.
    expect((await dir.observe()).unusable.size).toBe(0);
  });

  it("keeps its refusal memo beside the record, and starts empty from a memo it cannot use, saying why", async () => {
    expect(await dir.readRefusalMemo()).toEqual({ memo: EMPTY_REFUSAL_MEMO });
    const memo = rememberRefusal(EMPTY_REFUSAL_MEMO, "a".repeat(64), "exceeded its memory limit");
    await dir.writeRefusalMemo(memo);
    expect(await dir.readRefusalMemo()).toEqual({ memo });
    expect((await dir.observe()).unusable.has(REFUSAL_MEMO_FILE)).toBe(false);
    writeFileSync(join(dir.path, REFUSAL_MEMO_FILE), '{"refusals": [{"key": "../etc", "message": ""}]');
    expect(await dir.readRefusalMemo()).toMatchObject({
      memo: EMPTY_REFUSAL_MEMO,
      problem: expect.stringMatching(/is not a valid refusal memo/),
    });
    rmSync(join(dir.path, REFUSAL_MEMO_FILE));
    execFileSync("mkfifo", [join(dir.path, REFUSAL_MEMO_FILE)]);
    expect(await dir.readRefusalMemo()).toMatchObject({
      memo: EMPTY_REFUSAL_MEMO,
      problem: expect.stringMatching(/cannot read the refusal memo \(ENOTREG\)/),
    });
  });

  it("removes a profile file it wrote, but not an entry that has become something else", async () => {
    await dir.write("web", "{}");
    await dir.remove("web");
    expect(existsSync(join(dir.path, "web.json"))).toBe(false);
    mkdirSync(join(dir.path, "other.json"));
    await expect(dir.remove("other")).rejects.toThrow(/no longer a regular file/);
    expect(lstatSync(join(dir.path, "other.json")).isDirectory()).toBe(true);
  });
});
