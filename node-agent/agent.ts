// The node agent's loop: watch the profiles and this Node, make the disk (and the kernel's AppArmor
// list) match what belongs on this node, read back what is really there, and fix this Node's Lockstep
// labels in one PATCH. Level-triggered: every sync recomputes everything from the caches, and bursts
// of changes are coalesced into one sync (and so one PATCH). Wiring only; the decisions live beside it:
// node-observer.ts (what a sync reads), planner.ts (what to write, remove, load, unload), executor.ts
// (carrying that out), sync-outcome.ts (what the labels say), label-publisher.ts (the PATCH, own
// writes, deferral within a burst), revision-claims.ts, sync-causes.ts and sync-trigger.ts (when to
// sync), agent-lifecycle.ts (readiness, health and the retry timers). Everything an agent holds is its
// own: several agents (each with its node name, kubelet root, client and watches) can run in one
// process, as the scale benchmark runs them.
import type { V1Node } from "@kubernetes/client-node";
import { MAX_FAILURE_LABELS_PER_KIND } from "../src/api/limits.ts";
import { KubeApiError, type KubeClient } from "../src/kube/client.ts";
import { kubeErrorMessage } from "../src/kube/errors.ts";
import type { EventRecorder } from "../src/kube/event-recorder.ts";
import type { Logger } from "../src/kube/logger.ts";
import type { MetricsRegistry } from "../src/kube/metrics.ts";
import { AgentLifecycle, DEFAULT_RESYNC_MS, startupRetryDelayMs } from "./agent-lifecycle.ts";
import { type AgentMetrics, agentMetrics } from "./agent-metrics.ts";
import type { AppArmorPaths } from "./apparmor.ts";
import { agentEventRecorder, reportInstallFailed, reportUnlabelledFailures } from "./events.ts";
import { carryOut, type Executor, startPolicyJudge } from "./executor.ts";
import { NodeLabelPublisher } from "./label-publisher.ts";
import { NodeObserver } from "./node-observer.ts";
import { planSync } from "./planner.ts";
import { podRecordingFrom, RecordingReporter } from "./recording-reporter.ts";
import { RevisionClaims } from "./revision-claims.ts";
import { SeccompDir } from "./seccomp-dir.ts";
import { syncOutcome } from "./sync-outcome.ts";
import {
  DEFAULT_SYNC_TRIGGER,
  PUBLISH_NOW,
  type SyncRun,
  SyncTrigger,
  type SyncTriggerOptions,
} from "./sync-trigger.ts";
import { type AgentWatches, agentWatches, startWatches, stopWatches, wakeOnChanges } from "./watches.ts";

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
  /** The audit path (call-reports.ts NodeAudit): told after each sync what is installed and which pods run here. */
  audit?:
    | {
        follow(installedSeccomp: Iterable<string>, livePods: ReadonlySet<string>): void;
        stop(): Promise<void>;
      }
    | undefined;
}

export class NodeAgent {
  private readonly opts: Required<Omit<AgentOptions, "audit">>;
  private readonly audit: AgentOptions["audit"];
  private readonly dir: SeccompDir;
  private readonly watches: AgentWatches;
  /** Reports recorded pods' calls into their ProfileRecording (ADR 0039); the audit collector feeds it. */
  readonly recordings: RecordingReporter;
  private readonly events: EventRecorder;
  private readonly labels: NodeLabelPublisher;
  private readonly claims = new RevisionClaims();
  private readonly observer: NodeObserver;
  private readonly trigger: SyncTrigger;
  private readonly executor: Executor;
  private readonly life = new AgentLifecycle();
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly m: AgentMetrics;

  constructor(options: AgentOptions) {
    this.opts = {
      syncTrigger: DEFAULT_SYNC_TRIGGER,
      resyncMs: DEFAULT_RESYNC_MS,
      maxFailureLabelsPerKind: MAX_FAILURE_LABELS_PER_KIND,
      ...options,
    };
    this.audit = options.audit;
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
    this.watches = agentWatches(client, nodeName, log, () => this.life.stopped);
    const { profiles, pods } = this.watches;
    const { dir, claims, events } = this;
    this.observer = new NodeObserver({
      nodeName,
      log,
      appArmor: options.appArmor,
      dir,
      profiles,
      pods,
      claims,
      events,
    });
    this.recordings = new RecordingReporter({
      client,
      nodeName,
      log,
      podRecording: podRecordingFrom((name, namespace) => pods.get(name, namespace)),
    });
    // A recorder profile came or went: which recordings this node reports for.
    profiles.onChange(({ kind, name }) => {
      if (kind === "seccomp") this.recordings.noteSeccompProfile(name, profiles.get(kind, name));
    });
    this.m = agentMetrics(options.metrics);
  }

  /** Undefined once start-up reconciliation is done and labels match the disk; else why not. */
  notReadyReason(): string | undefined {
    return this.life.notReadyReason();
  }

