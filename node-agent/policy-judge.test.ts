// The judging schedule with a fake parser (pure unit tests): a slow judgement holds a sync only for its
// grace, leaves a slot to the others, is remembered when it refuses for good, and is stopped when its
// policy is no longer wanted. The real parser's side is in parser-runner.test.ts and apparmor-hostile.test.ts.
import { describe, expect, it } from "vitest";
import type { JudgeOptions, PolicyJudgement } from "./apparmor.ts";
import { PARSER_LIMITS } from "./parser-runner.ts";
import { type Keyed, PolicyJudge, sortJudgements, syncWaitMs } from "./policy-judge.ts";
import { EMPTY_REFUSAL_MEMO, type JudgedPolicy, type RefusalMemo, recalledRefusal } from "./refusal-memo.ts";

const entry = (key: string): Keyed<string> => ({ key, item: key });

describe("sortJudgements", () => {
  it("loads the passed, reports the refused, starts the unjudged while slots are free, and waits for the rest", () => {
    const verdicts = new Map<string, PolicyJudgement>([
      ["ok", { ok: true, compiled: Buffer.from("c") }],
      ["bad", { ok: false, message: "no", duration: "lasting" }],
    ]);
    const sorting = sortJudgements(
      ["ok", "bad", "running", "new1", "new2", "new3"].map(entry),
      (k) => verdicts.get(k),
      new Set(["running"]),
      3,
    );
    expect(sorting.load).toEqual([{ item: "ok", compiled: Buffer.from("c") }]);
    expect(sorting.refused).toEqual([{ item: "bad", message: "no", duration: "lasting" }]);
    expect(sorting.pending).toEqual(["running", "new1", "new2", "new3"]);
    expect(sorting.start.map((s) => s.key)).toEqual(["new1", "new2"]);
  });

  it("starts nothing while every slot is taken", () => {
    expect(sortJudgements([entry("a")], () => undefined, new Set(["x", "y"]), 2).start).toEqual([]);
  });
});

describe("syncWaitMs", () => {
  it("is what the youngest running judgement has left of its grace, never negative", () => {
    expect(syncWaitMs([], 1000, 250)).toBe(0);
    expect(syncWaitMs([900, 1000], 1000, 250)).toBe(250);
    expect(syncWaitMs([500], 1000, 250)).toBe(0);
  });
});

const policy = (name: string, text = `profile ${name} {}\n`): { policy: JudgedPolicy } => ({
  policy: { name, mode: "enforce", text },
});

interface FakeParser {
  calls: string[];
  /** Names whose judgement waits until released (or aborted). */
  release: Map<string, (j: PolicyJudgement) => void>;
  aborted: string[];
}

function fakeParser(verdicts: Record<string, PolicyJudgement | "slow">): {
  parser: FakeParser;
  judge: (p: JudgedPolicy, o: JudgeOptions) => Promise<PolicyJudgement>;
} {
  const parser: FakeParser = { calls: [], release: new Map(), aborted: [] };
  const judge = (p: JudgedPolicy, o: JudgeOptions) => {
    parser.calls.push(p.name);
    const verdict = verdicts[p.name] ?? { ok: true, compiled: Buffer.from(p.name) };
    if (verdict !== "slow") return Promise.resolve(verdict);
    return new Promise<PolicyJudgement>((resolve) => {
      parser.release.set(p.name, resolve);
      o.signal?.addEventListener("abort", () => {
        parser.aborted.push(p.name);
        resolve({ ok: false, message: "the agent stopped the run", duration: "none" });
      });
    });
  };
  return { parser, judge };
}

function newJudge(
  judge: (p: JudgedPolicy, o: JudgeOptions) => Promise<PolicyJudgement>,
  memo: RefusalMemo = EMPTY_REFUSAL_MEMO,
) {
  const saved: RefusalMemo[] = [];
  let verdictsAfterSync = 0;
  const policyJudge = new PolicyJudge({
    judge,
    identity: { parserVersion: "3.0.8", agentVersion: "test", limits: PARSER_LIMITS },
    memo,
    saveMemo: async (m) => {
      saved.push(m);
    },
    onVerdict: () => {
      verdictsAfterSync += 1;
    },
    onSaveError: (error) => {
      throw error;
    },
    schedule: { slots: 2, graceMs: 50 },
  });
  return { policyJudge, saved, verdictsAfterSync: () => verdictsAfterSync };
}

