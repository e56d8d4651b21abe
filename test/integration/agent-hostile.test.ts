// A parser bomb against a real agent process on a simulated AppArmor node, with the real
// apparmor_parser (the kernel's half is fake-apparmor-parser.sh's securityfs): the bomb is refused at
// the parser's limits while the agent and its parsers stay within the DaemonSet's memory limit; other
// profiles are installed while it is being judged; the refusal survives a restart without the parser
// running again; and an agent killed with SIGKILL takes its parsers with it.
// A parser "still judging" is held there with SIGSTOP (its wall-clock limit keeps running), so what
// happens meanwhile does not depend on how fast this machine is.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { appArmorKernelName, failedLabelKey } from "../../src/api/labels.ts";
import { type AgentProcess, installAgentPrerequisites, startAgent, stopAgents } from "../harness/agents.ts";
import { hostileFixture } from "../harness/apparmor-hostile-policies.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { liveDescendants, type ProcessEntry, processTable, treeResidentMiB } from "../harness/processes.ts";
import {
  applyProfile,
  installFailedMessage,
  nodeHoldsProfile,
  type ProfileObjectKind,
} from "../harness/profiles.ts";

const repo = join(import.meta.dirname, "../..");
const hostile = hostileFixture;
const published = (file: string) => readFileSync(join(repo, "test/fixtures/apparmor-corpus", file), "utf8");
const NODE = "hostile-node";

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let agent: AgentProcess;
let parserLog: string;

const holds = (kind: ProfileObjectKind, name: string) => nodeHoldsProfile(cp.kubeConfig(), kind, name, NODE);
const nodeLabels = async () => (await core.readNode({ name: NODE })).metadata?.labels ?? {};

/** The DaemonSet's memory limit for the agent container, in MiB. */
function agentMemoryLimitMiB(): number {
  const docs = parseAllDocuments(readFileSync(join(repo, "deploy/agent/daemonset.yaml"), "utf8"));
  const limit = String(
    docs[0]?.getIn(["spec", "template", "spec", "containers", 0, "resources", "limits", "memory"]),
  );
  const mi = /^(\d+)Mi$/.exec(limit);
  if (!mi) throw new Error(`unexpected memory limit ${limit}`);
  return Number(mi[1]);
}

/** The agent's apparmor_parser processes, once a compile worker (a parser whose parent is a parser) runs. */
async function compilingParsers(): Promise<ProcessEntry[]> {
  return waitFor("the agent's apparmor_parser compiling", async () => {
    const parsers = liveDescendants(agent.process.pid).filter((p) => p.comm === "apparmor_parser");
    const pids = new Set(parsers.map((p) => p.pid));
    return parsers.some((p) => pids.has(p.ppid)) ? parsers : undefined;
  });
}

/** Lines of the parser log for runs on exactly this policy text (the agent hands the parser the text as is). */
function parserRunsOn(text: string, what: "--stdout" | "--preprocess"): number {
  const hash = createHash("sha256").update(text).digest("hex");
  return readFileSync(parserLog, "utf8")
    .split("\n")
    .filter((line) => line.startsWith(`${hash} `) && line.includes(what)).length;
}

const installFailed = (name: string) =>
  installFailedMessage(cp.kubeConfig(), "AppArmorProfile", name, "InvalidPolicy");

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  await cp.addNode(NODE);
  await installAgentPrerequisites(cp);
  parserLog = join(cp.workDir, "parser-runs.log");
  writeFileSync(parserLog, "");
  agent = await startAgent(cp, NODE, { appArmor: true, extraEnv: { FAKE_PARSER_LOG: parserLog } });
});

afterAll(async () => {
  if (agent) await stopAgents([agent]);
  await cp?.stop();
});

