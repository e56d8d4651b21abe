import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  appliedBindings,
  type CompiledBinding,
  compileBinding,
  compileGlob,
  globMatches,
  MatchBudget,
  resolveBindings,
  selectorMatches,
} from "./binding-match.ts";
import type { AdmittedPod } from "./pod-profiles.ts";
import type { ProfileBindingSpec } from "./profile-binding.ts";

const matches = (pattern: string, image: string) =>
  globMatches(compileGlob(pattern), image, new MatchBudget());

/** The reference meaning of a glob: `*` is `.*`, every other character itself (a regex, for small inputs only). */
const escapeRegExp = (text: string) => text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
const reference = (pattern: string, image: string) =>
  new RegExp(`^${pattern.split("*").map(escapeRegExp).join(".*")}$`, "s").test(image);

describe("globMatches", () => {
  it("matches `*` across any characters, `/` and `:` included, and everything else literally", () => {
    expect(matches("*", "")).toBe(true);
    expect(matches("*", "docker.io/library/nginx:1.27")).toBe(true);
    expect(matches("nginx", "nginx")).toBe(true);
    expect(matches("nginx", "nginx:1")).toBe(false);
    expect(matches("docker.io/library/nginx:*", "docker.io/library/nginx:1.27")).toBe(true);
    expect(matches("docker.io/library/nginx:*", "docker.io/library/nginx@sha256:ab")).toBe(false);
    expect(matches("*/nginx*", "registry.example/team/nginx:2")).toBe(true);
    expect(matches("a*b*c", "abc")).toBe(true);
    expect(matches("a*b*c", "acb")).toBe(false);
    expect(matches("ab*ba", "aba")).toBe(false);
    expect(matches("a.b", "axb")).toBe(false);
  });

  it("agrees with the reference meaning on every small pattern and image", () => {
    const text = fc.string({ unit: fc.constantFrom("a", "b", "/", ":"), maxLength: 12 });
    const pattern = fc.string({ unit: fc.constantFrom("a", "b", "*", "/"), maxLength: 8 });
    fc.assert(
      fc.property(pattern, text, (p, t) => {
        expect(matches(p, t)).toBe(reference(p, t));
      }),
      { numRuns: 5000 },
    );
  });

  it("does work linear in image and pattern on patterns that make backtracking matchers explode", () => {
    const image = `${"a".repeat(100_000)}`;
    for (const pattern of [
      `${"a*".repeat(127)}b`,
      `*${"a".repeat(200)}b*`,
      `a*${"ab".repeat(60)}*${"ab".repeat(60)}`,
      "*".repeat(256),
    ]) {
      const budget = new MatchBudget(Number.POSITIVE_INFINITY);
      const result = globMatches(compileGlob(pattern), image, budget);
      expect(result).toBe(reference(pattern, "a".repeat(50)) && pattern.endsWith("*"));
      expect(budget.steps).toBeLessThanOrEqual(2 * (image.length + pattern.length));
    }
  });
});

describe("selectorMatches", () => {
  const labels = { app: "web", tier: "front" };
  const budget = () => new MatchBudget();
  it("follows metav1.LabelSelector: matchLabels and In, NotIn, Exists, DoesNotExist all ANDed", () => {
    expect(selectorMatches(undefined, labels, budget())).toBe(true);
    expect(selectorMatches({}, labels, budget())).toBe(true);
    expect(selectorMatches({ matchLabels: { app: "web" } }, labels, budget())).toBe(true);
    expect(selectorMatches({ matchLabels: { app: "api" } }, labels, budget())).toBe(false);
    const e = (operator: "In" | "NotIn" | "Exists" | "DoesNotExist", key: string, values?: string[]) => ({
      matchExpressions: [{ key, operator, ...(values ? { values } : {}) }],
    });
    expect(selectorMatches(e("In", "tier", ["front", "back"]), labels, budget())).toBe(true);
    expect(selectorMatches(e("In", "zone", ["a"]), labels, budget())).toBe(false);
    expect(selectorMatches(e("NotIn", "tier", ["back"]), labels, budget())).toBe(true);
    expect(selectorMatches(e("NotIn", "zone", ["a"]), labels, budget())).toBe(true);
    expect(selectorMatches(e("Exists", "app"), labels, budget())).toBe(true);
    expect(selectorMatches(e("DoesNotExist", "app"), labels, budget())).toBe(false);
    // A label named like an Object.prototype member is not present because of the prototype.
    expect(selectorMatches(e("Exists", "constructor"), labels, budget())).toBe(false);
    expect(selectorMatches({ matchLabels: { toString: "x" } }, {}, budget())).toBe(false);
  });
});

