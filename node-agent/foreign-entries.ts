// Entries of the agent's folder that it did not write (a file someone put there, a folder, a link) are
// left alone (DESIGN invariant 4) and logged, once per entry and reason, not on every sync. Pure.

export class ForeignEntryMemo {
  private readonly reported = new Set<string>();

  /** The unusable entries (entry -> why) not reported before; remembers them as reported. */
  firstSeen(unusable: ReadonlyMap<string, string>): [entry: string, why: string][] {
    const fresh: [string, string][] = [];
    for (const [entry, why] of unusable) {
      const key = `${entry}\0${why}`;
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      fresh.push([entry, why]);
    }
    return fresh;
  }
}