describe("an agent given a parser bomb", () => {
  it("installs and labels other profiles while the bomb is being judged", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "bomb-held", {
      rawPolicy: hostile("overlapping-globs.apparmor", "bomb-held"),
    });
    const parsers = await compilingParsers();
    for (const p of parsers) process.kill(p.pid, "SIGSTOP");
    try {
      await applyProfile(cp.kubeConfig(), "SeccompProfile", "while-judging", {
        defaultAction: "SCMP_ACT_ALLOW",
      });
      await applyProfile(cp.kubeConfig(), "AppArmorProfile", "docker-default-copy", {
        rawPolicy: published("docker-default.apparmor").replace(
          `profile ${appArmorKernelName("docker-default")}`,
          `profile ${appArmorKernelName("docker-default-copy")}`,
        ),
      });
      await waitFor(
        "the seccomp and the normal AppArmor profile held",
        async () =>
          (await holds("SeccompProfile", "while-judging")) && holds("AppArmorProfile", "docker-default-copy"),
        { timeoutMs: 20_000 },
      );
      // Still being judged: not claimed (invariant 1), and its parser has not moved on.
      expect(await holds("AppArmorProfile", "bomb-held")).toBe(false);
      expect((await nodeLabels())[failedLabelKey("apparmor", "bomb-held")]).toBe("NotInstalled");
      expect(
        processTable().filter((p) => parsers.some((q) => q.pid === p.pid && p.state === "T")),
      ).toHaveLength(parsers.length);
    } finally {
      for (const p of parsers) {
        try {
          process.kill(p.pid, "SIGCONT");
        } catch {
          // Gone.
        }
      }
    }
    expect(await installFailed("bomb-held")).toMatch(/apparmor_parser exceeded its (memory|time) limit/);
  });

  it("refuses the bomb at the parser's memory limit while the agent stays within its own", async () => {
    const limit = agentMemoryLimitMiB();
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, treeResidentMiB(agent.process.pid));
    }, 50);
    try {
      await applyProfile(cp.kubeConfig(), "AppArmorProfile", "bomb", {
        rawPolicy: hostile("overlapping-globs.apparmor", "bomb"),
      });
      expect(await installFailed("bomb")).toMatch(
        /apparmor_parser exceeded its memory limit \(64 MiB\) compiling the policy: simplify the policy/,
      );
    } finally {
      clearInterval(sampler);
    }
    expect(agent.process.isRunning()).toBe(true);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(limit);
    // The Event goes out before the sync's PATCH.
    await waitFor(
      "the bomb marked InvalidPolicy",
      async () => (await nodeLabels())[failedLabelKey("apparmor", "bomb")] === "InvalidPolicy",
    );
  });

  it("remembers the refusal across a restart: the parser does not judge the bomb again", async () => {
    const text = hostile("overlapping-globs.apparmor", "bomb");
    const before = parserRunsOn(text, "--stdout");
    expect(before).toBe(1);
    await agent.restart();
    // A sync after the restart has run (it reports the refusal again, from the memo).
    await waitFor(
      "the bomb still marked InvalidPolicy",
      async () => (await nodeLabels())[failedLabelKey("apparmor", "bomb")] === "InvalidPolicy",
    );
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "after-restart", {
      defaultAction: "SCMP_ACT_ALLOW",
    });
    await waitFor("a profile installed after the restart", () => holds("SeccompProfile", "after-restart"));
    expect(parserRunsOn(text, "--stdout")).toBe(before);
    expect(parserRunsOn(text, "--preprocess")).toBe(1);
  });

  it("takes its parsers with it when killed with SIGKILL", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "bomb-orphan", {
      rawPolicy: hostile("overlapping-globs.apparmor", "bomb-orphan"),
    });
    const parsers = await compilingParsers();
    // Held, so they cannot finish on their own before the agent dies.
    for (const p of parsers) process.kill(p.pid, "SIGSTOP");
    await agent.process.kill();
    await waitFor(
      "no apparmor_parser of the killed agent left",
      async () => {
        const live = new Set(
          processTable()
            .filter((p) => p.state !== "Z")
            .map((p) => p.pid),
        );
        return parsers.every((p) => !live.has(p.pid));
      },
      { timeoutMs: 10_000 },
    );
  });
});
