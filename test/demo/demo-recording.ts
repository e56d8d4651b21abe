// make demo's recording step (issue 27 point 4; docs/adr/0038-audit-collector.md, docs/adr/0039-profile-recording.md):
// a ProfileRecording of a small busybox Deployment that makes a known few calls, recorded from the
// kernel's seccomp audit records by the agent pod on its node (its audit reader), stopped, and the
// SeccompProfile it wrote applied to a second Deployment that runs Running and Ready under it. Every wait
// has a timeout; a failure is reported with where to look, and the demo goes on without it.
import { readFileSync } from "node:fs";
import * as k8s from "@kubernetes/client-node";
import { GROUP, LOCKSTEP_NAMESPACE, VERSION } from "../../src/api/constants.ts";
import { localhostProfileFor } from "../../src/api/labels.ts";
import {
  PROFILE_RECORDING_PLURAL,
  type ProfileRecording,
  ProfileRecordingSchema,
  type ProfileRecordingStatus,
  RECORDING_NAMESPACE_ENABLED,
  RECORDING_NAMESPACE_LABEL,
  recordedProfileName,
  recorderProfileName,
} from "../../src/api/profile-recording.ts";
import { waitFor } from "../harness/controlplane.ts";
import { nodeHoldsProfile } from "../harness/profiles.ts";
import { realNodePodSpec } from "../harness/real-node.ts";

export const RECORDING_NAMESPACE = "recorded";
const RECORDING = "ticker";
const CONTAINER = "app";
export const RECORDED_PROFILE = recordedProfileName(RECORDING, CONTAINER);

/** The known few calls: write a file, read it back, sleep, forever. Ready once the file is there. */
const LOOP = "while true; do echo tick > /tmp/f; cat /tmp/f > /dev/null; sleep 1; done";

export interface RecordingOutcome {
  explanation: string[];
}

/**
 * examples/profile-recording.yaml as the demo runs it: in its own namespace, for the ticker Deployment, and
 * without a duration (the demo stops it once the calls are in) or restartPods (no ticker pod runs before
 * it). Its kind, apiVersion and mergeStrategy are the example's own.
 */
export function recordingHere(file: string, namespace: string): ProfileRecording {
  const example = ProfileRecordingSchema.parse(k8s.loadYaml(readFileSync(file, "utf8")));
  const { duration: _duration, restartPods: _restartPods, ...spec } = example.spec;
  return {
    ...example,
    metadata: { name: RECORDING, namespace },
    spec: { ...spec, podSelector: { matchLabels: { app: RECORDING } } },
  };
}

const isReady = (pod: k8s.V1Pod) =>
  pod.status?.phase === "Running" &&
  !pod.metadata?.deletionTimestamp &&
  pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

/**
 * Records the ticker Deployment on `node` (a host node: its kernel's audit records are what the agent
 * reads) and runs it again under the result. `step` prints progress as the demo does.
 */
