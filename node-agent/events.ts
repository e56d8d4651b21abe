// Why a node lacks a profile, told where a cluster operator looks: a Kubernetes Event on the profile
// (`kubectl describe seccompprofile x`), which the controller also reads to fill status.missingNodes.
// The Event's format is src/api/install-report.ts, shared with the controller. Identical reports are
// sent once per agent run (a profile that fails every sync must not flood etcd), and only for failures
// that carry a failure label: past the cap on those (src/api/limits.ts) the rest are summed up in one
// Event on the Node, so a node where thousands of profiles fail sends at most cap + 1 Events per change.
import { OBJECT_KIND, PROFILE_EVENTS_NAMESPACE, type ProfileKind } from "../src/api/constants.ts";
import { installReportFields, installReportSource } from "../src/api/install-report.ts";
import type { RenderedProfile } from "../src/api/profiles.ts";
import type { KubeClient } from "../src/kube/client.ts";
import { EVENT_MESSAGE_MAX, type EventFields, EventRecorder } from "../src/kube/event-recorder.ts";
import type { Logger } from "../src/kube/logger.ts";

/**
 * Events already sent that the agent remembers, the oldest forgotten past this many (and may be sent
 * again): about 200 KiB at most.
 */
const SENT_MEMO_MAX = 2048;

/** The Events of one agent: as its node's agent, each identical report once per run. */
export function agentEventRecorder(client: KubeClient, nodeName: string, log: Logger): EventRecorder {
  return new EventRecorder({
    client,
    namespace: PROFILE_EVENTS_NAMESPACE,
    source: installReportSource(nodeName),
    log,
    onceMemo: SENT_MEMO_MAX,
  });
}

export async function reportInstallFailed(
  events: EventRecorder,
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
  const report = {
    kind: profile.kind,
    name: profile.name,
    uid: profile.uid,
    node: nodeName,
    version,
    reason,
    detail: message,
  };
  await events.recordOnce(key, installReportFields(report));
}

/** The Event reason of the summary of failures that carry no failure label. */
export const FAILURE_LABELS_CAPPED = "FailureLabelsCapped";
/** At most how many of them the summary names (as many as fit in a message); the rest are counted. */
const SUMMARY_NAMED = 20;

export interface UnlabelledFailure {
  kind: ProfileKind;
  name: string;
  reason: string;
}

/** One Warning Event on the Node for every failure past the cap, naming the first few that fit. */
export function unlabelledFailuresEvent(
  nodeName: string,
  unlabelled: readonly UnlabelledFailure[],
  cap: number,
): EventFields {
  const head =
    `node ${nodeName}: ${unlabelled.length} profiles that belong here are not installed and carry no failure label (at most ${cap} per kind): ` +
    `the node's revision label stays below the oldest of them, so it takes no pod that needs them or a newer profile of their kind: `;
  const tail = (more: number) => (more > 0 ? ` and ${more} more` : "");
  let message = head;
  let named = 0;
  for (const f of unlabelled.slice(0, SUMMARY_NAMED)) {
    const next = `${message}${named > 0 ? ", " : ""}${OBJECT_KIND[f.kind]} ${f.name} (${f.reason})`;
    if (next.length + tail(unlabelled.length - named - 1).length > EVENT_MESSAGE_MAX) break;
    message = next;
    named++;
  }
  message += tail(unlabelled.length - named);
  return nodeWarning(nodeName, FAILURE_LABELS_CAPPED, message);
}

export async function reportUnlabelledFailures(
  events: EventRecorder,
  nodeName: string,
  unlabelled: readonly UnlabelledFailure[],
  cap: number,
  log: Logger,
): Promise<void> {
  if (unlabelled.length === 0) return;
  log.warn({ unlabelled: unlabelled.length, cap }, "more failures than failure labels");
  const event = unlabelledFailuresEvent(nodeName, unlabelled, cap);
  await events.recordOnce(`${FAILURE_LABELS_CAPPED}/${event.message}`, event);
}

/**
 * A Warning Event on this agent's Node (`kubectl describe node`), for what concerns the node rather
 * than one profile: the agent's ownership record could not be read, or failures past the cap.
 */
export function nodeWarning(nodeName: string, reason: string, message: string): EventFields {
  return {
    involvedObject: { apiVersion: "v1", kind: "Node", name: nodeName },
    reason,
    message,
    type: "Warning",
  };
}
