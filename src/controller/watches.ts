// What the controller watches, and what each change is handed to: the profiles, every Node's metadata
// and the agents' install reports. Which change wakes which profiles is decided in triggers.ts.
import { PROFILE_EVENTS_NAMESPACE, type ProfileKind } from "../api/constants.ts";
import { INSTALL_FAILED, trimInstallReportEvent } from "../api/install-report.ts";
import type { KubeClient } from "../kube/client.ts";
import { Informer, type KubeObject } from "../kube/informer.ts";
import type { Logger } from "../kube/logger.ts";
import { logWatchFailures, ProfileCache, type ProfileChange } from "../kube/profile-cache.ts";
import { MAX_CACHED_INSTALL_REPORTS, REPORT_DETAIL_KEPT } from "./install-failures.ts";

export interface ControllerWatches {
  profiles: ProfileCache;
  /** Names and labels of every Node. */
  nodes: Informer<KubeObject>;
  /** The newest install reports (InstallFailed Events), trimmed to what status shows. */
  events: Informer<KubeObject>;
}

export function controllerWatches(
  client: KubeClient,
  log: Logger,
  stopping: () => boolean,
): ControllerWatches {
  return {
    profiles: new ProfileCache(client, log, stopping),
    // Names and labels only: a Node's status (images, conditions, addresses) is most of its size and
    // changes with every heartbeat. See ADR 0011.
    nodes: new Informer<KubeObject>(client, {
      path: "/api/v1/nodes",
      metadataOnly: true,
      onError: logWatchFailures(log, "nodes", stopping),
    }),
    // Of each Event only the install report it carries, and only the newest reports: Events are anyone's
    // to create where RBAC grants it, and status needs a report only to explain a failure label.
    events: new Informer<KubeObject>(client, {
      path: `/api/v1/namespaces/${PROFILE_EVENTS_NAMESPACE}/events`,
      fieldSelector: `reason=${INSTALL_FAILED}`,
      onError: logWatchFailures(log, "events", stopping),
      transform: (event) => trimInstallReportEvent(event, REPORT_DETAIL_KEPT),
      maxObjects: MAX_CACHED_INSTALL_REPORTS,
    }),
  };
}

export interface ChangeHandlers {
  profile(change: ProfileChange): void;
  /** A profile is gone: what was kept about it goes too (a later object of that name starts afresh). */
  profileGone(kind: ProfileKind, name: string): void;
  /** A Node's labels, undefined once the Node is gone. */
  nodeLabels(name: string, labels: Readonly<Record<string, string>> | undefined): void;
  installReport(event: KubeObject): void;
}

export function onChanges({ profiles, nodes, events }: ControllerWatches, to: ChangeHandlers): void {
  profiles.onChange((change) => {
    if (change.verb === "delete") to.profileGone(change.kind, change.name);
    to.profile(change);
  });
  nodes.on("add", (n) => to.nodeLabels(n.metadata?.name ?? "", n.metadata?.labels ?? {}));
  nodes.on("update", (n) => to.nodeLabels(n.metadata?.name ?? "", n.metadata?.labels ?? {}));
  nodes.on("delete", (n) => to.nodeLabels(n.metadata?.name ?? "", undefined));
  for (const verb of ["add", "update", "delete"] as const) events.on(verb, (e) => to.installReport(e));
}

export async function startWatches(w: ControllerWatches): Promise<void> {
  await Promise.all([w.profiles.start(), w.nodes.start(), w.events.start()]);
}

export async function stopWatches(w: ControllerWatches): Promise<void> {
  await Promise.all([w.profiles.stop(), w.nodes.stop(), w.events.stop()]);
}
