// The profile controller: a level-triggered reconcile(kind/name) that reads profiles, Node metadata and
// the agents' InstallFailed Events from watch caches, and writes only the difference. Three files:
// - triggers.ts: which change wakes which profiles (a Terminating profile still in use also wakes
//   itself every IN_USE_RECHECK_MS: pods are not watched, ADR 0011);
// - this file: the caches and the reconcile, with no event-specific branches;
// - writers.ts: the in-use finalizer, the status subresource and Events.
import type { V1PodList } from "@kubernetes/client-node";
import type { ProfileStatus } from "../api/common.ts";
import {
  IN_USE_FINALIZER,
  OBJECT_KIND,
  PROFILE_EVENTS_NAMESPACE,
  PROFILE_KINDS,
  type ProfileKind,
} from "../api/constants.ts";
import {
  INSTALL_FAILED,
  type InstallReport,
  readInstallReport,
  trimInstallReportEvent,
} from "../api/install-report.ts";
import { profileLabelKey } from "../api/labels.ts";
import { profileRevision, renderingRevision, revisionBefore } from "../api/node-profiles.ts";
import type { KubeClient } from "../kube/client.ts";
import { kubeErrorMessage } from "../kube/errors.ts";
import { Informer, type KubeObject } from "../kube/informer.ts";
import type { Logger } from "../kube/logger.ts";
import type { MetricsRegistry } from "../kube/metrics.ts";
import { logWatchFailures, ProfileCache, type ProfileObject } from "../kube/profile-cache.ts";
import { type HandlerResult, WorkQueue } from "../kube/workqueue.ts";
import {
  computeStatus,
  firstStatusHoldMs,
  type InstallFailure,
  type NodeView,
  phaseChangeNeedsEvent,
  statusDiffers,
  statusMergePatch,
} from "./status.ts";
import {
  installReportWakes,
  mergeRevisionRanges,
  nodeBurstWaitMs,
  nodeChangeWakes,
  profileChangeWakes,
  type RevisionRanges,
  revisionInRanges,
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
/** How many pods an InUse message names; the rest are counted by the list's size only. */
const IN_USE_PODS_NAMED = 5;
/** The pods a profile is in use by: every phase but the two a pod never leaves. */
const UNFINISHED_PODS = "status.phase!=Succeeded,status.phase!=Failed";
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
  private readonly m;

  private readonly nodeLabels = new Map<string, Readonly<Record<string, string>>>();
  private nodeViewCache: NodeView[] | undefined;
  private failureIndex: Map<string, { report: InstallReport; at: number }[]> | undefined;
  /**
   * Per profile, the resourceVersion this replica's last write produced, and the status the object
   * then had: until the watch delivers the write, the cache still shows the object before it, and
   * acting on that would write (and announce) the same change twice, or send a finalizer patch
   * conditional on a resourceVersion that is gone (409).
   */
  private readonly written = new Map<
    string,
    { resourceVersion: string; status: ProfileStatus | undefined }
  >();
  /** When this replica first saw each generation that has no status yet (see firstStatusHoldMs). */
  private readonly firstSeen = new Map<string, { generation: number | undefined; at: number }>();
  private nodeBurst: NodeJS.Timeout | undefined;
  /** When the first Node change of the burst being collected came, and which Nodes changed in it. */
  private nodeBurstSince: number | undefined;
  private readonly nodeBurstNodes = new Set<string>();
  /** What the Node changes of the current burst wake: everything, or profiles in revision ranges. */
  private nodeBurstWakes: "all" | RevisionRanges = {};
  private phaseRecount: NodeJS.Timeout | undefined;
  private stopped = false;
  private synced = false;

  constructor(opts: ControllerOptions) {
    this.opts = opts;
    this.client = opts.client;
    this.writer = new ProfileWriter(opts.client, opts.log);
    this.queue = new WorkQueue({ workers: opts.workers ?? DEFAULT_WORKERS });
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
        this.written.delete(`${change.kind}/${change.name}`);
        this.firstSeen.delete(`${change.kind}/${change.name}`);
      }
      this.wake(profileChangeWakes(change));
    });
    this.nodes.on("add", (n) => this.onNodeLabels(n.metadata?.name ?? "", n.metadata?.labels ?? {}));
    this.nodes.on("update", (n) => this.onNodeLabels(n.metadata?.name ?? "", n.metadata?.labels ?? {}));
    this.nodes.on("delete", (n) => this.onNodeLabels(n.metadata?.name ?? "", undefined));
    for (const verb of ["add", "update", "delete"] as const)
      this.events.on(verb, (e) => {
        this.failureIndex = undefined;
        this.wake(installReportWakes(e));
      });

    await Promise.all([this.profiles.start(), this.nodes.start(), this.events.start()]);
    this.synced = true;
    const { log } = this.opts;
    this.queue.run(
      (key) => this.reconcileKey(key),
      (key, error, retryInMs) => {
        const [kind, name] = splitKey(key);
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
    clearTimeout(this.nodeBurst);
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
    else {
      if ("allAfterNodeBurst" in wake || this.nodeBurstWakes === "all") this.nodeBurstWakes = "all";
      else this.nodeBurstWakes = mergeRevisionRanges(this.nodeBurstWakes, wake.revisionsAfterNodeBurst);
      const now = Date.now();
      this.nodeBurstSince ??= now;
      if (node !== undefined) this.nodeBurstNodes.add(node);
      clearTimeout(this.nodeBurst);
      this.nodeBurst = setTimeout(
        () => {
          const wakes = this.nodeBurstWakes;
          this.nodeBurst = undefined;
          this.nodeBurstSince = undefined;
          this.nodeBurstNodes.clear();
          this.nodeBurstWakes = {};
          if (wakes === "all") this.enqueueAll();
          else
            for (const kind of PROFILE_KINDS)
              for (const p of this.profiles.list(kind))
                if (revisionInRanges(wakes, kind, this.renderingRevisionOf(kind, p)))
                  this.enqueue(kind, p.metadata?.name ?? "");
        },
        nodeBurstWaitMs(now - this.nodeBurstSince, this.nodeBurstNodes.size),
      );
    }
  }

  /** The object's own revision: kept from the status while the generation is the same. */
  private revisionOf(kind: ProfileKind, obj: ProfileObject): string {
    return profileRevision({ metadata: obj.metadata, status: this.currentStatus(kind, obj) });
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
    this.queue.add(`${kind}/${name}`);
    this.m.depth.set(this.queue.depth);
  }

  private recountPhases(): void {
    this.m.phases.reset();
    for (const kind of PROFILE_KINDS) {
      const counts = new Map<string, number>();
      for (const p of this.profiles.list(kind)) {
        const phase = this.currentStatus(kind, p)?.phase ?? "Pending";
        counts.set(phase, (counts.get(phase) ?? 0) + 1);
      }
      for (const [phase, n] of counts) this.m.phases.set(n, { kind, phase });
    }
    this.m.depth.set(this.queue.depth);
  }

  private async reconcileKey(key: string): Promise<HandlerResult> {
    const [kind, name] = splitKey(key);
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
    const deleting = obj.metadata?.deletionTimestamp != null;
    const finalizers = obj.metadata?.finalizers ?? [];

    let inUseBy: string[] = [];
    if (deleting && finalizers.includes(IN_USE_FINALIZER)) {
      inUseBy = await this.podsUsing(kind, name);
      if (inUseBy.length === 0) {
        await this.writer.setFinalizers(
          kind,
          obj,
          finalizers.filter((f) => f !== IN_USE_FINALIZER),
        );
        log.info("no pod uses the profile any more; released it for deletion");
        return undefined;
      }
    }

    const rendered = this.profiles.rendered(kind).get(name);
    if (!rendered) return undefined;
    const key = `${kind}/${name}`;
    const generation = obj.metadata?.generation;
    const previous = this.currentStatus(kind, obj);
    const next = computeStatus({
      profile: rendered,
      revision: this.renderingRevisionOf(kind, obj),
      ownRevision: this.revisionOf(kind, obj),
      generation,
      deleting,
      inUseBy,
      nodes: this.nodeViews(),
      failures: this.failuresFor(kind, name),
      previous,
      now: new Date(),
    });
    if (previous?.observedGeneration === generation) this.firstSeen.delete(key);
    else if (this.firstSeen.get(key)?.generation !== generation)
      this.firstSeen.set(key, { generation, at: Date.now() });
    const holdMs = firstStatusHoldMs(previous, next, Date.now() - (this.firstSeen.get(key)?.at ?? 0));
    if (holdMs > 0) return { requeueAfterMs: holdMs };

    // The status first: its first write for a generation fixes the revision (ADR 0024), so the
    // finalizer write after it no longer moves the revision that the agents must claim. The object as
    // it stands is the cache's, or what this replica's own last write returned.
    let current = this.behindOwnWrite(key, obj) ? undefined : obj;
    if (statusDiffers(previous, next)) {
      current = await this.writer.patchStatus(kind, name, statusMergePatch(previous, next));
      if (!current) return undefined;
      this.m.statusWrites.inc({ kind });
      this.written.set(key, { resourceVersion: current.metadata?.resourceVersion ?? "", status: next });
      if (next.phase !== previous?.phase) {
        log.info({ phase: next.phase, ready: next.ready }, "status changed");
        if (next.phase && phaseChangeNeedsEvent(previous?.phase, next.phase))
          await this.writer.recordEvent(kind, obj, next);
      }
    }
    // Unknown while the cache is behind this replica's own write: the watch wakes the profile again.
    const currentFinalizers = current?.metadata?.finalizers ?? [];
    if (current && !deleting && !currentFinalizers.includes(IN_USE_FINALIZER)) {
      const after = await this.writer.setFinalizers(kind, current, [...currentFinalizers, IN_USE_FINALIZER]);
      if (after)
        this.written.set(key, {
          resourceVersion: after.metadata?.resourceVersion ?? "",
          status: after.status,
        });
    }
    // Pods are not watched: a profile waiting for its last pod is looked at again on a timer.
    return deleting ? { requeueAfterMs: this.opts.inUseRecheckMs ?? DEFAULT_IN_USE_RECHECK_MS } : undefined;
  }

  /** The cached status, or the one this replica wrote if the watch has not delivered it yet. */
  private currentStatus(kind: ProfileKind, obj: ProfileObject): ProfileStatus | undefined {
    const key = `${kind}/${obj.metadata?.name ?? ""}`;
    return this.behindOwnWrite(key, obj) ? this.written.get(key)?.status : obj.status;
  }

  /** Whether the cached object is older than this replica's last write to it. */
  private behindOwnWrite(key: string, obj: ProfileObject): boolean {
    const written = this.written.get(key);
    if (!written) return false;
    if (revisionBefore(obj.metadata?.resourceVersion, written.resourceVersion)) return true;
    this.written.delete(key);
    return false;
  }

  private nodeViews(): NodeView[] {
    this.nodeViewCache ??= [...this.nodeLabels].map(([name, labels]) => ({ name, labels }));
    return this.nodeViewCache;
  }

  private failuresFor(kind: ProfileKind, name: string): Map<string, InstallFailure> {
    if (!this.failureIndex) {
      this.failureIndex = new Map();
      for (const e of this.events.list()) {
        const read = readInstallReport(e);
        if (!read) continue;
        const key = `${read.report.kind}/${read.report.name}`;
        const list = this.failureIndex.get(key) ?? [];
        list.push(read);
        this.failureIndex.set(key, list);
      }
    }
    // The latest report per node: an agent that failed, then failed differently, is read as it is now.
    const latest = new Map<string, { at: number; failure: InstallFailure }>();
    for (const { report, at } of this.failureIndex.get(`${kind}/${name}`) ?? []) {
      if ((latest.get(report.node)?.at ?? -1) > at) continue;
      latest.set(report.node, {
        at,
        failure: { version: report.version, message: `${report.reason}: ${report.detail}` },
      });
    }
    return new Map([...latest].map(([node, { failure }]) => [node, failure]));
  }

  /**
   * Unfinished pods that carry the profile's label, found with a label-selector list (never a pod
   * cache). A Succeeded or Failed pod runs no container again (DESIGN invariant 6), so it does not hold
   * the profile even while the object stays around (Jobs keep theirs).
   */
  private async podsUsing(kind: ProfileKind, name: string): Promise<string[]> {
    const pods = await this.client.get<V1PodList>("/api/v1/pods", {
      query: {
        labelSelector: profileLabelKey(kind, name),
        fieldSelector: UNFINISHED_PODS,
        limit: IN_USE_PODS_NAMED,
      },
    });
    const named = pods.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`);
    const more = pods.metadata?.remainingItemCount ?? (pods.metadata?._continue ? 1 : 0);
    return more > 0 ? [...named, `${more} more`] : named;
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

function splitKey(key: string): [ProfileKind, string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash) as ProfileKind, key.slice(slash + 1)];
}
