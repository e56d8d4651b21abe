// Read-your-own-writes over a watch cache. A write returns the object at its new resourceVersion at
// once, but the watch delivers it a moment later: until then the cache shows the object before the
// write, and a shell that trusted it would send the same change again (and announce it twice), or a
// write conditional on a resourceVersion that is gone (409). Each key keeps what its last own write
// returned until the cache reaches that resourceVersion. The agent keeps its Node here, the controller
// each profile's status.
import { revisionBefore } from "../api/node-profiles.ts";

export class OwnWrites<T> {
  private readonly written = new Map<string, { resourceVersion: string; value: T }>();

  /** What this process's write to `key` produced, at the resourceVersion the write returned. */
  wrote(key: string, resourceVersion: string | undefined, value: T): void {
    this.written.set(key, { resourceVersion: resourceVersion ?? "", value });
  }

  /**
   * Whether the cache, at `cachedResourceVersion`, is still older than the last own write to `key`.
   * Once the cache has caught up, the write is forgotten: the cache is the truth again.
   */
  cacheBehind(key: string, cachedResourceVersion: string | undefined): boolean {
    const written = this.written.get(key);
    if (!written) return false;
    if (revisionBefore(cachedResourceVersion, written.resourceVersion)) return true;
    this.written.delete(key);
    return false;
  }

  /** The own write's value while the cache is behind it, else `cached`. */
  current(key: string, cachedResourceVersion: string | undefined, cached: T): T {
    return this.cacheBehind(key, cachedResourceVersion) ? (this.written.get(key)?.value as T) : cached;
  }

  /** The object is gone: a later object of the same name starts with no own write. */
  forget(key: string): void {
    this.written.delete(key);
  }
}
