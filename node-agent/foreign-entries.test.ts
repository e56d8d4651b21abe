import { describe, expect, it } from "vitest";
import { ForeignEntryMemo } from "./foreign-entries.ts";

describe("ForeignEntryMemo", () => {
  it("reports an entry once per reason, and again when the reason changes", () => {
    const memo = new ForeignEntryMemo();
    const first = new Map([
      ["notes.txt", "not a profile file name (file)"],
      ["sub", "directory"],
    ]);
    expect(memo.firstSeen(first)).toEqual([...first]);
    expect(memo.firstSeen(first)).toEqual([]);
    expect(memo.firstSeen(new Map([["sub", "unreadable: EACCES"]]))).toEqual([["sub", "unreadable: EACCES"]]);
  });
});