export async function demoRecording(
  kc: k8s.KubeConfig,
  exampleFile: string,
  node: string,
  step: (text: string) => void,
): Promise<RecordingOutcome> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const objects = kc.makeApiClient(k8s.CustomObjectsApi);
  const ns = RECORDING_NAMESPACE;
  const ref = {
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: PROFILE_RECORDING_PLURAL,
    name: RECORDING,
  };
  const status = async () =>
    ((await objects.getNamespacedCustomObject(ref)) as { status?: ProfileRecordingStatus }).status;
  // Pinned to one host node: the recording reads that node's kernel, and the enforced copy runs there too.
  const deployment = (name: string, securityContext?: k8s.V1SecurityContext): k8s.V1Deployment => ({
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          ...realNodePodSpec([
            {
              name: CONTAINER,
              command: ["sh", "-c", LOOP],
              readinessProbe: { exec: { command: ["cat", "/tmp/f"] }, periodSeconds: 2 },
              ...(securityContext ? { securityContext } : {}),
            },
          ]),
          nodeSelector: { "kubernetes.io/hostname": node },
        },
      },
    },
  });
  const readyPod = (app: string) =>
    waitFor(
      `the ${app} pod Running and Ready`,
      async () => {
        const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items;
        return pods.length === 1 && pods[0] && isReady(pods[0]) ? pods[0] : undefined;
      },
      { timeoutMs: 120_000 },
    );
  const where = [
    `kubectl -n ${ns} describe profilerecording ${RECORDING}   # its phase, nodes and conditions`,
    `kubectl -n ${ns} get pods,events`,
    `kubectl -n ${LOCKSTEP_NAMESPACE} get pods -o wide; kubectl -n ${LOCKSTEP_NAMESPACE} logs <the agent pod on ${node}>   # its audit reader`,
  ];

  try {
    await core.createNamespace({
      body: { metadata: { name: ns, labels: { [RECORDING_NAMESPACE_LABEL]: RECORDING_NAMESPACE_ENABLED } } },
    });
    await waitFor(`the default ServiceAccount of ${ns}`, async () =>
      (await core.listNamespacedServiceAccount({ namespace: ns })).items.some(
        (s) => s.metadata?.name === "default",
      ),
    );
    step(`created namespace ${ns}, labelled ${RECORDING_NAMESPACE_LABEL}=${RECORDING_NAMESPACE_ENABLED}`);
    await objects.createNamespacedCustomObject({
      ...ref,
      body: recordingHere(exampleFile, ns),
    });
    await waitFor(`${ns}/${RECORDING} to be Recording`, async () => (await status())?.phase === "Recording");
    const recorder = recorderProfileName(ns, RECORDING);
    await waitFor(`${recorder} on ${node}`, () => nodeHoldsProfile(kc, "SeccompProfile", recorder, node));
    step(
      `ProfileRecording ${ns}/${RECORDING} (examples/profile-recording.yaml made runnable here) is Recording: its recorder profile, which logs every call, is on ${node}`,
    );

    await apps.createNamespacedDeployment({ namespace: ns, body: deployment(RECORDING) });
    const recorded = await readyPod(RECORDING);
    step(
      `created Deployment ${RECORDING} (busybox: echo > /tmp/f; cat /tmp/f; sleep 1, in a loop): ${recorded.metadata?.name} Ready`,
    );
    const seen = await waitFor(
      "the recording's status to show the pod's calls from its node",
      async () => {
        const s = await status();
        return (s?.syscalls ?? 0) > 0 && (s?.nodesReporting ?? 0) >= 1 ? s : undefined;
      },
      { timeoutMs: 90_000 },
    );
    step(
      `recording: ${seen.syscalls} syscalls, ${seen.eventsSeen ?? 0} audit records from ${seen.nodesReporting} node(s)`,
    );
    // A few more rounds of the loop and of the readiness probe, then stop.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    await objects.patchNamespacedCustomObject(
      { ...ref, body: { spec: { stop: true } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const done = await waitFor(
      `${ns}/${RECORDING} to be Completed`,
      async () => {
        const s = await status();
        if (s?.phase === "Failed")
          throw new Error(`the recording Failed: ${JSON.stringify(s.conditions ?? [])}`);
        return s?.phase === "Completed" ? s : undefined;
      },
      { timeoutMs: 90_000 },
    );
    const written = done.profiles ?? [];
    if (!written.includes(RECORDED_PROFILE))
      throw new Error(
        `the recording Completed with profiles [${written.join(", ")}], not ${RECORDED_PROFILE}`,
      );
    const profile = (await objects.getClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: "seccompprofiles",
      name: RECORDED_PROFILE,
    })) as { spec?: { defaultAction?: string; syscalls?: { names: string[]; action: string }[] } };
    const allowed = (profile.spec?.syscalls ?? [])
      .filter((r) => r.action === "SCMP_ACT_ALLOW")
      .flatMap((r) => r.names);
    step(
      `stopped: ${ns}/${RECORDING} Completed, SeccompProfile ${RECORDED_PROFILE} written (${allowed.length} syscalls allowed, every other ${profile.spec?.defaultAction})`,
    );

    await waitFor(`${RECORDED_PROFILE} on ${node}`, () =>
      nodeHoldsProfile(kc, "SeccompProfile", RECORDED_PROFILE, node),
    );
    const enforced = `${RECORDING}-enforced`;
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment(enforced, {
        seccompProfile: {
          type: "Localhost",
          localhostProfile: localhostProfileFor("seccomp", RECORDED_PROFILE),
        },
      }),
    });
    const pod = await readyPod(enforced);
    step(
      `created Deployment ${enforced} under ${RECORDED_PROFILE}: ${pod.metadata?.name} Running and Ready on ${pod.spec?.nodeName}`,
    );
    return {
      explanation: [
        `Deployment ${RECORDING} in namespace ${ns} was recorded where it runs: its pod ran under a profile that`,
        `logs every call, ${node}'s agent read the kernel's audit records and reported them, and the controller`,
        `wrote SeccompProfile ${RECORDED_PROFILE} (${allowed.length} syscalls). ${enforced} runs under it, Ready.`,
      ],
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    step(`the recording step did not finish (${message}); the demo goes on without it. Look at:`);
    for (const line of where) process.stdout.write(`         ${line}\n`);
    return { explanation: [`The recording step did not finish: ${message}.`, ...where.map((l) => `  ${l}`)] };
  }
}
