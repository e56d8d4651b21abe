// Every object of a Lockstep install other than the CRDs (crd.ts) and the admission configuration
// (admission.ts): the namespace, the three workloads, their RBAC, Services, disruption budgets and the
// webhook's NetworkPolicy, with the reason for every permission and limit. One source for deploy/
// (settings are values: DEFAULT_VALUES) and for the Helm chart (settings are `.Values` expressions);
// files.ts writes both, and test/unit/manifests.test.ts keeps them equal to this.
import * as z from "zod";
import {
  LOCKSTEP_NAMESPACE,
  PROFILE_EVENTS_NAMESPACE,
  SERVICE_ACCOUNTS,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_TLS_SECRET,
} from "../api/constants.ts";
import {
  CRI_BUNDLES,
  DEFAULT_CONTAINERD_STATE,
  DEFAULT_KUBELET_ROOT,
  KUBELET_SECCOMP_DIR,
  SECCOMP_LOCALHOST_DIR,
} from "../api/paths.ts";
import {
  choose,
  entriesIf,
  HelmValue,
  is,
  joined,
  noted,
  notedKeys,
  onlyIf,
  type Setting,
  unlessEmpty,
} from "./yaml.ts";

export const IMAGE_REPOSITORY = "ghcr.io/lockstep-dev/lockstep";
export const COMPONENTS = ["agent", "controller", "webhook"] as const;
export type Component = (typeof COMPONENTS)[number];
/** Each component's health and metrics port (--health-port): /healthz, /readyz, /metrics. */
export const HEALTH_PORT = 8081;
export const WEBHOOK_PORT = 8443;
/** How long a webhook pod being deleted keeps serving (preStop), well within its grace period. */
const WEBHOOK_DRAIN_SECONDS = 5;
/** What helm leaves in place on uninstall (docs/adr/0065-upgrade-and-removal.md). */
export const HELM_KEEP = { "helm.sh/resource-policy": "keep" };
/** The webhook's Service, the name its certificate is issued for. */
export const WEBHOOK_SERVICE = "lockstep-webhook";
/** Where the webhook reads cert-manager's certificate from (--cert-mode=files). */
const CERT_MANAGER_SECRET = "lockstep-webhook-cert-manager-tls";
const CERT_DIR = "/etc/lockstep/tls";

const ResourcesSchema = z.object({
  requests: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  limits: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
});
const TolerationSchema = z.looseObject({ key: z.string().optional(), operator: z.string().optional() });
const PlacementSchema = {
  resources: ResourcesSchema,
  nodeSelector: z.record(z.string(), z.string()),
  tolerations: z.array(TolerationSchema),
};

/** The chart's values (values.yaml; values.schema.json is generated from this). */
export const ChartValuesSchema = z.strictObject({
  image: z.strictObject({
    repository: z.string().min(1),
    /** Empty: the chart's appVersion. */
    tag: z.string(),
    /** `sha256:...`; when set, the image is pinned by it and the tag is ignored. */
    digest: z.union([z.literal(""), z.string().regex(/^sha256:[0-9a-f]{64}$/)]),
  }),
  kubeletRoot: z.string().startsWith("/"),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]),
  /** Who issues the webhook's serving certificate: the webhook itself, or cert-manager (installed first). */
  certificates: z.enum(["self", "cert-manager"]),
  metrics: z.strictObject({ service: z.boolean(), serviceMonitor: z.boolean() }),
  agent: z.strictObject(PlacementSchema),
  controller: z.strictObject({ replicas: z.number().int().min(1), ...PlacementSchema }),
  webhook: z.strictObject({ replicas: z.number().int().min(1), ...PlacementSchema }),
});
export type ChartValues = z.infer<typeof ChartValuesSchema>;
type Placement = { resources: object; nodeSelector: object; tolerations: object[] };

/** Why each component's resources are what they are: above `resources:` in deploy/ and in values.yaml. */
const RESOURCE_NOTES: Record<Component, string> = {
  agent: `From \`make bench\` (docs/benchmarks.md): 63 MiB resident idle, 66 MiB after a burst of 135
profiles; about 44 MiB of it is the node binary's own pages. The request leaves room for a
larger burst. The limit: 160Mi for the agent itself (twice the request, for clusters with
many more profiles) plus 128Mi for apparmor_parser, which runs in this container's cgroup:
at most two runs at once (JUDGE_SCHEDULE.slots), each held to 64 MiB of address space
(PARSER_LIMITS, node-agent/parser-runner.ts), so a parser bomb can never get the agent
killed. CPU: about 13 ms per rollout and nothing when idle, so a small request and no CPU
limit (throttling would only delay a rollout; the parser has a CPU-time limit of its own).`,
  controller: `From \`make bench\` (docs/benchmarks.md): 85 MiB resident with 100 profiles and 20 nodes, 129 MiB
with 1,000 profiles and 5,000 Nodes cached (up to 159 in runs on a loaded machine); the limit
is twice the larger. No CPU limit: a throttled controller converges late.`,
  webhook: `From \`make bench\` (docs/benchmarks.md): 67 MiB resident idle, 76 MiB right after
saturating it (about 20,000 reviews/s on one core) and 15 s later; the request leaves room
above that, the limit for what a flood of reviews in flight holds: 124 MiB at most under
20 s of the worst reviews at full rate and 100 slowloris connections
(bench/webhook-hostile.bench.ts). No CPU limit: a throttled webhook adds latency to every pod CREATE.`,
};
const AGENT_TOLERATIONS_NOTE =
  "Profiles must reach every node, tainted or not, before pods that need them can go there.";

