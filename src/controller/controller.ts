// The profile controller: a level-triggered reconcile(kind/name) that reads profiles, Node metadata and
// the agents' InstallFailed Events from watch caches, and writes only the difference. Wiring only; the
// decisions live in pure modules beside it:
// - triggers.ts: which change wakes which profiles, and how a burst of Node changes is collected
//   (src/kube/burst-collector.ts); a Terminating profile still in use also wakes itself every
//   inUseRecheckMs (pods are not watched, ADR 0011);
// - status.ts, status-hold.ts: the status, and how long a generation's first one is held back;
// - install-failures.ts, in-use.ts: reading the agents' reports and the pods that hold a profile;
// - writers.ts: the writes, kept as own writes until the watch delivers them (src/kube/own-writes.ts),
//   and the in-use finalizer, added and removed by src/kube/finalizer.ts.
import type { V1PodList } from "@kubernetes/client-node";
import { OBJECT_KIND, PROFILE_EVENTS_NAMESPACE, PROFILE_KINDS, type ProfileKind } from "../api/constants.ts";
import { INSTALL_FAILED, trimInstallReportEvent } from "../api/install-report.ts";
import { profileRevision, renderingRevision } from "../api/node-profiles.ts";
import { BurstCollector } from "../kube/burst-collector.ts";
import type { KubeClient } from "../kube/client.ts";
import { kubeErrorMessage } from "../kube/errors.ts";
import { isDeleting, reconcileWithFinalizer } from "../kube/finalizer.ts";
import { Informer, type KubeObject } from "../kube/informer.ts";
import type { Logger } from "../kube/logger.ts";
import type { MetricsRegistry } from "../kube/metrics.ts";
import { logWatchFailures, ProfileCache, type ProfileObject } from "../kube/profile-cache.ts";
import { type HandlerResult, WorkQueue } from "../kube/workqueue.ts";
import { podsUsingNames, podsUsingQuery } from "./in-use.ts";
import {
  type InstallReportIndex,
  indexInstallReports,
  latestFailures,
  profileKey,
  splitProfileKey,
} from "./install-failures.ts";
import {
  computeStatus,
  type NodeView,
  phaseChangeNeedsEvent,
  phaseCounts,
  statusDiffers,
  statusMergePatch,
} from "./status.ts";
import { FirstStatusHold } from "./status-hold.ts";
import {
  addToNodeBurst,
  EMPTY_NODE_BURST,
  installReportWakes,
  type NodeBurst,
  type NodeBurstWake,
  nodeBurstCollectMs,
  nodeBurstWakes,
  nodeChangeWakes,
  profileChangeWakes,
  type Wake,
} from "./triggers.ts";
import { ProfileWriter } from "./writers.ts";

const DEFAULT_IN_USE_RECHECK_MS = 3_000;
/**
 * Profiles reconciled in parallel. A reconcile spends most of its time waiting for the API server to
 * commit a status write; with 4 in flight instead of 2, 100 statuses after a rollout to 20 nodes
 * converged in about 0.75 of the time (docs/benchmarks.md); never the same profile twice.
 */
export const DEFAULT_WORKERS = 4;
const PHASE_RECOUNT_MS = 5_000;

export interface ControllerOptions {
  client: KubeClient;
  log: Logger;
  metrics: MetricsRegistry;
  /** Profiles reconciled in parallel (never the same one twice). */
  workers?: number;
  /** How often a Terminating profile that pods still use is checked again. */
  inUseRecheckMs?: number;
}

export class ProfileController {
  private readonly opts: ControllerOptions;
  private readonly client: KubeClient;
  private readonly profiles: ProfileCache;
  private readonly nodes: Informer<KubeObject>;
  private readonly events: Informer<KubeObject>;
  private readonly queue: WorkQueue;
  private readonly writer: ProfileWriter;
  private readonly hold = new FirstStatusHold();
  private readonly nodeBurst: BurstCollector<{ wake: NodeBurstWake; node: string | undefined }, NodeBurst>;
  private readonly m;

