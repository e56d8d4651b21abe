// The hold on a generation's first status (status.ts's firstStatusHoldMs): when this replica first saw
// each generation that has no status yet, so that the hold counts from then and not from each
// reconcile. Forgotten once the generation has its status, or the profile is gone.
import type { ProfileStatus } from "../api/common.ts";
import { firstStatusHoldMs } from "./status.ts";

export class FirstStatusHold {
  private readonly firstSeen = new Map<string, { generation: number | undefined; at: number }>();

  /**
   * How long `next` may still wait before it is written for the profile `key`, at `now` (0: write it).
   * `previous` is the status the object has; its observedGeneration says whether this generation has
   * had its first status.
   */
  holdMs(key: string, previous: ProfileStatus | undefined, next: ProfileStatus, now: number): number {
    const generation = next.observedGeneration;
    if (previous?.observedGeneration === generation) this.firstSeen.delete(key);
    else if (this.firstSeen.get(key)?.generation !== generation)
      this.firstSeen.set(key, { generation, at: now });
    return firstStatusHoldMs(previous, next, now - (this.firstSeen.get(key)?.at ?? 0));
  }

  forget(key: string): void {
    this.firstSeen.delete(key);
  }
}
