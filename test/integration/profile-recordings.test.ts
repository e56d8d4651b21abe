// ProfileRecording on real nodes (docs/adr/0039-profile-recording.md): two kubelets with containerd and
// runc, the agents, the controller and the webhook, all as deployed (RBAC and admission policies from
// deploy/). A recording restarts a Deployment's pods under its recorder profile, each node's recording
// reporter (node-agent/recording-reporter.ts, with that node's agent identity) applies what its pod
// called (ObservedCall batches, as the audit collector hands them over) through the real server-side
// apply, and the controller merges both nodes' entries into a SeccompProfile that the agents install.
//
// What this test does not do: read the calls from the kernel. Its agents run with `--audit-reader=none`,
// so the calls are exactly the ones it hands over; recording-end-to-end.test.ts runs the same path from
// the kernel's audit records (ADR 0038).
import { spawn } from "node:child_process";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_READER_NONE } from "../../node-agent/audit-collector.ts";
import {
  type ObservedCall,
  RecordingReporter,
  recordingFieldManager,
} from "../../node-agent/recording-reporter.ts";
import { API_VERSION, GROUP, RECORDING_ANNOTATION, VERSION } from "../../src/api/constants.ts";
import { profileLabelKey } from "../../src/api/labels.ts";
import {
  liveRecordings,
  PROFILE_RECORDING_KIND,
  PROFILE_RECORDING_PLURAL,
  type ProfileRecordingSpec,
  ProfileRecordingSpecSchema,
  type ProfileRecordingStatus,
  profileRecordingPath,
  RECORDED_FROM_ANNOTATION,
  RECORDED_NODES_ANNOTATION,
  RECORDED_PODS_ANNOTATION,
  RECORDING_NAMESPACE_ENABLED,
  RECORDING_NAMESPACE_LABEL,
  recorderProfileName,
} from "../../src/api/profile-recording.ts";
import { RUNTIME_SYSCALLS } from "../../src/api/recorded-seccomp.ts";
import { configFromKubeconfigFiles, KubeClient } from "../../src/kube/client.ts";
import { kubeErrorMessage } from "../../src/kube/errors.ts";
import { createLogger } from "../../src/kube/logger.ts";
import { apiErrorMessage, refusal } from "../harness/admission.ts";
import { type AgentProcess, installAgentPrerequisites, startAgent, stopAgents } from "../harness/agents.ts";
import { installControllerPrerequisites, startController } from "../harness/controller.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { nodeHoldsProfile } from "../harness/profiles.ts";
import { addRealNode, type RealNode, realNodePodSpec } from "../harness/real-node.ts";
import { installWebhook, type WebhookProcess } from "../harness/webhook.ts";

let cp: ControlPlane;
let core: k8s.CoreV1Api;
let apps: k8s.AppsV1Api;
let objects: k8s.CustomObjectsApi;
let webhook: WebhookProcess | undefined;
const nodes: RealNode[] = [];
const agents: AgentProcess[] = [];
const reporters: RecordingReporter[] = [];
const NODE_NAMES = ["real-1", "real-2"];
/** Recordings run here; not in PLAIN. */
const SHOP = "shop";
const PLAIN = "plain";
const log = createLogger("test-reporter", "warn");

const recordingBody = (namespace: string, name: string, spec: ProfileRecordingSpec) => ({
  apiVersion: API_VERSION,
  kind: PROFILE_RECORDING_KIND,
  metadata: { name, namespace },
  spec,
});

function createRecording(namespace: string, name: string, spec: ProfileRecordingSpec, dryRun = false) {
  return objects.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PROFILE_RECORDING_PLURAL,
    body: recordingBody(namespace, name, spec),
    ...(dryRun ? { dryRun: "All" } : {}),
  });
}

async function recording(
  namespace: string,
  name: string,
): Promise<{ spec: ProfileRecordingSpec; status?: ProfileRecordingStatus }> {
  return (await objects.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PROFILE_RECORDING_PLURAL,
    name,
  })) as { spec: ProfileRecordingSpec; status?: ProfileRecordingStatus };
}

