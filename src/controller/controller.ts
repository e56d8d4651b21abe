// The profile controller: level-triggered reconcile(kind/name) that reads profiles, Node metadata and
// the agents' InstallFailed Events from watch caches, and writes only the difference: the in-use
// finalizer and the status subresource. Any change enqueues every profile of the affected kind
// (inheritance makes a base's change everyone's change); the queue coalesces duplicates.
import * as k8s from "@kubernetes/client-node";
import type { ProfileStatus } from "../api/common.ts";
import {
  APPARMOR_PROFILE_PLURAL,
  GROUP,
  IN_USE_FINALIZER,
  OBJECT_KIND,
  PROFILE_KINDS,
  type ProfileKind,
  SECCOMP_PROFILE_PLURAL,
  VERSION,
} from "../api/constants.ts";
import { profileLabelKey } from "../api/labels.ts";
import { type RenderedProfile, renderAppArmorProfiles, renderSeccompProfiles } from "../api/profiles.ts";
import { isKubeError, kubeErrorMessage } from "../kube/errors.ts";
import { keepWatching } from "../kube/informers.ts";
import type { Logger } from "../kube/logger.ts";
import type { MetricsRegistry } from "../kube/metrics.ts";
import { computeStatus, type InstallFailure, type NodeView, statusDiffers } from "./status.ts";

const PLURAL: Record<ProfileKind, string> = {
  seccomp: SECCOMP_PROFILE_PLURAL,
  apparmor: APPARMOR_PROFILE_PLURAL,
};
const EVENT_NAMESPACE = "default";
/** A Terminating profile still in use is checked again this often (pods are not watched: see ADR 0011). */
const IN_USE_RECHECK_MS = 3_000;

type ProfileObject = k8s.KubernetesObject & { spec?: unknown; status?: ProfileStatus };

/**
 * A KubeConfig that asks for PartialObjectMetadata: the Node watch then carries names and labels only,
 * not each Node's status (images, conditions, addresses), which is most of its size.
 */
class MetadataOnlyKubeConfig extends k8s.KubeConfig {
  override async applySecurityAuthentication(context: k8s.RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    // A watch streams single objects, a list answers with one list: each wants its own media type.
    const as = context.getUrl().includes("watch=true")
      ? "PartialObjectMetadata"
      : "PartialObjectMetadataList";
    context.setHeaderParam("Accept", `application/json;as=${as};g=meta.k8s.io;v=v1,application/json`);
  }
}

export interface ControllerOptions {
  kubeConfig: k8s.KubeConfig;
  log: Logger;
  metrics: MetricsRegistry;
}

export class ProfileController {
  private readonly opts: ControllerOptions;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly profiles: Record<ProfileKind, k8s.ListWatch<ProfileObject>>;
  private readonly nodes: k8s.ListWatch<k8s.KubernetesObject>;
  private readonly events: k8s.ListWatch<k8s.CoreV1Event>;
  private readonly queue = new Set<string>();
  private draining: Promise<void> | undefined;
  private stopped = false;
  private synced = false;
  private readonly m;

