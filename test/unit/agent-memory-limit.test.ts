// apparmor_parser runs in the agent container's cgroup, so the DaemonSet's memory limit must hold the
// agent and every parser it may run at once, each at its full address-space limit: a limit that held
// only the agent would let a parser bomb get the whole container killed (issue 23).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { PARSER_LIMITS } from "../../node-agent/parser-runner.ts";
import { JUDGE_SCHEDULE } from "../../node-agent/policy-judge.ts";

/** The agent's own share, as the DaemonSet's comment gives it: twice its request. */
const AGENT_OWN_MIB = 160;

describe("the agent DaemonSet's memory limit", () => {
  it("holds the agent and its parsers at their limits", () => {
    const text = readFileSync(join(import.meta.dirname, "../../deploy/agent/daemonset.yaml"), "utf8");
    const limit = String(
      parseAllDocuments(text)[0]?.getIn([
        "spec",
        "template",
        "spec",
        "containers",
        0,
        "resources",
        "limits",
        "memory",
      ]),
    );
    const mib = Number(/^(\d+)Mi$/.exec(limit)?.[1]);
    const parsers =
      (JUDGE_SCHEDULE.slots * (PARSER_LIMITS.addressSpaceBytes ?? Number.POSITIVE_INFINITY)) / 1024 ** 2;
    expect(mib).toBeGreaterThanOrEqual(AGENT_OWN_MIB + parsers);
  });
});
