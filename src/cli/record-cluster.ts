// `lockstep record --cluster`: records a workload where it runs (docs/adr/0039-profile-recording.md). It
// creates a ProfileRecording for the selected pods of a namespace, shows its progress until it ends (its
// --duration, or Ctrl-C, which sets spec.stop), and prints the SeccompProfiles the controller wrote, as YAML
// for kubectl apply. Without --apply those profiles and the recording are deleted afterwards, so the
// cluster is left as it was and the YAML goes where the user keeps profiles (GitOps); with --apply the
// profiles stay (they are applied). The decisions are pure functions below; clusterCommand is wiring.
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { isValidLabelKey } from "../api/common.ts";
import { API_VERSION, GROUP, SECCOMP_PROFILE_PLURAL, VERSION } from "../api/constants.ts";
import { isDnsSubdomain, isValidLabelValue } from "../api/labels.ts";
import type { PodSelector } from "../api/profile-binding.ts";
import {
  durationSeconds,
  MERGE_STRATEGIES,
  PROFILE_RECORDING_KIND,
  PROFILE_RECORDING_PLURAL,
  type ProfileRecordingSpec,
  ProfileRecordingSpecSchema,
  type ProfileRecordingStatus,
} from "../api/profile-recording.ts";
import { isKubeError, kubeErrorMessage } from "../kube/errors.ts";
import { oneOfFlag } from "./args.ts";
import { clusterClient, unreachableMessage } from "./node-command.ts";
import { UserError } from "./profile-files.ts";

export const RECORD_CLUSTER_HELP = `usage: lockstep record --cluster -n NAMESPACE --selector KEY=VALUE[,KEY=VALUE...]
                      [--name N] [--duration 2m] [--restart-pods] [--merge-strategy container|workload]
                      [--apply] [--kubeconfig FILE] [--context NAME]

Records the selected pods where they run: creates a ProfileRecording named N in NAMESPACE (which a cluster
admin must have labelled lockstep.dev/recording=enabled), shows its progress on stderr, and when it ends
(after --duration, or at Ctrl-C) prints the SeccompProfiles it wrote as YAML for kubectl apply. Pods
created while it records run under a profile that logs every call; with --restart-pods the running ones
that a controller recreates are deleted once, so their replacements are recorded.
Without --apply the written profiles and the recording are deleted afterwards (the cluster is left as
it was: keep the YAML); with --apply the profiles stay in the cluster. Exit code 0 when profiles were
printed, 1 when the recording ended without any (nothing recorded, or a profile name taken), 2 on bad
input.

  --selector SEL       the pods' labels, KEY=VALUE pairs separated by commas (required)
  --name N             the recording's name, and the stem of its profiles' names (<N>-<container>,
                       or <N> with --merge-strategy workload); default: the selector's first value
  --duration D         how long to record (90s, 10m, 1h30m); default: until Ctrl-C
  --restart-pods       delete the selected running pods once so their owners recreate them recorded
  --merge-strategy S   container (one profile per container name, default) or workload (one for all)
  --apply              keep the written profiles in the cluster`;

/** `app=web,tier=front` as a podSelector; only equality, which is what a workload's labels are matched with. */
export function parseSelectorFlag(text: string): PodSelector {
  const matchLabels: Record<string, string> = {};
  for (const part of text.split(",")) {
    const [key = "", value, extra] = part.split("=");
    if (value === undefined || extra !== undefined || key.trim() === "")
      throw new UserError(
        `--selector ${text}: "${part}" is not KEY=VALUE (only equality; for set-based selectors write the ProfileRecording yourself)`,
      );
    const k = key.trim();
    const v = value.trim();
    if (!isValidLabelKey(k)) throw new UserError(`--selector: "${k}" is not a label key`);
    if (!isValidLabelValue(v)) throw new UserError(`--selector: "${v}" is not a label value`);
    matchLabels[k] = v;
  }
  return { matchLabels };
}

export interface ClusterRecordFlags {
  namespace: string;
  name: string;
  spec: ProfileRecordingSpec;
  apply: boolean;
}