  /** Undefined while the last sync succeeded; a failing API server makes the agent unhealthy-but-alive. */
  lastError(): string | undefined {
    return this.life.lastError();
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    await this.dir.ensure();
    const removed = await this.dir.removeTemporaryFiles();
    if (removed > 0) log.info({ removed }, "removed temporary files left by an earlier run");
    await this.observer.detect();
    const { appArmorAvailable } = this.observer;
    log.info({ appArmor: appArmorAvailable, dir: this.dir.path }, "starting");
    if (appArmorAvailable)
      this.executor.judge = await startPolicyJudge({
        ...this.executor,
        agentVersion: this.opts.version,
        onVerdict: () => this.scheduleSync(),
      });
    wakeOnChanges(this.watches, { claims: this.claims, labels: this.labels }, () => this.scheduleSync());
    await startWatches(this.watches);
    // Start-up reconciliation: temp files are gone; this sync repairs content, removes orphans and
    // labels from the disk; only after it succeeds does the agent label itself ready.
    for (let attempt = 0; !this.life.stopped && !(await this.syncOnce()); attempt++)
      await new Promise((r) => setTimeout(r, startupRetryDelayMs(attempt)));
    this.life.reconcile();
    // Once more now that the agent may claim readiness (its version label).
    await this.syncOnce();
    this.resyncTimer = setInterval(() => this.scheduleSync(), this.opts.resyncMs);
    log.info("ready");
  }

  /** Graceful stop: lets a running sync finish (so no temporary file is left), then stops watching. */
  async stop(): Promise<void> {
    this.life.stop();
    clearInterval(this.resyncTimer);
    this.executor.judge?.stop();
    await this.trigger.stop();
    await Promise.all([stopWatches(this.watches), this.recordings.stop(), this.audit?.stop()]);
  }

  private scheduleSync(): void {
    if (this.life.takesSyncRequests()) this.trigger.poke();
  }

  /** One level-triggered pass: observe, plan (pure), carry the plan out, read back, label. */
  private async syncOnce(run: SyncRun = PUBLISH_NOW): Promise<boolean> {
    const { log, nodeName, maxFailureLabelsPerKind: cap } = this.opts;
    try {
      const node = this.labels.current(this.watches.node.get(nodeName));
      if (!node) throw new Error(`Node ${nodeName} not found`);
      const observed = await this.observer.observe(node);
      const plan = planSync(observed, cap);
      // What is about to go is marked first; if that PATCH fails, nothing is removed this sync.
      let labelled = node;
      if (plan.markBeforeRemoving.size > 0) {
        labelled = await this.labels.mark(plan.markBeforeRemoving);
        this.m.patches.inc();
        const labels = Object.fromEntries(plan.markBeforeRemoving);
        log.info({ labels }, "marked profiles no longer here before removing them");
      }
      const failures = [...plan.failures];
      const record = await carryOut(this.executor, plan, observed.record, failures);
      const after = await this.observer.readBack(observed, plan, record);
      const outcome = syncOutcome(after, plan, failures, cap, {
        appArmorAvailable: this.observer.appArmorAvailable,
        reconciled: this.life.reconciled,
        version: this.opts.version,
      });
      for (const f of failures) this.m.errors.inc({ reason: f.reason });
      // A report explains a failure label; past the cap the rest are summed up on the Node.
      for (const f of outcome.reported)
        await reportInstallFailed(this.events, nodeName, f.profile, f.reason, f.message, log);
      await reportUnlabelledFailures(this.events, nodeName, outcome.bounded.unlabelled, cap, log);
      for (const [kind, n] of Object.entries(outcome.installed)) this.m.installed.set(n, { kind });
      const livePods = new Set(this.watches.pods.list().map((pod) => pod.metadata?.uid ?? ""));
      this.audit?.follow(after.disk.files.values(), livePods);
      const published = await this.labels.publish(labelled, outcome.desired, () => run.publishingCanWait());
      if (published.deferred) log.debug("left the label patch to the next sync");
      else {
        if (published.labels) {
          this.m.patches.inc();
          log.info({ labels: published.labels }, "patched node labels");
        }
        this.claims.published(outcome.bounded.revisions);
        this.m.lastSync.set(Date.now() / 1000);
        this.life.syncPublished();
      }
      this.m.syncs.inc({ result: "ok" });
      return true;
    } catch (error) {
      const err = kubeErrorMessage(error);
      // A refusal for load (429/503) says when to come back (src/kube/retry-after.ts).
      const retryInMs = this.life.syncFailed(err, error instanceof KubeApiError ? error : undefined);
      this.m.syncs.inc({ result: "error" });
      log.error({ err, retryInMs }, "sync failed; retrying");
      if (retryInMs !== undefined) setTimeout(() => this.scheduleSync(), retryInMs);
      return false;
    }
  }
}
