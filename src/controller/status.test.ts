import { describe, expect, it } from "vitest";
import { AGENT_LABEL, APPARMOR_LABEL } from "../api/constants.ts";
import { renderSeccompProfiles } from "../api/profiles.ts";
import {
  computeStatus,
  FIRST_STATUS_HOLD_MS,
  firstStatusHoldMs,
  type NodeView,
  pendingCondition,
  phaseCounts,
  phaseEventFields,
  statusDiffers,
} from "./status.ts";

const [web] = renderSeccompProfiles([
  { name: "web", spec: { defaultAction: "SCMP_ACT_ALLOW", nodeSelector: { pool: "web" } } },
]);
const [invalid] = renderSeccompProfiles([{ name: "bad", spec: { baseProfileName: "missing" } }]);
if (!web?.ok || !invalid) throw new Error("fixture");
const key = web.labelKey;
const node = (name: string, labels: Record<string, string>): NodeView => ({
  name,
  labels: { "lockstep.dev/agent": "0.1.0", pool: "web", ...labels },
});
/** What a node's agent writes once it has installed `web` (revision 20, nodeSelector pool=web). */
const synced = { "lockstep.dev/seccomp-revision": "20", "selector.lockstep.dev/pool": "web" };
const base = {
  revision: "20",
  ownRevision: "20",
  generation: 1,
  deleting: false,
  failures: new Map(),
  previous: undefined,
  now: new Date(0),
};

describe("computeStatus", () => {
  it("is Pending with no matching ready node, Installing while some lack it, Installed when all have it", () => {
    expect(computeStatus({ ...base, profile: web, nodes: [] }).phase).toBe("Pending");
    const two = [node("a", synced), node("b", {})];
    const installing = computeStatus({ ...base, profile: web, nodes: two });
    expect(installing).toMatchObject({
      phase: "Installing",
      ready: "1/2",
      missingNodes: [{ node: "b", reason: "not installed yet" }],
    });
    expect(
      computeStatus({
        ...base,
        profile: web,
        nodes: [two[0] as NodeView, node("b", synced)],
      }),
    ).toMatchObject({
      phase: "Installed",
      ready: "2/2",
    });
  });

  it("counts a node whose agent caught up with the revision and the selector, unless it failed there", () => {
    const caughtUp = synced;
    const nodes = [
      node("a", caughtUp),
      node("behind", { ...caughtUp, "lockstep.dev/seccomp-revision": "19" }),
      node("relabelled", { ...caughtUp, "selector.lockstep.dev/pool": "batch" }),
      node("failed", { ...caughtUp, "failed.seccomp.lockstep.dev/web": "NameTaken" }),
    ];
    const status = computeStatus({ ...base, profile: web, nodes });
    expect(status).toMatchObject({ ready: "1/4", phase: "Degraded", revision: "20" });
    expect(status.missingNodes).toEqual([
      { node: "failed", reason: "NameTaken (see the agent's InstallFailed Event)" },
      { node: "behind", reason: "not installed yet" },
      { node: "relabelled", reason: "not installed yet" },
    ]);
  });

  it("does not count nodes without a ready agent, outside the selector, behind, or with per-profile labels", () => {
    const nodes: NodeView[] = [
      { name: "no-agent", labels: { pool: "web", ...synced } },
      node("other-pool", { pool: "batch", ...synced }),
      node("stale", { ...synced, "lockstep.dev/seccomp-revision": "19" }),
      // The per-profile label of the agents before ADR 0024, which no release shipped: not a claim.
      node("per-profile", { [key]: web.version }),
    ];
    expect(computeStatus({ ...base, profile: web, nodes })).toMatchObject({
      ready: "0/2",
      phase: "Installing",
    });
  });

  it("judges a node that publishes revisions by its failure label alone: an Event only explains it", () => {
    const caughtUp = { "lockstep.dev/seccomp-revision": "19", "selector.lockstep.dev/pool": "web" };
    const report = { version: web.version, message: "WriteFailed: disk full" };
    // Anyone allowed to create Events in the namespace could have written this one.
    const forged = computeStatus({
      ...base,
      profile: web,
      nodes: [node("a", caughtUp)],
      failures: new Map([["a", report]]),
    });
    expect(forged).toMatchObject({
      phase: "Installing",
      missingNodes: [{ node: "a", reason: "not installed yet" }],
    });
    const labelled = computeStatus({
      ...base,
      profile: web,
      nodes: [node("a", { ...caughtUp, "failed.seccomp.lockstep.dev/web": "WriteFailed" })],
      failures: new Map([["a", report]]),
    });
    expect(labelled).toMatchObject({
      phase: "Degraded",
      missingNodes: [{ node: "a", reason: "WriteFailed: disk full" }],
    });
  });

  it("does not take an Event alone for a failure on a node that has no revision label yet", () => {
    const failures = new Map([["b", { version: web.version, message: "WriteFailed: disk full" }]]);
    const status = computeStatus({ ...base, profile: web, nodes: [node("a", {}), node("b", {})], failures });
    expect(status.phase).toBe("Installing");
    expect(status.missingNodes).toEqual([
      { node: "a", reason: "not installed yet" },
      { node: "b", reason: "not installed yet" },
    ]);
  });

  it("is Invalid with the resolver's message, and Terminating while being deleted", () => {
    const status = computeStatus({ ...base, profile: invalid, nodes: [node("a", {})] });
    expect(status.phase).toBe("Invalid");
    expect(status.conditions?.[0]?.message).toMatch(/base profile "missing" not found/);
    expect(computeStatus({ ...base, deleting: true, profile: web, nodes: [] }).phase).toBe("Terminating");
  });

  it("keeps lastTransitionTime while the Ready condition does not change, so an unchanged status is not rewritten", () => {
    const first = computeStatus({ ...base, profile: web, nodes: [node("a", {})] });
    const again = computeStatus({
      ...base,
      profile: web,
      nodes: [node("a", {})],
      previous: first,
      now: new Date(60_000),
    });
    expect(statusDiffers(first, again)).toBe(false);
  });
});