const untilRecordingGone = (namespace: string, name: string) =>
  waitFor(`${namespace}/${name} to be gone`, async () => {
    try {
      await recording(namespace, name);
      return false;
    } catch (error) {
      return error instanceof k8s.ApiException && error.code === 404;
    }
  });

const patchSpec = (namespace: string, name: string, spec: Partial<ProfileRecordingSpec>) =>
  objects.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, namespace, plural: PROFILE_RECORDING_PLURAL, name, body: { spec } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );

const untilPhase = (namespace: string, name: string, phase: string) =>
  waitFor(`${namespace}/${name} to be ${phase}`, async () => {
    const r = await recording(namespace, name);
    return r.status?.phase === phase ? r : undefined;
  });

async function seccompProfile(name: string): Promise<
  | {
      metadata: k8s.V1ObjectMeta;
      spec: { defaultAction: string; syscalls?: { names: string[]; action: string }[] };
    }
  | undefined
> {
  try {
    return (await objects.getClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: "seccompprofiles",
      name,
    })) as never;
  } catch (error) {
    if (error instanceof k8s.ApiException && error.code === 404) return undefined;
    throw error;
  }
}

async function seccompProfiles() {
  return (
    (await objects.listClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: "seccompprofiles",
    })) as {
      items: {
        metadata?: { name?: string; annotations?: Record<string, string>; deletionTimestamp?: string };
      }[];
    }
  ).items;
}

const isRunning = (pod: k8s.V1Pod) =>
  pod.status?.phase === "Running" && pod.status.containerStatuses?.every((c) => c.state?.running);

/** The agent of `node`'s identity: a client with its pod-bound token, as the DaemonSet pod has. */
async function agentClient(node: string): Promise<KubeClient> {
  const agent = agents.find((a) => a.nodeName === node);
  if (!agent) throw new Error(`no agent on ${node}`);
  return new KubeClient(await configFromKubeconfigFiles([agent.kubeconfigPath]));
}

/** What the audit collector hands over for `count` records of each call of one container. */
const calls = (pod: k8s.V1Pod, container: string, syscalls: string[], count = 1): ObservedCall[] =>
  syscalls.map((syscall) => ({
    namespace: pod.metadata?.namespace ?? "",
    pod: pod.metadata?.name ?? "",
    podUID: pod.metadata?.uid ?? "",
    container,
    syscall,
    arch: "x86_64",
    action: "log",
    count,
  }));

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  apps = cp.kubeConfig().makeApiClient(k8s.AppsV1Api);
  objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  for (const name of NODE_NAMES) nodes.push(await addRealNode(cp, name));
  await installAgentPrerequisites(cp);
  await installControllerPrerequisites(cp);
  // The agents' own audit path is off: this file hands each agent's reporter the calls itself, so that
  // the merge is checked against a known set (recording-end-to-end.test.ts reads them from the kernel).
  for (const name of NODE_NAMES)
    agents.push(await startAgent(cp, name, { extraArgs: [`--audit-reader=${AUDIT_READER_NONE}`] }));
  await startController(cp, 1);
  webhook = await installWebhook(cp);
  await core.createNamespace({
    body: { metadata: { name: SHOP, labels: { [RECORDING_NAMESPACE_LABEL]: RECORDING_NAMESPACE_ENABLED } } },
  });
  await core.createNamespace({ body: { metadata: { name: PLAIN } } });
  await waitFor(`the default ServiceAccount of ${SHOP}`, async () =>
    (await core.listNamespacedServiceAccount({ namespace: SHOP })).items.some(
      (s) => s.metadata?.name === "default",
    ),
  );
  // The policy is compiled a moment after it is created: wait until it refuses.
  await waitFor("lockstep-profile-recordings to refuse a recording in an unlabelled namespace", async () => {
    const message = await refusal(createRecording(PLAIN, "probe", { podSelector: {} }, true)).catch(
      () => undefined,
    );
    return message?.includes("is not labelled") ? message : undefined;
  });
}, 600_000);

