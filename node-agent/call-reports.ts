// What profiles deny or log, shown where people look (issue 27 point 3, docs/adr/0038): the counter
// lockstep_profile_calls_total{namespace,pod,container,syscall,action} on the agent's /metrics, and one
// Event per (pod, container, action) per interval on the pod (`kubectl describe pod`, `kubectl get
// events`). Both bounded: AUDIT_LIMITS.callSeries series (further calls go to one {overflow="true"}
// series; series of pods gone from the node are dropped) and AUDIT_LIMITS.eventsPerInterval Events.
import { AUDIT_LIMITS } from "../src/api/limits.ts";
import { EVENT_MESSAGE_MAX, type EventFields, type EventRecorder } from "../src/kube/event-recorder.ts";
import type { Counter, MetricsRegistry } from "../src/kube/metrics.ts";
import type { AuditCollector } from "./audit-collector.ts";
import type { ContainerIdentity, ObservedCall, SeccompActionName } from "./audit-events.ts";

export const CALLS_METRIC = "lockstep_profile_calls_total";

const seriesLabels = (call: ObservedCall) => ({
  namespace: call.namespace,
  pod: call.pod,
  container: call.container,
  syscall: call.syscall,
  action: call.action,
});

/** lockstep_profile_calls_total with at most `cap` series besides the overflow one. */
export class CallsMetric {
  private readonly counter: Counter;
  private readonly cap: number;
  /** The series held, by key, with the pod each belongs to (to drop them when it goes). */
  private readonly series = new Map<string, { podUID: string; labels: Record<string, string> }>();

  constructor(metrics: MetricsRegistry, cap: number = AUDIT_LIMITS.callSeries) {
    this.cap = cap;
    this.counter = metrics.counter(
      CALLS_METRIC,
      `Calls of containers that a seccomp profile logged or refused with logging, by namespace, pod, container, syscall and action; at most ${cap} series per node, the rest counted in the series {overflow="true"}`,
    );
  }

  add(calls: readonly ObservedCall[]): void {
    for (const call of calls) {
      const labels = seriesLabels(call);
      const key = JSON.stringify(labels);
      if (!this.series.has(key)) {
        if (this.series.size >= this.cap) {
          this.counter.inc({ overflow: "true" }, call.count);
          continue;
        }
        this.series.set(key, { podUID: call.podUID, labels });
      }
      this.counter.inc(labels, call.count);
    }
  }

  /** Drops the series of pods no longer on this node (`live`: the uids of those that are). */
  keepPods(live: ReadonlySet<string>): void {
    for (const [key, { podUID, labels }] of this.series) {
      if (live.has(podUID)) continue;
      this.series.delete(key);
      this.counter.delete(labels);
    }
  }
}

/** Syscalls an Event names; the rest are counted in its message. */
const EVENT_SYSCALLS = 20;

export const CALL_EVENT_REASONS: Readonly<Record<SeccompActionName, string>> = {
  log: "SeccompCallsLogged",
  errno: "SeccompCallsDenied",
  kill_process: "SeccompCallsKilled",
  kill_thread: "SeccompCallsKilled",
  trap: "SeccompCallsTrapped",
  trace: "SeccompCallsTraced",
  user_notif: "SeccompCallsNotified",
  allow: "SeccompCallsAllowed",
};

const VERBS: Readonly<Record<SeccompActionName, string>> = {
  log: "logged (allowed)",
  errno: "refused with an error",
  kill_process: "refused by killing the process",
  kill_thread: "refused by killing the thread",
  trap: "refused with SIGSYS",
  trace: "passed to a tracer",
  user_notif: "passed to a notifier",
  allow: "allowed",
};

interface PodCalls {
  identity: ContainerIdentity;
  action: SeccompActionName;
  total: number;
  syscalls: Map<string, number>;
}

/**
 * Calls summed per (pod, container, action) over an Event interval; `drain` gives the Events of the
 * interval, at most `cap`, the busiest first (the rest start the next interval afresh). Pure.
 */