describe("PolicyJudge", () => {
  it("judges fast policies within the sync that asked", async () => {
    const { judge, parser } = fakeParser({});
    const { policyJudge, verdictsAfterSync } = newJudge(judge);
    const sorting = await policyJudge.sort([policy("a"), policy("b")]);
    expect(sorting.load.map((l) => l.item.policy.name)).toEqual(["a", "b"]);
    expect(sorting.pending).toEqual([]);
    expect(parser.calls).toEqual(["a", "b"]);
    expect(verdictsAfterSync()).toBe(0);
  });

  it("leaves a slow policy pending after its grace, judges the others meanwhile, and asks for a sync when it is done", async () => {
    const { judge, parser } = fakeParser({ bomb: "slow" });
    const { policyJudge, saved, verdictsAfterSync } = newJudge(judge);
    const first = await policyJudge.sort([policy("bomb"), policy("web")]);
    expect(first.pending.map((p) => p.policy.name)).toEqual(["bomb"]);
    expect(first.load.map((l) => l.item.policy.name)).toEqual(["web"]);
    // A profile created while the bomb is judged: its own slot, its own sync.
    const second = await policyJudge.sort([policy("bomb"), policy("api")]);
    expect(second.load.map((l) => l.item.policy.name)).toEqual(["api"]);
    expect(parser.calls.filter((c) => c === "bomb")).toHaveLength(1);

    parser.release.get("bomb")?.({ ok: false, message: "exceeded its memory limit", duration: "lasting" });
    await new Promise((r) => setTimeout(r, 10));
    expect(verdictsAfterSync()).toBe(1);
    const third = await policyJudge.sort([policy("bomb")]);
    expect(third.refused).toMatchObject([{ message: "exceeded its memory limit", duration: "lasting" }]);
    expect(saved).toHaveLength(1);
  });

  it("never runs more parsers than slots", async () => {
    const { judge, parser } = fakeParser({ s1: "slow", s2: "slow" });
    const { policyJudge } = newJudge(judge);
    const sorting = await policyJudge.sort([policy("s1"), policy("s2"), policy("web")]);
    expect(parser.calls).toEqual(["s1", "s2"]);
    expect(sorting.pending.map((p) => p.policy.name)).toEqual(["s1", "s2", "web"]);
    policyJudge.stop();
  });

  it("recalls a lasting refusal in a new run without judging again", async () => {
    const first = fakeParser({
      bomb: { ok: false, message: "exceeded its memory limit", duration: "lasting" },
    });
    const run1 = newJudge(first.judge);
    await run1.policyJudge.sort([policy("bomb")]);
    const memo = run1.saved.at(-1);
    expect(memo && recalledRefusal(memo, run1.policyJudge.keyOf(policy("bomb").policy))).toBe(
      "exceeded its memory limit",
    );

    const second = fakeParser({});
    const run2 = newJudge(second.judge, memo);
    const sorting = await run2.policyJudge.sort([policy("bomb")]);
    expect(sorting.refused).toMatchObject([{ message: "exceeded its memory limit", duration: "lasting" }]);
    expect(second.parser.calls).toEqual([]);
    // A changed text is judged anew.
    await run2.policyJudge.sort([policy("bomb", "profile bomb { /x r, }\n")]);
    expect(second.parser.calls).toEqual(["bomb"]);
  });

  it("does not remember a refusal that says nothing lasting about the text", async () => {
    const { judge, parser } = fakeParser({
      slowNode: { ok: false, message: "exceeded its time limit", duration: "this-run" },
      noParser: { ok: false, message: "could not run apparmor_parser", duration: "none" },
    });
    const { policyJudge, saved } = newJudge(judge);
    const first = await policyJudge.sort([policy("slowNode"), policy("noParser")]);
    expect(first.refused.map((r) => r.duration)).toEqual(["this-run", "none"]);
    expect(saved).toEqual([]);
    // The time limit holds for this run; a parser that could not run is tried again.
    await policyJudge.sort([policy("slowNode"), policy("noParser")]);
    expect(parser.calls).toEqual(["slowNode", "noParser", "noParser"]);
  });

  it("stops judging a policy that is no longer wanted, freeing its slot", async () => {
    const { judge, parser } = fakeParser({ bomb: "slow" });
    const { policyJudge, verdictsAfterSync } = newJudge(judge);
    await policyJudge.sort([policy("bomb")]);
    await policyJudge.sort([policy("web")]);
    expect(parser.aborted).toEqual(["bomb"]);
    await new Promise((r) => setTimeout(r, 10));
    expect(verdictsAfterSync()).toBe(0);
  });

  it("stops every running judgement when the agent stops", async () => {
    const { judge, parser } = fakeParser({ s1: "slow", s2: "slow" });
    const { policyJudge } = newJudge(judge);
    await policyJudge.sort([policy("s1"), policy("s2")]);
    policyJudge.stop();
    expect(parser.aborted.sort()).toEqual(["s1", "s2"]);
  });
});
