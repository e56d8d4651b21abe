import { describe, expect, it } from "vitest";
import { INSTALL_FAILED, installReportEvent } from "../api/install-report.ts";
import {
  addToNodeBurst,
  EMPTY_NODE_BURST,
  installReportWakes,
  mergeRevisionRanges,
  NODE_BURST_MAX_MS,
  NODE_BURST_QUIET_MS,
  nodeBurstCollectMs,
  nodeBurstWaitMs,
  nodeBurstWakes,
  nodeChangeWakes,
  profileChangeWakes,
  revisionInRanges,
} from "./triggers.ts";

describe("which changes wake which profiles", () => {
  it("a spec change wakes the whole kind (inheritance); any other change only that profile", () => {
    expect(profileChangeWakes({ kind: "seccomp", name: "base", verb: "update", specChanged: true })).toEqual({
      kind: "seccomp",
    });
    expect(profileChangeWakes({ kind: "apparmor", name: "web", verb: "update", specChanged: false })).toEqual(
      {
        profile: { kind: "apparmor", name: "web" },
      },
    );
  });

  it("a Node wakes every profile only when its labels changed, appeared or went", () => {
    expect(nodeChangeWakes({ a: "1" }, { a: "1" })).toBeUndefined();
    expect(nodeChangeWakes({ a: "1" }, { a: "2" })).toEqual({ allAfterNodeBurst: true });
    expect(nodeChangeWakes({ a: "1" }, { a: "1", b: "1" })).toEqual({ allAfterNodeBurst: true });
    expect(nodeChangeWakes(undefined, {})).toEqual({ allAfterNodeBurst: true });
    expect(nodeChangeWakes({}, undefined)).toEqual({ allAfterNodeBurst: true });
  });

  it("an agent's revision claim alone wakes only the profiles whose revision it passed", () => {
    const wake = nodeChangeWakes(
      { pool: "a", "lockstep.dev/seccomp-revision": "10" },
      { pool: "a", "lockstep.dev/seccomp-revision": "20" },
    );
    expect(wake).toEqual({ revisionsAfterNodeBurst: { seccomp: { above: 10n, upTo: 20n } } });
    if (!wake || !("revisionsAfterNodeBurst" in wake)) throw new Error("unreachable");
    const ranges = wake.revisionsAfterNodeBurst;
    expect(["10", "11", "20", "21"].map((r) => revisionInRanges(ranges, "seccomp", r))).toEqual([
      false,
      true,
      true,
      false,
    ]);
    expect(revisionInRanges(ranges, "apparmor", "15")).toBe(false);
    // A first claim covers everything up to it.
    expect(nodeChangeWakes({ pool: "a" }, { pool: "a", "lockstep.dev/apparmor-revision": "5" })).toEqual({
      revisionsAfterNodeBurst: { apparmor: { above: 0n, upTo: 5n } },
    });
    // Anything else with it (a failure label, a relabel) wakes every profile.
    expect(
      nodeChangeWakes(
        { "lockstep.dev/seccomp-revision": "10" },
        { "lockstep.dev/seccomp-revision": "20", "failed.seccomp.lockstep.dev/x": "WriteFailed" },
      ),
    ).toEqual({ allAfterNodeBurst: true });
    expect(
      mergeRevisionRanges(
        { seccomp: { above: 10n, upTo: 20n } },
        { seccomp: { above: 5n, upTo: 12n }, apparmor: { above: 1n, upTo: 2n } },
      ),
    ).toEqual({ seccomp: { above: 5n, upTo: 20n }, apparmor: { above: 1n, upTo: 2n } });
  });

  it("an agent's install report wakes its profile; another Event nothing", () => {
    const event = installReportEvent(
      { kind: "seccomp", name: "web", node: "n1", version: "v", reason: "WriteFailed", detail: "disk full" },
      new Date(),
    );
    expect(installReportWakes(event)).toEqual({ profile: { kind: "seccomp", name: "web" } });
    expect(installReportWakes({ ...event, reason: `Not${INSTALL_FAILED}` })).toBeUndefined();
  });
});

describe("when a burst of Node label changes is reconciled", () => {
  it("one Node alone: after the quiet gap, never past the burst's cap", () => {
    expect(nodeBurstWaitMs(0, 1)).toBe(NODE_BURST_QUIET_MS);
    expect(nodeBurstWaitMs(NODE_BURST_MAX_MS - 4, 1)).toBe(4);
    expect(nodeBurstWaitMs(NODE_BURST_MAX_MS + 30, 1)).toBe(0);
  });

  it("several Nodes: collected until the cap after the first change, however quiet it gets", () => {
    expect(nodeBurstWaitMs(0, 2)).toBe(NODE_BURST_MAX_MS);
    expect(nodeBurstWaitMs(20, 500)).toBe(NODE_BURST_MAX_MS - 20);
    expect(nodeBurstWaitMs(NODE_BURST_MAX_MS + 1, 2)).toBe(0);
  });
});

describe("a burst of Node changes", () => {
  it("counts distinct Nodes, merges revision ranges, and wakes everything once any change asks it", () => {
    let burst = addToNodeBurst(
      EMPTY_NODE_BURST,
      { revisionsAfterNodeBurst: { seccomp: { above: 10n, upTo: 20n } } },
      "n1",
    );
    burst = addToNodeBurst(burst, { revisionsAfterNodeBurst: { seccomp: { above: 15n, upTo: 30n } } }, "n1");
    expect(burst.nodes.size).toBe(1);
    expect(nodeBurstCollectMs(0, burst)).toBe(NODE_BURST_QUIET_MS);
    expect(nodeBurstWakes(burst, "seccomp", "25")).toBe(true);
    expect(nodeBurstWakes(burst, "seccomp", "10")).toBe(false);
    expect(nodeBurstWakes(burst, "apparmor", "25")).toBe(false);
    burst = addToNodeBurst(burst, { revisionsAfterNodeBurst: {} }, "n2");
    expect(nodeBurstCollectMs(0, burst)).toBe(NODE_BURST_MAX_MS);
    burst = addToNodeBurst(burst, { allAfterNodeBurst: true }, undefined);
    expect(nodeBurstWakes(burst, "apparmor", "1")).toBe(true);
    burst = addToNodeBurst(burst, { revisionsAfterNodeBurst: {} }, "n3");
    expect(burst.wakes).toBe("all");
    expect(EMPTY_NODE_BURST.nodes.size).toBe(0);
  });
});
