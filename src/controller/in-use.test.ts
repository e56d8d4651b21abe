import { describe, expect, it } from "vitest";
import { IN_USE_PODS_NAMED, podsUsingNames, podsUsingQuery, requeueAfterStatus } from "./in-use.ts";

const pod = (namespace: string, name: string) => ({ metadata: { namespace, name } });

describe("the pods a profile is in use by", () => {
  it("are the unfinished pods labelled with the profile, one page of them", () => {
    expect(podsUsingQuery("seccomp", "web")).toEqual({
      labelSelector: "seccomp.lockstep.dev/web",
      fieldSelector: "status.phase!=Succeeded,status.phase!=Failed",
      limit: IN_USE_PODS_NAMED,
    });
  });

  it("are named namespace/name, with the rest counted from the list's metadata", () => {
    expect(podsUsingNames({ items: [] })).toEqual([]);
    expect(podsUsingNames({ items: [pod("a", "p")] })).toEqual(["a/p"]);
    expect(podsUsingNames({ items: [pod("a", "p")], metadata: { remainingItemCount: 7 } })).toEqual([
      "a/p",
      "7 more",
    ]);
    // No count (the API server leaves it out for some selectors): at least one more.
    expect(podsUsingNames({ items: [pod("a", "p")], metadata: { _continue: "token" } })).toEqual([
      "a/p",
      "1 more",
    ]);
  });
});

describe("when a profile is reconciled again after its status", () => {
  it("comes back when a held status is due, else after the recheck while it waits for pods, else on a watch event", () => {
    expect(requeueAfterStatus({ requeueAfterMs: 80 }, true, 3000)).toEqual({ requeueAfterMs: 80 });
    expect(requeueAfterStatus(undefined, true, 3000)).toEqual({ requeueAfterMs: 3000 });
    expect(requeueAfterStatus(undefined, false, 3000)).toBeUndefined();
  });
});
