// Kubernetes Events, built in one place and sent by one recorder per component instance, in the spirit
// of kube-rs's kube-runtime/src/events.rs: the caller says what happened to which object (reason,
// message, type); the recorder fills in who reports it and when, and never lets a failed Event fail
// the work it reports on. The agent's install reports (src/api/install-report.ts), its Node warnings
// and the controller's phase Events all go through here, so an Event has one shape.
import { createHash } from "node:crypto";
import type { KubeClient } from "./client.ts";
import { kubeErrorMessage } from "./errors.ts";
import type { Logger } from "./logger.ts";

/** Longest Event message the API server keeps readable in `kubectl describe`. */
export const EVENT_MESSAGE_MAX = 1024;

/** Who reports: core/v1 Event's source and reporting fields. */
export interface EventSource {
  component: string;
  /** reportingInstance: which replica or node. */
  instance: string;
  /** source.host: the node, for a reporter bound to one. */
  host?: string;
}

/** What happened to which object: the part of an Event its caller decides. */
export interface EventFields {
  involvedObject: {
    apiVersion: string;
    kind: string;
    name: string;
    /** A namespaced object's namespace (the Event must be created in the same one). */
    namespace?: string;
    uid?: string | undefined;
  };
  reason: string;
  message: string;
  type: "Normal" | "Warning";
  annotations?: Record<string, string>;
}

/** The core/v1 Event for `fields`, reported by `source` in `namespace` at `now`. Pure. */
export function coreEvent(source: EventSource, namespace: string, fields: EventFields, now: Date) {
  const at = now.toISOString();
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: {
      // The API server appends a random suffix; the object's name first, as kubectl shows Events.
      generateName: `${fields.involvedObject.name.slice(0, 200)}.`,
      namespace,
      ...(fields.annotations && { annotations: fields.annotations }),
    },
    involvedObject: fields.involvedObject,
    reason: fields.reason,
    message: fields.message.slice(0, EVENT_MESSAGE_MAX),
    type: fields.type,
    source: { component: source.component, ...(source.host !== undefined && { host: source.host }) },
    reportingComponent: source.component,
    reportingInstance: source.instance,
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  };
}

/**
 * Remembers what was sent, by a digest (a parser's message can be kilobytes), newest last; the oldest
 * are forgotten past `max` entries (and may be sent again). Pure apart from its own state.
 */
export class SentMemo {
  private readonly max: number;
  private readonly sent = new Set<string>();

  constructor(max: number) {
    this.max = max;
  }

  static digest(what: string): string {
    return createHash("sha256").update(what, "utf8").digest("base64");
  }

  has(digest: string): boolean {
    return this.sent.has(digest);
  }

  remember(digest: string): void {
    this.sent.add(digest);
    for (const oldest of this.sent) {
      if (this.sent.size <= this.max) break;
      this.sent.delete(oldest);
    }
  }
}

export interface EventRecorderOptions {
  client: KubeClient;
  namespace: string;
  source: EventSource;
  log: Logger;
  /** How many sent Events recordOnce remembers (each a 44-byte digest). */
  onceMemo?: number;
  now?: () => Date;
}

export class EventRecorder {
  private readonly opts: EventRecorderOptions;
  private readonly sent: SentMemo;

  constructor(opts: EventRecorderOptions) {
    this.opts = opts;
    this.sent = new SentMemo(opts.onceMemo ?? 2048);
  }

  /**
   * Creates the Event (in its namespaced object's namespace, else the recorder's); a failure is logged,
   * never thrown: an Event is never worth failing the work for.
   */
  async record(fields: EventFields): Promise<boolean> {
    const { client, source, log } = this.opts;
    const namespace = fields.involvedObject.namespace ?? this.opts.namespace;
    try {
      const now = this.opts.now?.() ?? new Date();
      await client.create(
        `/api/v1/namespaces/${namespace}/events`,
        coreEvent(source, namespace, fields, now),
      );
      return true;
    } catch (error) {
      log.warn({ err: kubeErrorMessage(error), reason: fields.reason }, "could not record an Event");
      return false;
    }
  }

  /**
   * Records the Event unless one with the same `what` was recorded by this recorder before: something
   * that fails on every sync must not flood etcd. A failed create is tried again next time.
   */
  async recordOnce(what: string, fields: EventFields): Promise<void> {
    const digest = SentMemo.digest(what);
    if (this.sent.has(digest)) return;
    if (await this.record(fields)) this.sent.remember(digest);
  }
}
