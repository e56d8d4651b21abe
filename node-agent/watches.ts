// What one agent watches, and which of those changes wake a sync. Only this Node, only the pods bound
// here and not finished (metadata only), and the profiles; the rules that say which change can alter a
// sync's outcome are pure (sync-causes.ts, revision-claims.ts, label-publisher.ts's echo check).
import type { V1Node } from "@kubernetes/client-node";
import { profileRevision } from "../src/api/node-profiles.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { Informer, type KubeObject } from "../src/kube/informer.ts";
import type { Logger } from "../src/kube/logger.ts";
import { logWatchFailures, ProfileCache } from "../src/kube/profile-cache.ts";
import type { NodeLabelPublisher } from "./label-publisher.ts";
import type { RevisionClaims } from "./revision-claims.ts";
import { podLabelsChangeNeedsSync } from "./sync-causes.ts";

export interface AgentWatches {
  profiles: ProfileCache;
  /** This Node only: the agent has no business with any other Node object. */
  node: Informer<V1Node>;
  /** Metadata of the not-finished pods bound to this node: their labels say which profiles they use. */
  pods: Informer<KubeObject>;
}

export function agentWatches(
  client: KubeClient,
  nodeName: string,
  log: Logger,
  stopping: () => boolean,
): AgentWatches {
  return {
    profiles: new ProfileCache(client, log, stopping),
    node: new Informer<V1Node>(client, {
      path: "/api/v1/nodes",
      fieldSelector: `metadata.name=${nodeName}`,
      onError: logWatchFailures(log, "Node", stopping),
    }),
    // DESIGN invariant 6 per node: the agent needs the pods' in-use labels, nothing of their spec, and
    // nothing of other nodes' pods.
    pods: new Informer<KubeObject>(client, {
      path: "/api/v1/pods",
      fieldSelector: `spec.nodeName=${nodeName},status.phase!=Succeeded,status.phase!=Failed`,
      metadataOnly: true,
      onError: logWatchFailures(log, "pods", stopping),
    }),
  };
}

/** Calls `wake` for each change that can change what a sync does. */
export function wakeOnChanges(
  { profiles, node, pods }: AgentWatches,
  judges: { claims: RevisionClaims; labels: NodeLabelPublisher },
  wake: () => void,
): void {
  profiles.onChange(({ kind, name, specChanged }) => {
    const obj = profiles.get(kind, name);
    if (judges.claims.delivery(kind, specChanged, obj ? profileRevision(obj) : "0")) wake();
  });
  for (const verb of ["add", "delete"] as const) node.on(verb, () => wake());
  node.on("update", (now, old) => {
    if (judges.labels.changeNeedsSync(old?.metadata?.labels ?? {}, now.metadata?.labels ?? {})) wake();
  });
  const podLabels = (pod: KubeObject | undefined) => pod?.metadata?.labels;
  for (const verb of ["add", "delete"] as const)
    pods.on(verb, (pod) => {
      if (podLabelsChangeNeedsSync(undefined, podLabels(pod))) wake();
    });
  pods.on("update", (pod, old) => {
    if (podLabelsChangeNeedsSync(podLabels(old), podLabels(pod))) wake();
  });
}

export async function startWatches(w: AgentWatches): Promise<void> {
  await Promise.all([w.profiles.start(), w.node.start(), w.pods.start()]);
}

export async function stopWatches(w: AgentWatches): Promise<void> {
  await Promise.all([w.profiles.stop(), w.node.stop(), w.pods.stop()]);
}