/** deploy/ is the chart at these values. */
export function defaultValues(): ChartValues {
  return notedKeys(
    {
      image:
        "tag empty: the chart's appVersion. digest (sha256:...): pins the image, the tag is then ignored.",
      kubeletRoot:
        "The kubelet's --root-dir on your nodes: the agent writes <kubeletRoot>/seccomp/lockstep/<name>.json.",
      certificates:
        "self: the webhook issues and renews its own serving certificate; cert-manager: cert-manager does (install it first).",
      metrics:
        "A metrics Service per component (the health port's /metrics); serviceMonitor needs the Prometheus operator's CRD.",
    },
    {
      image: { repository: IMAGE_REPOSITORY, tag: "", digest: "" },
      kubeletRoot: DEFAULT_KUBELET_ROOT,
      logLevel: "info",
      certificates: "self",
      metrics: { service: true, serviceMonitor: false },
      agent: notedKeys(
        { resources: RESOURCE_NOTES.agent, tolerations: AGENT_TOLERATIONS_NOTE },
        {
          resources: { requests: { cpu: "10m", memory: "80Mi" }, limits: { memory: "288Mi" } },
          nodeSelector: { "kubernetes.io/os": "linux" },
          tolerations: [{ operator: "Exists" }],
        },
      ),
      controller: notedKeys(
        { resources: RESOURCE_NOTES.controller },
        {
          replicas: 2,
          resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "320Mi" } },
          nodeSelector: {},
          tolerations: [],
        },
      ),
      webhook: notedKeys(
        { resources: RESOURCE_NOTES.webhook },
        {
          replicas: 2,
          resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "256Mi" } },
          nodeSelector: {},
          tolerations: [],
        },
      ),
    },
  );
}

/** The default values with the image pinned by `digest` (a release's install.yaml and packaged chart). */
export function pinnedValues(digest: string): ChartValues {
  const values = defaultValues();
  values.image.digest = ChartValuesSchema.shape.image.shape.digest.parse(digest);
  return values;
}

/** What the manifests are built from: each a value (deploy/) or a Helm expression (the chart). */
export interface Settings {
  image: Setting<string>;
  kubeletRoot: Setting<string>;
  logLevel: Setting<string>;
  certificates: Setting<ChartValues["certificates"]>;
  metricsService: Setting<boolean>;
  serviceMonitor: Setting<boolean>;
  /** Rendering the Helm chart (not a setting of it): what only helm needs. */
  helmRelease: boolean;
  agent: { [K in keyof Placement]: Setting<Placement[K]> };
  controller: { replicas: Setting<number> } & { [K in keyof Placement]: Setting<Placement[K]> };
  webhook: { replicas: Setting<number> } & { [K in keyof Placement]: Setting<Placement[K]> };
}

/** deploy/'s settings: the values, the image tagged with the release's version. */
export function settingsOf(values: ChartValues, version: string): Settings {
  const { image } = values;
  return {
    image: image.digest
      ? `${image.repository}@${image.digest}`
      : `${image.repository}:${image.tag || version}`,
    kubeletRoot: values.kubeletRoot,
    logLevel: values.logLevel,
    certificates: values.certificates,
    metricsService: values.metrics.service,
    serviceMonitor: values.metrics.serviceMonitor,
    helmRelease: false,
    agent: values.agent,
    controller: values.controller,
    webhook: values.webhook,
  };
}

/** The chart's settings: every one read from `.Values` (the image through the chart's helper). */
export function helmSettings(): Settings {
  const v = (path: string, kind: HelmValue["kind"]) => new HelmValue(`.Values.${path}`, kind);
  const placement = (c: Component) => ({
    resources: v(`${c}.resources`, "block"),
    nodeSelector: v(`${c}.nodeSelector`, "block"),
    tolerations: v(`${c}.tolerations`, "block"),
  });
  return {
    image: new HelmValue(`include "lockstep.image" .`, "string"),
    kubeletRoot: v("kubeletRoot", "string"),
    logLevel: v("logLevel", "string"),
    certificates: v("certificates", "string"),
    metricsService: v("metrics.service", "boolean"),
    serviceMonitor: v("metrics.serviceMonitor", "boolean"),
    helmRelease: true,
    agent: placement("agent"),
    controller: { replicas: v("controller.replicas", "number"), ...placement("controller") },
    webhook: { replicas: v("webhook.replicas", "number"), ...placement("webhook") },
  };
}

