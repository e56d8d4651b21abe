// The node agent's loop: watch the profiles and this Node, make the disk (and the kernel's AppArmor
// list) match what belongs on this node, read back what is really there, and fix this Node's Lockstep
// labels in one PATCH. Level-triggered: every sync recomputes everything from the caches, and bursts
// of changes are coalesced into one sync (and so one PATCH). Wiring only; the decisions live beside it:
// planner.ts (what to write, remove, load, unload), executor.ts (carrying that out), record-keeping.ts
// (the ownership record), sync-outcome.ts (what the labels say), label-publisher.ts (the PATCH, own
// writes, deferral within a burst), revision-claims.ts, sync-causes.ts and sync-trigger.ts (when to
// sync). Everything an agent holds is its own: several agents (each with its node name, kubelet root,
// client and watches) can run in one process, as the scale benchmark runs them.
import type { V1Node } from "@kubernetes/client-node";
import { APPARMOR_LABEL, type ProfileKind } from "../src/api/constants.ts";
import { MAX_FAILURE_LABELS_PER_KIND } from "../src/api/limits.ts";
import { profileRevision, renderingRevision } from "../src/api/node-profiles.ts";
import type { RenderedProfile } from "../src/api/profiles.ts";
import { KubeApiError, type KubeClient } from "../src/kube/client.ts";
import { kubeErrorMessage } from "../src/kube/errors.ts";
import type { EventRecorder } from "../src/kube/event-recorder.ts";
import { Informer, type KubeObject } from "../src/kube/informer.ts";
import type { Logger } from "../src/kube/logger.ts";
import type { MetricsRegistry } from "../src/kube/metrics.ts";
import { logWatchFailures, ProfileCache } from "../src/kube/profile-cache.ts";
import { retryDelayMs } from "../src/kube/retry-after.ts";
import { type AppArmorPaths, detectAppArmor, loadedProfiles, readBootId } from "./apparmor.ts";
import { agentEventRecorder, nodeWarning, reportInstallFailed, reportUnlabelledFailures } from "./events.ts";
import { carryOut, type Executor, startPolicyJudge } from "./executor.ts";
import { NodeLabelPublisher } from "./label-publisher.ts";
import type { OwnershipRecord } from "./ownership-record.ts";
import { type NodeObservation, planSync, recordToPlanFrom } from "./planner.ts";
import { restoreRecord, unreadableRecordMessage } from "./record-keeping.ts";
import { RevisionClaims } from "./revision-claims.ts";
import { SeccompDir } from "./seccomp-dir.ts";
import { podLabelsChangeNeedsSync } from "./sync-causes.ts";
import { planActsOnNode, syncOutcome } from "./sync-outcome.ts";
import {
  DEFAULT_SYNC_TRIGGER,
  PUBLISH_NOW,
  type SyncRun,
  SyncTrigger,
  type SyncTriggerOptions,
} from "./sync-trigger.ts";

/**
 * A failed sync is tried again after this when the server did not say when (a conflict, a network
 * error): long enough not to spin on a persistent failure, short for a passing one.
 */
const SYNC_RETRY_MS = 2_000;

export interface AgentOptions {
  client: KubeClient;
  nodeName: string;
  kubeletRoot: string;
  appArmor: AppArmorPaths;
  version: string;
  log: Logger;
  metrics: MetricsRegistry;
  /** When to sync after a change: at once for a lone change, one sync and one PATCH for a burst. */
  syncTrigger?: SyncTriggerOptions;
  /** Re-verify the disk this often even without events (someone may delete a file by hand). */
  resyncMs?: number;
  /** Failure labels per kind on this Node (src/api/limits.ts); tests only may lower it. */
  maxFailureLabelsPerKind?: number;
}

