// A list+watch cache of one collection, as client-go's reflector and informer keep one: list, then
// watch from the list's resourceVersion; on a watch that ends (the server's timeout) watch again from
// the last version seen (bookmarks keep it fresh); on 410 Gone or any error, relist with a capped
// backoff and report the difference as add/update/delete. It never stops by itself: the API server
// restarting, a CRD not yet served or a network blip only delay it.
import { KubeApiError, type KubeClient, METADATA_ONLY_ACCEPT, type WatchEvent } from "./client.ts";

/** What every cached object has; the type parameter says what else a caller relies on. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string | Date;
  };
}

interface ListAnswer<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

export interface InformerOptions {
  /** The collection's path, e.g. "/api/v1/nodes" or "/apis/lockstep.dev/v1alpha1/seccompprofiles". */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Ask for PartialObjectMetadata: objects arrive with metadata only. */
  metadataOnly?: boolean;
  /** Called with each failure before the informer retries (a log line, say). */
  onError?: (error: unknown, retryInMs: number) => void;
  /**
   * What to keep of each object (client-go's SetTransform): a smaller object, or undefined to keep
   * nothing (an object the component never reads; removed if it was kept before). Runs after
   * managedFields is dropped.
   */
  transform?: (object: KubeObject) => KubeObject | undefined;
  /** The watch's timeoutSeconds; by default 5-10 minutes at random (tests set it short). */
  watchTimeoutSeconds?: number;
  /**
   * Keep at most this many objects, dropping the ones seen longest ago: for a collection anyone can
   * grow (Events) whose older objects a component can do without. Dropped objects get no delete.
   */
  maxObjects?: number;
  /**
   * The largest object the collection can hold, when it is known to be bounded (a CRD's limits): list
   * pages then hold as many as fit in half the client's answer limit, instead of LIST_PAGE whatever
   * their size (500 profiles of 1.4 MB made every relist fail at the 64 MiB limit).
   */
  maxObjectBytes?: number;
}

type Handler<T> = (object: T, old?: T) => void;
type Verb = "add" | "update" | "delete";

// A watch is closed by the server after timeoutSeconds; client-go picks 5-10 minutes at random so
// that many clients do not reconnect at the same moment.
const WATCH_TIMEOUT_MIN_S = 300;
const WATCH_TIMEOUT_MAX_S = 2 * WATCH_TIMEOUT_MIN_S;
/**
 * How long past its timeoutSeconds a watch on which nothing arrived is taken for half-open (aborted,
 * then relisted): half the timeout, at most 30 s. Whatever bookmarks the server sends reset it too.
 */
export function watchIdleTimeoutMs(timeoutSeconds: number): number {
  return timeoutSeconds * 1000 + Math.min(30_000, (timeoutSeconds * 1000) / 2);
}
const LIST_PAGE = 500;
const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 30_000;

/** Objects per list page: LIST_PAGE, fewer when that many of the largest would not fit in half the answer limit. */
export function listPageLimit(maxResponseBytes: number, maxObjectBytes: number | undefined): number {
  if (maxObjectBytes === undefined) return LIST_PAGE;
  return Math.max(1, Math.min(LIST_PAGE, Math.floor(maxResponseBytes / 2 / maxObjectBytes)));
}

/**
 * How long a cache may go without a working watch before it stops counting as live: a webhook
 * admitting on a cache that stopped following the API server would require revisions from before a
 * profile's update (issue 23). Reconnecting after the server's own timeout or a blip takes well under it.
 */
export const CACHE_STALE_AFTER_MS = 30_000;

/** What an informer knows about its watch, for cacheStaleReason. */
export interface WatchProgress {
  /** When the watch went down (a failure, or the end of the server's timeout); undefined while it is up. */
  downSince: number | undefined;
  /** When the cache last heard from the API server: a list, a watch connecting, an event or a bookmark. */
  lastHeardAt: number;
}