/** The flags as a recording to create, or a UserError naming the flag. */
export function clusterRecordFlags(values: {
  namespace?: string | undefined;
  selector?: string | undefined;
  name?: string | undefined;
  duration?: string | undefined;
  "restart-pods"?: boolean | undefined;
  "merge-strategy"?: string | undefined;
  apply?: boolean | undefined;
}): ClusterRecordFlags {
  if (values.namespace === undefined) throw new UserError("--cluster needs -n NAMESPACE");
  if (!isDnsSubdomain(values.namespace)) throw new UserError(`-n ${values.namespace}: not a namespace name`);
  if (values.selector === undefined)
    throw new UserError(
      "--cluster needs --selector KEY=VALUE: recording every pod of a namespace is rarely meant",
    );
  const podSelector = parseSelectorFlag(values.selector);
  const name = values.name ?? Object.values(podSelector.matchLabels ?? {})[0] ?? "";
  if (!isDnsSubdomain(name) || name.length > 63)
    throw new UserError(
      `--name ${JSON.stringify(name)}: not a valid recording name (lower-case letters, digits, '-' and '.', at most 63)`,
    );
  if (values.duration !== undefined && durationSeconds(values.duration) === undefined)
    throw new UserError(`--duration ${values.duration}: not a duration (90s, 10m, 1h30m)`);
  const spec: ProfileRecordingSpec = {
    podSelector,
    ...(values.duration === undefined ? {} : { duration: values.duration }),
    ...(values["restart-pods"] ? { restartPods: true } : {}),
    ...(values["merge-strategy"] === undefined
      ? {}
      : { mergeStrategy: oneOfFlag("merge-strategy", values["merge-strategy"], MERGE_STRATEGIES) }),
  };
  const parsed = ProfileRecordingSpecSchema.safeParse(spec);
  if (!parsed.success)
    throw new UserError(`--cluster: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  return { namespace: values.namespace, name, spec: parsed.data, apply: values.apply === true };
}

/** The progress line: phase and what the nodes reported so far. */
export function progressLine(status: ProfileRecordingStatus | undefined): string {
  const s = status ?? {};
  return `${s.phase ?? "Pending"}: ${s.podsRecorded ?? 0} pods on ${s.nodesReporting ?? 0} nodes, ${s.eventsSeen ?? 0} events, ${s.syscalls ?? 0} syscalls`;
}

/** The written profiles as YAML for kubectl apply: what their author would write, without server fields. */
export function profilesYaml(
  profiles: readonly { metadata?: { name?: string; annotations?: Record<string, string> }; spec?: unknown }[],
): string {
  return profiles
    .map((p) =>
      stringify(
        {
          apiVersion: API_VERSION,
          kind: "SeccompProfile",
          metadata: { name: p.metadata?.name, annotations: p.metadata?.annotations },
          spec: p.spec,
        },
        { lineWidth: 0 },
      ),
    )
    .join("---\n");
}

/** The condition that says why a recording ended without profiles. */
function whyNoProfiles(status: ProfileRecordingStatus | undefined): string {
  const c = status?.conditions?.find((x) => x.type === "ProfilesWritten" || x.type === "Recording");
  return c ? `${c.reason}: ${c.message}` : "no profile was written";
}

const POLL_MS = 1_000;

export async function clusterRecordCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      cluster: { type: "boolean" },
      namespace: { type: "string", short: "n" },
      selector: { type: "string", short: "l" },
      name: { type: "string" },
      duration: { type: "string" },
      "restart-pods": { type: "boolean" },
      "merge-strategy": { type: "string" },
      apply: { type: "boolean" },
      kubeconfig: { type: "string" },
      context: { type: "string" },
    },
  });
  const flags = clusterRecordFlags(values);
  const client = await clusterClient(values.kubeconfig, values.context);
  const { namespace, name } = flags;
  const ref = { group: GROUP, version: VERSION, namespace, plural: PROFILE_RECORDING_PLURAL, name };
  const say = (line: string) => process.stderr.write(`lockstep: ${line}\n`);
  try {
    await client.objects.createNamespacedCustomObject({
      ...ref,
      body: {
        apiVersion: API_VERSION,
        kind: PROFILE_RECORDING_KIND,
        metadata: { name, namespace },
        spec: flags.spec,
      },
    });
  } catch (error) {
    if (isKubeError(error, 409))
      throw new UserError(
        `a ProfileRecording "${name}" exists in ${namespace}: delete it or give another --name`,
      );
    throw new UserError(unreachableMessage(error, client.server, client.context) ?? kubeErrorMessage(error));
  }
  say(
    `recording ${namespace}/${name}${flags.spec.duration ? ` for ${flags.spec.duration}` : "; Ctrl-C ends it and writes the profiles"}`,
  );
  // Ctrl-C: stop the recording (its profiles are written); a second Ctrl-C leaves it running and exits.
  let stopAsked = false;
  const onInterrupt = () => {
    if (stopAsked) {
      say(`left ${namespace}/${name} as it is (kubectl delete profilerecording ${name} -n ${namespace})`);
      process.exit(130);
    }
    stopAsked = true;
    say("stopping: the nodes' last reports are awaited, then the profiles are written");
    void client.objects
      .patchNamespacedCustomObject({ ...ref, body: [{ op: "add", path: "/spec/stop", value: true }] })
      .catch((error: unknown) => say(`could not stop the recording: ${kubeErrorMessage(error)}`));
  };
  process.on("SIGINT", onInterrupt);
  let status: ProfileRecordingStatus | undefined;
  let last = "";
  try {
    for (;;) {
      const rec = (await client.objects.getNamespacedCustomObject(ref)) as {
        status?: ProfileRecordingStatus;
      };
      status = rec.status;
      const line = progressLine(status);
      if (line !== last) say(line);
      last = line;
      if (status?.phase === "Completed" || status?.phase === "Failed") break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    process.off("SIGINT", onInterrupt);
  }
  const profiles = [];
  for (const profile of status?.profiles ?? [])
    profiles.push(
      (await client.objects.getClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: SECCOMP_PROFILE_PLURAL,
        name: profile,
      })) as { metadata?: { name?: string; annotations?: Record<string, string> }; spec?: unknown },
    );
  if (profiles.length > 0) process.stdout.write(profilesYaml(profiles));
  if (!flags.apply)
    for (const profile of status?.profiles ?? [])
      await client.objects
        .deleteClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: SECCOMP_PROFILE_PLURAL,
          name: profile,
        })
        .catch((error: unknown) =>
          say(`could not delete SeccompProfile ${profile}: ${kubeErrorMessage(error)}`),
        );
  await client.objects
    .deleteNamespacedCustomObject(ref)
    .catch((error: unknown) => say(`could not delete the recording: ${kubeErrorMessage(error)}`));
  if (profiles.length === 0) {
    say(`${status?.phase ?? "ended"} without profiles: ${whyNoProfiles(status)}`);
    return 1;
  }
  say(
    flags.apply
      ? `wrote SeccompProfile ${profiles.map((p) => p.metadata?.name).join(", ")} (in the cluster)`
      : `printed SeccompProfile ${profiles.map((p) => p.metadata?.name).join(", ")} (not left in the cluster: --apply keeps them)`,
  );
  return 0;
}
