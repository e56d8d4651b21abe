import { describe, expect, it } from "vitest";
import { RevisionClaims } from "./revision-claims.ts";

describe("RevisionClaims", () => {
  it("asks for a sync for a spec change or a revision above every one delivered, and remembers the highest", () => {
    const claims = new RevisionClaims();
    expect(claims.delivery("seccomp", false, "10")).toBe(true);
    // The controller's status write: same revision, no new spec.
    expect(claims.delivery("seccomp", false, "10")).toBe(false);
    expect(claims.delivery("seccomp", false, "9")).toBe(false);
    expect(claims.delivery("seccomp", true, "9")).toBe(true);
    // A deletion carries revision 0 and a changed rendering.
    expect(claims.delivery("apparmor", true, "0")).toBe(true);
    expect(claims.floor({ seccomp: "0", apparmor: "0" })).toEqual({ seccomp: "10", apparmor: "0" });
  });

  it("never lets the floor go below a claim, a delivery or the cache's listed resourceVersion", () => {
    const claims = new RevisionClaims();
    claims.published({ seccomp: "20" });
    claims.published({ seccomp: "15", apparmor: "3" });
    claims.delivery("apparmor", false, "7");
    expect(claims.floor({ seccomp: "12", apparmor: "5" })).toEqual({ seccomp: "20", apparmor: "7" });
    expect(claims.floor({ seccomp: "30", apparmor: "5" })).toEqual({ seccomp: "30", apparmor: "7" });
  });
});