const labelsOf = (component: Component) => ({
  "app.kubernetes.io/name": "lockstep",
  "app.kubernetes.io/component": component,
});
const meta = (name: string, component?: Component) => ({
  name,
  namespace: LOCKSTEP_NAMESPACE,
  ...(component ? { labels: labelsOf(component) } : {}),
});
const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
const probes = (extra: object = {}) => ({
  readinessProbe: { httpGet: { path: "/readyz", port: "health" }, periodSeconds: 5 },
  livenessProbe: { httpGet: { path: "/healthz", port: "health" }, periodSeconds: 20, ...extra },
});
const restrictedPod = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  seccompProfile: { type: "RuntimeDefault" },
};
const restrictedContainer = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
};
/** Spreads a component's replicas over nodes: losing a node must not take the component with it. */
const spread = (component: Component) => [
  {
    maxSkew: 1,
    topologyKey: "kubernetes.io/hostname",
    whenUnsatisfiable: "ScheduleAnyway",
    labelSelector: { matchLabels: labelsOf(component) },
  },
];
const placement = (s: Settings[Component]) => ({
  nodeSelector: unlessEmpty(s.nodeSelector),
  tolerations: unlessEmpty(s.tolerations),
});

const serviceAccount = (component: Component) => ({
  apiVersion: "v1",
  kind: "ServiceAccount",
  metadata: meta(SERVICE_ACCOUNTS[component]),
});
const binding = (
  kind: "ClusterRoleBinding" | "RoleBinding",
  name: string,
  component: Component,
  namespace?: string,
) => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind,
  metadata: namespace ? { name, namespace } : { name },
  roleRef: {
    apiGroup: "rbac.authorization.k8s.io",
    kind: kind === "RoleBinding" ? "Role" : "ClusterRole",
    name,
  },
  subjects: [{ kind: "ServiceAccount", name: SERVICE_ACCOUNTS[component], namespace: LOCKSTEP_NAMESPACE }],
});
const rule = (
  why: string,
  apiGroups: string[],
  resources: string[],
  verbs: string[],
  resourceNames?: string[],
) => noted(why, { apiGroups, resources, ...(resourceNames ? { resourceNames } : {}), verbs });
const role = (kind: "ClusterRole" | "Role", name: string, rules: unknown[], namespace?: string) => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind,
  metadata: namespace ? { name, namespace } : { name },
  rules,
});
const disruptionBudget = (component: Component) => ({
  apiVersion: "policy/v1",
  kind: "PodDisruptionBudget",
  metadata: meta(`lockstep-${component}`),
  spec: { minAvailable: 1, selector: { matchLabels: labelsOf(component) } },
});
const logLevel = (s: Settings) => ({ name: "LOG_LEVEL", value: s.logLevel });

export function namespace(): object {
  return noted(
    `Lockstep's own namespace. Pod Security "restricted" is enforced for everything in it except the node
agent, which needs a hostPath and (on AppArmor nodes) CAP_MAC_ADMIN: its DaemonSet is admitted under
"privileged" only because the namespace's enforce level is set per the agent's needs below.
The controller and webhook pass "restricted" (checked in CI against a namespace enforcing it).`,
    {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name: LOCKSTEP_NAMESPACE,
        labels: notedKeys(
          {
            "pod-security.kubernetes.io/enforce": `The agent's pods need a hostPath volume, which "baseline" and "restricted" forbid; the controller
and webhook templates are checked separately against "restricted" (test/integration/deploy.test.ts).`,
          },
          {
            "pod-security.kubernetes.io/enforce": "privileged",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
          },
        ),
      },
    },
  );
}

// --- the agent ----------------------------------------------------------------------------------

/** `<kubelet-root>/seccomp/lockstep` (seccompProfileDir), from a kubelet root that may be a setting. */
const seccompDir = (kubeletRoot: Setting<string>) =>
  joined(kubeletRoot, `/${KUBELET_SECCOMP_DIR}/${SECCOMP_LOCALHOST_DIR}`);

