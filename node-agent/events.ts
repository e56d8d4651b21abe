// Why a node lacks a profile, told where a cluster operator looks: a Kubernetes Event on the profile
// (`kubectl describe seccompprofile x`), which the controller also reads to fill status.missingNodes.
// The Event's format is src/api/install-report.ts, shared with the controller. Identical reports are
// sent once per process: a profile that fails every sync must not flood etcd.
import { OBJECT_KIND, PROFILE_EVENTS_NAMESPACE } from "../src/api/constants.ts";
import { installReportEvent } from "../src/api/install-report.ts";
import type { RenderedProfile } from "../src/api/profiles.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { kubeErrorMessage } from "../src/kube/errors.ts";
import type { Logger } from "../src/kube/logger.ts";

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
  const report = {
    kind: profile.kind,
    name: profile.name,
    uid: profile.uid,
    node: nodeName,
    version,
    reason,
    detail: message,
  };
  try {
    await client.create(
      `/api/v1/namespaces/${PROFILE_EVENTS_NAMESPACE}/events`,
      installReportEvent(report, new Date()),
    );
    sent.add(key);
  } catch (error) {
    log.warn({ err: kubeErrorMessage(error) }, "could not record an Event");
  }
}

/**
 * A Warning Event on this agent's Node (`kubectl describe node`), for what concerns the node rather
 * than one profile: the agent's ownership record could not be read.
 */
export async function emitNodeWarning(
  client: KubeClient,
  nodeName: string,
  reason: string,
  message: string,
  log: Logger,
): Promise<void> {
  const now = new Date().toISOString();
  try {
    await client.create(`/api/v1/namespaces/${PROFILE_EVENTS_NAMESPACE}/events`, {
      apiVersion: "v1",
      kind: "Event",
      metadata: { generateName: `${nodeName.slice(0, 200)}.`, namespace: PROFILE_EVENTS_NAMESPACE },
      involvedObject: { apiVersion: "v1", kind: "Node", name: nodeName },
      reason,
      message: message.slice(0, 1024),
      type: "Warning",
      source: { component: "lockstep-agent", host: nodeName },
      reportingComponent: "lockstep-agent",
      reportingInstance: nodeName,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  } catch (error) {
    log.warn({ err: kubeErrorMessage(error), reason }, "could not record an Event on the Node");
  }
}
