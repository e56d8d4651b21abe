// Hostile numbers against a real agent and the real API server: more failing profiles than a Node can
// carry failure labels for, and a NoLongerHere mark the API server refuses.
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAILURE_LABELS_CAPPED } from "../../node-agent/events.ts";
import { NO_LONGER_HERE } from "../../node-agent/planner.ts";
import {
  FAILED_LABEL_PREFIX,
  GROUP,
  SECCOMP_PROFILE_PLURAL,
  SYNCED_REVISION_LABEL,
  VERSION,
} from "../../src/api/constants.ts";
import { INSTALL_FAILED } from "../../src/api/install-report.ts";
import { failedLabelKey } from "../../src/api/labels.ts";
import { MAX_FAILURE_LABELS_PER_KIND } from "../../src/api/limits.ts";
import { untilEnforced } from "../harness/admission.ts";
import { type AgentProcess, installAgentPrerequisites, startAgent, stopAgents } from "../harness/agents.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { applyProfile, deleteProfile, nodeHoldsProfile } from "../harness/profiles.ts";

let cp: ControlPlane;
let core: k8s.CoreV1Api;
const agents: AgentProcess[] = [];
const NODE = "node-a";

const holds = (name: string) => nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", name, NODE);
const nodeLabels = async () => (await core.readNode({ name: NODE })).metadata?.labels ?? {};
const seccompFailures = (labels: Record<string, string>) =>
  Object.keys(labels).filter((k) => k.startsWith(FAILED_LABEL_PREFIX.seccomp));

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  await cp.addNode(NODE, { labels: { pool: "web" } });
  await installAgentPrerequisites(cp);
  agents.push(await startAgent(cp, NODE));
});

afterAll(async () => {
  await stopAgents(agents);
  await cp?.stop();
});

/** Runs `each` over `items`, `width` at a time. */
async function inBatches<T>(items: readonly T[], width: number, each: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(each));
}

