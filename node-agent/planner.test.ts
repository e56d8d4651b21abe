import { describe, expect, it } from "vitest";
import { IN_USE_LABEL_VALUE } from "../src/api/affinity.ts";
import { APPARMOR_LABEL } from "../src/api/constants.ts";
import { failedLabelKey, profileLabelKey, selectorSyncedLabelKey } from "../src/api/labels.ts";
import { type ProfileObjectRef, renderAppArmorProfiles, renderSeccompProfiles } from "../src/api/profiles.ts";
import { INSTALL_FAILURE_REASONS } from "./failures.ts";
import { EMPTY_RECORD, type OwnershipRecord } from "./ownership-record.ts";
import {
  adoptedRecord,
  failedProfiles,
  installedProfiles,
  NO_LONGER_HERE,
  NOT_INSTALLED,
  type NodeObservation,
  planSync,
  selectorSyncedLabels,
  syncedRevisions,
} from "./planner.ts";

const ALLOW = { defaultAction: "SCMP_ACT_ALLOW" };
const seccompKey = (name: string) => profileLabelKey("seccomp", name);
const appArmorKey = (name: string) => profileLabelKey("apparmor", name);

function seccomp(name: string, spec: Record<string, unknown> = ALLOW): ProfileObjectRef {
  return { name, uid: `uid-${name}`, spec };
}

/** The content the agent writes for a profile on this test's amd64 node. */
function contentOf(ref: ProfileObjectRef): string {
  const [p] = renderSeccompProfiles([ref]);
  if (!p?.ok) throw new Error("test profile does not render");
  return p.contentFor("amd64");
}

function versionOf(ref: ProfileObjectRef, kind: "seccomp" | "apparmor"): string {
  const [p] = kind === "seccomp" ? renderSeccompProfiles([ref]) : renderAppArmorProfiles([ref]);
  if (!p?.ok) throw new Error("test profile does not render");
  return p.version;
}

interface Setup {
  seccomp?: ProfileObjectRef[];
  appArmor?: ProfileObjectRef[];
  files?: Record<string, string>;
  unusable?: Record<string, string>;
  kernel?: string[];
  record?: OwnershipRecord;
  pods?: Record<string, string>[];
  nodeLabels?: Record<string, string>;
  revisionFloor?: { seccomp: string; apparmor: string };
}

function observe(s: Setup): NodeObservation {
  return {
    nodeLabels: { "kubernetes.io/arch": "amd64", [APPARMOR_LABEL]: "enabled", ...s.nodeLabels },
    seccompProfiles: renderSeccompProfiles(s.seccomp ?? []),
    appArmorProfiles: renderAppArmorProfiles(s.appArmor ?? []),
    appArmorAvailable: true,
    disk: {
      files: new Map(Object.entries(s.files ?? {})),
      unusable: new Map(Object.entries(s.unusable ?? {})),
    },
    kernel: new Set(s.kernel ?? []),
    record: s.record ?? EMPTY_RECORD,
    podLabels: s.pods ?? [],
    revisionFloor: s.revisionFloor ?? { seccomp: "0", apparmor: "0" },
  };
}

const usingPod = (...keys: string[]) => Object.fromEntries(keys.map((k) => [k, IN_USE_LABEL_VALUE]));