afterAll(async () => {
  await Promise.all(reporters.map((r) => r.stop()));
  await webhook?.stop();
  await stopAgents(agents);
  await cp?.stop();
});

describe("ProfileRecording on real nodes", () => {
  it("is refused where the namespace is not labelled, and with a spec the CRD does not allow", async () => {
    expect(await refusal(createRecording(PLAIN, "web", { podSelector: {} }))).toContain(
      `namespace ${PLAIN} is not labelled ${RECORDING_NAMESPACE_LABEL}=${RECORDING_NAMESPACE_ENABLED}`,
    );
    expect(
      await refusal(createRecording(SHOP, "bad", { podSelector: {}, duration: "10 minutes" })),
    ).toContain("spec.duration");
    // The CRD and the schema refuse and accept the same specs (dry runs: nothing is created).
    const corpus: [unknown, boolean][] = [
      [{ podSelector: {} }, true],
      [
        {
          podSelector: { matchLabels: { app: "web" } },
          duration: "1h30m",
          mergeStrategy: "workload",
          kinds: ["seccomp"],
        },
        true,
      ],
      [{}, false],
      [{ podSelector: {}, kinds: ["apparmor"] }, false],
      [{ podSelector: {}, kinds: [] }, false],
      [{ podSelector: {}, mergeStrategy: "pod" }, false],
      [{ podSelector: {}, duration: "1d" }, false],
      [{ podSelector: { matchExpressions: [{ key: "app", operator: "In" }] } }, false],
      [{ podSelector: { matchLabels: { "bad key!": "x" } } }, false],
    ];
    for (const [spec, valid] of corpus) {
      expect(ProfileRecordingSpecSchema.safeParse(spec).success, JSON.stringify(spec)).toBe(valid);
      const answer = await createRecording(SHOP, "corpus", spec as ProfileRecordingSpec, true).then(
        () => "accepted",
        (error: unknown) => apiErrorMessage(error),
      );
      expect(answer === "accepted", `${JSON.stringify(spec)}: ${answer}`).toBe(valid);
    }
  });

  it("records a Deployment's replicas on two nodes and merges what both nodes report into a SeccompProfile", async () => {
    const labels = { app: "web" };
    await apps.createNamespacedDeployment({
      namespace: SHOP,
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              ...realNodePodSpec([{ name: "web", command: ["sh", "-c", "while true; do sleep 1; done"] }]),
              // One replica per node, so that both nodes report.
              affinity: {
                podAntiAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: [
                    { labelSelector: { matchLabels: labels }, topologyKey: "kubernetes.io/hostname" },
                  ],
                },
              },
            },
          },
        },
      },
    });
    const before = await waitFor(
      "2 unrecorded web pods Running",
      async () => {
        const list = (await core.listNamespacedPod({ namespace: SHOP, labelSelector: "app=web" })).items;
        return list.length === 2 && list.every(isRunning) ? list : undefined;
      },
      { timeoutMs: 90_000 },
    );
    for (const pod of before) expect(pod.metadata?.annotations?.[RECORDING_ANNOTATION]).toBeUndefined();

    // restartPods: the running replicas are deleted once, and the ReplicaSet's new ones are recorded.
    await createRecording(SHOP, "web", { podSelector: { matchLabels: labels }, restartPods: true });
    const started = await untilPhase(SHOP, "web", "Recording");
    const recorder = recorderProfileName(SHOP, "web");
    expect(recorder).toBe("rec-shop-web");
    expect(started.status?.recorderProfile).toBe(recorder);
    const recorderObject = await seccompProfile(recorder);
    expect(recorderObject?.spec.defaultAction).toBe("SCMP_ACT_LOG");
    expect(recorderObject?.metadata.annotations?.[RECORDING_ANNOTATION]).toBe(`${SHOP}/web`);

    const recorded = await waitFor(
      "2 recorded web pods Running in place of the old ones",
      async () => {
        const list = (await core.listNamespacedPod({ namespace: SHOP, labelSelector: "app=web" })).items;
        const fresh = list.filter((p) => p.metadata?.annotations?.[RECORDING_ANNOTATION] === "web");
        return list.length === 2 && fresh.length === 2 && fresh.every(isRunning) ? fresh : undefined;
      },
      { timeoutMs: 120_000 },
    );
    expect((await recording(SHOP, "web")).status?.podsRestarted).toBe(2);
    expect(new Set(recorded.map((p) => p.spec?.nodeName))).toEqual(new Set(NODE_NAMES));
    for (const pod of recorded) {
      expect(pod.spec?.containers[0]?.securityContext?.seccompProfile).toEqual({
        type: "Localhost",
        localhostProfile: `lockstep/${recorder}.json`,
      });
      expect(pod.metadata?.labels?.[profileLabelKey("seccomp", recorder)]).toBe("true");
      // The guard came in the same patch: the scheduler could only choose a node holding the recorder.
      const terms =
        pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
      expect(terms?.length).toBeGreaterThan(0);
      for (const term of terms ?? [])
        expect(term.matchExpressions?.map((e) => e.key)).toContain("lockstep.dev/seccomp-revision");
      expect(
        await nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", recorder, pod.spec?.nodeName ?? ""),
      ).toBe(true);
    }

    // A pod the recording does not select is left as it came.
    const other = await core.createNamespacedPod({
      namespace: SHOP,
      body: {
        metadata: { name: "other", labels: { app: "other" } },
        spec: realNodePodSpec([{ name: "c", command: ["sh", "-c", "while true; do sleep 1; done"] }]),
      },
    });
    expect(other.metadata?.annotations?.[RECORDING_ANNOTATION]).toBeUndefined();
    expect(other.spec?.containers[0]?.securityContext?.seccompProfile).toBeUndefined();

    // Each node's reporter, with that node's agent identity, reports its own pod's calls.
    const byNode = new Map(recorded.map((p) => [p.spec?.nodeName ?? "", p]));
    const podRecording = (namespace: string, name: string, uid: string) => {
      const pod = recorded.find((p) => p.metadata?.namespace === namespace && p.metadata?.name === name);
      return pod?.metadata?.uid === uid ? pod.metadata?.annotations?.[RECORDING_ANNOTATION] : undefined;
    };
    const reporterOf = new Map<string, RecordingReporter>();
    for (const node of NODE_NAMES) {
      const reporter = new RecordingReporter({
        client: await agentClient(node),
        nodeName: node,
        log,
        podRecording,
      });
      // As the agent does on every SeccompProfile its cache delivers.
      for (const p of await seccompProfiles()) reporter.noteSeccompProfile(p.metadata?.name ?? "", p);
      reporters.push(reporter);
      reporterOf.set(node, reporter);
    }
    const [pod1, pod2] = [byNode.get("real-1"), byNode.get("real-2")];
    if (!pod1 || !pod2) throw new Error("a recorded pod per node");
    reporterOf
      .get("real-1")
      ?.onCalls([...calls(pod1, "web", ["read", "write"]), ...calls(pod1, "web", ["openat"], 3)]);
    reporterOf.get("real-2")?.onCalls([
      ...calls(pod2, "web", ["read", "accept4", "nanosleep"]),
      // Not a recorded pod: ignored.
      ...calls({ metadata: { namespace: SHOP, name: "other", uid: other.metadata?.uid ?? "" } }, "c", [
        "mkdir",
      ]),
    ]);
    const reporting = await waitFor("both nodes' entries and the summary", async () => {
      const s = (await recording(SHOP, "web")).status;
      return s?.nodes?.length === 2 && s.nodesReporting === 2 && s.syscalls === 5 ? s : undefined;
    });
    expect(reporting).toMatchObject({ podsRecorded: 2, eventsSeen: 8 });
    const real1 = reporting.nodes?.find((n) => n.node === "real-1");
    expect(real1?.containers).toEqual([
      {
        pod: pod1.metadata?.name,
        podUID: pod1.metadata?.uid,
        container: "web",
        syscalls: ["openat", "read", "write"],
        events: 5,
      },
    ]);
    expect(real1?.truncated).toBe(false);

    // An agent writes only its own node's entry, and none of the controller's fields.
    const agent2 = await agentClient("real-2");
    const status = `${profileRecordingPath(SHOP, "web")}/status`;
    const forged = (node: string) => ({
      apiVersion: API_VERSION,
      kind: PROFILE_RECORDING_KIND,
      metadata: { name: "web", namespace: SHOP },
      status: { nodes: [{ node, updatedAt: new Date().toISOString(), containers: [] }] },
    });
    const query = (node: string) => ({ query: { fieldManager: recordingFieldManager(node), force: true } });
    expect(
      kubeErrorMessage(
        await agent2.patch(status, "apply", forged("real-1"), query("real-1")).catch((e) => e),
      ),
    ).toContain("may only write its own entry of status.nodes");
    expect(
      kubeErrorMessage(
        await agent2.patch(status, "merge", { status: { phase: "Completed" } }).catch((e) => e),
      ),
    ).toContain("are the controller's");
    expect(
      kubeErrorMessage(
        await agent2
          .patch(profileRecordingPath(SHOP, "web"), "merge", { spec: { stop: true } })
          .catch((e) => e),
      ),
    ).toMatch(/forbidden/i);

    // A call just before the stop still counts: the reporter applies at once when its recorder goes.
    reporterOf.get("real-1")?.onCalls(calls(pod1, "web", ["mkdirat"]));
    await patchSpec(SHOP, "web", { stop: true });
    await untilPhase(SHOP, "web", "Stopping");
    // The recorder profile is being deleted (recorded pods still run under it: in-use protection keeps it).
    const deleted = await waitFor("the recorder profile to be deleted", async () => {
      const p = await seccompProfile(recorder);
      return p === undefined || p.metadata.deletionTimestamp ? { profile: p } : undefined;
    });
    expect(liveRecordings(deleted.profile ? [deleted.profile] : []).has(`${SHOP}/web`)).toBe(false);
    for (const reporter of reporterOf.values()) reporter.noteSeccompProfile(recorder, deleted.profile);
    expect(await refusal(patchSpec(SHOP, "web", { stop: false }))).toContain("cannot be resumed");

    const done = await untilPhase(SHOP, "web", "Completed");
    expect(done.status).toMatchObject({
      profiles: ["web-web"],
      podsRecorded: 2,
      nodesReporting: 2,
      syscalls: 6,
      eventsSeen: 9,
    });
    expect(done.status?.conditions?.find((c) => c.type === "ProfilesWritten")).toMatchObject({
      status: "True",
      reason: "Written",
    });
    const result = await seccompProfile("web-web");
    expect(result?.spec.defaultAction).toBe("SCMP_ACT_ERRNO");
    const allowed = result?.spec.syscalls?.find((r) => r.action === "SCMP_ACT_ALLOW")?.names ?? [];
    expect(allowed).toEqual(
      [
        ...new Set([
          "read",
          "write",
          "openat",
          "accept4",
          "nanosleep",
          "mkdirat",
          ...Object.keys(RUNTIME_SYSCALLS),
        ]),
      ].sort(),
    );
    expect(allowed).not.toContain("mkdir");
    expect(result?.metadata.annotations).toMatchObject({
      [RECORDED_FROM_ANNOTATION]: `${SHOP}/web`,
      [RECORDED_NODES_ANNOTATION]: "real-1,real-2",
      [RECORDED_PODS_ANNOTATION]: recorded
        .map((p) => p.metadata?.name)
        .sort()
        .join(","),
    });
    // A profile like any other: the agents install it.
    for (const node of NODE_NAMES)
      await waitFor(`web-web on ${node}`, () =>
        nodeHoldsProfile(cp.kubeConfig(), "SeccompProfile", "web-web", node),
      );

    // Once the recorded pods are gone, so is the recorder profile.
    await apps.deleteNamespacedDeployment({ namespace: SHOP, name: "web" });
    await waitFor(
      "the recorder profile to be gone",
      async () => (await seccompProfile(recorder)) === undefined,
      {
        timeoutMs: 90_000,
      },
    );
  });

  it("ends without results when deleted mid-way, and removes its recorder profile", async () => {
    await createRecording(SHOP, "gone", { podSelector: { matchLabels: { app: "nothing" } } });
    await untilPhase(SHOP, "gone", "Recording");
    const recorder = recorderProfileName(SHOP, "gone");
    expect(await seccompProfile(recorder)).toBeDefined();
    await objects.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: SHOP,
      plural: PROFILE_RECORDING_PLURAL,
      name: "gone",
    });
    await untilRecordingGone(SHOP, "gone");
    await waitFor(
      "the recorder profile to be gone",
      async () => (await seccompProfile(recorder)) === undefined,
    );
    const written = (await seccompProfiles()).filter(
      (p) => p.metadata?.annotations?.[RECORDED_FROM_ANNOTATION] === `${SHOP}/gone`,
    );
    expect(written).toEqual([]);
  });

  it("records from the command line: lockstep record --cluster creates the recording, waits, prints the profile and leaves nothing behind", async () => {
    const cli = spawn(
      process.execPath,
      [
        join(import.meta.dirname, "../../src/cli/main.ts"),
        "record",
        "--cluster",
        "-n",
        SHOP,
        "--selector",
        "app=cli",
        "--duration",
        "40s",
        "--kubeconfig",
        cp.adminKubeconfigPath,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    cli.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    cli.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => cli.on("close", resolve));
    try {
      await untilPhase(SHOP, "cli", "Recording");
      // A pod created while it records is recorded; its node's reporter reports what it called.
      const pod = await core.createNamespacedPod({
        namespace: SHOP,
        body: {
          metadata: { name: "cli-pod", labels: { app: "cli" } },
          spec: realNodePodSpec([{ name: "work", command: ["sh", "-c", "while true; do sleep 1; done"] }]),
        },
      });
      expect(pod.metadata?.annotations?.[RECORDING_ANNOTATION]).toBe("cli");
      const running = await waitFor(
        "cli-pod to run",
        async () => {
          const p = await core.readNamespacedPod({ namespace: SHOP, name: "cli-pod" });
          return isRunning(p) ? p : undefined;
        },
        { timeoutMs: 90_000 },
      );
      const node = running.spec?.nodeName ?? "";
      const reporter = new RecordingReporter({
        client: await agentClient(node),
        nodeName: node,
        log,
        podRecording: (_ns, name, uid) =>
          name === "cli-pod" && uid === running.metadata?.uid ? "cli" : undefined,
      });
      reporters.push(reporter);
      for (const p of await seccompProfiles()) reporter.noteSeccompProfile(p.metadata?.name ?? "", p);
      reporter.onCalls(calls(running, "work", ["clock_nanosleep", "wait4"]));
      expect(await exited).toBe(0);
    } finally {
      cli.kill();
    }
    expect(stderr).toContain(`recording ${SHOP}/cli for 40s`);
    expect(stderr).toContain("Completed: 1 pods on 1 nodes");
    const [doc] = k8s.loadAllYaml(stdout) as {
      kind: string;
      metadata: { name: string };
      spec: { syscalls: { names: string[] }[] };
    }[];
    expect(doc?.kind).toBe("SeccompProfile");
    expect(doc?.metadata.name).toBe("cli-work");
    expect(doc?.spec.syscalls[0]?.names).toContain("clock_nanosleep");
    // Printed, not left in the cluster (once the profile controller has seen that no pod uses it); the
    // recording is gone too.
    await waitFor("cli-work to be gone", async () => (await seccompProfile("cli-work")) === undefined);
    await untilRecordingGone(SHOP, "cli");
    await core.deleteNamespacedPod({ namespace: SHOP, name: "cli-pod" });
  });
});
