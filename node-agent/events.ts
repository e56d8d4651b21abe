// Why a node lacks a profile, told where a cluster operator looks: a Kubernetes Event on the profile
// (`kubectl describe seccompprofile x`), which the controller also reads to fill status.missingNodes.
// Identical reports are sent once per process: a profile that fails every sync must not flood etcd.
import { API_VERSION, OBJECT_KIND } from "../src/api/constants.ts";
import type { RenderedProfile } from "../src/api/profiles.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { kubeErrorMessage } from "../src/kube/errors.ts";
import type { Logger } from "../src/kube/logger.ts";

/** Events of cluster-scoped objects live in `default`, as the kubelet's Node events do. */
export const EVENT_NAMESPACE = "default";
export const EVENT_SOURCE = "lockstep-node-agent";
export const INSTALL_FAILED = "InstallFailed";

const sent = new Set<string>();

export async function emitInstallFailed(
  client: KubeClient,
  nodeName: string,
  profile: RenderedProfile,
  reason: string,
  message: string,
  log: Logger,
): Promise<void> {
  const version = profile.ok ? profile.version : "";
  const key = `${profile.kind}/${profile.name}/${profile.uid}/${version}/${reason}/${message}`;
  log.warn(
    { kind: OBJECT_KIND[profile.kind], name: profile.name, reason, err: message },
    "profile not installed",
  );
  if (sent.has(key)) return;
  const now = new Date();
  try {
    await client.create(`/api/v1/namespaces/${EVENT_NAMESPACE}/events`, {
      metadata: {
        generateName: `${profile.name.slice(0, 200)}.`,
        annotations: { "lockstep.dev/node": nodeName, "lockstep.dev/version": version },
      },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: OBJECT_KIND[profile.kind],
        name: profile.name,
        uid: profile.uid,
      },
      reason: INSTALL_FAILED,
      // Events are read by people: the node first, then what went wrong in the user's own terms.
      message: `node ${nodeName}: ${reason}: ${message}`.slice(0, 1024),
      type: "Warning",
      source: { component: EVENT_SOURCE, host: nodeName },
      reportingComponent: EVENT_SOURCE,
      reportingInstance: nodeName,
      firstTimestamp: now.toISOString(),
      lastTimestamp: now.toISOString(),
      count: 1,
    });
    sent.add(key);
  } catch (error) {
    log.warn({ err: kubeErrorMessage(error) }, "could not record an Event");
  }
}