describe("planSync: seccomp", () => {
  const web = seccomp("web");

  it("writes a profile that belongs here and labels it only once the file holds its content (invariant 1)", () => {
    const fresh = observe({ seccomp: [web] });
    expect(planSync(fresh).writeSeccomp.map((w) => [w.profile.name, w.content])).toEqual([
      ["web", contentOf(web)],
    ]);
    expect(installedProfiles(fresh).size).toBe(0);
    const stale = observe({
      seccomp: [web],
      files: { web: "{}" },
      record: { seccomp: ["web"], appArmor: {} },
    });
    expect(planSync(stale).writeSeccomp).toHaveLength(1);
    expect(installedProfiles(stale).size).toBe(0);
    const written = observe({
      seccomp: [web],
      files: { web: contentOf(web) },
      record: { seccomp: ["web"], appArmor: {} },
    });
    expect(planSync(written).writeSeccomp).toEqual([]);
    expect(installedProfiles(written)).toEqual(new Map([[seccompKey("web"), versionOf(web, "seccomp")]]));
  });

  it("an invalid update keeps the last good file, withdraws the label and reports why (invariant 8)", () => {
    const broken = seccomp("web", { baseProfileName: "missing-base" });
    const o = observe({
      seccomp: [broken],
      files: { web: contentOf(web) },
      record: { seccomp: ["web"], appArmor: {} },
    });
    const plan = planSync(o);
    expect(plan.removeSeccomp).toEqual([]);
    expect(plan.writeSeccomp).toEqual([]);
    expect(plan.failures.map((f) => f.profile.name)).toEqual(["web"]);
    expect(installedProfiles(o).size).toBe(0);
  });

  describe("a profile that stops belonging here (invariant 6)", () => {
    const owned = { seccomp: ["web"], appArmor: {} };
    const cases: [string, Setup][] = [
      ["disabled", { seccomp: [seccomp("web", { ...ALLOW, disabled: true })] }],
      [
        "nodeSelector no longer matches",
        { seccomp: [seccomp("web", { ...ALLOW, nodeSelector: { pool: "batch" } })] },
      ],
      [
        "node relabelled",
        {
          seccomp: [seccomp("web", { ...ALLOW, nodeSelector: { pool: "web" } })],
          nodeLabels: { pool: "db" },
        },
      ],
      ["deleted", { seccomp: [] }],
    ];
    it.each(cases)("%s: loses its label at once, keeps its file while a pod here uses it", (_case, setup) => {
      const inUse = observe({
        ...setup,
        files: { web: contentOf(web) },
        record: owned,
        pods: [usingPod(seccompKey("web"))],
      });
      const plan = planSync(inUse);
      expect(plan.removeSeccomp).toEqual([]);
      expect(plan.keptInUse).toEqual([{ kind: "seccomp", name: "web" }]);
      expect(installedProfiles(inUse).has(seccompKey("web"))).toBe(false);
    });
    it.each(cases)("%s: the file goes when no pod here uses it", (_case, setup) => {
      const otherPods = [usingPod(seccompKey("other")), { [seccompKey("web")]: "false" }];
      const unused = observe({ ...setup, files: { web: contentOf(web) }, record: owned, pods: otherPods });
      expect(planSync(unused).removeSeccomp).toEqual(["web"]);
    });
    it.each(cases)("%s: marked NoLongerHere before the file goes, while the object exists", (name, setup) => {
      const unused = observe({ ...setup, files: { web: contentOf(web) }, record: owned });
      const key = failedLabelKey("seccomp", "web");
      expect(planSync(unused).markBeforeRemoving).toEqual(
        name === "deleted" ? new Map() : new Map([[key, NO_LONGER_HERE]]),
      );
      // Marked already (an earlier sync whose removal failed): no second PATCH before this one.
      const marked = observe({
        ...setup,
        files: { web: contentOf(web) },
        record: owned,
        nodeLabels: { ...setup.nodeLabels, [key]: NO_LONGER_HERE },
      });
      expect(planSync(marked).removeSeccomp).toEqual(["web"]);
      expect(planSync(marked).markBeforeRemoving).toEqual(new Map());
    });
  });

  it("never overwrites or removes a file or entry it did not write; reports the name as taken", () => {
    const o = observe({
      seccomp: [web, seccomp("dir"), seccomp("fifo")],
      files: { web: "someone else's", stray: "{}" },
      unusable: { "dir.json": "a directory", "fifo.json": "a FIFO" },
      record: { seccomp: [], appArmor: {} },
    });
    const plan = planSync(o);
    expect(plan.writeSeccomp).toEqual([]);
    expect(plan.removeSeccomp).toEqual([]);
    expect(plan.failures.map((f) => [f.profile.name, f.reason])).toEqual([
      ["web", INSTALL_FAILURE_REASONS.nameTaken],
      ["dir", INSTALL_FAILURE_REASONS.nameTaken],
      ["fifo", INSTALL_FAILURE_REASONS.nameTaken],
    ]);
    expect(plan.failures[1]?.message).toContain(
      "dir.json in the agent's folder is a directory that the agent did not write",
    );
    expect(installedProfiles(o).size).toBe(0);
  });

  it("removes no more moved-away profiles than the cap can mark; the rest stay installed, unmarked, until there is room", () => {
    const moved = (name: string) => seccomp(name, { ...ALLOW, nodeSelector: { pool: "batch" } });
    const names = ["m1", "m2", "m3"];
    const files = Object.fromEntries(names.map((n) => [n, contentOf(seccomp(n))]));
    const o = observe({ seccomp: names.map(moved), files, record: { seccomp: names, appArmor: {} } });
    const plan = planSync(o, 2);
    expect(plan.removeSeccomp).toEqual(["m1", "m2"]);
    expect(plan.keptForRoom).toEqual([{ kind: "seccomp", name: "m3" }]);
    expect([...plan.markBeforeRemoving.keys()]).toEqual([
      failedLabelKey("seccomp", "m1"),
      failedLabelKey("seccomp", "m2"),
    ]);
    expect(failedProfiles(o, installedProfiles(o), [], plan).has(failedLabelKey("seccomp", "m3"))).toBe(
      false,
    );
    // Next sync: m1 and m2 are gone and marked, which fills the room; a deleted object needs no mark.
    const marks = {
      [failedLabelKey("seccomp", "m1")]: NO_LONGER_HERE,
      [failedLabelKey("seccomp", "m2")]: NO_LONGER_HERE,
    };
    const later = (objects: string[]) =>
      observe({
        seccomp: objects.map(moved),
        files: { m3: files.m3 ?? "", gone: "{}" },
        record: { seccomp: ["m3", "gone"], appArmor: {} },
        nodeLabels: marks,
      });
    const full = planSync(later(names), 2);
    expect(full.removeSeccomp).toEqual(["gone"]);
    expect(full.keptForRoom).toEqual([{ kind: "seccomp", name: "m3" }]);
    // m1 deleted: its mark goes, which makes room for m3.
    expect(planSync(later(["m2", "m3"]), 2).removeSeccomp).toEqual(["m3", "gone"]);
  });

  it("forgets an owned file that is gone, and adopts files when there is no record yet", () => {
    const o = observe({ seccomp: [], record: { seccomp: ["gone"], appArmor: {} } });
    expect(planSync(o).forgetSeccomp).toEqual(["gone"]);
    expect(
      adoptedRecord({ files: new Map([["a", "{}"]]), unusable: new Map([["b.json", "a directory"]]) }),
    ).toEqual({
      seccomp: ["a"],
      appArmor: {},
    });
  });
});