export function agentRbac(): object[] {
  return [
    noted(
      `The node agent's identity and permissions. RBAC cannot say "only your own Node": the
ValidatingAdmissionPolicy in admission-policy.yaml narrows every write to the agent's own Node and
to Lockstep's label keys, using the node name the API server puts into the pod-bound token.`,
      serviceAccount("agent"),
    ),
    role("ClusterRole", "lockstep-agent", [
      rule(
        "Read the profiles to render them for this node. Read-only: the agent never changes a profile.",
        ["lockstep.dev"],
        ["seccompprofiles", "apparmorprofiles"],
        ["get", "list", "watch"],
      ),
      rule(
        `Watch its own Node (field selector metadata.name) for its labels and architecture, and patch its
labels. list/watch cannot be limited to one name by RBAC; patch is limited by the admission policy.`,
        [""],
        ["nodes"],
        ["get", "list", "watch", "patch"],
      ),
      rule(
        `List/watch the metadata of the pods bound to its own Node that have not finished (field selector
spec.nodeName=<node>, status.phase not Succeeded/Failed): their in-use labels keep a profile's file
and loaded AppArmor profile on this node while a pod here still runs with it (DESIGN invariant 6).
RBAC cannot narrow this to one node or to metadata; the agent asks for nothing more (docs/security.md).`,
        [""],
        ["pods"],
        ["list", "watch"],
      ),
      rule(
        `Report what the recorded pods on this node called: server-side apply of its own entry in a
ProfileRecording's status.nodes (docs/adr/0039-profile-recording.md). The status subresource only; the
policy lockstep-agent-own-recording-entry keeps every agent to its own node's entry.`,
        ["lockstep.dev"],
        ["profilerecordings/status"],
        ["patch"],
      ),
      rule(
        `Create Events on the pods of its own node, in their namespaces: "container app: 12 calls logged by its
seccomp profile in the last 60 s: mkdir (12)" (docs/adr/0038). Create only, never read, update or delete;
at most one per pod, container and action per minute, and a bounded number per node. A pod's Event
must be in the pod's namespace, which RBAC cannot narrow to the namespaces that have pods on this node.`,
        [""],
        ["events"],
        ["create"],
      ),
    ]),
    binding("ClusterRoleBinding", "lockstep-agent", "agent"),
    role(
      "Role",
      "lockstep-agent-events",
      [
        rule(
          `Events about cluster-scoped profiles are recorded in "default" (as the kubelet does for Nodes):
"node X: why the profile is not installed". Create only; the agent reads no Events.`,
          [""],
          ["events"],
          ["create"],
        ),
      ],
      PROFILE_EVENTS_NAMESPACE,
    ),
    binding("RoleBinding", "lockstep-agent-events", "agent", PROFILE_EVENTS_NAMESPACE),
  ];
}

/** The host's /proc inside the agent's container (--proc). */
const HOST_PROC = "/host/proc";
/** containerd's CRI bundles, at the path the agent's default --containerd-state expects. */
const CRI_BUNDLES_DIR = `${DEFAULT_CONTAINERD_STATE}/${CRI_BUNDLES}`;

/** The agents' Node PATCHes in a priority level of their own (API Priority and Fairness, ADR 0037). */
export const AGENT_FLOW_CONTROL_NAME = "lockstep-agent";
/**
 * Every agent of a rollout patches its Node within a few hundred milliseconds. All agents are one
 * service account, so by default they are one flow of the `service-accounts` FlowSchema at `workload-low`,
 * whose hand of 6 queues of 50 holds 300 requests: from 1,000 nodes part of each rollout was refused with
 * 429 (ADR 0037). Here they wait instead, in a level sized for 5,000 nodes.
 */
const AGENT_PATCH_QUEUE_LENGTH = 5_000;

export function agentFlowControl(): object[] {
  const name = AGENT_FLOW_CONTROL_NAME;
  return [
    noted(
      `A priority level for the node agents' label PATCHes, so that a rollout to thousands of nodes waits
in a queue instead of being refused with 429 (docs/adr/0037-limits-at-5000-nodes.md).
- One queue (queues 1, handSize 1): all agents are one service account, so they are one flow whatever
  the distinguisher (ByUser gives one user; Nodes have no namespace); shuffle sharding among queues is
  fairness between flows, and there is one. The queue holds 5,000 PATCHes, a rollout to 5,000 nodes;
  a queued request waits at most the API server's queue wait (a quarter of --request-timeout, 15 s).
- nominalConcurrencyShares 20, as global-default: a PATCH of a Node's labels takes milliseconds, so a
  few tens of seats drain a rollout in well under a second of the API server's time, and the level
  cannot crowd out the system's own levels.
- lendablePercent 50: between rollouts the agents send no PATCHes, so half the seats serve others.`,
      {
        apiVersion: "flowcontrol.apiserver.k8s.io/v1",
        kind: "PriorityLevelConfiguration",
        metadata: { name },
        spec: {
          type: "Limited",
          limited: {
            nominalConcurrencyShares: 20,
            lendablePercent: 50,
            limitResponse: {
              type: "Queue",
              queuing: { queues: 1, handSize: 1, queueLengthLimit: AGENT_PATCH_QUEUE_LENGTH },
            },
          },
        },
      },
    ),
    noted(
      `The agents' Node PATCHes, and only those, go to the level above. Their watches and lists stay in
service-accounts (workload-low): they are long-running or once per start, not a rollout's burst.
Precedence 8000 is after every system FlowSchema (at most 900) and before service-accounts (9000).`,
      {
        apiVersion: "flowcontrol.apiserver.k8s.io/v1",
        kind: "FlowSchema",
        metadata: { name },
        spec: {
          priorityLevelConfiguration: { name },
          matchingPrecedence: 8000,
          rules: [
            {
              subjects: [
                {
                  kind: "ServiceAccount",
                  serviceAccount: { name: SERVICE_ACCOUNTS.agent, namespace: LOCKSTEP_NAMESPACE },
                },
              ],
              resourceRules: [
                { verbs: ["patch"], apiGroups: [""], resources: ["nodes"], clusterScope: true },
              ],
            },
          ],
        },
      },
    ),
  ];
}

