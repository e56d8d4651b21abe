import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_INHERITANCE_DEPTH } from "./limits.ts";
import {
  type ChainLink,
  nodeHasProfile,
  nodeProfileReport,
  nodeProfileState,
  type ProfilePlacement,
  placementOf,
  placementsOf,
  profileRequirements,
  profileRevision,
  renderingRevision,
  revisionBefore,
  revisionReached,
  UNKNOWN_REVISION,
  withRenderingRevisions,
} from "./node-profiles.ts";

describe("revisionBefore", () => {
  it("compares revisions as integers, and is false when either is not one", () => {
    expect(revisionBefore("9", "10")).toBe(true); // not as strings
    expect(revisionBefore("10", "10")).toBe(false);
    expect(revisionBefore("11", "10")).toBe(false);
    expect(revisionBefore("999999999999999999", "1000000000000000000")).toBe(false); // 19 digits: not one
    expect(revisionBefore(undefined, "10")).toBe(false);
    expect(revisionBefore("10", "x")).toBe(false);
  });
});

describe("profileRevision", () => {
  it("is the resourceVersion until the controller records the generation's revision, then that, through later writes", () => {
    expect(profileRevision({ metadata: { resourceVersion: "100", generation: 1 } })).toBe("100");
    const recorded = { observedGeneration: 1, revision: "100" };
    expect(profileRevision({ metadata: { resourceVersion: "130", generation: 1 }, status: recorded })).toBe(
      "100",
    );
    // A new generation: the record is about the old one.
    expect(profileRevision({ metadata: { resourceVersion: "150", generation: 2 }, status: recorded })).toBe(
      "150",
    );
  });

  it("fails closed on a resourceVersion that does not parse: never 0, which every node reaches", () => {
    for (const resourceVersion of [
      "not-a-number",
      "",
      "-1",
      "01",
      "1e3",
      " 100",
      "1".repeat(19),
      undefined,
    ]) {
      const revision = profileRevision({ metadata: { resourceVersion } });
      expect(revision).toBe(UNKNOWN_REVISION);
      const p: ProfilePlacement = { kind: "seccomp", name: "web", revision, disabled: false };
      // No node holds it, however far its agent got...
      for (const label of ["0", "1", "999999999999999999"])
        expect(nodeHasProfile(p, { "lockstep.dev/seccomp-revision": label })).toBe(false);
      // ...and the webhook's requirement for it matches none (`Gt` and `DoesNotExist` on one key).
      const required = profileRequirements([p, { ...p, name: "other", revision: "5" }]);
      expect(required).toContainEqual({ key: "lockstep.dev/seccomp-revision", operator: "DoesNotExist" });
      expect(required).toContainEqual({
        key: "lockstep.dev/seccomp-revision",
        operator: "Gt",
        values: ["4"],
      });
    }
  });
});

describe("revisionReached", () => {
  it("never counts a node revision label that does not parse", () => {
    for (const label of ["abc", "", "-5", "0x10", "10 ", "+10", "010", "1".repeat(19), "１０"])
      expect(revisionReached({ "lockstep.dev/seccomp-revision": label }, "seccomp", "0")).toBe(false);
    expect(revisionReached({ "lockstep.dev/seccomp-revision": "10" }, "seccomp", "10")).toBe(true);
    expect(revisionReached({}, "seccomp", "0")).toBe(false);
  });
});