export class CallEvents {
  private readonly cap: number;
  private pending = new Map<string, PodCalls>();

  constructor(cap: number = AUDIT_LIMITS.eventsPerInterval) {
    this.cap = cap;
  }

  add(calls: readonly ObservedCall[]): void {
    for (const call of calls) {
      const key = [call.podUID, call.container, call.action].join("\0");
      let entry = this.pending.get(key);
      if (!entry) {
        // Bounded by the batcher's caps per interval and by the number of pods on the node.
        if (this.pending.size >= AUDIT_LIMITS.callKeys) continue;
        const { namespace, pod, podUID, container } = call;
        entry = {
          identity: { namespace, pod, podUID, container },
          action: call.action,
          total: 0,
          syscalls: new Map(),
        };
        this.pending.set(key, entry);
      }
      entry.total += call.count;
      entry.syscalls.set(call.syscall, (entry.syscalls.get(call.syscall) ?? 0) + call.count);
    }
  }

  drain(intervalSeconds: number): EventFields[] {
    const entries = [...this.pending.values()].sort((a, b) => b.total - a.total).slice(0, this.cap);
    this.pending = new Map();
    return entries.map((entry) => callsEvent(entry, intervalSeconds));
  }
}

function callsEvent(entry: PodCalls, intervalSeconds: number): EventFields {
  const { identity, action, total, syscalls } = entry;
  const named = [...syscalls].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const list = named
    .slice(0, EVENT_SYSCALLS)
    .map(([name, n]) => `${name} (${n})`)
    .join(", ");
  const more = named.length > EVENT_SYSCALLS ? ` and ${named.length - EVENT_SYSCALLS} more syscalls` : "";
  const message = `container ${identity.container}: ${total} calls ${VERBS[action]} by its seccomp profile in the last ${intervalSeconds} s: ${list}${more}`;
  return {
    involvedObject: {
      apiVersion: "v1",
      kind: "Pod",
      name: identity.pod,
      namespace: identity.namespace,
      uid: identity.podUID,
    },
    reason: CALL_EVENT_REASONS[action],
    message: message.slice(0, EVENT_MESSAGE_MAX),
    // A logged call is allowed: worth knowing, not a failure. A refused one may break the workload.
    type: action === "log" || action === "allow" ? "Normal" : "Warning",
  };
}

/** How often the pod Events of observed calls are sent: one per (pod, container, action) per interval. */
export const CALL_EVENTS_INTERVAL_MS = 60_000;

export interface NodeAuditOptions {
  collector: AuditCollector;
  metrics: MetricsRegistry;
  events: EventRecorder;
  eventsIntervalMs?: number;
}

/**
 * What the agent holds of the audit path: the collector, the metric and the pod Events, fed from the
 * collector's batches. The agent tells it after each sync which seccomp profiles are installed and
 * which pods are on the node (agent.ts, AgentOptions.audit).
 */
export class NodeAudit {
  readonly collector: AuditCollector;
  private readonly metric: CallsMetric;
  private readonly pending = new CallEvents();
  private readonly events: EventRecorder;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: NodeAuditOptions) {
    this.collector = options.collector;
    this.events = options.events;
    this.intervalMs = options.eventsIntervalMs ?? CALL_EVENTS_INTERVAL_MS;
    this.metric = new CallsMetric(options.metrics);
    this.collector.onCalls((calls) => {
      this.metric.add(calls);
      this.pending.add(calls);
    });
  }

  follow(installedSeccomp: Iterable<string>, livePods: ReadonlySet<string>): void {
    this.collector.follow(installedSeccomp);
    this.metric.keepPods(livePods);
    if (this.collector.active) this.timer ??= setInterval(() => void this.sendEvents(), this.intervalMs);
    else if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      void this.sendEvents();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.collector.stop();
    await this.sendEvents();
  }

  private async sendEvents(): Promise<void> {
    for (const event of this.pending.drain(Math.round(this.intervalMs / 1000)))
      await this.events.record(event);
  }
}