export function agentDaemonSet(s: Settings): object {
  const dir = seccompDir(s.kubeletRoot);
  return noted(
    `One agent per Linux node. What it is granted, and why:
- hostPath of the kubelet's seccomp folder for Lockstep only (<kubelet root>/seccomp/lockstep),
  not the whole kubelet root: it writes profile files there and nowhere else.
- root (uid 0) without capabilities for the seccomp files: the folder on the node is owned by root,
  and a root process needs no capability to write a folder it owns.
- CAP_MAC_ADMIN and the securityfs (/sys/kernel/security) for AppArmor: loading a policy into the
  kernel needs both. Nothing else: no privileged mode, no host namespaces.
- appArmorProfile Unconfined: the container runtime's default AppArmor profile forbids writing to
  securityfs, which is exactly what loading AppArmor policy is. On nodes without AppArmor it is moot.
- seccomp RuntimeDefault: the agent makes no unusual syscalls itself.
- For what profiles log or refuse (docs/adr/0038), while a seccomp profile on the node logs calls only:
  CAP_AUDIT_READ and hostNetwork, because the kernel sends its audit records to the read-only multicast
  group of the initial network namespace only; the host's /proc read-only (a process's cgroup names its
  container) and containerd's CRI bundles read-only (a container's config.json names its pod).`,
    {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: meta("lockstep-agent", "agent"),
      spec: {
        selector: { matchLabels: labelsOf("agent") },
        // A tenth of the nodes at a time: each restarted agent re-verifies its node before it claims
        // anything (docs/adr/0065-upgrade-and-removal.md), and pods keep running meanwhile.
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%" } },
        template: {
          metadata: { labels: labelsOf("agent") },
          spec: notedKeys(
            { tolerations: AGENT_TOLERATIONS_NOTE },
            {
              serviceAccountName: SERVICE_ACCOUNTS.agent,
              automountServiceAccountToken: true,
              priorityClassName: "system-node-critical",
              ...placement(s.agent),
              terminationGracePeriodSeconds: 30,
              hostNetwork: true,
              dnsPolicy: "ClusterFirstWithHostNet",
              securityContext: { seccompProfile: { type: "RuntimeDefault" } },
              containers: [
                notedKeys(
                  { resources: RESOURCE_NOTES.agent },
                  {
                    name: "agent",
                    image: s.image,
                    command: ["/app/dist/bin/lockstep-agent"],
                    args: [
                      joined("--kubelet-root=", s.kubeletRoot),
                      `--health-port=${HEALTH_PORT}`,
                      `--proc=${HOST_PROC}`,
                    ],
                    env: [fieldEnv("NODE_NAME", "spec.nodeName"), logLevel(s)],
                    ports: [{ name: "health", containerPort: HEALTH_PORT }],
                    ...probes({ failureThreshold: 3 }),
                    resources: s.agent.resources,
                    securityContext: {
                      runAsUser: 0,
                      runAsNonRoot: false,
                      privileged: false,
                      allowPrivilegeEscalation: false,
                      readOnlyRootFilesystem: true,
                      capabilities: { drop: ["ALL"], add: ["MAC_ADMIN", "AUDIT_READ"] },
                      appArmorProfile: { type: "Unconfined" },
                    },
                    volumeMounts: [
                      { name: "seccomp-lockstep", mountPath: dir },
                      { name: "securityfs", mountPath: "/sys/kernel/security" },
                      { name: "tmp", mountPath: "/tmp" },
                      { name: "host-proc", mountPath: HOST_PROC, readOnly: true },
                      { name: "cri-bundles", mountPath: CRI_BUNDLES_DIR, readOnly: true },
                    ],
                  },
                ),
              ],
              volumes: [
                { name: "seccomp-lockstep", hostPath: { path: dir, type: "DirectoryOrCreate" } },
                { name: "securityfs", hostPath: { path: "/sys/kernel/security", type: "Directory" } },
                noted(
                  "apparmor_parser reads policy from a private temporary file; the root file system is read-only.",
                  { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
                ),
                { name: "host-proc", hostPath: { path: "/proc", type: "Directory" } },
                { name: "cri-bundles", hostPath: { path: CRI_BUNDLES_DIR, type: "DirectoryOrCreate" } },
              ],
            },
          ),
        },
      },
    },
  );
}

// --- the controller -----------------------------------------------------------------------------

export const CONTROLLER_LEASE = "lockstep-controller";

export function controllerRbac(): object[] {
  return [
    serviceAccount("controller"),
    role("ClusterRole", "lockstep-controller", [
      rule(
        `Read profiles, and add/remove the in-use finalizer on them (patch). RBAC cannot limit a patch to
one field: the policy in admission-policy.yaml refuses any other change (spec, labels, ...).`,
        ["lockstep.dev"],
        ["seccompprofiles", "apparmorprofiles"],
        ["get", "list", "watch", "patch"],
      ),
      rule(
        "Write the derived status; nothing else of a profile is the controller's.",
        ["lockstep.dev"],
        ["seccompprofiles/status", "apparmorprofiles/status"],
        ["patch"],
      ),
      rule(
        `ProfileRecordings (docs/adr/0039-profile-recording.md): read them, hold them with the
recording-cleanup finalizer (patch; the policy keeps the patch to it), and write their phase and summary.`,
        ["lockstep.dev"],
        ["profilerecordings"],
        ["get", "list", "watch", "patch"],
      ),
      rule(
        "A recording's phase, summary and conditions; the nodes' entries are the agents'.",
        ["lockstep.dev"],
        ["profilerecordings/status"],
        ["patch"],
      ),
      rule(
        `A recording's recorder profile (created while it records, deleted when it ends) and its results.
The policy in admission-policy.yaml allows creating only profiles annotated as one or the other, and
deleting only recorders: the controller never deletes a profile someone wrote.`,
        ["lockstep.dev"],
        ["seccompprofiles"],
        ["create", "delete"],
      ),
      rule(
        "Node labels are the record of what is installed where; read-only, and only metadata is requested.",
        [""],
        ["nodes"],
        ["list", "watch"],
      ),
      rule(
        `In-use protection: a label-selector list of unfinished pods using a profile being deleted (never a
pod cache). The labels are the webhook's; a policy keeps anyone from changing them later.`,
        [""],
        ["pods"],
        ["list"],
      ),
      rule(
        `restartPods of a ProfileRecording: delete the selected pods that started before the recording and
that a controller (ReplicaSet, StatefulSet, Job) recreates, once, so their replacements are recorded. Only
when the recording's author asked for it; pods without such an owner are never deleted.`,
        [""],
        ["pods"],
        ["delete"],
      ),
    ]),
    binding("ClusterRoleBinding", "lockstep-controller", "controller"),
    role(
      "Role",
      "lockstep-controller-events",
      [
        rule(
          `Events about cluster-scoped profiles live in "default": the controller reads the agents'
InstallFailed reports there (why a node lacks a profile) and records its own phase changes.`,
          [""],
          ["events"],
          ["list", "watch", "create"],
        ),
      ],
      PROFILE_EVENTS_NAMESPACE,
    ),
    binding("RoleBinding", "lockstep-controller-events", "controller", PROFILE_EVENTS_NAMESPACE),
    role(
      "Role",
      "lockstep-controller-leader-election",
      [
        rule(
          "Leader election: renew the one Lease, in Lockstep's namespace, by its name.",
          ["coordination.k8s.io"],
          ["leases"],
          ["get", "update"],
          [CONTROLLER_LEASE],
        ),
        rule(
          "Create it the first time: create cannot be limited by name (the Lease does not exist yet).",
          ["coordination.k8s.io"],
          ["leases"],
          ["create"],
        ),
      ],
      LOCKSTEP_NAMESPACE,
    ),
    binding("RoleBinding", "lockstep-controller-leader-election", "controller", LOCKSTEP_NAMESPACE),
  ];
}

export function controllerDeployment(s: Settings): object[] {
  return [
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta("lockstep-controller", "controller"),
      spec: notedKeys(
        {
          replicas: `Two replicas, one leading (Lease lockstep-system/lockstep-controller): a lost node costs at most
the lease duration (15 s) of status updates, never the profiles already installed.`,
        },
        {
          replicas: s.controller.replicas,
          selector: { matchLabels: labelsOf("controller") },
          template: {
            metadata: { labels: labelsOf("controller") },
            spec: {
              serviceAccountName: SERVICE_ACCOUNTS.controller,
              ...placement(s.controller),
              topologySpreadConstraints: spread("controller"),
              securityContext: restrictedPod,
              containers: [
                notedKeys(
                  { resources: RESOURCE_NOTES.controller },
                  {
                    name: "controller",
                    image: s.image,
                    command: ["/app/dist/bin/lockstep-controller"],
                    args: [`--health-port=${HEALTH_PORT}`, "--leader-elect"],
                    env: [
                      fieldEnv("POD_NAMESPACE", "metadata.namespace"),
                      noted(
                        "The Lease's holderIdentity starts with it: `kubectl get lease` names the leading pod.",
                        fieldEnv("POD_NAME", "metadata.name"),
                      ),
                      logLevel(s),
                    ],
                    ports: [{ name: "health", containerPort: HEALTH_PORT }],
                    ...probes(),
                    resources: s.controller.resources,
                    securityContext: restrictedContainer,
                  },
                ),
              ],
            },
          },
        },
      ),
    },
    noted(
      "Keep one controller replica through node drains: status and in-use protection pause without one.",
      disruptionBudget("controller"),
    ),
  ];
}