const binding = (name: string, spec: ProfileBindingSpec) => compileBinding(name, spec);
const container = (name: string, image: string, securityContext?: object) => ({
  name,
  image,
  ...(securityContext ? { securityContext } : {}),
});
const podWith = (
  containers: ReturnType<typeof container>[],
  labels: Record<string, string> = { app: "web" },
  extra: Partial<AdmittedPod> = {},
): AdmittedPod => ({
  metadata: { name: "p", labels, ...extra.metadata },
  spec: { containers, ...extra.spec },
});
const enabled = { overrideAllowed: true };

describe("resolveBindings", () => {
  const fallback = binding("default", { seccompProfile: "baseline" });
  const nginx = binding("nginx", { image: "nginx:*", seccompProfile: "nginx" });
  const webPods = binding("web-pods", {
    podSelector: { matchLabels: { app: "web" } },
    seccompProfile: "web",
  });

  it("gives every container without a profile the namespace default", () => {
    const r = resolveBindings(
      podWith([container("a", "busybox"), container("b", "redis")]),
      [fallback],
      enabled,
    );
    expect(r.assignments.map((a) => [a.site.name, a.kind, a.profile, a.bindings])).toEqual([
      ["a", "seccomp", "baseline", ["default"]],
      ["b", "seccomp", "baseline", ["default"]],
    ]);
    expect(r.conflicts).toEqual([]);
  });

  it("lets the most specific binding win: a longer image pattern, then more selector requirements", () => {
    const pod = podWith([container("front", "nginx:1.27"), container("side", "busybox")]);
    const r = resolveBindings(pod, [fallback, webPods, nginx], enabled);
    expect(r.assignments.map((a) => [a.site.name, a.profile])).toEqual([
      ["front", "nginx"],
      ["side", "web"],
    ]);
    expect(appliedBindings(r.assignments)).toEqual(["nginx", "web-pods"]);
  });

  it("reports a conflict between equally specific bindings naming different profiles, and none for the same profile", () => {
    const other = binding("other-default", { seccompProfile: "strict" });
    const same = binding("same-default", { seccompProfile: "baseline" });
    const pod = podWith([container("a", "busybox")]);
    const conflict = resolveBindings(pod, [other, fallback], enabled);
    expect(conflict.assignments).toEqual([]);
    expect(conflict.conflicts).toEqual([
      {
        site: expect.objectContaining({ name: "a" }),
        kind: "seccomp",
        candidates: [
          { binding: "default", profile: "baseline" },
          { binding: "other-default", profile: "strict" },
        ],
      },
    ]);
    const agreed = resolveBindings(pod, [same, fallback], enabled);
    expect(agreed.conflicts).toEqual([]);
    expect(agreed.assignments.map((a) => a.bindings)).toEqual([["default", "same-default"]]);
  });

  it("resolves each kind on its own: a seccomp winner does not hide an AppArmor binding", () => {
    const appArmor = binding("aa", { appArmorProfile: "web" });
    const r = resolveBindings(podWith([container("a", "nginx:1")]), [nginx, appArmor], enabled);
    expect(r.assignments.map((a) => [a.kind, a.profile, a.bindings])).toEqual([
      ["seccomp", "nginx", ["nginx"]],
      ["apparmor", "web", ["aa"]],
    ]);
  });

  it("leaves a container's own profile (its own, its pod's, a legacy annotation) unless the winner overrides where allowed", () => {
    const own = podWith(
      [
        container("own", "x", { seccompProfile: { type: "RuntimeDefault" } }),
        container("legacy", "x"),
        container("none", "x"),
      ],
      {},
      {
        metadata: {
          annotations: { "container.apparmor.security.beta.kubernetes.io/legacy": "runtime/default" },
        },
      },
    );
    const both = binding("both", { seccompProfile: "s", appArmorProfile: "a" });
    const kept = resolveBindings(own, [both], enabled);
    expect(kept.assignments.map((a) => `${a.site.name}/${a.kind}`)).toEqual([
      "own/apparmor",
      "legacy/seccomp",
      "none/seccomp",
      "none/apparmor",
    ]);
    const forcing = binding("both", { seccompProfile: "s", appArmorProfile: "a", override: true });
    const overridden = resolveBindings(own, [forcing], enabled);
    expect(overridden.assignments).toHaveLength(6);
    expect(
      overridden.assignments.find((a) => a.site.name === "legacy" && a.kind === "apparmor"),
    ).toMatchObject({
      replacesOwn: true,
      legacyAnnotation: "container.apparmor.security.beta.kubernetes.io/legacy",
    });
    const forbidden = resolveBindings(own, [forcing], { overrideAllowed: false });
    expect(forbidden.assignments).toHaveLength(4);
    expect(forbidden.overrideRefused.map((o) => `${o.site.name}/${o.kind}/${o.binding}`)).toEqual([
      "own/seccomp/both",
      "legacy/apparmor/both",
    ]);

    const podLevel = podWith(
      [container("c", "x")],
      {},
      {
        spec: {
          containers: [container("c", "x")],
          securityContext: { seccompProfile: { type: "Unconfined" } },
        },
      },
    );
    expect(resolveBindings(podLevel, [fallback], enabled).assignments).toEqual([]);
  });

  it("with `only`, binds just the containers it names (kubectl debug's new ephemeral containers)", () => {
    const pod: AdmittedPod = {
      metadata: { name: "p" },
      spec: {
        containers: [container("app", "x")],
        ephemeralContainers: [container("old", "x"), container("dbg", "busybox")],
      },
    };
    const r = resolveBindings(pod, [fallback], { ...enabled, only: (s) => s.name === "dbg" });
    expect(r.assignments.map((a) => `${a.site.group}/${a.site.index}`)).toEqual(["ephemeralContainers/1"]);
  });

  it("decides the same whatever order the bindings come in", () => {
    const pool: CompiledBinding[] = [
      fallback,
      nginx,
      webPods,
      binding("b1", { image: "nginx:1*", seccompProfile: "x" }),
      binding("b2", { image: "*:1.27", seccompProfile: "y" }),
      binding("b3", { image: "nginx:1*", appArmorProfile: "z" }),
      binding("b4", {
        podSelector: { matchExpressions: [{ key: "app", operator: "Exists" }] },
        seccompProfile: "q",
      }),
    ];
    const pod = podWith([
      container("a", "nginx:1.27"),
      container("b", "redis:1.27"),
      container("c", "busybox"),
    ]);
    const expected = resolveBindings(pod, pool, enabled);
    fc.assert(
      fc.property(fc.shuffledSubarray(pool, { minLength: pool.length }), (order) => {
        expect(resolveBindings(pod, order, enabled)).toEqual(expected);
      }),
    );
  });

  it("stops at its budget on the worst a review can ask, instead of working without bound", () => {
    const longImage = "a".repeat(3000);
    const containers = Array.from({ length: 1024 }, (_, i) => container(`c${i}`, longImage));
    const bindings = Array.from({ length: 1000 }, (_, i) =>
      binding(`b${i}`, { image: `${"a*".repeat(100)}b${i}`, seccompProfile: "x" }),
    );
    const budget = new MatchBudget();
    const r = resolveBindings(podWith(containers), bindings, { ...enabled, budget });
    expect(r.overBudget).toBe(true);
    // It stops within one glob's worth of work after the budget.
    expect(budget.steps).toBeLessThan(budget.limit + 2 * (longImage.length + 256));
  });

  it("handles a thousand bindings on a real pod well inside the budget", () => {
    const bindings = Array.from({ length: 1000 }, (_, i) =>
      binding(`team-${i}`, {
        podSelector: { matchLabels: { app: `app-${i}` } },
        image: `registry.example/team-${i}/*`,
        seccompProfile: `p${i}`,
      }),
    );
    const pod = podWith([container("a", "registry.example/team-7/api:1.0")], { app: "app-7" });
    const budget = new MatchBudget();
    const r = resolveBindings(pod, [...bindings, fallback], { ...enabled, budget });
    expect(r.assignments.map((a) => a.bindings)).toEqual([["team-7"]]);
    expect(budget.steps).toBeLessThan(budget.limit / 100);
  });
});
