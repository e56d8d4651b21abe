// Informers: list+watch caches of API objects.
//
// client-node's ListWatch restarts by itself after a watch expires (410) or times out, but stops on
// any other error (the API server restarting, a CRD not yet served, a network blip) and only reports
// it. Every Lockstep informer must keep going, so this restarts it with a capped backoff.
import * as k8s from "@kubernetes/client-node";
import { kubeErrorMessage } from "./errors.ts";
import type { Logger } from "./logger.ts";

export function keepWatching<T extends k8s.KubernetesObject>(
  informer: k8s.Informer<T>,
  what: string,
  log: Logger,
  isStopped: () => boolean,
): void {
  let delayMs = 500;
  informer.on("connect", () => {
    delayMs = 500;
  });
  informer.on("error", (error) => {
    if (isStopped()) return;
    log.warn({ watch: what, err: kubeErrorMessage(error), retryInMs: delayMs }, "watch failed; restarting");
    setTimeout(() => {
      if (!isStopped()) informer.start().catch(() => undefined);
    }, delayMs);
    delayMs = Math.min(delayMs * 2, 30_000);
  });
}

/**
 * A KubeConfig that asks for PartialObjectMetadata: objects then arrive with their metadata only
 * (names, labels, annotations), not their spec and status. client-node has no metadata informer;
 * this is the media type client-go's metadata informer sends.
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

export interface MetadataListWatchOptions {
  /** e.g. "v1" or "apps/v1" */
  apiVersion: string;
  /** e.g. "Node" */
  kind: string;
  /** The collection's URL path, e.g. "/api/v1/nodes". */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/**
 * A list+watch cache of the metadata of one kind of object. Like any client-node ListWatch it relists
 * when its watch expires (410 Gone); pair it with keepWatching for every other error.
 */
export function metadataListWatch(
  kubeConfig: k8s.KubeConfig,
  options: MetadataListWatchOptions,
): k8s.ListWatch<k8s.KubernetesObject> {
  const kc = new MetadataOnlyKubeConfig();
  kc.loadFromString(kubeConfig.exportConfig());
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const { apiVersion, kind, labelSelector, fieldSelector } = options;
  const list = () =>
    objects.list(
      apiVersion,
      kind,
      undefined,
      undefined,
      undefined,
      undefined,
      fieldSelector,
      labelSelector,
    ) as Promise<unknown> as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>;
  return new k8s.ListWatch(options.path, new k8s.Watch(kc), list, false, labelSelector, fieldSelector);
}
