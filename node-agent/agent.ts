// The node agent's loop: watch the profiles and this Node, make the disk (and the kernel's AppArmor
// list) match what belongs on this node, read back what is really there, and fix this Node's Lockstep
// labels in one PATCH. Level-triggered: every sync recomputes everything from the caches, and bursts
// of changes are coalesced into one sync (and so one PATCH).
import type { V1Node } from "@kubernetes/client-node";
import type { AppArmorMode } from "../src/api/apparmor.ts";
import { AGENT_LABEL, APPARMOR_LABEL, PROFILE_KINDS, type ProfileKind } from "../src/api/constants.ts";
import { failedLabelKey } from "../src/api/labels.ts";
import { MAX_FAILURE_LABELS_PER_KIND } from "../src/api/limits.ts";
import { maxRevision, profileRevision, renderingRevision, revisionBefore } from "../src/api/node-profiles.ts";
import type { RenderedProfile } from "../src/api/profiles.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { kubeErrorMessage } from "../src/kube/errors.ts";
import { Informer, type KubeObject } from "../src/kube/informer.ts";
import type { Logger } from "../src/kube/logger.ts";
import type { MetricsRegistry } from "../src/kube/metrics.ts";
import { logWatchFailures, ProfileCache } from "../src/kube/profile-cache.ts";
import {
  type AppArmorPaths,
  detectAppArmor,
  judgeAndCompile,
  loadCompiledProfile,
  loadedProfiles,
  type PolicyJudgement,
  removeProfile,
} from "./apparmor.ts";
import { emitInstallFailed, emitUnlabelledFailures } from "./events.ts";
import { INSTALL_FAILURE_REASONS, type InstallFailure } from "./failures.ts";
import { boundFailureLabels, desiredLockstepLabels, lockstepLabelPatch } from "./node-labels.ts";
import { type OwnershipRecord, serializeOwnershipRecord } from "./ownership-record.ts";
import {
  adoptedRecord,
  failedProfiles,
  failureLabels,
  installedProfiles,
  type NodeObservation,
  planSync,
  type SyncPlan,
  selectorSyncedLabels,
  syncedRevisions,
} from "./planner.ts";
import { SeccompDir } from "./seccomp-dir.ts";
import {
  nodeLabelsChangeNeedsSync,
  podLabelsChangeNeedsSync,
  profileChangeNeedsSync,
} from "./sync-causes.ts";
import {
  DEFAULT_SYNC_TRIGGER,
  PUBLISH_NOW,
  type SyncRun,
  SyncTrigger,
  type SyncTriggerOptions,
} from "./sync-trigger.ts";

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
  private readonly client: KubeClient;
  private readonly profiles: ProfileCache;
  private readonly node: Informer<V1Node>;
  /** Metadata of the not-finished pods bound to this node: their labels say which profiles they use. */
  private readonly pods: Informer<KubeObject>;
  /** Folder entries already reported as left alone, so a foreign entry is logged once, not every sync. */
  private readonly reportedEntries = new Set<string>();
  /** AppArmor profile name -> the version apparmor_parser refused, and why. */
  private readonly refusedAppArmor = new Map<string, { version: string; message: string }>();
  private appArmorAvailable = false;
  private reconciled = false;
  private readonly trigger: SyncTrigger;
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastSyncError: string | undefined;
  /** The revisions this run has claimed: a claim never goes back, or a pod admitted meanwhile could wait for ever. */
  private claimed: Record<ProfileKind, string> = { seccomp: "0", apparmor: "0" };
  /**
   * The highest revision any profile state delivered to the cache carried. Syncs coalesce events, so a
   * sync may never see a state between a spec write and the controller's status.revision (its own
   * resourceVersion is its revision then), but the webhook may have admitted a pod against it.
   */
  private readonly delivered: Record<ProfileKind, string> = { seccomp: "0", apparmor: "0" };
  /** The Lockstep labels the last successful sync wanted on this Node: its own PATCH's echo is no news. */
  private ownLabels: ReadonlyMap<string, string> | undefined;
  /**
   * This Node as the agent's last PATCH left it, until the watch delivers that write: a sync that runs
   * before then must not take the cache's older labels for the truth and send the same PATCH again.
   */
  private patchedNode: V1Node | undefined;
  private readonly m;

  constructor(options: AgentOptions) {
    this.opts = {
      syncTrigger: DEFAULT_SYNC_TRIGGER,
      resyncMs: 60_000,
      maxFailureLabelsPerKind: MAX_FAILURE_LABELS_PER_KIND,
      ...options,
    };
    this.trigger = new SyncTrigger(async (run) => {
      await this.syncOnce(run);
    }, this.opts.syncTrigger);
    this.dir = new SeccompDir(options.kubeletRoot);
    this.client = options.client;
    const stopping = () => this.stopped;
    this.profiles = new ProfileCache(this.client, options.log, stopping);
    // Only this node: the agent has no business with any other Node object.
    this.node = new Informer<V1Node>(this.client, {
      path: "/api/v1/nodes",
      fieldSelector: `metadata.name=${options.nodeName}`,
      onError: logWatchFailures(options.log, "Node", stopping),
    });
    // Only pods bound here and not finished, metadata only (DESIGN invariant 6 per node): the agent
    // needs their in-use labels, nothing of their spec, and nothing of other nodes' pods.
    this.pods = new Informer<KubeObject>(this.client, {
      path: "/api/v1/pods",
      fieldSelector: `spec.nodeName=${options.nodeName},status.phase!=Succeeded,status.phase!=Failed`,
      metadataOnly: true,
      onError: logWatchFailures(options.log, "pods", stopping),
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
    if (!this.reconciled) return "start-up reconciliation has not finished";
    return undefined;
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
    log.info({ appArmor: this.appArmorAvailable, dir: this.dir.path }, "starting");
    this.profiles.onChange((change) => {
      const obj = this.profiles.get(change.kind, change.name);
      const revision = obj ? profileRevision(obj) : "0";
      const needed = profileChangeNeedsSync(change.specChanged, this.delivered[change.kind], revision);
      this.delivered[change.kind] = maxRevision([this.delivered[change.kind], revision]);
      if (needed) this.scheduleSync();
    });
    for (const verb of ["add", "delete"] as const) this.node.on(verb, () => this.scheduleSync());
    this.node.on("update", (node, old) => {
      if (nodeLabelsChangeNeedsSync(old?.metadata?.labels ?? {}, node.metadata?.labels ?? {}, this.ownLabels))
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
    await this.syncUntilDone();
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
    await this.trigger.stop();
    await Promise.all([this.profiles.stop(), this.node.stop(), this.pods.stop()]);
  }

  private scheduleSync(): void {
    if (this.stopped || !this.reconciled) return;
    this.trigger.poke();
  }

  private async syncUntilDone(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      if (await this.syncOnce()) return;
      await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 10_000)));
    }
  }

  /** One level-triggered pass: observe, plan (pure), carry the plan out, read back, label. */
  private async syncOnce(run: SyncRun = PUBLISH_NOW): Promise<boolean> {
    const { log, nodeName } = this.opts;
    try {
      const node = this.currentNode();
      if (!node) throw new Error(`Node ${nodeName} not found`);
      const observed = await this.observe(node);
      const plan = planSync(observed, this.opts.maxFailureLabelsPerKind);
      // What is about to go is marked first; if that PATCH fails, nothing is removed this sync.
      const labelled = plan.markBeforeRemoving.size > 0 ? await this.markBeforeRemoving(plan) : node;
      const failures = [...plan.failures];
      const record = await this.carryOut(plan, observed.record, failures);
      // Labels follow the disk and the kernel: read both back after acting on them (when the plan
      // touched neither, they were read a moment ago, within this sync).
      const acted =
        plan.writeSeccomp.length +
          plan.removeSeccomp.length +
          plan.loadAppArmor.length +
          plan.unloadAppArmor.length >
        0;
      const after: NodeObservation = acted
        ? {
            ...observed,
            disk: await this.dir.observe(),
            kernel: this.appArmorAvailable ? await loadedProfiles(this.opts.appArmor) : new Set(),
            record,
          }
        : { ...observed, record };
      const installed = installedProfiles(after);
      const cap = this.opts.maxFailureLabelsPerKind;
      const bounded = boundFailureLabels(
        failureLabels(after, failedProfiles(after, installed, failures, plan)),
        syncedRevisions(after),
        cap,
      );
      for (const f of failures) {
        this.m.errors.inc({ reason: f.reason });
        // A report explains a failure label; past the cap the rest are summed up on the Node.
        if (bounded.failed.has(failedLabelKey(f.profile.kind, f.profile.name)))
          await emitInstallFailed(this.client, nodeName, f.profile, f.reason, f.message, log);
      }
      await emitUnlabelledFailures(this.client, nodeName, bounded.unlabelled, cap, log);
      for (const kind of ["seccomp", "apparmor"] as const)
        this.m.installed.set([...installed.keys()].filter((k) => k.startsWith(`${kind}.`)).length, { kind });

      const desired = desiredLockstepLabels({
        revisions: bounded.revisions,
        failed: bounded.failed,
        selectorSynced: selectorSyncedLabels(after),
        appArmor: this.appArmorAvailable ? "enabled" : "unavailable",
        // Before start-up reconciliation finishes the agent does not claim readiness, but it does not
        // withdraw an earlier run's claim either: a restart must not make the node flap out of status.
        agentVersion: this.reconciled ? this.opts.version : node.metadata?.labels?.[AGENT_LABEL],
      });
      const patch = lockstepLabelPatch(labelled.metadata?.labels ?? {}, desired);
      if (patch && (await run.publishingCanWait())) {
        // Part of a burst: the sync that follows at once publishes this one's work with its own.
        log.debug("left the label patch to the next sync");
        this.m.syncs.inc({ result: "ok" });
        return true;
      }
      this.ownLabels = new Map(Object.entries(desired));
      if (patch) {
        this.patchedNode = await this.client.patch<V1Node>(
          `/api/v1/nodes/${encodeURIComponent(nodeName)}`,
          "merge",
          patch,
        );
        this.m.patches.inc();
        log.info({ labels: patch.metadata.labels }, "patched node labels");
      }
      for (const kind of PROFILE_KINDS)
        this.claimed[kind] = maxRevision([this.claimed[kind], bounded.revisions[kind] ?? "0"]);
      this.m.lastSync.set(Date.now() / 1000);
      this.m.syncs.inc({ result: "ok" });
      this.lastSyncError = undefined;
      return true;
    } catch (error) {
      this.lastSyncError = kubeErrorMessage(error);
      this.m.syncs.inc({ result: "error" });
      log.error({ err: this.lastSyncError }, "sync failed; retrying");
      if (this.reconciled) setTimeout(() => this.scheduleSync(), 2_000);
      return false;
    }
  }

  /**
   * Publishes the plan's NoLongerHere marks on their own, before anything is removed or unloaded
   * (DESIGN invariant 6), and returns this Node as the PATCH left it.
   */
  private async markBeforeRemoving(plan: SyncPlan): Promise<V1Node> {
    const labels = Object.fromEntries(plan.markBeforeRemoving);
    // Its echo is no news: the sync's own PATCH will want the same marks.
    this.ownLabels = new Map([...(this.ownLabels ?? []), ...plan.markBeforeRemoving]);
    this.patchedNode = await this.client.patch<V1Node>(
      `/api/v1/nodes/${encodeURIComponent(this.opts.nodeName)}`,
      "merge",
      { metadata: { labels } },
    );
    this.m.patches.inc();
    this.opts.log.info({ labels }, "marked profiles no longer here before removing them");
    return this.patchedNode;
  }

  /** The cached Node, or what the agent's own PATCH returned while the watch has not caught up. */
  private currentNode(): V1Node | undefined {
    const cached = this.node.get(this.opts.nodeName);
    const patched = this.patchedNode;
    if (!cached || !patched) return cached;
    if (revisionBefore(cached.metadata?.resourceVersion, patched.metadata?.resourceVersion)) return patched;
    this.patchedNode = undefined;
    return cached;
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
    const stored = await this.dir.readRecord();
    if (stored.problem) log.error({ problem: stored.problem }, "replacing an unreadable ownership record");
    let record = stored.record;
    if (record === undefined) {
      record = adoptedRecord(disk);
      await this.dir.writeRecord(record);
      log.info(
        { seccomp: record.seccomp },
        "started an ownership record, adopting the profile files present",
      );
    }
    const kernel = this.appArmorAvailable ? await loadedProfiles(this.opts.appArmor) : new Set<string>();
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
      revisionFloor: {
        seccomp: maxRevision([
          this.claimed.seccomp,
          this.delivered.seccomp,
          this.profiles.listedResourceVersion("seccomp"),
        ]),
        apparmor: maxRevision([
          this.claimed.apparmor,
          this.delivered.apparmor,
          this.profiles.listedResourceVersion("apparmor"),
        ]),
      },
    };
  }

  /**
   * The executor: carries the plan out and returns the ownership record as it now stands. A name is
   * claimed in the record before the file is written or the profile loaded, and released only after
   * it is removed or unloaded: a crash at any point leaves the agent owning at most something that is
   * gone (forgotten on the next sync), never something of its own it would take for someone else's.
   */
  private async carryOut(
    plan: SyncPlan,
    before: OwnershipRecord,
    failures: InstallFailure[],
  ): Promise<OwnershipRecord> {
    const { log } = this.opts;
    const paths = this.opts.appArmor;
    const record: OwnershipRecord = {
      seccomp: [...new Set([...before.seccomp, ...plan.writeSeccomp.map((w) => w.profile.name)])],
      appArmor: { ...before.appArmor },
    };
    for (const { profile } of plan.loadAppArmor) record.appArmor[profile.name] = null;
    await this.saveRecord(before, record);
    const claimed = structuredClone(record);

    for (const { profile, content } of plan.writeSeccomp) {
      try {
        await this.dir.write(profile.name, content);
        log.info({ kind: "SeccompProfile", name: profile.name, version: profile.version }, "wrote profile");
      } catch (error) {
        failures.push({
          profile,
          reason: INSTALL_FAILURE_REASONS.writeFailed,
          message: `writing the profile file: ${kubeErrorMessage(error)}`,
        });
      }
    }
    for (const { profile, text, mode } of plan.loadAppArmor) {
      const judged = await this.judge(profile.name, profile.version, text, mode);
      if (!judged.ok) {
        // Refused before anything reached the kernel: what was loaded (if anything) stays, and so does
        // its record entry.
        if (Object.hasOwn(before.appArmor, profile.name))
          record.appArmor[profile.name] = before.appArmor[profile.name] ?? null;
        else delete record.appArmor[profile.name];
        failures.push({ profile, reason: INSTALL_FAILURE_REASONS.policyRefused, message: judged.message });
        continue;
      }
      try {
        await loadCompiledProfile(paths, judged.compiled);
        record.appArmor[profile.name] = profile.version;
        log.info({ kind: "AppArmorProfile", name: profile.name, version: profile.version }, "loaded profile");
      } catch (error) {
        failures.push({
          profile,
          reason: INSTALL_FAILURE_REASONS.loadFailed,
          message: `apparmor_parser: ${kubeErrorMessage(error)}`,
        });
      }
    }
    for (const name of plan.removeSeccomp) {
      try {
        await this.dir.remove(name);
        record.seccomp = record.seccomp.filter((n) => n !== name);
        log.info({ kind: "SeccompProfile", name }, "removed profile file");
      } catch (error) {
        log.warn(
          { kind: "SeccompProfile", name, err: kubeErrorMessage(error) },
          "could not remove profile file",
        );
      }
    }
    for (const name of plan.unloadAppArmor) {
      try {
        await removeProfile(paths, name);
        delete record.appArmor[name];
        log.info({ kind: "AppArmorProfile", name }, "unloaded profile");
      } catch (error) {
        log.warn({ kind: "AppArmorProfile", name, err: kubeErrorMessage(error) }, "could not unload profile");
      }
    }
    record.seccomp = record.seccomp.filter((n) => !plan.forgetSeccomp.includes(n));
    for (const name of plan.forgetAppArmor) delete record.appArmor[name];
    for (const { kind, name } of plan.keptInUse)
      log.debug({ kind, name }, "kept: a pod bound to this node still uses it");
    for (const { kind, name } of plan.keptForRoom)
      log.debug({ kind, name }, "kept: no room for its NoLongerHere mark yet");
    await this.saveRecord(claimed, record);
    return record;
  }

  /**
   * apparmor_parser's verdict on one version of a profile. A refusal is remembered for that version:
   * a refused profile stays planned for loading on every sync, and the parser need not run again
   * until the object changes.
   */
  private async judge(
    name: string,
    version: string,
    text: string,
    mode: AppArmorMode,
  ): Promise<PolicyJudgement> {
    const refused = this.refusedAppArmor.get(name);
    if (refused?.version === version) return { ok: false, message: refused.message };
    const judged = await judgeAndCompile(this.opts.appArmor, text, { name, mode });
    if (judged.ok) this.refusedAppArmor.delete(name);
    else this.refusedAppArmor.set(name, { version, message: judged.message });
    return judged;
  }

  private async saveRecord(current: OwnershipRecord, next: OwnershipRecord): Promise<void> {
    if (serializeOwnershipRecord(current) !== serializeOwnershipRecord(next))
      await this.dir.writeRecord(next);
  }
}
