// The profile controller: a level-triggered reconcile(kind/name) that reads profiles, Node metadata and
// the agents' InstallFailed Events from watch caches, and writes only the difference. Wiring only; the
// decisions live in pure modules beside it:
// - triggers.ts: which change wakes which profiles, and how a burst of Node changes is collected
//   (src/kube/burst-collector.ts); a Terminating profile still in use also wakes itself every
//   inUseRecheckMs (pods are not watched, ADR 0011);
// - watches.ts: what is watched, and what each change is handed to;
// - node-views.ts: the Node labels status reads;
// - status.ts, status-hold.ts: the status, what to write of it, and how long a generation's first one
//   is held back;
// - install-failures.ts, in-use.ts: reading the agents' reports and the pods that hold a profile, and
//   when a profile waiting for its pods is looked at again;
// - writers.ts: the writes, kept as own writes until the watch delivers them (src/kube/own-writes.ts),
//   and the in-use finalizer, added and removed by src/kube/finalizer.ts.
import type { V1PodList } from "@kubernetes/client-node";
import { OBJECT_KIND, PROFILE_KINDS, type ProfileKind } from "../api/constants.ts";
import { profileRevision, renderingRevision } from "../api/node-profiles.ts";
import { BurstCollector } from "../kube/burst-collector.ts";
import type { KubeClient } from "../kube/client.ts";
import { kubeErrorMessage } from "../kube/errors.ts";
import { isDeleting, reconcileWithFinalizer } from "../kube/finalizer.ts";
import type { Logger } from "../kube/logger.ts";
import type { MetricsRegistry } from "../kube/metrics.ts";
import type { ProfileCache, ProfileObject } from "../kube/profile-cache.ts";
import { type HandlerResult, WorkQueue } from "../kube/workqueue.ts";
import { type ControllerMetrics, controllerMetrics, measuredReconcile } from "./controller-metrics.ts";
import { podsUsingNames, podsUsingQuery, requeueAfterStatus } from "./in-use.ts";
import { InstallReportCache, profileKey, splitProfileKey } from "./install-failures.ts";
import { NodeLabelCache } from "./node-views.ts";
import { computeStatus, phaseCounts, statusWrite } from "./status.ts";
import { FirstStatusHold } from "./status-hold.ts";
import {
  addToNodeBurst,
  EMPTY_NODE_BURST,
  installReportWakes,
  type NodeBurst,
  type NodeBurstWake,
  nodeBurstCollectMs,
  nodeBurstWakes,
  profileChangeWakes,
  type Wake,
} from "./triggers.ts";
import {
  type ControllerWatches,
  controllerWatches,
  onChanges,
  startWatches,
  stopWatches,
} from "./watches.ts";
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
  private readonly watches: ControllerWatches;
  private readonly profiles: ProfileCache;
  private readonly queue: WorkQueue;
  private readonly writer: ProfileWriter;
  private readonly hold = new FirstStatusHold();
  private readonly nodeBurst: BurstCollector<{ wake: NodeBurstWake; node: string | undefined }, NodeBurst>;
  private readonly m: ControllerMetrics;
  private readonly nodeLabels = new NodeLabelCache();
  private readonly reports: InstallReportCache;
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
    this.watches = controllerWatches(this.client, opts.log, () => this.stopped);
    this.profiles = this.watches.profiles;
    this.reports = new InstallReportCache(() => this.watches.events.list());
    this.m = controllerMetrics(opts.metrics);
  }

  notReadyReason(): string | undefined {
    return this.synced ? undefined : "caches not synced";
  }

  async start(): Promise<void> {
    onChanges(this.watches, {
      profile: (change) => this.wake(profileChangeWakes(change)),
      profileGone: (kind, name) => {
        this.writer.own.forget(profileKey(kind, name));
        this.hold.forget(profileKey(kind, name));
      },
      nodeLabels: (name, labels) => this.wake(this.nodeLabels.update(name, labels), name),
      installReport: (event) => {
        this.reports.changed();
        this.wake(installReportWakes(event));
      },
    });
    await startWatches(this.watches);
    this.synced = true;
    const { log } = this.opts;
    this.queue.run(
      (key) => {
        const [kind, name] = splitProfileKey(key);
        return measuredReconcile(this.m, kind, () => this.reconcile(kind, name));
      },
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
    await stopWatches(this.watches);
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

  /** Level-triggered: the same cached state always leads to the same writes, whatever caused the call. */
  private async reconcile(kind: ProfileKind, name: string): Promise<HandlerResult> {
    const obj = this.profiles.get(kind, name);
    if (!obj) return undefined;
    const log = this.opts.log.child({ kind: OBJECT_KIND[kind], name });
    const recheckMs = this.opts.inUseRecheckMs ?? DEFAULT_IN_USE_RECHECK_MS;
    return reconcileWithFinalizer(this.writer.inUseFinalizer(kind), obj, {
      apply: async (o) => {
        const { held, current } = await this.writeStatus(kind, o, [], log);
        return { result: requeueAfterStatus(held, isDeleting(o), recheckMs), current };
      },
      cleanup: async (o) => {
        const inUseBy = await this.podsUsing(kind, name);
        if (inUseBy.length === 0) {
          log.info("no pod uses the profile any more; released it for deletion");
          return { done: true };
        }
        const { held } = await this.writeStatus(kind, o, inUseBy, log);
        return { done: false, result: requeueAfterStatus(held, true, recheckMs) };
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
      nodes: this.nodeLabels.views(),
      failures: this.reports.failuresFor(kind, name),
      previous,
      now: new Date(),
    });
    const write = statusWrite(
      previous,
      next,
      this.hold.holdMs(profileKey(kind, name), previous, next, Date.now()),
    );
    if ("holdMs" in write) return { held: { requeueAfterMs: write.holdMs }, current: undefined };
    const { current, patched } = await this.writer.writeStatus(kind, obj, next, write, log);
    if (patched) this.m.statusWrites.inc({ kind });
    return { current };
  }

  private async podsUsing(kind: ProfileKind, name: string): Promise<string[]> {
    return podsUsingNames(
      await this.client.get<V1PodList>("/api/v1/pods", { query: podsUsingQuery(kind, name) }),
    );
  }
}