describe("planSync: AppArmor", () => {
  const aa = (name: string, spec: Record<string, unknown> = {}) => ({ name, uid: `uid-${name}`, spec });
  const web = aa("web");

  it("loads what belongs here and labels it only when the kernel lists it in the recorded version", () => {
    const fresh = observe({ appArmor: [web] });
    expect(planSync(fresh).loadAppArmor.map((l) => [l.profile.name, l.mode])).toEqual([["web", "enforce"]]);
    const loaded = observe({
      appArmor: [web],
      kernel: ["web"],
      record: { seccomp: [], appArmor: { web: versionOf(web, "apparmor") } },
    });
    expect(planSync(loaded).loadAppArmor).toEqual([]);
    expect(installedProfiles(loaded)).toEqual(new Map([[appArmorKey("web"), versionOf(web, "apparmor")]]));
    // A load under way when the agent crashed: owned, version unknown, so it is loaded again.
    const unknown = observe({
      appArmor: [web],
      kernel: ["web"],
      record: { seccomp: [], appArmor: { web: null } },
    });
    expect(planSync(unknown).loadAppArmor).toHaveLength(1);
    expect(installedProfiles(unknown).size).toBe(0);
  });

  it("loads in the mode spec.mode says, and a mode change is a new version", () => {
    const complain = aa("web", { mode: "complain" });
    expect(versionOf(complain, "apparmor")).not.toBe(versionOf(web, "apparmor"));
    const o = observe({
      appArmor: [complain],
      kernel: ["web"],
      record: { seccomp: [], appArmor: { web: versionOf(web, "apparmor") } },
    });
    expect(planSync(o).loadAppArmor.map((l) => l.mode)).toEqual(["complain"]);
  });

  it("never replaces a kernel profile it did not load, and never unloads one: NameTaken, no label", () => {
    const o = observe({ appArmor: [aa("docker-default")], kernel: ["docker-default", "snap.firefox"] });
    const plan = planSync(o);
    expect(plan.loadAppArmor).toEqual([]);
    expect(plan.unloadAppArmor).toEqual([]);
    expect(plan.failures.map((f) => f.reason)).toEqual([INSTALL_FAILURE_REASONS.nameTaken]);
    expect(plan.failures[0]?.message).toContain(
      '"docker-default" is already loaded on this node and Lockstep did not load it',
    );
    expect(installedProfiles(o).size).toBe(0);
  });

  it("unloads what it loaded once no object wants it, also after a restart (the record), unless a pod here uses it", () => {
    const record = { seccomp: [], appArmor: { web: "0123456789ab" } };
    expect(planSync(observe({ kernel: ["web"], record })).unloadAppArmor).toEqual(["web"]);
    const inUse = planSync(observe({ kernel: ["web"], record, pods: [usingPod(appArmorKey("web"))] }));
    expect(inUse.unloadAppArmor).toEqual([]);
    expect(inUse.keptInUse).toEqual([{ kind: "apparmor", name: "web" }]);
    const disabled = observe({
      appArmor: [aa("web", { disabled: true })],
      kernel: ["web"],
      record,
      pods: [usingPod(appArmorKey("web"))],
    });
    expect(planSync(disabled).unloadAppArmor).toEqual([]);
    // Disabled and unused: the mark goes out before the unload.
    const disabledUnused = planSync({ ...disabled, podLabels: [] });
    expect(disabledUnused.unloadAppArmor).toEqual(["web"]);
    expect(disabledUnused.markBeforeRemoving).toEqual(
      new Map([[failedLabelKey("apparmor", "web"), NO_LONGER_HERE]]),
    );
    expect(installedProfiles(disabled).size).toBe(0);
    expect(planSync(observe({ kernel: [], record })).forgetAppArmor).toEqual(["web"]);
  });

  it("does nothing with AppArmor on a node without it", () => {
    const o = {
      ...observe({ appArmor: [web], record: { seccomp: [], appArmor: { old: "x" } }, kernel: ["old"] }),
      appArmorAvailable: false,
    };
    const plan = planSync(o);
    expect([plan.loadAppArmor, plan.unloadAppArmor, plan.failures]).toEqual([[], [], []]);
  });
});

