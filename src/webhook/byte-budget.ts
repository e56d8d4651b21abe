/**
 * A number of bytes shared by concurrent readers: each takes what it buffers and gives it back when
 * done, and a reader that does not fit is told so at once instead of waiting (server.ts refuses its
 * request), so a client cannot hold more than the budget or make others wait on it.
 */
export class ByteBudget {
  private used = 0;
  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Takes `bytes` if they fit; false (taking nothing) otherwise. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  get inUse(): number {
    return this.used;
  }
}
