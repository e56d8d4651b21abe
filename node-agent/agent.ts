// The node agent's loop: watch the profiles and this Node, make the disk (and the kernel's AppArmor
// list) match what belongs on this node, read back what is really there, and fix this Node's Lockstep
// labels in one PATCH. Level-triggered: every sync recomputes everything from the caches, and bursts
// of changes are coalesced into one sync (and so one PATCH).
import type { V1Node } from "@kubernetes/client-node";
import {
  AGENT_LABEL,
  APPARMOR_LABEL,
  APPARMOR_PROFILE_PLURAL,
  GROUP,
  SECCOMP_PROFILE_PLURAL,
  VERSION,
} from "../src/api/constants.ts";
import {
  type ProfileObjectRef,
  profileBelongsOnNode,
  type RenderedProfile,
  renderAppArmorProfiles,
  renderSeccompProfiles,
} from "../src/api/profiles.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { kubeErrorMessage } from "../src/kube/errors.ts";
import { Informer, type KubeObject } from "../src/kube/informer.ts";
import type { Logger } from "../src/kube/logger.ts";
import type { MetricsRegistry } from "../src/kube/metrics.ts";
import {
  type AppArmorPaths,
  detectAppArmor,
  loadedProfiles,
  loadProfile,
  removeProfile,
} from "./apparmor.ts";
import { emitInstallFailed } from "./events.ts";
import { desiredLockstepLabels, lockstepLabelPatch } from "./node-labels.ts";
import { SeccompDir } from "./seccomp-dir.ts";
import { DEFAULT_SYNC_TRIGGER, SyncTrigger, type SyncTriggerOptions } from "./sync-trigger.ts";

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
}

interface Failure {
  profile: RenderedProfile;
  reason: string;
  message: string;
}

type ProfileObject = KubeObject & { spec?: unknown };

export class NodeAgent {
  private readonly opts: Required<AgentOptions>;
  private readonly dir: SeccompDir;
  private readonly client: KubeClient;
  private readonly seccompProfiles: Informer<ProfileObject>;
  private readonly appArmorProfiles: Informer<ProfileObject>;
  private readonly node: Informer<V1Node>;
  /** AppArmor profiles this process loaded: name -> version. The kernel does not remember versions. */
  private readonly loadedAppArmor = new Map<string, string>();
  private appArmorAvailable = false;
  private reconciled = false;
  private readonly trigger: SyncTrigger;
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastSyncError: string | undefined;
  private readonly m;