describe("firstStatusHoldMs", () => {
  const installing = computeStatus({ ...base, profile: web, nodes: [node("a", {})] });
  it("holds back only a generation's first status, and only while it would say Installing", () => {
    expect(firstStatusHoldMs(undefined, installing, 100)).toBe(FIRST_STATUS_HOLD_MS - 100);
    expect(firstStatusHoldMs(undefined, installing, FIRST_STATUS_HOLD_MS + 1)).toBe(0);
    // An update: the status is about the previous generation.
    expect(firstStatusHoldMs({ ...installing, observedGeneration: 0 }, installing, 0)).toBe(
      FIRST_STATUS_HOLD_MS,
    );
    // The generation has a status already: every later change is written at once.
    expect(firstStatusHoldMs(installing, { ...installing, ready: "0/2" }, 0)).toBe(0);
    // Pending, Invalid and Degraded are news at once.
    expect(firstStatusHoldMs(undefined, computeStatus({ ...base, profile: web, nodes: [] }), 0)).toBe(0);
    expect(firstStatusHoldMs(undefined, computeStatus({ ...base, profile: invalid, nodes: [] }), 0)).toBe(0);
  });
});

describe("pendingCondition", () => {
  const agentNode = (name: string, labels: Record<string, string> = {}) => ({
    name,
    labels: { [AGENT_LABEL]: "0.2.0", [APPARMOR_LABEL]: "unavailable", ...labels },
  });
  const appArmor = { kind: "apparmor" as const, disabled: false, nodeSelector: {} };

  it("says a profile is disabled, or that no agent is ready anywhere", () => {
    expect(pendingCondition({ ...appArmor, disabled: true }, [agentNode("a")]).reason).toBe("Disabled");
    expect(pendingCondition(appArmor, [{ name: "a", labels: {} }])).toEqual({
      status: "False",
      reason: "NoMatchingNodes",
      message: "no node has a ready Lockstep agent yet",
    });
  });

  it("names the nodeSelector when ready agents exist and none matches it", () => {
    const selective = { ...appArmor, nodeSelector: { pool: "secure" } };
    expect(pendingCondition(selective, [agentNode("a"), agentNode("b")]).message).toBe(
      "none of the 2 nodes with a ready Lockstep agent matches the profile's nodeSelector",
    );
  });

  it("says that no matching node has AppArmor, where agents are ready and match", () => {
    const condition = pendingCondition(appArmor, [agentNode("a"), agentNode("b"), agentNode("c")]);
    expect(condition.reason).toBe("AppArmorUnavailable");
    expect(condition.message).toMatch(
      /^3 of the 3 nodes .* none of them has AppArmor \(lockstep\.dev\/apparmor=unavailable\)/,
    );
  });

  it("is what computeStatus reports for an AppArmor profile on a cluster without AppArmor", () => {
    const nodes = [agentNode("a", { pool: "web" }), agentNode("b", { pool: "web" })];
    const status = computeStatus({ ...base, profile: { ...web, kind: "apparmor" } as typeof web, nodes });
    expect(status.phase).toBe("Pending");
    expect(status.ready).toBe("0/0");
    expect(status.conditions?.[0]?.reason).toBe("AppArmorUnavailable");
  });
});

describe("what a phase change tells and how phases are counted", () => {
  it("announces a phase in an Event from its Ready condition, Normal only for Installed", () => {
    const status = {
      phase: "Degraded" as const,
      conditions: [
        {
          type: "Ready" as const,
          status: "False" as const,
          reason: "InstallFailed",
          message: "1 of 3 nodes failed",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    };
    expect(phaseEventFields("apparmor", { name: "web", uid: "u1" }, status)).toEqual({
      involvedObject: {
        apiVersion: "lockstep.dev/v1alpha1",
        kind: "AppArmorProfile",
        name: "web",
        uid: "u1",
      },
      reason: "InstallFailed",
      message: "1 of 3 nodes failed",
      type: "Warning",
    });
    expect(phaseEventFields("seccomp", { name: "web" }, { phase: "Installed" })).toMatchObject({
      reason: "Installed",
      message: "Installed",
      type: "Normal",
    });
  });

  it("counts a profile without a status as Pending", () => {
    expect(
      phaseCounts([undefined, { phase: "Installed" }, { phase: "Pending" }, { phase: "Installed" }]),
    ).toEqual(
      new Map([
        ["Pending", 2],
        ["Installed", 2],
      ]),
    );
  });
});