export class NodeAgent {
  private readonly opts: Required<AgentOptions>;
  private readonly dir: SeccompDir;
  private readonly profiles: ProfileCache;
  private readonly node: Informer<V1Node>;
  /** Metadata of the not-finished pods bound to this node: their labels say which profiles they use. */
  private readonly pods: Informer<KubeObject>;
  private readonly events: EventRecorder;
  private readonly labels: NodeLabelPublisher;
  private readonly claims = new RevisionClaims();
  private readonly trigger: SyncTrigger;
  private readonly executor: Executor;
  /** Folder entries already reported as left alone, so a foreign entry is logged once, not every sync. */
  private readonly reportedEntries = new Set<string>();
  private appArmorAvailable = false;
  /** This boot's id, read at start: the record's loaded profiles count only when written in this boot. */
  private bootId = "";
  private reconciled = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastSyncError: string | undefined;
  private readonly m;

  constructor(options: AgentOptions) {
    this.opts = {
      syncTrigger: DEFAULT_SYNC_TRIGGER,
      resyncMs: 60_000,
      maxFailureLabelsPerKind: MAX_FAILURE_LABELS_PER_KIND,
      ...options,
    };
    const { client, nodeName, log } = options;
    this.trigger = new SyncTrigger((run) => this.syncOnce(run).then(() => undefined), this.opts.syncTrigger);
    this.dir = new SeccompDir(options.kubeletRoot);
    this.executor = { dir: this.dir, appArmor: options.appArmor, judge: undefined, log };
    this.events = agentEventRecorder(client, nodeName, log);
    this.labels = new NodeLabelPublisher(nodeName, (labels) =>
      client.patch<V1Node>(`/api/v1/nodes/${encodeURIComponent(nodeName)}`, "merge", {
        metadata: { labels },
      }),
    );
    const stopping = () => this.stopped;
    this.profiles = new ProfileCache(client, log, stopping);
    // Only this node: the agent has no business with any other Node object.
    this.node = new Informer<V1Node>(client, {
      path: "/api/v1/nodes",
      fieldSelector: `metadata.name=${nodeName}`,
      onError: logWatchFailures(log, "Node", stopping),
    });
    // Only pods bound here and not finished, metadata only (DESIGN invariant 6 per node): the agent
    // needs their in-use labels, nothing of their spec, and nothing of other nodes' pods.
    this.pods = new Informer<KubeObject>(client, {
      path: "/api/v1/pods",
      fieldSelector: `spec.nodeName=${nodeName},status.phase!=Succeeded,status.phase!=Failed`,
      metadataOnly: true,
      onError: logWatchFailures(log, "pods", stopping),
    });
    const m = options.metrics;
    this.m = {
      installed: m.gauge(
        "lockstep_agent_profiles_installed",
        "Profiles verified as installed on this node, by kind",
      ),
      errors: m.counter(
        "lockstep_agent_install_errors_total",
        "Profiles that could not be installed, by reason",
      ),
      lastSync: m.gauge(
        "lockstep_agent_last_sync_timestamp_seconds",
        "When the last successful sync finished",
      ),
      patches: m.counter("lockstep_agent_node_patches_total", "PATCH requests sent for this Node's labels"),
      syncs: m.counter("lockstep_agent_syncs_total", "Syncs run, by result"),
    };
  }

  /** Undefined once start-up reconciliation is done and labels match the disk; else why not. */
  notReadyReason(): string | undefined {
    return this.reconciled ? undefined : "start-up reconciliation has not finished";
  }