describe("more failing profiles than failure labels", () => {
  const HOSTILE = 2 * MAX_FAILURE_LABELS_PER_KIND + 44;
  const hostile = Array.from({ length: HOSTILE }, (_, i) => `hostile-${String(i).padStart(3, "0")}`);

  it(`labels the oldest ${MAX_FAILURE_LABELS_PER_KIND}, holds the revision below the oldest one left, and keeps publishing for what is installed`, async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "early", { defaultAction: "SCMP_ACT_ALLOW" });
    await waitFor("early on the node", () => holds("early"));
    await inBatches(hostile, 20, (name) =>
      applyProfile(cp.kubeConfig(), "SeccompProfile", name, { baseProfileName: "missing-base" }),
    );
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "late", { defaultAction: "SCMP_ACT_ALLOW" });

    // Without a controller, a profile's revision is its own resourceVersion (ADR 0024).
    const objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    const list = (await objects.listClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: SECCOMP_PROFILE_PLURAL,
    })) as { items: { metadata: { name: string; resourceVersion: string } }[] };
    const revisions = list.items
      .filter((p) => p.metadata.name.startsWith("hostile-"))
      .map((p) => ({ name: p.metadata.name, revision: BigInt(p.metadata.resourceVersion) }))
      .sort((a, b) => (a.revision < b.revision ? -1 : 1));
    const oldestLeft = revisions[MAX_FAILURE_LABELS_PER_KIND];
    if (!oldestLeft) throw new Error("fixture");
    const labels = await waitFor(
      "the node labelled past the cap",
      async () => {
        const now = await nodeLabels();
        return now[SYNCED_REVISION_LABEL.seccomp] === String(oldestLeft.revision - 1n) ? now : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(seccompFailures(labels).sort()).toEqual(
      revisions
        .slice(0, MAX_FAILURE_LABELS_PER_KIND)
        .map((r) => failedLabelKey("seccomp", r.name))
        .sort(),
    );
    // What the node lacks, it does not claim; what it had before the flood, it still does.
    for (const { name } of revisions) expect(await holds(name)).toBe(false);
    expect(await holds("early")).toBe(true);
    expect(await holds("late")).toBe(false);
    const node = await core.readNode({ name: NODE });
    expect(JSON.stringify(node).length).toBeLessThan(80_000);

    // One report per labelled failure, and for the rest one summary on the Node per sync that changed
    // them (the flood arrived over several syncs): the last one counts them all.
    const events = (await core.listNamespacedEvent({ namespace: "default" })).items;
    const reports = events.filter((e) => e.reason === INSTALL_FAILED && e.source?.host === NODE);
    expect(reports.length).toBe(MAX_FAILURE_LABELS_PER_KIND);
    const summaries = events
      .filter((e) => e.reason === FAILURE_LABELS_CAPPED && e.involvedObject.name === NODE)
      .map((e) => e.message ?? "");
    expect(summaries).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^node ${NODE}: ${HOSTILE - MAX_FAILURE_LABELS_PER_KIND} profiles that belong here .*: (SeccompProfile hostile-\\d+ \\(BaseNotFound\\)(, )?)+ and \\d+ more$`,
        ),
      ),
    );
    for (const message of summaries) expect(message.length).toBeLessThanOrEqual(1024);

    await inBatches(hostile, 20, (name) => deleteProfile(cp.kubeConfig(), "SeccompProfile", name));
    // Under the cap again (the last deletions still arriving), then none left.
    await waitFor(
      "late on the node and no failure label once the flood is gone",
      async () => (await holds("late")) && seccompFailures(await nodeLabels()).length === 0,
    );
  });
});

describe("NoLongerHere before the file goes", () => {
  it("keeps the file while the API server refuses the mark, and removes it only once the mark is on the Node", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "moving", {
      defaultAction: "SCMP_ACT_ALLOW",
      nodeSelector: { pool: "web" },
    });
    await waitFor("moving on the node", () => holds("moving"));
    const file = join(agents[0]?.seccompDir ?? "", "moving.json");
    expect(existsSync(file)).toBe(true);

    // A policy that refuses the mark: the agent cannot tell the scheduler the profile is leaving.
    const key = failedLabelKey("seccomp", "moving");
    const admission = cp.kubeConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
    const policy = "test-refuse-no-longer-here";
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: policy },
        spec: {
          failurePolicy: "Fail",
          matchConstraints: {
            resourceRules: [
              { apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["nodes"] },
            ],
          },
          validations: [
            {
              expression: `!has(object.metadata.labels) || !('${key}' in object.metadata.labels)`,
              message: "the test refuses this mark",
            },
          ],
        },
      },
    });
    await admission.createValidatingAdmissionPolicyBinding({
      body: { metadata: { name: policy }, spec: { policyName: policy, validationActions: ["Deny"] } },
    });
    const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
    await untilEnforced(policy, () =>
      core.patchNode(
        { name: NODE, dryRun: "All", body: { metadata: { labels: { [key]: NO_LONGER_HERE } } } },
        merge,
      ),
    );

    try {
      await applyProfile(cp.kubeConfig(), "SeccompProfile", "moving", {
        defaultAction: "SCMP_ACT_ALLOW",
        nodeSelector: { pool: "batch" },
      });
      // The agent tries (and retries) its sync; give it a few attempts.
      await new Promise((r) => setTimeout(r, 5_000));
      expect(existsSync(file)).toBe(true);
      expect((await nodeLabels())[key]).toBeUndefined();
    } finally {
      await admission.deleteValidatingAdmissionPolicyBinding({ name: policy });
      await admission.deleteValidatingAdmissionPolicy({ name: policy });
    }
    await waitFor("the file gone after the mark", async () => !existsSync(file), { timeoutMs: 60_000 });
    expect((await nodeLabels())[key]).toBe(NO_LONGER_HERE);
  });
});