  constructor(opts: ControllerOptions) {
    this.opts = opts;
    const kc = opts.kubeConfig;
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    const watch = new k8s.Watch(kc);
    const profileInformer = (kind: ProfileKind) =>
      new k8s.ListWatch<ProfileObject>(
        `/apis/${GROUP}/${VERSION}/${PLURAL[kind]}`,
        watch,
        () => this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL[kind] }),
        false,
      );
    this.profiles = { seccomp: profileInformer("seccomp"), apparmor: profileInformer("apparmor") };

    const metadataConfig = new MetadataOnlyKubeConfig();
    metadataConfig.loadFromString(kc.exportConfig());
    const metadataCore = metadataConfig.makeApiClient(k8s.CoreV1Api);
    this.nodes = new k8s.ListWatch<k8s.KubernetesObject>(
      "/api/v1/nodes",
      new k8s.Watch(metadataConfig),
      () => metadataCore.listNode() as unknown as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>,
      false,
    );
    const failedSelector = "reason=InstallFailed";
    this.events = new k8s.ListWatch<k8s.CoreV1Event>(
      `/api/v1/namespaces/${EVENT_NAMESPACE}/events`,
      watch,
      () => this.core.listNamespacedEvent({ namespace: EVENT_NAMESPACE, fieldSelector: failedSelector }),
      false,
      undefined,
      failedSelector,
    );
    const m = opts.metrics;
    this.m = {
      reconciles: m.counter("lockstep_controller_reconciles_total", "Reconciles run, by kind and result"),
      errors: m.counter("lockstep_controller_reconcile_errors_total", "Reconciles that failed, by kind"),
      phases: m.gauge("lockstep_controller_profiles", "Profiles by kind and phase"),
    };
  }

  notReadyReason(): string | undefined {
    return this.synced ? undefined : "caches not synced";
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    for (const kind of PROFILE_KINDS) {
      const informer = this.profiles[kind];
      for (const verb of ["add", "update", "delete"] as const)
        informer.on(verb, () => this.enqueueKind(kind));
      keepWatching(
        informer as k8s.Informer<k8s.KubernetesObject>,
        `${kind} profiles`,
        log,
        () => this.stopped,
      );
    }
    for (const verb of ["add", "update", "delete"] as const) this.nodes.on(verb, () => this.enqueueAll());
    keepWatching(this.nodes as k8s.Informer<k8s.KubernetesObject>, "nodes", log, () => this.stopped);
    for (const verb of ["add", "update"] as const)
      this.events.on(verb, (e) => {
        const kind = PROFILE_KINDS.find((k) => OBJECT_KIND[k] === e.involvedObject.kind);
        if (kind && e.involvedObject.name) this.enqueue(kind, e.involvedObject.name);
      });
    keepWatching(this.events as k8s.Informer<k8s.KubernetesObject>, "events", log, () => this.stopped);
    await Promise.all([
      this.profiles.seccomp.start(),
      this.profiles.apparmor.start(),
      this.nodes.start(),
      this.events.start(),
    ]);
    this.synced = true;
    this.enqueueAll();
    log.info("caches synced; reconciling");
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.draining;
    await Promise.all([
      this.profiles.seccomp.stop(),
      this.profiles.apparmor.stop(),
      this.nodes.stop(),
      this.events.stop(),
    ]);
  }

  private enqueueAll(): void {
    for (const kind of PROFILE_KINDS) this.enqueueKind(kind);
  }

  private enqueueKind(kind: ProfileKind): void {
    for (const p of this.profiles[kind].list()) this.enqueue(kind, p.metadata?.name ?? "");
  }

  private enqueue(kind: ProfileKind, name: string): void {
    if (this.stopped || !this.synced || name === "") return;
    this.queue.add(`${kind}/${name}`);
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
  }

  private async drain(): Promise<void> {
    // Yield once so a burst of events lands in the queue before the first reconcile.
    await new Promise((r) => setTimeout(r, 20));
    while (this.queue.size > 0 && !this.stopped) {
      const key = this.queue.values().next().value as string;
      this.queue.delete(key);
      const [kind, name] = key.split("/", 2) as [ProfileKind, string];
      try {
        await this.reconcile(kind, name);
        this.m.reconciles.inc({ kind, result: "ok" });
      } catch (error) {
        this.m.reconciles.inc({ kind, result: "error" });
        this.m.errors.inc({ kind });
        this.opts.log.error(
          { kind: OBJECT_KIND[kind], name, err: kubeErrorMessage(error) },
          "reconcile failed; retrying",
        );
        setTimeout(() => this.enqueue(kind, name), 1_000);
      }
    }
    this.recountPhases();
  }

  private recountPhases(): void {
    this.m.phases.reset();
    for (const kind of PROFILE_KINDS) {
      const counts = new Map<string, number>();
      for (const p of this.profiles[kind].list()) {
        const phase = p.status?.phase ?? "Pending";
        counts.set(phase, (counts.get(phase) ?? 0) + 1);
      }
      for (const [phase, n] of counts) this.m.phases.set(n, { kind, phase });
    }
  }

  /** Level-triggered: the same inputs always produce the same writes, whatever event caused the call. */
  private async reconcile(kind: ProfileKind, name: string): Promise<void> {
    const obj = this.profiles[kind].get(name);
    if (!obj) return;
    const log = this.opts.log.child({ kind: OBJECT_KIND[kind], name });
    const deleting = obj.metadata?.deletionTimestamp !== undefined;
    const finalizers = obj.metadata?.finalizers ?? [];

    if (deleting) {
      if (finalizers.includes(IN_USE_FINALIZER)) {
        const inUse = await this.podsUsing(kind, name);
        if (inUse.length > 0) {
          log.debug({ pods: inUse }, "in use; keeping the profile");
          setTimeout(() => this.enqueue(kind, name), IN_USE_RECHECK_MS);
        } else {
          await this.setFinalizers(
            kind,
            obj,
            finalizers.filter((f) => f !== IN_USE_FINALIZER),
          );
          log.info("no pod uses the profile any more; released it for deletion");
          return;
        }
      }
    } else if (!finalizers.includes(IN_USE_FINALIZER)) {
      await this.setFinalizers(kind, obj, [...finalizers, IN_USE_FINALIZER]);
    }

    const rendered = this.render(kind).find((p) => p.name === name);
    if (!rendered) return;
    const next = computeStatus({
      profile: rendered,
      generation: obj.metadata?.generation,
      deleting,
      nodes: this.nodeViews(),
      failures: this.failuresFor(kind, name),
      previous: obj.status,
      now: new Date(),
    });
    if (!statusDiffers(obj.status, next)) return;
    await this.custom.patchClusterCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: PLURAL[kind], name, body: { status: next } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    if (next.phase !== obj.status?.phase) {
      log.info({ phase: next.phase, ready: next.ready }, "status changed");
      if (next.phase === "Invalid" || next.phase === "Installed" || next.phase === "Degraded")
        await this.recordEvent(kind, obj, next);
    }
  }

  private render(kind: ProfileKind): RenderedProfile[] {
    const refs = this.profiles[kind]
      .list()
      .map((o) => ({ name: o.metadata?.name ?? "", uid: o.metadata?.uid, spec: o.spec }));
    return kind === "seccomp" ? renderSeccompProfiles(refs) : renderAppArmorProfiles(refs);
  }

  private nodeViews(): NodeView[] {
    return this.nodes.list().map((n) => ({ name: n.metadata?.name ?? "", labels: n.metadata?.labels ?? {} }));
  }

  private failuresFor(kind: ProfileKind, name: string): Map<string, InstallFailure> {
    const latest = new Map<string, { at: number; failure: InstallFailure }>();
    for (const e of this.events.list()) {
      if (e.involvedObject.kind !== OBJECT_KIND[kind] || e.involvedObject.name !== name) continue;
      const node = e.source?.host ?? e.metadata?.annotations?.["lockstep.dev/node"];
      if (!node) continue;
      const at = new Date(e.lastTimestamp ?? e.metadata?.creationTimestamp ?? 0).getTime();
      if ((latest.get(node)?.at ?? -1) > at) continue;
      const message = (e.message ?? "").replace(/^node [^:]+: /, "");
      latest.set(node, {
        at,
        failure: { version: e.metadata?.annotations?.["lockstep.dev/version"] ?? "", message },
      });
    }
    return new Map([...latest].map(([node, { failure }]) => [node, failure]));
  }

  private async podsUsing(kind: ProfileKind, name: string): Promise<string[]> {
    const pods = await this.core.listPodForAllNamespaces({
      labelSelector: profileLabelKey(kind, name),
      limit: 5,
    });
    return pods.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`);
  }

  private async setFinalizers(kind: ProfileKind, obj: ProfileObject, finalizers: string[]): Promise<void> {
    try {
      await this.custom.patchClusterCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: PLURAL[kind],
          name: obj.metadata?.name ?? "",
          // resourceVersion makes the patch conditional: a concurrent change to finalizers is not overwritten.
          body: { metadata: { finalizers, resourceVersion: obj.metadata?.resourceVersion } },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    } catch (error) {
      if (isKubeError(error, 404)) return;
      throw error;
    }
  }

  private async recordEvent(kind: ProfileKind, obj: ProfileObject, status: ProfileStatus): Promise<void> {
    const ready = status.conditions?.find((c) => c.type === "Ready");
    const now = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace: EVENT_NAMESPACE,
        body: {
          metadata: { generateName: `${(obj.metadata?.name ?? "").slice(0, 200)}.` },
          involvedObject: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: OBJECT_KIND[kind],
            name: obj.metadata?.name,
            uid: obj.metadata?.uid,
          },
          reason: status.phase,
          message: ready?.message ?? status.phase ?? "",
          type: status.phase === "Installed" ? "Normal" : "Warning",
          source: { component: "lockstep-controller" },
          reportingComponent: "lockstep-controller",
          reportingInstance: process.env.HOSTNAME ?? "lockstep-controller",
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (error) {
      this.opts.log.warn({ err: kubeErrorMessage(error) }, "could not record an Event");
    }
  }
}
