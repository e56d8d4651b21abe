// The phase rules and the parts of status that status.test.ts does not cover: precedence, failures
// of older versions, the cap on missing nodes, AppArmor capability, InUse, and the merge patch.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AGENT_LABEL, APPARMOR_LABEL } from "../api/constants.ts";
import { renderAppArmorProfiles, renderSeccompProfiles } from "../api/profiles.ts";
import {
  computeStatus,
  type InstallFailure,
  type NodeView,
  phaseChangeNeedsEvent,
  profilePhase,
  type StatusInput,
  statusMergePatch,
  statusWrite,
} from "./status.ts";

const NOW = new Date("2026-01-01T00:00:00Z");
const AGENT = { [AGENT_LABEL]: "0.1.0" };

function seccomp(name: string, spec: object) {
  const rendered = renderSeccompProfiles([{ name, spec }]).find((p) => p.name === name);
  if (!rendered) throw new Error("not rendered");
  return rendered;
}

function input(overrides: Partial<StatusInput> & Pick<StatusInput, "profile" | "nodes">): StatusInput {
  return {
    revision: "1",
    ownRevision: "1",
    generation: 3,
    deleting: false,
    failures: new Map(),
    previous: undefined,
    now: NOW,
    ...overrides,
  };
}

const web = seccomp("web", { defaultAction: "SCMP_ACT_ALLOW", nodeSelector: { pool: "web" } });
const version = web.ok ? web.version : "";
/** What the agent of a node in pool web writes once it has installed `web` (revision 1). */
const SYNCED = { "lockstep.dev/seccomp-revision": "1", "selector.lockstep.dev/pool": "web" };
const node = (name: string, labels: Record<string, string>): NodeView => ({ name, labels });

describe("profilePhase", () => {
  it("follows the documented precedence", () => {
    const base = { deleting: false, valid: true, desired: 3, installed: 1, failed: 0 };
    expect(profilePhase({ ...base, deleting: true, valid: false })).toBe("Terminating");
    expect(profilePhase({ ...base, valid: false })).toBe("Invalid");
    expect(profilePhase({ ...base, desired: 0, installed: 0 })).toBe("Pending");
    expect(profilePhase({ ...base, installed: 3 })).toBe("Installed");
    expect(profilePhase({ ...base, failed: 1 })).toBe("Degraded");
    expect(profilePhase(base)).toBe("Installing");
    expect(profilePhase({ ...base, installed: 0 })).toBe("Installing");
  });

  it("is Installed exactly when every desired node has it and there is one, Degraded exactly when a missing node failed", () => {
    fc.assert(
      fc.property(fc.nat(50), fc.nat(50), fc.nat(50), (desired, a, b) => {
        const installed = Math.min(a, desired);
        const failed = Math.min(b, desired - installed);
        const phase = profilePhase({ deleting: false, valid: true, desired, installed, failed });
        expect(phase === "Installed").toBe(desired > 0 && installed === desired);
        expect(phase === "Degraded").toBe(desired > installed && failed > 0);
      }),
    );
  });
});

