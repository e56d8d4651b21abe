import { describe, expect, it } from "vitest";
import { PARSER_LIMITS } from "./parser-runner.ts";
import {
  EMPTY_REFUSAL_MEMO,
  type Judge,
  type JudgedPolicy,
  judgementKey,
  parseRefusalMemo,
  REFUSAL_MEMO_BOUNDS,
  recalledRefusal,
  rememberRefusal,
  serializeRefusalMemo,
} from "./refusal-memo.ts";

const policy: JudgedPolicy = { name: "web", mode: "enforce", text: "profile web {\n}\n" };
const judge: Judge = {
  parserVersion: "AppArmor parser version 3.0.8",
  agentVersion: "0.1.0",
  limits: PARSER_LIMITS,
};
const key = (n: number) => n.toString(16).padStart(64, "0");

describe("judgementKey", () => {
  it("is a SHA-256 of everything that decides the verdict, and changes with each of it", () => {
    const base = judgementKey(policy, judge);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(judgementKey({ ...policy }, { ...judge })).toBe(base);
    const changed = [
      judgementKey({ ...policy, text: `${policy.text} ` }, judge),
      judgementKey({ ...policy, name: "web2" }, judge),
      judgementKey({ ...policy, mode: "complain" }, judge),
      judgementKey(policy, { ...judge, parserVersion: "AppArmor parser version 4.0.1" }),
      judgementKey(policy, { ...judge, agentVersion: "0.2.0" }),
      judgementKey(policy, { ...judge, limits: { ...PARSER_LIMITS, addressSpaceBytes: 1 } }),
      judgementKey(policy, { ...judge, limits: { ...PARSER_LIMITS, cpuSeconds: 1 } }),
    ];
    expect(new Set([base, ...changed]).size).toBe(changed.length + 1);
  });

  it("does not run fields together (name and text cannot trade characters)", () => {
    expect(judgementKey({ ...policy, name: "a", text: "bc" }, judge)).not.toBe(
      judgementKey({ ...policy, name: "ab", text: "c" }, judge),
    );
  });
});

describe("the refusal memo", () => {
  it("recalls what it remembered, and round-trips through its file format", () => {
    const memo = rememberRefusal(EMPTY_REFUSAL_MEMO, key(1), "apparmor_parser exceeded its memory limit");
    expect(recalledRefusal(memo, key(1))).toBe("apparmor_parser exceeded its memory limit");
    expect(recalledRefusal(memo, key(2))).toBeUndefined();
    expect(parseRefusalMemo(serializeRefusalMemo(memo))).toEqual({ ok: true, value: memo });
  });

  it("keeps the newest entries and drops the oldest past its bound", () => {
    let memo = EMPTY_REFUSAL_MEMO;
    for (let i = 0; i < REFUSAL_MEMO_BOUNDS.entries + 10; i++) memo = rememberRefusal(memo, key(i), `m${i}`);
    expect(memo.refusals).toHaveLength(REFUSAL_MEMO_BOUNDS.entries);
    expect(recalledRefusal(memo, key(9))).toBeUndefined();
    expect(recalledRefusal(memo, key(10))).toBe("m10");
    // Remembered again: it becomes the newest, once.
    memo = rememberRefusal(memo, key(10), "again");
    expect(memo.refusals.at(-1)).toEqual({ key: key(10), message: "again" });
    expect(memo.refusals.filter((r) => r.key === key(10))).toHaveLength(1);
    expect(parseRefusalMemo(serializeRefusalMemo(memo)).ok).toBe(true);
  });

  it("cuts a long message so the file stays small", () => {
    const memo = rememberRefusal(EMPTY_REFUSAL_MEMO, key(1), "x".repeat(100_000));
    expect(recalledRefusal(memo, key(1))).toHaveLength(REFUSAL_MEMO_BOUNDS.messageChars);
  });

  it.each([
    ["not JSON", "{"],
    ["the wrong shape", '{"refusals": {}}'],
    ["a key that is not a hash", '{"refusals": [{"key": "../x", "message": "m"}]}'],
    ["an unknown field", `{"refusals": [], "extra": 1}`],
    [
      "too many entries",
      JSON.stringify({ refusals: Array.from({ length: 513 }, (_, i) => ({ key: key(i), message: "" })) }),
    ],
  ])("refuses a file with %s", (_, text) => {
    expect(parseRefusalMemo(text).ok).toBe(false);
  });
});