  private readonly nodeLabels = new Map<string, Readonly<Record<string, string>>>();
  private nodeViewCache: NodeView[] | undefined;
  private reportIndex: InstallReportIndex | undefined;
  private phaseRecount: NodeJS.Timeout | undefined;
  private stopped = false;
  private synced = false;

  constructor(opts: ControllerOptions) {
    this.opts = opts;
    this.client = opts.client;
    this.writer = new ProfileWriter(opts.client, opts.log);
    this.queue = new WorkQueue({ workers: opts.workers ?? DEFAULT_WORKERS });
    this.nodeBurst = new BurstCollector({
      empty: () => EMPTY_NODE_BURST,
      add: (burst, { wake, node }) => addToNodeBurst(burst, wake, node),
      waitMs: nodeBurstCollectMs,
      flush: (burst) => this.enqueueNodeBurst(burst),
    });
    const stopping = () => this.stopped;
    this.profiles = new ProfileCache(this.client, opts.log, stopping);
    // Names and labels only: a Node's status (images, conditions, addresses) is most of its size and
    // changes with every heartbeat. See ADR 0011.
    this.nodes = new Informer<KubeObject>(this.client, {
      path: "/api/v1/nodes",
      metadataOnly: true,
      onError: logWatchFailures(opts.log, "nodes", stopping),
    });
    // Of each Event only the install report it carries, and only the newest reports: Events are anyone's
    // to create where RBAC grants it, and status needs a report only to explain a failure label.
    this.events = new Informer<KubeObject>(this.client, {
      path: `/api/v1/namespaces/${PROFILE_EVENTS_NAMESPACE}/events`,
      fieldSelector: `reason=${INSTALL_FAILED}`,
      onError: logWatchFailures(opts.log, "events", stopping),
      transform: (event) => trimInstallReportEvent(event, REPORT_DETAIL_KEPT),
      maxObjects: MAX_CACHED_INSTALL_REPORTS,
    });
    const m = opts.metrics;
    this.m = {
      reconciles: m.counter("lockstep_controller_reconciles_total", "Reconciles run, by kind and result"),
      errors: m.counter("lockstep_controller_reconcile_errors_total", "Reconciles that failed, by kind"),
      duration: m.histogram(
        "lockstep_controller_reconcile_duration_seconds",
        "Time one reconcile took, by kind",
        [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      ),
      statusWrites: m.counter("lockstep_controller_status_writes_total", "Status patches sent, by kind"),
      phases: m.gauge("lockstep_controller_profiles", "Profiles by kind and phase"),
      depth: m.gauge("lockstep_controller_queue_depth", "Profiles waiting to be reconciled"),
    };
  }

  notReadyReason(): string | undefined {
    return this.synced ? undefined : "caches not synced";
  }

  async start(): Promise<void> {
    this.profiles.onChange((change) => {
      if (change.verb === "delete") {
        this.writer.own.forget(profileKey(change.kind, change.name));
        this.hold.forget(profileKey(change.kind, change.name));
      }
      this.wake(profileChangeWakes(change));
    });
    this.nodes.on("add", (n) => this.onNodeLabels(n.metadata?.name ?? "", n.metadata?.labels ?? {}));
    this.nodes.on("update", (n) => this.onNodeLabels(n.metadata?.name ?? "", n.metadata?.labels ?? {}));
    this.nodes.on("delete", (n) => this.onNodeLabels(n.metadata?.name ?? "", undefined));
    for (const verb of ["add", "update", "delete"] as const)
      this.events.on(verb, (e) => {
        this.reportIndex = undefined;
        this.wake(installReportWakes(e));
      });

    await Promise.all([this.profiles.start(), this.nodes.start(), this.events.start()]);
    this.synced = true;
    const { log } = this.opts;
    this.queue.run(
      (key) => this.reconcileKey(key),
      (key, error, retryInMs) => {
        const [kind, name] = splitProfileKey(key);
        this.m.errors.inc({ kind });
        log.error(
          { kind: OBJECT_KIND[kind], name, err: kubeErrorMessage(error), retryInMs },
          "reconcile failed; retrying",
        );
      },
    );
    this.enqueueAll();
    this.phaseRecount = setInterval(() => this.recountPhases(), PHASE_RECOUNT_MS);
    log.info(
      { profiles: this.profiles.list("seccomp").length + this.profiles.list("apparmor").length },
      "caches synced; reconciling",
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.nodeBurst.stop();
    clearInterval(this.phaseRecount);
    await this.queue.shutDown();
    await Promise.all([this.profiles.stop(), this.nodes.stop(), this.events.stop()]);
  }

  /** Keeps the label cache the status is computed from, and wakes profiles when labels changed. */
  private onNodeLabels(name: string, labels: Readonly<Record<string, string>> | undefined): void {
    const wake = nodeChangeWakes(this.nodeLabels.get(name), labels);
    if (wake === undefined) return;
    if (labels === undefined) this.nodeLabels.delete(name);
    else this.nodeLabels.set(name, labels);
    this.nodeViewCache = undefined;
    this.wake(wake, name);
  }

  /** `node`: the Node whose change this is, for a wake that waits for the rest of a Node burst. */
  private wake(wake: Wake, node?: string): void {
    if (wake === undefined) return;
    if ("profile" in wake) this.enqueue(wake.profile.kind, wake.profile.name);
    else if ("kind" in wake) this.enqueueKind(wake.kind);
    else this.nodeBurst.add({ wake, node });
  }

  private enqueueNodeBurst(burst: NodeBurst): void {
    for (const kind of PROFILE_KINDS)
      for (const p of this.profiles.list(kind))
        if (nodeBurstWakes(burst, kind, this.renderingRevisionOf(kind, p)))
          this.enqueue(kind, p.metadata?.name ?? "");
  }

  /** The object's own revision: kept from the status while the generation is the same. */
  private revisionOf(kind: ProfileKind, obj: ProfileObject): string {
    return profileRevision({ metadata: obj.metadata, status: this.writer.currentStatus(kind, obj) });
  }

  /** The revision nodes must reach for a profile: its rendering's, over its whole inheritance chain. */
  private renderingRevisionOf(kind: ProfileKind, obj: ProfileObject): string {
    return renderingRevision(kind, obj.metadata?.name ?? "", (name) => {
      const link = this.profiles.get(kind, name);
      return link && { revision: this.revisionOf(kind, link), spec: link.spec };
    });
  }

  private enqueueAll(): void {
    for (const kind of PROFILE_KINDS) this.enqueueKind(kind);
  }

  private enqueueKind(kind: ProfileKind): void {
    for (const p of this.profiles.list(kind)) this.enqueue(kind, p.metadata?.name ?? "");
  }

  private enqueue(kind: ProfileKind, name: string): void {
    // Before the caches sync, start() enqueues everything at once.
    if (this.stopped || !this.synced || name === "") return;
    this.queue.add(profileKey(kind, name));
    this.m.depth.set(this.queue.depth);
  }

  private recountPhases(): void {
    this.m.phases.reset();
    for (const kind of PROFILE_KINDS) {
      const statuses = this.profiles.list(kind).map((p) => this.writer.currentStatus(kind, p));
      for (const [phase, n] of phaseCounts(statuses)) this.m.phases.set(n, { kind, phase });
    }
    this.m.depth.set(this.queue.depth);
  }

  private async reconcileKey(key: string): Promise<HandlerResult> {
    const [kind, name] = splitProfileKey(key);
    const started = performance.now();
    try {
      const result = await this.reconcile(kind, name);
      this.m.reconciles.inc({ kind, result: "ok" });
      return result;
    } catch (error) {
      this.m.reconciles.inc({ kind, result: "error" });
      throw error;
    } finally {
      this.m.duration.observe((performance.now() - started) / 1000, { kind });
    }
  }

  /** Level-triggered: the same cached state always leads to the same writes, whatever caused the call. */
  private async reconcile(kind: ProfileKind, name: string): Promise<HandlerResult> {
    const obj = this.profiles.get(kind, name);
    if (!obj) return undefined;
    const log = this.opts.log.child({ kind: OBJECT_KIND[kind], name });
    // Pods are not watched: a profile waiting for its last pod is looked at again on a timer.
    const recheck = { requeueAfterMs: this.opts.inUseRecheckMs ?? DEFAULT_IN_USE_RECHECK_MS };
    return reconcileWithFinalizer(this.writer.inUseFinalizer(kind), obj, {
      apply: async (o) => {
        const { held, current } = await this.writeStatus(kind, o, [], log);
        return { result: held ?? (isDeleting(o) ? recheck : undefined), current };
      },
      cleanup: async (o) => {
        const inUseBy = await this.podsUsing(kind, name);
        if (inUseBy.length === 0) {
          log.info("no pod uses the profile any more; released it for deletion");
          return { done: true };
        }
        const { held } = await this.writeStatus(kind, o, inUseBy, log);
        return { done: false, result: held ?? recheck };
      },
    });
  }

  /**
   * Writes the status if it changed, announcing a phase change. `held`: the status is held back this
   * long (status-hold.ts). `current`: the object as it stands after, undefined while the cache is behind
   * this replica's own write (the watch wakes the profile again) or the profile is gone.
   */
  private async writeStatus(
    kind: ProfileKind,
    obj: ProfileObject,
    inUseBy: string[],
    log: Logger,
  ): Promise<{ held?: HandlerResult; current: ProfileObject | undefined }> {
    const name = obj.metadata?.name ?? "";
    const rendered = this.profiles.rendered(kind).get(name);
    if (!rendered) return { current: undefined };
    const previous = this.writer.currentStatus(kind, obj);
    const next = computeStatus({
      profile: rendered,
      revision: this.renderingRevisionOf(kind, obj),
      ownRevision: this.revisionOf(kind, obj),
      generation: obj.metadata?.generation,
      deleting: isDeleting(obj),
      inUseBy,
      nodes: this.nodeViews(),
      failures: this.failuresFor(kind, name),
      previous,
      now: new Date(),
    });
    const holdMs = this.hold.holdMs(profileKey(kind, name), previous, next, Date.now());
    if (holdMs > 0) return { held: { requeueAfterMs: holdMs }, current: undefined };
    // The object as it stands is the cache's, or what this replica's own last write returned.
    let current = this.writer.own.cacheBehind(profileKey(kind, name), obj.metadata?.resourceVersion)
      ? undefined
      : obj;
    if (statusDiffers(previous, next)) {
      current = await this.writer.patchStatus(kind, name, statusMergePatch(previous, next));
      if (!current) return { current };
      this.m.statusWrites.inc({ kind });
      if (next.phase !== previous?.phase) {
        log.info({ phase: next.phase, ready: next.ready }, "status changed");
        if (next.phase && phaseChangeNeedsEvent(previous?.phase, next.phase))
          await this.writer.recordPhase(kind, obj, next);
      }
    }
    return { current };
  }

  private nodeViews(): NodeView[] {
    this.nodeViewCache ??= [...this.nodeLabels].map(([name, labels]) => ({ name, labels }));
    return this.nodeViewCache;
  }

  private failuresFor(kind: ProfileKind, name: string) {
    this.reportIndex ??= indexInstallReports(this.events.list());
    return latestFailures(this.reportIndex, kind, name);
  }

  private async podsUsing(kind: ProfileKind, name: string): Promise<string[]> {
    return podsUsingNames(
      await this.client.get<V1PodList>("/api/v1/pods", { query: podsUsingQuery(kind, name) }),
    );
  }
}

/**
 * Install reports the controller keeps, the newest first kept. An agent reports only failures it labels
 * (at most MAX_FAILURE_LABELS_PER_KIND per kind and node, once per change), so this holds every current
 * report of 39 nodes each failing every profile it can label, or of 10,000 nodes failing one profile;
 * past it a failure is still shown, by its label's reason. A report is a few hundred bytes, its detail
 * cut to REPORT_DETAIL_KEPT: at most about 12 MiB.
 */
export const MAX_CACHED_INSTALL_REPORTS = 10_000;
/** What status.missingNodes shows of a report's detail. */
const REPORT_DETAIL_KEPT = 1024;