describe("the labels a sync earns (ADR 0024)", () => {
  const withRevision = (ref: ProfileObjectRef, revision: string): ProfileObjectRef => ({ ...ref, revision });

  it("marks failed exactly the profiles that belong here and are not installed, with the reason", () => {
    const good = withRevision(seccomp("good"), "7");
    const taken = withRevision(seccomp("taken"), "8");
    const elsewhere = withRevision(seccomp("elsewhere", { ...ALLOW, nodeSelector: { pool: "batch" } }), "9");
    const o = observe({
      seccomp: [good, taken, elsewhere],
      files: { good: contentOf(good) },
      record: { seccomp: ["good"], appArmor: {} },
    });
    const installed = installedProfiles(o);
    const [takenRendered] = o.seccompProfiles.filter((p) => p.name === "taken");
    if (!takenRendered) throw new Error("fixture");
    const failed = failedProfiles(
      o,
      installed,
      [{ profile: takenRendered, reason: "NameTaken", message: "" }],
      planSync(o),
    );
    expect(failed).toEqual(new Map([[failedLabelKey("seccomp", "taken"), "NameTaken"]]));
    // Without a reported failure (a file deleted by hand since), it is still marked.
    expect(failedProfiles(o, installed, [], planSync(o))).toEqual(
      new Map([[failedLabelKey("seccomp", "taken"), NOT_INSTALLED]]),
    );
  });

  it("marks nothing for AppArmor on a node without AppArmor: the webhook requires lockstep.dev/apparmor=enabled", () => {
    const o = { ...observe({ appArmor: [{ name: "aa", spec: {} }] }), appArmorAvailable: false };
    o.nodeLabels = { ...o.nodeLabels, [APPARMOR_LABEL]: "unavailable" };
    expect(failedProfiles(o, installedProfiles(o), [], planSync(o))).toEqual(new Map());
  });

  it("marks a profile that stopped belonging here, while it exists: a pod admitted before the change may still require the old placement", () => {
    const moved = seccomp("moved", { ...ALLOW, nodeSelector: { pool: "batch" } });
    const o = observe({
      seccomp: [moved],
      files: { moved: contentOf(seccomp("moved")) },
      record: { seccomp: ["moved"], appArmor: {} },
    });
    const plan = planSync(o);
    expect(plan.removeSeccomp).toEqual(["moved"]);
    const key = failedLabelKey("seccomp", "moved");
    expect(failedProfiles(o, installedProfiles(o), [], plan)).toEqual(new Map([[key, NO_LONGER_HERE]]));
    // Removed since: the node's own mark keeps it, until the object goes or belongs here again.
    const later = observe({ seccomp: [moved], nodeLabels: { [key]: NO_LONGER_HERE } });
    expect(failedProfiles(later, installedProfiles(later), [], planSync(later))).toEqual(
      new Map([[key, NO_LONGER_HERE]]),
    );
    const gone = observe({ nodeLabels: { [key]: NO_LONGER_HERE } });
    expect(failedProfiles(gone, installedProfiles(gone), [], planSync(gone))).toEqual(new Map());
  });

  it("claims the newest revision it has seen per kind, never less than its floor", () => {
    const o = observe({
      seccomp: [withRevision(seccomp("a"), "12"), withRevision(seccomp("b"), "30")],
      appArmor: [withRevision({ name: "aa", spec: {} }, "25")],
      revisionFloor: { seccomp: "20", apparmor: "40" },
    });
    expect(syncedRevisions(o)).toEqual({ seccomp: "30", apparmor: "40" });
    expect(syncedRevisions(observe({}))).toEqual({ seccomp: "0", apparmor: "0" });
  });

  it("records the node's value of every key a nodeSelector names, and only those", () => {
    const o = observe({
      seccomp: [seccomp("a", { ...ALLOW, nodeSelector: { pool: "web", zone: "z1" } })],
      appArmor: [{ name: "aa", spec: { nodeSelector: { "topology.kubernetes.io/zone": "z1" } } }],
      nodeLabels: { pool: "batch", "topology.kubernetes.io/zone": "z2", team: "x" },
    });
    expect(selectorSyncedLabels(o)).toEqual(
      new Map([
        [selectorSyncedLabelKey("pool"), "batch"],
        [selectorSyncedLabelKey("topology.kubernetes.io/zone"), "z2"],
      ]),
    );
  });
});