  /** Undefined while the last sync succeeded; a failing API server makes the agent unhealthy-but-alive. */
  lastError(): string | undefined {
    return this.lastSyncError;
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    await this.dir.ensure();
    const removed = await this.dir.removeTemporaryFiles();
    if (removed > 0) log.info({ removed }, "removed temporary files left by an earlier run");
    this.appArmorAvailable = await detectAppArmor(this.opts.appArmor);
    this.bootId = await readBootId(this.opts.appArmor);
    log.info({ appArmor: this.appArmorAvailable, dir: this.dir.path }, "starting");
    if (this.appArmorAvailable)
      this.executor.judge = await startPolicyJudge({
        ...this.executor,
        agentVersion: this.opts.version,
        onVerdict: () => this.scheduleSync(),
      });
    this.profiles.onChange(({ kind, name, specChanged }) => {
      const obj = this.profiles.get(kind, name);
      if (this.claims.delivery(kind, specChanged, obj ? profileRevision(obj) : "0")) this.scheduleSync();
    });
    for (const verb of ["add", "delete"] as const) this.node.on(verb, () => this.scheduleSync());
    this.node.on("update", (node, old) => {
      if (this.labels.changeNeedsSync(old?.metadata?.labels ?? {}, node.metadata?.labels ?? {}))
        this.scheduleSync();
    });
    const podLabels = (pod: KubeObject | undefined) => pod?.metadata?.labels;
    for (const verb of ["add", "delete"] as const)
      this.pods.on(verb, (pod) => {
        if (podLabelsChangeNeedsSync(undefined, podLabels(pod))) this.scheduleSync();
      });
    this.pods.on("update", (pod, old) => {
      if (podLabelsChangeNeedsSync(podLabels(old), podLabels(pod))) this.scheduleSync();
    });
    await Promise.all([this.profiles.start(), this.node.start(), this.pods.start()]);
    // Start-up reconciliation: temp files are gone; this sync repairs content, removes orphans and
    // labels from the disk; only after it succeeds does the agent label itself ready.
    for (let attempt = 0; !this.stopped && !(await this.syncOnce()); attempt++)
      await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 10_000)));
    this.reconciled = true;
    // Once more now that the agent may claim readiness (its version label).
    await this.syncOnce();
    this.resyncTimer = setInterval(() => this.scheduleSync(), this.opts.resyncMs);
    log.info("ready");
  }

  /** Graceful stop: lets a running sync finish (so no temporary file is left), then stops watching. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    this.executor.judge?.stop();
    await this.trigger.stop();
    await Promise.all([this.profiles.stop(), this.node.stop(), this.pods.stop()]);
  }

  private scheduleSync(): void {
    if (this.stopped || !this.reconciled) return;
    this.trigger.poke();
  }

  /** One level-triggered pass: observe, plan (pure), carry the plan out, read back, label. */
  private async syncOnce(run: SyncRun = PUBLISH_NOW): Promise<boolean> {
    const { log, nodeName } = this.opts;
    try {
      const node = this.labels.current(this.node.get(nodeName));
      if (!node) throw new Error(`Node ${nodeName} not found`);
      const observed = await this.observe(node);
      const plan = planSync(observed, this.opts.maxFailureLabelsPerKind);
      // What is about to go is marked first; if that PATCH fails, nothing is removed this sync.
      let labelled = node;
      if (plan.markBeforeRemoving.size > 0) {
        labelled = await this.labels.mark(plan.markBeforeRemoving);
        this.m.patches.inc();
        log.info(
          { labels: Object.fromEntries(plan.markBeforeRemoving) },
          "marked profiles no longer here before removing them",
        );
      }
      const failures = [...plan.failures];
      const record = await carryOut(this.executor, plan, observed.record, failures);
      // Labels follow the disk and the kernel: read both back after acting on them (when the plan
      // touched neither, they were read a moment ago, within this sync).
      const after: NodeObservation = planActsOnNode(plan)
        ? { ...observed, disk: await this.dir.observe(), kernel: await this.kernel(), record }
        : { ...observed, record };
      const cap = this.opts.maxFailureLabelsPerKind;
      const outcome = syncOutcome(after, plan, failures, cap, {
        appArmorAvailable: this.appArmorAvailable,
        reconciled: this.reconciled,
        version: this.opts.version,
      });
      for (const f of failures) this.m.errors.inc({ reason: f.reason });
      // A report explains a failure label; past the cap the rest are summed up on the Node.
      for (const f of outcome.reported)
        await reportInstallFailed(this.events, nodeName, f.profile, f.reason, f.message, log);
      await reportUnlabelledFailures(this.events, nodeName, outcome.bounded.unlabelled, cap, log);
      for (const [kind, n] of Object.entries(outcome.installed)) this.m.installed.set(n, { kind });
      const published = await this.labels.publish(labelled, outcome.desired, () => run.publishingCanWait());
      if (published.deferred) log.debug("left the label patch to the next sync");
      else {
        if (published.labels) {
          this.m.patches.inc();
          log.info({ labels: published.labels }, "patched node labels");
        }
        this.claims.published(outcome.bounded.revisions);
        this.m.lastSync.set(Date.now() / 1000);
        this.lastSyncError = undefined;
      }
      this.m.syncs.inc({ result: "ok" });
      return true;
    } catch (error) {
      this.lastSyncError = kubeErrorMessage(error);
      this.m.syncs.inc({ result: "error" });
      // A refusal for load (429/503) says when to come back; anything else is retried after the
      // agent's own pause (src/kube/retry-after.ts holds the rule).
      const retryInMs = retryDelayMs(error instanceof KubeApiError ? error : undefined, SYNC_RETRY_MS);
      log.error({ err: this.lastSyncError, retryInMs }, "sync failed; retrying");
      if (this.reconciled) setTimeout(() => this.scheduleSync(), retryInMs);
      return false;
    }
  }

  private async kernel(): Promise<ReadonlySet<string>> {
    return this.appArmorAvailable ? await loadedProfiles(this.opts.appArmor) : new Set<string>();
  }

  /**
   * The cached renderings of a kind, each with its rendering's revision as it is now (over its
   * inheritance chain: the same number the webhook requires and the controller judges with).
   */
  private withRevisions(kind: ProfileKind): RenderedProfile[] {
    const linkOf = (name: string) => {
      const obj = this.profiles.get(kind, name);
      return obj && { revision: profileRevision(obj), spec: obj.spec };
    };
    return [...this.profiles.rendered(kind).values()].map((p) => ({
      ...p,
      revision: renderingRevision(kind, p.name, linkOf),
    }));
  }

  /** Everything the planner decides from, read from the caches, the folder and the kernel. */
  private async observe(node: V1Node): Promise<NodeObservation> {
    const { log } = this.opts;
    const nodeLabels = { ...(node.metadata?.labels ?? {}) };
    nodeLabels[APPARMOR_LABEL] = this.appArmorAvailable ? "enabled" : "unavailable";
    const disk = await this.dir.observe();
    for (const [entry, why] of disk.unusable) {
      const key = `${entry}\0${why}`;
      if (this.reportedEntries.has(key)) continue;
      this.reportedEntries.add(key);
      log.warn({ dir: this.dir.path, entry, why }, "leaving alone a folder entry the agent did not write");
    }
    const record = await this.ownershipRecord(disk, nodeLabels);
    const kernel = await this.kernel();
    // From here on synchronous: the profiles and the revisions the caches were listed at are one snapshot.
    return {
      nodeLabels,
      // Rendered once per spec change, not once per sync (src/kube/profile-cache.ts); the revision is
      // the object's as it is now, which a status or metadata write may have changed.
      seccompProfiles: this.withRevisions("seccomp"),
      appArmorProfiles: this.withRevisions("apparmor"),
      appArmorAvailable: this.appArmorAvailable,
      disk,
      kernel,
      record,
      podLabels: this.pods.list().map((pod) => pod.metadata?.labels ?? {}),
      revisionFloor: this.claims.floor({
        seccomp: this.profiles.listedResourceVersion("seccomp"),
        apparmor: this.profiles.listedResourceVersion("apparmor"),
      }),
    };
  }

  /** The ownership record for this boot, stored when it changed (record-keeping.ts decides). */
  private async ownershipRecord(
    disk: NodeObservation["disk"],
    nodeLabels: Record<string, string>,
  ): Promise<OwnershipRecord> {
    const { log, nodeName } = this.opts;
    const stored = await this.dir.readRecord();
    const planned = recordToPlanFrom(
      stored,
      { disk, seccompProfiles: this.withRevisions("seccomp"), nodeLabels },
      this.bootId,
    );
    const restore = restoreRecord(stored, planned, this.bootId);
    if (restore.note) log[restore.note.level](restore.note.fields, restore.note.message);
    if (restore.setAside !== undefined) {
      const aside = await this.dir.setRecordAside(new Date());
      const { message, strays } = unreadableRecordMessage(
        this.dir.path,
        restore.setAside,
        aside,
        planned,
        disk.files.keys(),
      );
      log.error({ problem: restore.setAside, aside, strays }, message);
      await this.events.record(nodeWarning(nodeName, "OwnershipRecordUnreadable", message));
    }
    if (restore.store) await this.dir.writeRecord(restore.record);
    return restore.record;
  }
}