// --- the webhook --------------------------------------------------------------------------------

export function webhookRbac(s: Settings): unknown[] {
  return [
    serviceAccount("webhook"),
    role("ClusterRole", "lockstep-webhook", [
      rule(
        "Cache both profile kinds: whether a referenced profile exists, is being deleted, or is installed anywhere.",
        ["lockstep.dev"],
        ["seccompprofiles", "apparmorprofiles"],
        ["get", "list", "watch"],
      ),
      rule(
        "A pod that already names its node (spec.nodeName) is checked against that one Node's labels.",
        [""],
        ["nodes"],
        ["get"],
      ),
      onlyIf(
        is(s.certificates, "self"),
        rule(
          `Publish the CA of the self-managed serving certificate into its own webhook configuration only;
the policy lockstep-webhook-ca-bundle-only (admission-policy.yaml) keeps the patch to caBundle.
With cert-manager's certificates there is no such rule: its CA injector writes caBundle.`,
          ["admissionregistration.k8s.io"],
          ["mutatingwebhookconfigurations"],
          ["get", "patch"],
          [WEBHOOK_CONFIGURATION_NAME],
        ),
      ),
      // After the rule above: the cert-manager overlay removes rules/2 by index.
      rule(
        `Cache every ProfileBinding (all namespaces, one list+watch): which bindings act on a pod at CREATE
(docs/adr/0036-profile-bindings.md). Read only: bindings are written by their namespaces' owners.`,
        ["lockstep.dev"],
        ["profilebindings"],
        ["list", "watch"],
      ),
      rule(
        `Record on each binding the pods it bound and could not bind: only the webhook sees a refused pod.
The status subresource only; the API server keeps spec and metadata as they are there.`,
        ["lockstep.dev"],
        ["profilebindings/status"],
        ["patch"],
      ),
      rule(
        `Cache every ProfileRecording (one list+watch): which recording, if any, puts a new pod under its
recorder profile (docs/adr/0039-profile-recording.md). Read only.`,
        ["lockstep.dev"],
        ["profilerecordings"],
        ["list", "watch"],
      ),
    ]),
    binding("ClusterRoleBinding", "lockstep-webhook", "webhook"),
    onlyIf(
      is(s.certificates, "self"),
      role(
        "Role",
        "lockstep-webhook-certificate",
        [
          rule(
            "Read and renew the one Secret holding the webhook's CA and serving certificate.",
            [""],
            ["secrets"],
            ["get", "update"],
            [WEBHOOK_TLS_SECRET],
          ),
          rule(
            `Create it the first time. RBAC cannot restrict create by name (the object has no name until it
exists), so this is namespace-wide; the namespace holds nothing but Lockstep.`,
            [""],
            ["secrets"],
            ["create"],
          ),
        ],
        LOCKSTEP_NAMESPACE,
      ),
    ),
    onlyIf(
      is(s.certificates, "self"),
      binding("RoleBinding", "lockstep-webhook-certificate", "webhook", LOCKSTEP_NAMESPACE),
    ),
  ];
}