/**
 * Why a listed cache no longer follows the API server, or undefined while it does: its watch has been
 * down for longer than CACHE_STALE_AFTER_MS, or has been up but silent for longer than the server keeps
 * a watch open at most (it ends every watch at timeoutSeconds, so a watch that outlives that is hung).
 */
export function cacheStaleReason(w: WatchProgress, now: number): string | undefined {
  if (w.downSince !== undefined && now - w.downSince > CACHE_STALE_AFTER_MS)
    return `the watch has been down for ${Math.round((now - w.downSince) / 1000)} s`;
  if (w.downSince === undefined && now - w.lastHeardAt > WATCH_TIMEOUT_MAX_S * 1000 + CACHE_STALE_AFTER_MS)
    return `the watch has been silent for ${Math.round((now - w.lastHeardAt) / 1000)} s, longer than the server keeps one open`;
  return undefined;
}

const keyOf = (o: KubeObject) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: Record<Verb, Handler<T>[]> = { add: [], update: [], delete: [] };
  private readonly abort = new AbortController();
  private resourceVersion = "";
  private listedVersion = "";
  private loop: Promise<void> | undefined;
  private synced = false;
  private readonly progress: WatchProgress = { downSince: Date.now(), lastHeardAt: Date.now() };

  private readonly client: KubeClient;
  private readonly opts: InformerOptions;

  constructor(client: KubeClient, opts: InformerOptions) {
    this.client = client;
    this.opts = opts;
  }

  on(verb: Verb, handler: Handler<T>): void {
    this.handlers[verb].push(handler);
  }

  /** Every cached object. */
  list(): T[] {
    return [...this.store.values()];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.store.get(`${namespace ?? ""}/${name}`);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Why the cache is not listed or no longer follows the API server (cacheStaleReason); undefined while live. */
  notLiveReason(now = Date.now()): string | undefined {
    if (!this.synced) return "not listed yet";
    const stale = cacheStaleReason(this.progress, now);
    return stale && `${this.opts.path}: ${stale}`;
  }

  private heard(): void {
    this.progress.lastHeardAt = Date.now();
  }

  /** Resolves once the first list is in the cache; keeps watching in the background until stop(). */
  start(): Promise<void> {
    if (this.loop) throw new Error(`informer for ${this.opts.path} already started`);
    return new Promise<void>((resolveSynced) => {
      this.loop = this.run(resolveSynced);
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async run(onSynced: () => void): Promise<void> {
    let delay = BACKOFF_START_MS;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
          if (!this.synced) {
            this.synced = true;
            onSynced();
          }
        }
        await this.watchOnce(() => {
          delay = BACKOFF_START_MS;
          this.progress.downSince = undefined;
          this.heard();
        });
        this.progress.downSince ??= Date.now();
      } catch (error) {
        this.progress.downSince ??= Date.now();
        if (this.stopped) break;
        // 410 Gone: our version is older than etcd keeps; only a fresh list can catch up.
        needList = true;
        if (error instanceof KubeApiError && error.code === 410) continue;
        this.opts.onError?.(error, delay);
        await sleep(delay, this.abort.signal);
        delay = Math.min(delay * 2, BACKOFF_MAX_MS);
      }
    }
    if (!this.synced) onSynced();
  }

  private selectors() {
    return { labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector };
  }

  private async relist(): Promise<void> {
    const fresh = new Map<string, T>();
    let continueToken: string | undefined;
    let version = "";
    const limit = listPageLimit(this.client.maxResponseBytes, this.opts.maxObjectBytes);
    do {
      const page = await this.client.get<ListAnswer<T>>(this.opts.path, {
        query: { ...this.selectors(), limit, continue: continueToken },
        accept: this.opts.metadataOnly ? METADATA_ONLY_ACCEPT.list : undefined,
        signal: this.abort.signal,
      });
      for (const item of page.items ?? []) {
        const kept = this.keep(item);
        if (kept !== undefined) fresh.set(keyOf(kept), kept);
      }
      continueToken = page.metadata?.continue || undefined;
      version = page.metadata?.resourceVersion ?? "";
    } while (continueToken !== undefined);
    // Replace the cache and tell handlers what changed, as client-go's DeltaFIFO Replace does.
    const old = new Map(this.store);
    this.store.clear();
    for (const [key, object] of fresh) this.store.set(key, object);
    this.evictOldest();
    for (const [key, object] of fresh) {
      const before = old.get(key);
      if (before === undefined) this.emit("add", object);
      else if (before.metadata?.resourceVersion !== object.metadata?.resourceVersion)
        this.emit("update", object, before);
    }
    for (const [key, object] of old) if (!fresh.has(key)) this.emit("delete", object);
    this.resourceVersion = version;
    this.listedVersion = version;
    this.heard();
  }

  /**
   * The resourceVersion of the last complete list: the cache has seen every write up to it (the API
   * server lists from its newest revision). Unlike the watch's progress it does not move with each event.
   */
  get listedResourceVersion(): string {
    return this.listedVersion;
  }

  private async watchOnce(onConnect: () => void): Promise<void> {
    const timeoutSeconds =
      this.opts.watchTimeoutSeconds ?? WATCH_TIMEOUT_MIN_S + Math.floor(Math.random() * WATCH_TIMEOUT_MIN_S);
    await this.client.watch<T>(this.opts.path, {
      query: {
        ...this.selectors(),
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
      },
      idleTimeoutMs: watchIdleTimeoutMs(timeoutSeconds),
      accept: this.opts.metadataOnly ? METADATA_ONLY_ACCEPT.watch : undefined,
      signal: this.abort.signal,
      onConnect,
      onEvent: (event) => this.apply(event),
    });
  }

  private apply(event: WatchEvent<T>): void {
    this.heard();
    if (event.type === "ERROR") {
      const status = event.object as { code?: number; message?: string };
      throw new KubeApiError(status.code ?? 500, JSON.stringify(status), `watch ${this.opts.path}`);
    }
    const version = event.object.metadata?.resourceVersion;
    if (version) this.resourceVersion = version;
    if (event.type === "BOOKMARK") return;
    const key = keyOf(event.object);
    const object = this.keep(event.object);
    const before = this.store.get(key);
    if (event.type === "DELETED" || object === undefined) {
      if (before === undefined && object === undefined) return;
      this.store.delete(key);
      this.emit("delete", object ?? before ?? event.object);
    } else {
      // Deleted first, so that the insertion order is the order objects were last seen in.
      this.store.delete(key);
      this.store.set(key, object);
      this.evictOldest();
      if (before === undefined) this.emit("add", object);
      else this.emit("update", object, before);
    }
  }

  /** The object as the cache keeps it, or undefined for one it does not keep (the transform's say). */
  private keep(object: T): T | undefined {
    const trimmed = withoutManagedFields(object);
    const { transform } = this.opts;
    return transform === undefined ? trimmed : (transform(trimmed) as T | undefined);
  }

  private evictOldest(): void {
    const max = this.opts.maxObjects;
    if (max === undefined) return;
    for (const key of this.store.keys()) {
      if (this.store.size <= max) break;
      this.store.delete(key);
    }
  }

  private emit(verb: Verb, object: T, old?: T): void {
    for (const handler of this.handlers[verb]) handler(object, old);
  }
}

/**
 * managedFields (server-side apply's field ownership) is often the largest part of an object's
 * metadata and no Lockstep component reads it: client-go informers drop it with a transform, so do we.
 */
function withoutManagedFields<T extends KubeObject>(object: T): T {
  if (object.metadata === undefined || !("managedFields" in object.metadata)) return object;
  const { managedFields: _dropped, ...metadata } = object.metadata as KubeObject["metadata"] & {
    managedFields?: unknown;
  };
  return { ...object, metadata };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