describe("computeStatus", () => {
  it("produces the whole status object the controller writes", () => {
    const status = computeStatus(
      input({
        profile: web,
        nodes: [
          node("a", { ...AGENT, pool: "web", ...SYNCED }),
          node("b", { ...AGENT, pool: "web", ...SYNCED, "lockstep.dev/seccomp-revision": "0" }),
          node("c", { ...AGENT, pool: "db", ...SYNCED }),
        ],
      }),
    );
    expect(status).toEqual({
      phase: "Installing",
      observedGeneration: 3,
      revision: "1",
      version,
      localhostProfile: "lockstep/web.json",
      ready: "1/2",
      nodes: { installed: 1, desired: 2 },
      missingNodes: [{ node: "b", reason: "not installed yet" }],
      conditions: [
        {
          type: "Ready",
          status: "False",
          reason: "Installing",
          message: "installed on 1 of 2 nodes",
          observedGeneration: 3,
          lastTransitionTime: NOW.toISOString(),
        },
      ],
    });
  });

  it("ignores a failure reported for an older version, and lists failed nodes first", () => {
    const failedHere = { ...AGENT, pool: "web", "failed.seccomp.lockstep.dev/web": "WriteFailed" };
    const nodes = [node("a", { ...AGENT, pool: "web" }), node("b", failedHere), node("c", failedHere)];
    const failures = new Map<string, InstallFailure>([
      ["b", { version, message: "disk full" }],
      ["a", { version: "older0000000", message: "old failure" }],
      ["c", { version: "older0000000", message: "old failure" }],
    ]);
    const status = computeStatus(input({ profile: web, nodes, failures }));
    expect(status.phase).toBe("Degraded");
    expect(status.missingNodes).toEqual([
      { node: "b", reason: "disk full" },
      { node: "c", reason: "WriteFailed (see the agent's InstallFailed Event)" },
      { node: "a", reason: "not installed yet" },
    ]);
  });

  it("caps the missing nodes at 20 while counting them all", () => {
    const nodes = Array.from({ length: 500 }, (_, i) => node(`n${String(i).padStart(3, "0")}`, AGENT));
    const status = computeStatus(
      input({ profile: seccomp("all", { defaultAction: "SCMP_ACT_ALLOW" }), nodes }),
    );
    expect(status.ready).toBe("0/500");
    expect(status.missingNodes?.map((m) => m.node)).toEqual(nodes.slice(0, 20).map((n) => n.name));
  });

  it("is Pending and says so when the profile is disabled", () => {
    const disabled = seccomp("off", { defaultAction: "SCMP_ACT_ALLOW", disabled: true });
    const status = computeStatus(input({ profile: disabled, nodes: [node("a", AGENT)] }));
    expect(status.phase).toBe("Pending");
    expect(status.ready).toBe("0/0");
    expect(status.conditions?.[0]?.message).toBe("the profile is disabled");
  });

  it("counts AppArmor profiles only on nodes with AppArmor enabled", () => {
    const [aa] = renderAppArmorProfiles([{ name: "aa", spec: { executables: ["/bin/sh"] } }]);
    if (!aa) throw new Error("not rendered");
    const status = computeStatus(
      input({
        profile: aa,
        nodes: [
          node("with", { ...AGENT, [APPARMOR_LABEL]: "enabled" }),
          node("without", { ...AGENT, [APPARMOR_LABEL]: "unavailable" }),
        ],
      }),
    );
    expect(status.localhostProfile).toBe("lockstep.aa");
    expect(status.ready).toBe("0/1");
  });

  it("names the pods that keep a Terminating profile", () => {
    const status = computeStatus(
      input({ profile: web, nodes: [], deleting: true, inUseBy: ["default/user"] }),
    );
    expect(status.phase).toBe("Terminating");
    expect(status.conditions?.[0]).toMatchObject({
      reason: "InUse",
      message: expect.stringMatching(/default\/user/),
    });
  });
});

describe("statusMergePatch", () => {
  it("nulls the fields the new status no longer has, so a merge patch removes them", () => {
    expect(statusMergePatch({ phase: "Installed", version: "abc" }, { phase: "Invalid" })).toEqual({
      status: { phase: "Invalid", version: null },
    });
  });
});

describe("statusWrite: what a reconcile does with the status it computed", () => {
  const installing = { phase: "Installing" as const, observedGeneration: 1 };
  const installed = { phase: "Installed" as const, observedGeneration: 1 };
  const degraded = { phase: "Degraded" as const, observedGeneration: 1 };

  it("waits while the hold lasts, whatever changed", () => {
    expect(statusWrite(undefined, installed, 120)).toEqual({ holdMs: 120 });
  });

  it("writes nothing when the object carries the status already", () => {
    expect(statusWrite(installed, { ...installed }, 0)).toEqual({ patch: undefined });
  });

  it("writes the difference, and says whether the phase changed and is worth an Event", () => {
    expect(statusWrite(installing, installed, 0)).toEqual({
      patch: statusMergePatch(installing, installed),
      phaseChanged: true,
      event: false,
    });
    expect(statusWrite(installed, degraded, 0)).toMatchObject({ phaseChanged: true, event: true });
    expect(statusWrite(installed, { ...installed, observedGeneration: 2 }, 0)).toMatchObject({
      phaseChanged: false,
      event: false,
    });
  });
});

describe("phaseChangeNeedsEvent", () => {
  it("records what an operator must see: going wrong, and recovering from it", () => {
    expect(phaseChangeNeedsEvent("Installed", "Degraded")).toBe(true);
    expect(phaseChangeNeedsEvent("Installing", "Invalid")).toBe(true);
    expect(phaseChangeNeedsEvent("Installed", "Terminating")).toBe(true);
    expect(phaseChangeNeedsEvent("Degraded", "Installed")).toBe(true);
    expect(phaseChangeNeedsEvent("Invalid", "Installed")).toBe(true);
  });

  it("keeps a routine rollout in status only, and never repeats a phase", () => {
    expect(phaseChangeNeedsEvent(undefined, "Installing")).toBe(false);
    expect(phaseChangeNeedsEvent("Installing", "Installed")).toBe(false);
    expect(phaseChangeNeedsEvent(undefined, "Installed")).toBe(false);
    expect(phaseChangeNeedsEvent("Installed", "Installing")).toBe(false);
    expect(phaseChangeNeedsEvent("Degraded", "Degraded")).toBe(false);
  });
});