  constructor(options: AgentOptions) {
    this.opts = { syncTrigger: DEFAULT_SYNC_TRIGGER, resyncMs: 60_000, ...options };
    this.trigger = new SyncTrigger(async () => {
      await this.syncOnce();
    }, this.opts.syncTrigger);
    this.dir = new SeccompDir(options.kubeletRoot);
    this.client = options.client;
    const onError = (what: string) => (error: unknown, retryInMs: number) => {
      if (!this.stopped)
        options.log.warn(
          { watch: what, err: kubeErrorMessage(error), retryInMs },
          "watch failed; restarting",
        );
    };
    const profileWatch = (plural: string) =>
      new Informer<ProfileObject>(this.client, {
        path: `/apis/${GROUP}/${VERSION}/${plural}`,
        onError: onError(plural),
      });
    this.seccompProfiles = profileWatch(SECCOMP_PROFILE_PLURAL);
    this.appArmorProfiles = profileWatch(APPARMOR_PROFILE_PLURAL);
    // Only this node: the agent has no business with any other Node object.
    this.node = new Informer<V1Node>(this.client, {
      path: "/api/v1/nodes",
      fieldSelector: `metadata.name=${options.nodeName}`,
      onError: onError("Node"),
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
    const informers = {
      seccompProfiles: this.seccompProfiles,
      appArmorProfiles: this.appArmorProfiles,
      node: this.node,
    };
    for (const informer of Object.values(informers))
      for (const verb of ["add", "update", "delete"] as const) informer.on(verb, () => this.scheduleSync());
    await Promise.all([this.seccompProfiles.start(), this.appArmorProfiles.start(), this.node.start()]);
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
    await Promise.all([this.seccompProfiles.stop(), this.appArmorProfiles.stop(), this.node.stop()]);
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

  /** One level-triggered pass. Returns whether it succeeded; failures are logged and retried. */
  private async syncOnce(): Promise<boolean> {
    const { log, nodeName } = this.opts;
    try {
      const node = this.node.get(nodeName);
      if (!node) throw new Error(`Node ${nodeName} not found`);
      const labels = { ...(node.metadata?.labels ?? {}) };
      labels[APPARMOR_LABEL] = this.appArmorAvailable ? "enabled" : "unavailable";
      const arch = labels["kubernetes.io/arch"];
      const refs = (informer: Informer<ProfileObject>): ProfileObjectRef[] =>
        informer.list().map((o) => ({ name: o.metadata?.name ?? "", uid: o.metadata?.uid, spec: o.spec }));

      const failures: Failure[] = [];
      const installed = new Map<string, string>();
      const seccomp = renderSeccompProfiles(refs(this.seccompProfiles)).filter((p) =>
        profileBelongsOnNode(p, labels),
      );
      await this.syncSeccomp(seccomp, arch, installed, failures);
      if (this.appArmorAvailable) {
        const appArmor = renderAppArmorProfiles(refs(this.appArmorProfiles)).filter((p) =>
          profileBelongsOnNode(p, labels),
        );
        await this.syncAppArmor(appArmor, installed, failures);
      }
      for (const f of failures) {
        this.m.errors.inc({ reason: f.reason });
        await emitInstallFailed(this.client, nodeName, f.profile, f.reason, f.message, log);
      }
      this.m.installed.set([...installed.keys()].filter((k) => k.startsWith("seccomp.")).length, {
        kind: "seccomp",
      });
      this.m.installed.set([...installed.keys()].filter((k) => k.startsWith("apparmor.")).length, {
        kind: "apparmor",
      });

      const desired = desiredLockstepLabels({
        installed,
        appArmor: this.appArmorAvailable ? "enabled" : "unavailable",
        // Before start-up reconciliation finishes the agent does not claim readiness, but it does not
        // withdraw an earlier run's claim either: a restart must not make the node flap out of status.
        agentVersion: this.reconciled ? this.opts.version : node.metadata?.labels?.[AGENT_LABEL],
      });
      const patch = lockstepLabelPatch(node.metadata?.labels ?? {}, desired);
      if (patch) {
        await this.client.patch(`/api/v1/nodes/${encodeURIComponent(nodeName)}`, "merge", patch);
        this.m.patches.inc();
        log.info({ labels: patch.metadata.labels }, "patched node labels");
      }
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

  private async syncSeccomp(
    profiles: RenderedProfile[],
    arch: string | undefined,
    installed: Map<string, string>,
    failures: Failure[],
  ): Promise<void> {
    const onDisk = await this.dir.readAll();
    const wanted = new Map<string, string>();
    for (const profile of profiles) {
      if (!profile.ok) {
        failures.push({ profile, reason: profile.reason, message: profile.message });
        continue;
      }
      const content = profile.contentFor(arch);
      wanted.set(profile.name, content);
      if (onDisk.get(profile.name) === content) continue;
      try {
        await this.dir.write(profile.name, content);
        this.opts.log.info(
          { kind: "SeccompProfile", name: profile.name, version: profile.version },
          "wrote profile",
        );
      } catch (error) {
        failures.push({
          profile,
          reason: "WriteFailed",
          message: `writing the profile file: ${kubeErrorMessage(error)}`,
        });
      }
    }
    // Remove files of profiles that are gone or no longer belong here. A profile that exists but
    // cannot be rendered keeps its last good file: bad input must not take a working profile away.
    const keep = new Set(profiles.map((p) => p.name));
    for (const name of onDisk.keys()) {
      if (keep.has(name)) continue;
      await this.dir.remove(name);
      this.opts.log.info({ kind: "SeccompProfile", name }, "removed profile file");
    }
    // Labels follow the disk: read it back and label only what holds the current content.
    const after = await this.dir.readAll();
    for (const profile of profiles)
      if (profile.ok && after.get(profile.name) === wanted.get(profile.name))
        installed.set(profile.labelKey, profile.version);
  }

  private async syncAppArmor(
    profiles: RenderedProfile[],
    installed: Map<string, string>,
    failures: Failure[],
  ): Promise<void> {
    const paths = this.opts.appArmor;
    const wanted = new Set<string>();
    for (const profile of profiles) {
      wanted.add(profile.name);
      if (!profile.ok) {
        failures.push({ profile, reason: profile.reason, message: profile.message });
        continue;
      }
      if (this.loadedAppArmor.get(profile.name) === profile.version) continue;
      try {
        await loadProfile(paths, profile.contentFor(undefined));
        this.loadedAppArmor.set(profile.name, profile.version);
        this.opts.log.info(
          { kind: "AppArmorProfile", name: profile.name, version: profile.version },
          "loaded profile",
        );
      } catch (error) {
        this.loadedAppArmor.delete(profile.name);
        failures.push({
          profile,
          reason: "LoadFailed",
          message: `apparmor_parser: ${kubeErrorMessage(error)}`,
        });
      }
    }
    for (const name of [...this.loadedAppArmor.keys()]) {
      if (wanted.has(name)) continue;
      try {
        await removeProfile(paths, name);
        this.loadedAppArmor.delete(name);
        this.opts.log.info({ kind: "AppArmorProfile", name }, "unloaded profile");
      } catch (error) {
        this.opts.log.warn(
          { kind: "AppArmorProfile", name, err: kubeErrorMessage(error) },
          "could not unload profile",
        );
      }
    }
    const inKernel = await loadedProfiles(paths);
    for (const profile of profiles)
      if (
        profile.ok &&
        inKernel.has(profile.name) &&
        this.loadedAppArmor.get(profile.name) === profile.version
      )
        installed.set(profile.labelKey, profile.version);
  }
}
