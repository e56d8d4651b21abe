// The agent's memory of the AppArmor policies apparmor_parser refused, kept across restarts. Without it
// a restarted agent would judge every refused policy again, and a policy that costs the parser its full
// limits (parser-runner.ts) would cost them again at every start. Keyed by what decided the verdict,
// so a change of any of it judges again: the policy text, the object's name and mode, the parser's
// version, the limits and the agent's version (its own checks of the parser's output). Bounded: the
// newest entries are kept, the oldest go. Pure: the key, parsing, serialising and updating;
// seccomp-dir.ts stores it beside the ownership record.
import { createHash } from "node:crypto";
import * as z from "zod";
import type { AppArmorMode } from "../src/api/apparmor.ts";
import { type Parsed, parseJsonDocument } from "../src/api/common.ts";
import type { ParserLimits } from "./parser-runner.ts";

/** The memo's file name inside <kubelet-root>/seccomp/lockstep/ (DESIGN invariant 4), never a profile's. */
export const REFUSAL_MEMO_FILE = ".lockstep-agent-refusals";

export const REFUSAL_MEMO_BOUNDS = {
  /** Refusals kept; at most about 1.1 MiB on disk with the longest messages. */
  entries: 512,
  /** A refusal's message is cut to this many characters (an Event message is cut at 1 KiB anyway). */
  messageChars: 2048,
} as const;

const Key = z.string().regex(/^[0-9a-f]{64}$/, "a SHA-256 in hex");

export const RefusalMemoSchema = z.strictObject({
  /** Oldest first. */
  refusals: z
    .array(z.strictObject({ key: Key, message: z.string().max(REFUSAL_MEMO_BOUNDS.messageChars) }))
    .max(REFUSAL_MEMO_BOUNDS.entries),
});
export type RefusalMemo = z.infer<typeof RefusalMemoSchema>;

export const EMPTY_REFUSAL_MEMO: RefusalMemo = { refusals: [] };

export interface JudgedPolicy {
  name: string;
  mode: AppArmorMode;
  text: string;
}

/** Who judged: a verdict holds only for the same parser, limits and agent. */
export interface Judge {
  parserVersion: string;
  agentVersion: string;
  limits: ParserLimits;
}

/** The memo key of one judgement. */
export function judgementKey(policy: JudgedPolicy, judge: Judge): string {
  const limits = [judge.limits.addressSpaceBytes, judge.limits.cpuSeconds, judge.limits.outputBytes];
  return createHash("sha256")
    .update(
      JSON.stringify([
        judge.parserVersion,
        judge.agentVersion,
        limits,
        policy.name,
        policy.mode,
        policy.text,
      ]),
    )
    .digest("hex");
}

export function parseRefusalMemo(text: string): Parsed<RefusalMemo> {
  return parseJsonDocument(RefusalMemoSchema, text);
}

export function serializeRefusalMemo(memo: RefusalMemo): string {
  return `${JSON.stringify(memo)}\n`;
}

/** The message of a remembered refusal, or undefined. */
export function recalledRefusal(memo: RefusalMemo, key: string): string | undefined {
  return memo.refusals.find((r) => r.key === key)?.message;
}

/** The memo with this refusal as its newest entry, and the oldest dropped past the bound. */
export function rememberRefusal(memo: RefusalMemo, key: string, message: string): RefusalMemo {
  const kept = memo.refusals.filter((r) => r.key !== key);
  kept.push({ key, message: message.slice(0, REFUSAL_MEMO_BOUNDS.messageChars) });
  return { refusals: kept.slice(-REFUSAL_MEMO_BOUNDS.entries) };
}