export function webhookDeployment(s: Settings): object[] {
  const certManager = is(s.certificates, "cert-manager");
  const listen = [`--port=${WEBHOOK_PORT}`, `--health-port=${HEALTH_PORT}`];
  return [
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta("lockstep-webhook", "webhook"),
      spec: {
        replicas: s.webhook.replicas,
        selector: { matchLabels: labelsOf("webhook") },
        template: {
          metadata: { labels: labelsOf("webhook") },
          spec: notedKeys(
            {
              topologySpreadConstraints:
                "Replicas on different nodes: losing a node must not take pod admission down with it.",
            },
            {
              serviceAccountName: SERVICE_ACCOUNTS.webhook,
              priorityClassName: "system-cluster-critical",
              ...placement(s.webhook),
              topologySpreadConstraints: spread("webhook"),
              terminationGracePeriodSeconds: 30,
              securityContext: restrictedPod,
              containers: [
                notedKeys(
                  { resources: RESOURCE_NOTES.webhook },
                  {
                    name: "webhook",
                    image: s.image,
                    command: ["/app/dist/bin/lockstep-webhook"],
                    // cert-manager: serve the certificate it keeps in a Secret; the webhook re-reads it when
                    // the kubelet updates the mounted files.
                    args: choose(
                      certManager,
                      [...listen, "--cert-mode=files", `--cert-dir=${CERT_DIR}`],
                      [...listen, "--cert-mode=self"],
                    ),
                    env: [fieldEnv("POD_NAMESPACE", "metadata.namespace"), logLevel(s)],
                    ports: [
                      { name: "https", containerPort: WEBHOOK_PORT },
                      { name: "health", containerPort: HEALTH_PORT },
                    ],
                    ...probes(),
                    // Keeps serving for a while once its pod is being deleted: the API server goes on calling
                    // it until its Service's endpoints (a rollout) or the webhook configuration itself (an
                    // uninstall) are gone. The image has no shell: the kubelet's own sleep.
                    lifecycle: { preStop: { sleep: { seconds: WEBHOOK_DRAIN_SECONDS } } },
                    resources: s.webhook.resources,
                    securityContext: restrictedContainer,
                    ...entriesIf(certManager, {
                      volumeMounts: [{ name: "tls", mountPath: CERT_DIR, readOnly: true }],
                    }),
                  },
                ),
              ],
              ...entriesIf(certManager, {
                volumes: [{ name: "tls", secret: { secretName: CERT_MANAGER_SECRET } }],
              }),
            },
          ),
        },
      },
    },
    disruptionBudget("webhook"),
    {
      apiVersion: "v1",
      kind: "Service",
      // helm deletes a Service before anything else of a release and its webhook configuration last:
      // kept, the Service goes with the namespace, after the configuration (docs/adr/0065-upgrade-and-removal.md).
      metadata: { ...meta(WEBHOOK_SERVICE), ...(s.helmRelease ? { annotations: HELM_KEEP } : {}) },
      spec: { selector: labelsOf("webhook"), ports: [{ name: "https", port: 443, targetPort: "https" }] },
    },
  ];
}

