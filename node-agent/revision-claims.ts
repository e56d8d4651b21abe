// The revisions one agent has seen and claimed, per kind (ADR 0024), and the floor below which it
// never claims. Pure state: the agent tells it what the caches delivered and what each sync published.
import { PROFILE_KINDS, type ProfileKind } from "../src/api/constants.ts";
import { maxRevision } from "../src/api/node-profiles.ts";
import { profileChangeNeedsSync } from "./sync-causes.ts";

export type Revisions = Record<ProfileKind, string>;

export class RevisionClaims {
  /** The revisions this run has claimed: a claim never goes back, or a pod admitted meanwhile could wait for ever. */
  private readonly claimed: Revisions = { seccomp: "0", apparmor: "0" };
  /**
   * The highest revision any profile state delivered to the cache carried. Syncs coalesce events, so a
   * sync may never see a state between a spec write and the controller's status.revision (its own
   * resourceVersion is its revision then), but the webhook may have admitted a pod against it.
   */
  private readonly delivered: Revisions = { seccomp: "0", apparmor: "0" };

  /** A profile state reached the cache (revision "0" for one deleted): whether it needs a sync. */
  delivery(kind: ProfileKind, specChanged: boolean, revision: string): boolean {
    const needed = profileChangeNeedsSync(specChanged, this.delivered[kind], revision);
    this.delivered[kind] = maxRevision([this.delivered[kind], revision]);
    return needed;
  }

  /** A sync published these revisions on the Node. */
  published(revisions: Partial<Revisions>): void {
    for (const kind of PROFILE_KINDS)
      this.claimed[kind] = maxRevision([this.claimed[kind], revisions[kind] ?? "0"]);
  }

  /**
   * The floor of each kind's claim in the next sync: never below an earlier claim, a delivered
   * revision, or the resourceVersion the profile cache was listed at (`listed`).
   */
  floor(listed: Revisions): Revisions {
    const floor = (kind: ProfileKind) =>
      maxRevision([this.claimed[kind], this.delivered[kind], listed[kind]]);
    return { seccomp: floor("seccomp"), apparmor: floor("apparmor") };
  }
}
