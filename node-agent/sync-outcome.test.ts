import { describe, expect, it } from "vitest";
import { AGENT_LABEL, APPARMOR_LABEL, SYNCED_REVISION_LABEL } from "../src/api/constants.ts";
import { failedLabelKey } from "../src/api/labels.ts";
import { renderSeccompProfiles } from "../src/api/profiles.ts";
import { refusalFailure } from "./failures.ts";
import type { NodeObservation, SyncPlan } from "./planner.ts";
import { planSync } from "./planner.ts";
import { planActsOnNode, syncOutcome } from "./sync-outcome.ts";

const ALLOW = { defaultAction: "SCMP_ACT_ALLOW" };
const [good, bad] = renderSeccompProfiles([
  { name: "good", uid: "u1", spec: ALLOW, revision: "7" },
  { name: "bad", uid: "u2", spec: ALLOW, revision: "9" },
]);
if (!good?.ok || !bad?.ok) throw new Error("test profiles do not render");

/** The node after a sync that wrote `good` and failed to write `bad`. */
const after: NodeObservation = {
  nodeLabels: { "kubernetes.io/arch": "amd64", [APPARMOR_LABEL]: "unavailable", [AGENT_LABEL]: "0.0.9" },
  seccompProfiles: [good, bad],
  appArmorProfiles: [],
  appArmorAvailable: false,
  disk: { files: new Map([["good", good.contentFor("amd64")]]), unusable: new Map() },
  kernel: new Set(),
  record: { seccomp: ["good", "bad"], appArmor: {} },
  podLabels: [],
  revisionFloor: { seccomp: "0", apparmor: "0" },
};
const plan: SyncPlan = planSync({ ...after, disk: { files: new Map(), unusable: new Map() } });
const failures = [{ profile: bad, reason: "WriteFailed", message: "disk full" }];
const agent = { appArmorAvailable: false, reconciled: true, version: "1.0.0" };

describe("syncOutcome", () => {
  it("labels what is on disk, a failure label for the rest, and reports the failures that carry one", () => {
    const outcome = syncOutcome(after, plan, failures, 128, agent);
    expect(outcome.installed).toEqual({ seccomp: 1, apparmor: 0 });
    expect(outcome.reported).toEqual(failures);
    expect(outcome.desired).toMatchObject({
      [failedLabelKey("seccomp", "bad")]: "WriteFailed",
      [SYNCED_REVISION_LABEL.seccomp]: "9",
      [APPARMOR_LABEL]: "unavailable",
      [AGENT_LABEL]: "1.0.0",
    });
  });

  it("past the cap reports nothing it cannot label, and keeps the revision below what it cannot claim", () => {
    const outcome = syncOutcome(after, plan, failures, 0, agent);
    expect(outcome.reported).toEqual([]);
    expect(outcome.bounded.unlabelled.map((f) => f.name)).toEqual(["bad"]);
    expect(outcome.desired[SYNCED_REVISION_LABEL.seccomp]).toBe("8");
  });

  it("before start-up reconciliation keeps, never withdraws, an earlier run's agent label", () => {
    expect(
      syncOutcome(after, plan, failures, 128, { ...agent, reconciled: false }).desired[AGENT_LABEL],
    ).toBe("0.0.9");
  });
});

describe("planActsOnNode and refusalFailure", () => {
  it("a plan that writes, removes, loads or unloads touched the node; one that only forgets did not", () => {
    expect(planActsOnNode(plan)).toBe(true);
    expect(planActsOnNode({ ...plan, writeSeccomp: [], forgetSeccomp: ["x"] })).toBe(false);
  });

  it("a verdict on the policy is InvalidPolicy; a parser that could not run, a failed load", () => {
    expect(refusalFailure(good, { message: "m", duration: "lasting" }).reason).toBe("InvalidPolicy");
    expect(refusalFailure(good, { message: "m", duration: "this-run" }).reason).toBe("InvalidPolicy");
    expect(refusalFailure(good, { message: "m", duration: "none" })).toEqual({
      profile: good,
      reason: "LoadFailed",
      message: "m",
    });
  });
});