/** cert-manager's self-signed Issuer and the webhook's Certificate (certificates: cert-manager). */
export function webhookCertificate(s: Settings): unknown[] {
  const certManager = is(s.certificates, "cert-manager");
  return [
    onlyIf(certManager, {
      apiVersion: "cert-manager.io/v1",
      kind: "Issuer",
      metadata: { name: "lockstep-selfsigned", namespace: LOCKSTEP_NAMESPACE },
      spec: { selfSigned: {} },
    }),
    onlyIf(certManager, {
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name: "lockstep-webhook", namespace: LOCKSTEP_NAMESPACE },
      spec: {
        secretName: CERT_MANAGER_SECRET,
        dnsNames: [
          `${WEBHOOK_SERVICE}.${LOCKSTEP_NAMESPACE}.svc`,
          `${WEBHOOK_SERVICE}.${LOCKSTEP_NAMESPACE}.svc.cluster.local`,
        ],
        issuerRef: { name: "lockstep-selfsigned", kind: "Issuer" },
      },
    }),
  ];
}

/** The annotation that has cert-manager's CA injector fill the webhook configuration's caBundle. */
export function webhookConfigurationAnnotations(s: Settings): Record<string, unknown> {
  return entriesIf(is(s.certificates, "cert-manager"), {
    annotations: { "cert-manager.io/inject-ca-from": `${LOCKSTEP_NAMESPACE}/lockstep-webhook` },
  });
}

export function webhookNetworkPolicy(): object {
  return noted(
    `Who may reach the webhook's pods (docs/security.md, "Who can reach the webhook"). The API server calls
the webhook port; the kubelet probes the health port from the pod's own node, which NetworkPolicy
implementations let through whatever the policy says. Nothing else needs either port.

The API server is not a pod: it runs on the control-plane hosts' network or outside the cluster, so a
NetworkPolicy can only name it by address (ipBlock), and that address is your cluster's, not ours.
As shipped, the webhook port is open to every address (0.0.0.0/0 and ::/0, which in most
implementations includes pods), so admission works on any cluster; every other port of these pods
is closed to everything but their node. To keep pods of the cluster from calling the webhook, replace
both ipBlocks with your control plane's address range (the control-plane nodes' addresses on
kubeadm-style clusters; the control plane's range on managed ones) and check, with a pod that names a
profile, that admission still works: the API server's traffic may come from a tunnel or overlay
address, and a wrong value refuses every such pod (failurePolicy Fail).
The health port also serves /metrics: add a rule for your Prometheus if it scrapes it.`,
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: meta("lockstep-webhook"),
      spec: {
        podSelector: { matchLabels: labelsOf("webhook") },
        policyTypes: ["Ingress"],
        ingress: [
          {
            ports: [{ port: "https", protocol: "TCP" }],
            from: [{ ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }],
          },
        ],
      },
    },
  );
}

// --- metrics ------------------------------------------------------------------------------------

/** The label every metrics Service carries, which the ServiceMonitor selects. */
const METRICS_LABEL = { "lockstep.dev/metrics": "true" };

/** A Service per component for Prometheus to find its pods' /metrics (on the health port). */
export function metricsService(s: Settings, component: Component): unknown {
  return onlyIf(s.metricsService, {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      ...meta(`lockstep-${component}-metrics`, component),
      labels: { ...labelsOf(component), ...METRICS_LABEL },
    },
    spec: {
      selector: labelsOf(component),
      ports: [{ name: "metrics", port: HEALTH_PORT, targetPort: "health" }],
    },
  });
}

/** The Prometheus operator's ServiceMonitor over the metrics Services (needs its CRD; off by default). */
export function serviceMonitor(s: Settings): unknown {
  return onlyIf(s.serviceMonitor, {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: meta("lockstep", undefined),
    spec: {
      selector: { matchLabels: { "app.kubernetes.io/name": "lockstep", ...METRICS_LABEL } },
      endpoints: [{ port: "metrics", path: "/metrics" }],
    },
  });
}