describe("renderingRevision", () => {
  const links = (entries: Record<string, ChainLink>) => (name: string) => entries[name];

  it("is the highest revision along the baseProfileName chain", () => {
    const chain = links({
      app: { revision: "30", spec: { baseProfileName: "team" } },
      team: { revision: "50", spec: { baseProfileName: "org" } },
      org: { revision: "10", spec: { baseProfileName: "runtime/default" } },
    });
    expect(renderingRevision("seccomp", "app", chain)).toBe("50");
    expect(renderingRevision("seccomp", "org", chain)).toBe("10");
    // AppArmor has no inheritance: a baseProfileName there is nothing to follow.
    expect(renderingRevision("apparmor", "app", chain)).toBe("30");
  });

  it("is what withRenderingRevisions gives each rendering, whatever revision it was rendered at", () => {
    const chain = links({
      app: { revision: "30", spec: { baseProfileName: "team" } },
      team: { revision: "50", spec: {} },
    });
    const rendered = [
      { name: "app", revision: "12", ok: true },
      { name: "team", revision: "50", ok: true },
    ];
    expect(withRenderingRevisions("seccomp", rendered, chain)).toEqual([
      { name: "app", revision: "50", ok: true },
      { name: "team", revision: "50", ok: true },
    ]);
    expect(rendered[0]?.revision).toBe("12");
  });

  it("stops at a missing base, a cycle and the depth limit, and fails closed on an unknown revision", () => {
    expect(
      renderingRevision("seccomp", "a", links({ a: { revision: "7", spec: { baseProfileName: "gone" } } })),
    ).toBe("7");
    const cycle = links({
      a: { revision: "7", spec: { baseProfileName: "b" } },
      b: { revision: "9", spec: { baseProfileName: "a" } },
    });
    expect(renderingRevision("seccomp", "a", cycle)).toBe("9");
    // A hostile chain far beyond the limit costs MAX_INHERITANCE_DEPTH lookups, not its length.
    let lookups = 0;
    const endless = (name: string): ChainLink => {
      lookups++;
      return {
        revision: String(Number(name.slice(1)) + 1),
        spec: { baseProfileName: `p${Number(name.slice(1)) + 1}` },
      };
    };
    expect(renderingRevision("seccomp", "p0", endless)).toBe(String(MAX_INHERITANCE_DEPTH));
    expect(lookups).toBe(MAX_INHERITANCE_DEPTH);
    const unknownBase = links({
      a: { revision: "7", spec: { baseProfileName: "b" } },
      b: { revision: UNKNOWN_REVISION, spec: {} },
    });
    expect(renderingRevision("seccomp", "a", unknownBase)).toBe(UNKNOWN_REVISION);
    expect(renderingRevision("seccomp", "nope", links({}))).toBe(UNKNOWN_REVISION);
  });

  it("moves with every update of an ancestor, so a node that rendered only the old chain never holds the new one", () => {
    fc.assert(
      fc.property(
        // Profile i inherits from profile bases[i] (an earlier one) or from nothing.
        fc.array(fc.option(fc.nat(), { nil: undefined }), { minLength: 1, maxLength: 24 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 5 })), { minLength: 1, maxLength: 10 }),
        fc.nat(),
        (bases, updates, childPick) => {
          // The API server's resourceVersions: one counter across every object.
          let etcd = 100n;
          const objects = new Map<string, ChainLink>(
            bases.map((base, i): [string, ChainLink] => {
              etcd += 1n;
              const spec = base === undefined || i === 0 ? {} : { baseProfileName: `p${base % i}` };
              return [`p${i}`, { revision: String(etcd), spec }];
            }),
          );
          const child = `p${childPick % bases.length}`;
          const linkOf = (name: string) => objects.get(name);
          const ancestors: string[] = [];
          for (let n: string | undefined = child; n !== undefined; ) {
            ancestors.push(n);
            const spec: { baseProfileName?: string } = objects.get(n)?.spec ?? {};
            n = spec.baseProfileName;
          }
          for (const [pick, gap] of updates) {
            const before = renderingRevision("seccomp", child, linkOf);
            // Whatever the node's agent claimed, it had seen no write after the newest one so far.
            const oldNode = { "lockstep.dev/seccomp-revision": String(etcd) };
            const updated = `p${pick % bases.length}`;
            etcd += BigInt(gap);
            const link = objects.get(updated) as ChainLink;
            objects.set(updated, { ...link, revision: String(etcd) });
            const after = renderingRevision("seccomp", child, linkOf);
            const placement: ProfilePlacement = {
              kind: "seccomp",
              name: child,
              revision: after,
              disabled: false,
            };
            if (ancestors.includes(updated)) {
              expect(BigInt(after)).toBeGreaterThan(BigInt(before));
              expect(nodeHasProfile(placement, oldNode)).toBe(false);
            } else expect(after).toBe(before);
            // A node whose agent covered the update holds it.
            expect(nodeHasProfile(placement, { "lockstep.dev/seccomp-revision": String(etcd) })).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("nodeHasProfile", () => {
  const web: ProfilePlacement = {
    kind: "seccomp",
    name: "web",
    revision: "100",
    nodeSelector: { pool: "web" },
    disabled: false,
  };
  const caughtUp = {
    pool: "web",
    "lockstep.dev/seccomp-revision": "100",
    "selector.lockstep.dev/pool": "web",
  };

  it("holds on a node whose agent caught up, recorded the selector value and did not fail", () => {
    expect(nodeHasProfile(web, caughtUp)).toBe(true);
    expect(nodeProfileState(web, { ...caughtUp, "lockstep.dev/seccomp-revision": "99" })).toBe("pending");
    expect(nodeProfileState(web, { ...caughtUp, "failed.seccomp.lockstep.dev/web": "WriteFailed" })).toBe(
      "failed",
    );
    // Relabelled into the selector after the agent last synced: not yet.
    expect(nodeHasProfile(web, { ...caughtUp, "selector.lockstep.dev/pool": "batch" })).toBe(false);
    expect(nodeHasProfile(web, { ...caughtUp, pool: "batch" })).toBe(false);
    expect(nodeHasProfile({ ...web, disabled: true }, caughtUp)).toBe(false);
    expect(
      nodeHasProfile({ ...web, kind: "apparmor" }, { ...caughtUp, "lockstep.dev/apparmor-revision": "100" }),
    ).toBe(false);
  });

  it("takes no per-profile label (the agents before ADR 0024, never released) for an installation", () => {
    expect(nodeProfileState(web, { pool: "web", "seccomp.lockstep.dev/web": "abc" })).toBe("pending");
    const behind = { ...caughtUp, "lockstep.dev/seccomp-revision": "99" };
    expect(nodeHasProfile(web, { ...behind, "seccomp.lockstep.dev/web": "abc" })).toBe(false);
  });
});

describe("placementsOf", () => {
  it("gives each profile its rendering's revision", () => {
    const base = { metadata: { name: "base", resourceVersion: "90", generation: 1 }, spec: {} };
    const child = {
      metadata: { name: "child", resourceVersion: "40", generation: 1 },
      spec: { baseProfileName: "base" },
      status: { observedGeneration: 1, revision: "40", version: "v-old" },
    };
    const [b, c] = placementsOf("seccomp", [base, child]);
    expect(b?.revision).toBe("90");
    expect(c).toMatchObject({ name: "child", revision: "90" });
  });
});

describe("placementOf", () => {
  it("takes the revision from a status about the current generation only", () => {
    const obj = {
      metadata: { name: "web", resourceVersion: "7", generation: 2 },
      spec: { nodeSelector: { pool: "web" }, disabled: true },
      status: { observedGeneration: 1, revision: "5", version: "abc" },
    };
    expect(placementOf("seccomp", obj)).toEqual({
      kind: "seccomp",
      name: "web",
      revision: "7",
      nodeSelector: { pool: "web" },
      disabled: true,
    });
    expect(
      placementOf("seccomp", { ...obj, status: { ...obj.status, observedGeneration: 2 } }),
    ).toMatchObject({ revision: "5" });
  });
});

describe("nodeProfileReport", () => {
  it("says for each profile whether the node holds it, failed it (with the reason), waits for it, or is not meant to have it", () => {
    const at = (name: string, extra: Partial<ProfilePlacement> = {}): ProfilePlacement => ({
      kind: "seccomp",
      name,
      revision: "50",
      disabled: false,
      ...extra,
    });
    const labels = {
      "lockstep.dev/seccomp-revision": "60",
      "failed.seccomp.lockstep.dev/taken": "NameTaken",
      "lockstep.dev/apparmor": "unavailable",
    };
    expect(
      nodeProfileReport(labels, [
        at("web"),
        at("taken"),
        at("newer", { revision: "70" }),
        at("off", { disabled: true }),
        at("aa", { kind: "apparmor" }),
      ]),
    ).toEqual([
      { kind: "seccomp", name: "web", state: "installed" },
      { kind: "seccomp", name: "taken", state: "failed", reason: "NameTaken" },
      { kind: "seccomp", name: "newer", state: "pending" },
      { kind: "seccomp", name: "off", state: "elsewhere" },
      { kind: "apparmor", name: "aa", state: "elsewhere" },
    ]);
  });
});
