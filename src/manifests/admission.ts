// The admission configuration in deploy/ and the chart, generated from the same constants and rules the
// code uses (`make manifests`, files.ts; test/unit/manifests.test.ts fails when a committed file is stale):
// - the webhook's MutatingWebhookConfiguration, whose matchConditions find a Lockstep profile the way
//   pod-profiles.ts does (seccompLocalhostPattern is the kubelet's path cleaning, as a regular expression);
// - ValidatingAdmissionPolicies that hold each identity to what docs/security.md says where RBAC cannot
//   express it (RBAC grants verbs on whole objects; these limit which fields change):
//   the agent changes only Lockstep labels of its own Node, the controller only the in-use finalizer and
//   status of profiles, the webhook only caBundle of its own configuration, and nobody changes a pod's
//   in-use labels after the webhook set them at creation.
import {
  APPARMOR_PROFILE_PLURAL,
  FAILED_LABEL_PREFIX,
  GROUP,
  IN_USE_FINALIZER,
  LOCKSTEP_NAMESPACE,
  PROFILE_LABEL_PREFIX,
  type ProfileKind,
  RECORDING_ANNOTATION,
  SECCOMP_PROFILE_PLURAL,
  SERVICE_ACCOUNTS,
  SYNCED_REVISION_LABEL,
  serviceAccountUser,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_PATH,
  WEBHOOK_TIMEOUT_SECONDS,
} from "../api/constants.ts";
import { INSTALL_REPORT_NODE_ANNOTATION } from "../api/install-report.ts";
import {
  AGENT_NODE_LABEL_KEYS,
  AGENT_NODE_LABEL_PREFIXES,
  hasProfileLabelKeyCel,
  profileLabelNameCel,
  seccompLocalhostPattern,
} from "../api/labels.ts";
import { APPARMOR_KERNEL_NAME_PREFIX, SECCOMP_FILE_SUFFIX, SECCOMP_LOCALHOST_DIR } from "../api/paths.ts";
import {
  EPHEMERAL_CONTAINERS_SUBRESOURCE,
  LEGACY_APPARMOR_ANNOTATION_PREFIX,
  LEGACY_APPARMOR_LOCALHOST,
} from "../api/pod-profiles.ts";
import {
  BINDINGS_NAMESPACE_LABEL,
  BINDINGS_NAMESPACE_MODES,
  BINDINGS_WEBHOOK_PATHS,
  PROFILE_BINDING_KIND,
  PROFILE_BINDING_PLURAL,
} from "../api/profile-binding.ts";
import {
  PROFILE_RECORDING_KIND,
  PROFILE_RECORDING_PLURAL,
  ProfileRecordingStatusSchema,
  RECORDED_FROM_ANNOTATION,
  RECORDING_FINALIZER,
  RECORDING_NAMESPACE_ENABLED,
  RECORDING_NAMESPACE_LABEL,
  RECORDING_WEBHOOK_PATH,
} from "../api/profile-recording.ts";

/** A CEL string literal (single-quoted; the values here never hold a quote or a backslash). */
function cel(text: string): string {
  if (/['\\]/.test(text)) throw new Error(`cannot quote ${text} for CEL`);
  return `'${text}'`;
}

const celList = (items: readonly string[]) => `[${items.map(cel).join(", ")}]`;

/** CEL: `field` is the same in object and oldObject, absent in both counting as the same. */
function unchanged(field: string, a = "object", b = "oldObject"): string {
  return `has(${a}.${field}) == has(${b}.${field}) && (!has(${a}.${field}) || ${a}.${field} == ${b}.${field})`;
}

/** CEL: the labels of `obj` (a map, empty when it has none). */
const labelsOf = (obj: string) =>
  `(${obj} != null && has(${obj}.metadata.labels) ? ${obj}.metadata.labels : {})`;

const POD_IN_USE_PREFIXES = Object.values(PROFILE_LABEL_PREFIX);
const isInUseKey = (k: string) => `${celList(POD_IN_USE_PREFIXES)}.exists(p, ${k}.startsWith(p))`;

// --- the webhook's configuration --------------------------------------------------------------

/** CEL: a security context (`ctx`, an expression) names a Lockstep profile, or a path only the webhook can explain. */
function securityContextNamesProfile(ctx: string): string {
  const seccomp = `${ctx}.seccompProfile`;
  const appArmor = `${ctx}.appArmorProfile`;
  return (
    `(has(${ctx}) && ((has(${seccomp}) && has(${seccomp}.localhostProfile) && ` +
    `${seccomp}.localhostProfile.matches(r'${seccompLocalhostPattern()}')) || ` +
    `(has(${appArmor}) && ${appArmor}.type == 'Localhost' && has(${appArmor}.localhostProfile) && ` +
    `${appArmor}.localhostProfile.startsWith(${cel(APPARMOR_KERNEL_NAME_PREFIX)}))))`
  );
}

const CONTAINER_LISTS = ["containers", "initContainers", "ephemeralContainers"] as const;

/** CEL: the pod names a Lockstep profile somewhere (the webhook's and the affinity policy's scope). */
function namesLockstepProfileExpression(): string {
  const inContainers = (list: string) =>
    `(has(object.spec.${list}) && object.spec.${list}.exists(c, ${securityContextNamesProfile("c.securityContext")}))`;
  return [
    securityContextNamesProfile("object.spec.securityContext"),
    ...CONTAINER_LISTS.map(inContainers),
    `(has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith(${cel(LEGACY_APPARMOR_ANNOTATION_PREFIX)}) && object.metadata.annotations[k].startsWith(${cel(LEGACY_APPARMOR_LOCALHOST + APPARMOR_KERNEL_NAME_PREFIX)})))`,
  ].join(" ||\n");
}

/** The matchCondition: which pods the webhook must see. Every other pod is admitted without a call. */
export function referencesLockstepExpression(): string {
  return [
    namesLockstepProfileExpression(),
    // A pod that carries an in-use label without using the profile: the webhook removes it.
    `(has(object.metadata.labels) && object.metadata.labels.exists(k, ${isInUseKey("k")}))`,
  ].join(" ||\n");
}

/** Lockstep's own pods never wait on Lockstep's webhook, and are not held to its work. */
const NOT_LOCKSTEP_NAMESPACE = {
  matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: [LOCKSTEP_NAMESPACE] }],
};

const WEBHOOK_CONFIGURATION_KIND = {
  apiVersion: "admissionregistration.k8s.io/v1",
  kind: "MutatingWebhookConfiguration",
};

/**
 * Namespaces where ProfileBindings act (docs/adr/0036-profile-bindings.md): every pod there reaches the
 * webhook, on the route of the namespace's mode; everywhere else only pods that name a profile do, on
 * the plain route. The selectors do not overlap, so a pod is reviewed by one entry.
 */
const bindingsNamespace = (values: readonly string[], operator: "In" | "NotIn") => ({
  matchExpressions: [
    ...NOT_LOCKSTEP_NAMESPACE.matchExpressions.map((e) => structuredClone(e)),
    { key: BINDINGS_NAMESPACE_LABEL, operator, values: [...values] },
  ],
});

function podWebhook(name: string, path: string, namespaceSelector: object, matchConditions?: object[]) {
  return {
    name,
    admissionReviewVersions: ["v1"],
    sideEffects: "None",
    failurePolicy: "Fail",
    timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
    reinvocationPolicy: "IfNeeded",
    clientConfig: {
      service: { name: "lockstep-webhook", namespace: LOCKSTEP_NAMESPACE, path, port: 443 },
    },
    rules: [
      {
        apiGroups: [""],
        apiVersions: ["v1"],
        operations: ["CREATE"],
        resources: ["pods"],
        scope: "Namespaced",
      },
      {
        apiGroups: [""],
        apiVersions: ["v1"],
        operations: ["UPDATE"],
        resources: [`pods/${EPHEMERAL_CONTAINERS_SUBRESOURCE}`],
        scope: "Namespaced",
      },
    ],
    namespaceSelector,
    ...(matchConditions ? { matchConditions } : {}),
  };
}

/**
 * Namespaces where ProfileRecordings may run (docs/adr/0039-profile-recording.md): every pod there reaches
 * the recording route as well, whatever the bindings label says. Last in the list: the entries before it
 * are reinvoked on the recorded pod (reinvocationPolicy IfNeeded) and leave its recorder profile alone,
 * as a container's own profile, unless a ProfileBinding with override says otherwise.
 */
const recordingNamespace = () => ({
  matchExpressions: [
    ...NOT_LOCKSTEP_NAMESPACE.matchExpressions.map((e) => structuredClone(e)),
    { key: RECORDING_NAMESPACE_LABEL, operator: "In", values: [RECORDING_NAMESPACE_ENABLED] },
  ],
});

export function mutatingWebhookConfiguration(): object {
  return {
    ...WEBHOOK_CONFIGURATION_KIND,
    metadata: { name: WEBHOOK_CONFIGURATION_NAME },
    webhooks: [
      podWebhook(`pods.${GROUP}`, WEBHOOK_PATH, bindingsNamespace(BINDINGS_NAMESPACE_MODES, "NotIn"), [
        { name: "references-a-lockstep-profile", expression: referencesLockstepExpression() },
      ]),
      ...BINDINGS_NAMESPACE_MODES.map((mode) =>
        podWebhook(
          `${mode}.bound-pods.${GROUP}`,
          BINDINGS_WEBHOOK_PATHS[mode],
          bindingsNamespace([mode], "In"),
        ),
      ),
      podWebhook(`recorded-pods.${GROUP}`, RECORDING_WEBHOOK_PATH, recordingNamespace()),
    ],
  };
}

/**
 * A ProfileBinding acts only where the webhook sees every pod, so one in a namespace without the label
 * would bind nothing while its author believes it does: it is refused, and so is `override` where the
 * namespace's label forbids it. Who labels namespaces (cluster admins) decides where bindings act.
 */
export function profileBindingsPolicy(): object[] {
  const label = `(has(namespaceObject.metadata.labels) && ${cel(BINDINGS_NAMESPACE_LABEL)} in namespaceObject.metadata.labels ? namespaceObject.metadata.labels[${cel(BINDINGS_NAMESPACE_LABEL)}] : '')`;
  return policy({
    name: "lockstep-profile-bindings",
    resourceRules: [
      {
        apiGroups: [GROUP],
        apiVersions: ["*"],
        operations: ["CREATE", "UPDATE"],
        resources: [PROFILE_BINDING_PLURAL],
      },
    ],
    variables: [{ name: "mode", expression: label }],
    validations: [
      {
        expression: `variables.mode in ${celList(BINDINGS_NAMESPACE_MODES)}`,
        messageExpression: `'namespace ' + object.metadata.namespace + ' is not labelled ${BINDINGS_NAMESPACE_LABEL}=${BINDINGS_NAMESPACE_MODES.join(" or ")}: the Lockstep webhook does not see its pods, so a ${PROFILE_BINDING_KIND} there would bind nothing. Ask a cluster admin to label it'`,
      },
      {
        expression: "variables.mode != 'no-override' || !has(object.spec.override) || !object.spec.override",
        messageExpression: `'namespace ' + object.metadata.namespace + ' is labelled ${BINDINGS_NAMESPACE_LABEL}=no-override: spec.override is not allowed there'`,
      },
    ],
  });
}

/**
 * A ProfileRecording records only where the webhook sees every pod, so one in a namespace without the
 * label would record nothing while its author waits for it: it is refused at creation. Later updates (stop,
 * the controller's finalizer) pass, so a recording whose namespace lost the label can still end.
 */
export function profileRecordingsPolicy(): object[] {
  const labels = "(has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {})";
  return policy({
    name: "lockstep-profile-recordings",
    resourceRules: [
      {
        apiGroups: [GROUP],
        apiVersions: ["*"],
        operations: ["CREATE"],
        resources: [PROFILE_RECORDING_PLURAL],
      },
    ],
    validations: [
      {
        expression: `${cel(RECORDING_NAMESPACE_LABEL)} in ${labels} && ${labels}[${cel(RECORDING_NAMESPACE_LABEL)}] == ${cel(RECORDING_NAMESPACE_ENABLED)}`,
        messageExpression: `'namespace ' + object.metadata.namespace + ' is not labelled ${RECORDING_NAMESPACE_LABEL}=${RECORDING_NAMESPACE_ENABLED}: the Lockstep webhook does not see its pods, so a ${PROFILE_RECORDING_KIND} there would record nothing. Ask a cluster admin to label it'`,
      },
    ],
  });
}

// --- policies ---------------------------------------------------------------------------------

interface PolicySpec {
  name: string;
  resourceRules: object[];
  namespaceSelector?: object;
  matchConditions?: { name: string; expression: string }[];
  variables?: { name: string; expression: string }[];
  validations: { expression: string; message?: string; messageExpression?: string }[];
  /**
   * Enforced only while Lockstep's webhook configuration exists (a policy parameter that, when missing,
   * allows): a policy that holds pods to what the webhook does must not outlive the webhook, or removing
   * Lockstep would refuse every pod that names a profile (docs/adr/0065-upgrade-and-removal.md).
   */
  whileWebhookConfigured?: boolean;
}

function policy(spec: PolicySpec): object[] {
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: spec.name },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: spec.resourceRules,
          ...(spec.namespaceSelector ? { namespaceSelector: spec.namespaceSelector } : {}),
        },
        ...(spec.whileWebhookConfigured ? { paramKind: WEBHOOK_CONFIGURATION_KIND } : {}),
        ...(spec.matchConditions ? { matchConditions: spec.matchConditions } : {}),
        ...(spec.variables ? { variables: spec.variables } : {}),
        validations: spec.validations.map((v) => ({ ...v, reason: "Forbidden" })),
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name: spec.name },
      spec: {
        policyName: spec.name,
        ...(spec.whileWebhookConfigured
          ? { paramRef: { name: WEBHOOK_CONFIGURATION_NAME, parameterNotFoundAction: "Allow" } }
          : {}),
        validationActions: ["Deny"],
      },
    },
  ];
}

const isUser = (account: keyof typeof SERVICE_ACCOUNTS) => ({
  name: `is-${SERVICE_ACCOUNTS[account]}`,
  expression: `request.userInfo.username == ${cel(serviceAccountUser(account))}`,
});
const subresource = "(has(request.subResource) ? request.subResource : '')";
/** CEL: the metadata a client can write, other than labels and finalizers, is unchanged. */
const OTHER_METADATA_UNCHANGED = ["annotations", "ownerReferences"]
  .map((f) => unchanged(`metadata.${f}`))
  .join(" && ");

/** CEL: the node a pod-bound token was issued for ('' for any other token). */
const TOKEN_NODE_NAME = {
  // A pod-bound token carries the node its pod runs on; the API server exposes it here.
  name: "nodeName",
  expression:
    "'authentication.kubernetes.io/node-name' in request.userInfo.extra && " +
    "size(request.userInfo.extra['authentication.kubernetes.io/node-name']) == 1 ? " +
    "request.userInfo.extra['authentication.kubernetes.io/node-name'][0] : ''",
};

/**
 * Install reports (Events carrying the report's node annotation, install-report.ts): only the agent,
 * and only about its own node. RBAC grants Events by namespace to many identities; without this, anyone
 * who may create an Event there could tell the controller that a node failed a profile, and what the
 * status says about it.
 */
export function agentReportsPolicy(): object[] {
  const annotations = "(has(object.metadata.annotations) ? object.metadata.annotations : {})";
  return policy({
    name: "lockstep-agent-own-install-reports",
    resourceRules: [
      {
        // The same objects through either Events API.
        apiGroups: ["", "events.k8s.io"],
        apiVersions: ["*"],
        operations: ["CREATE", "UPDATE"],
        resources: ["events"],
      },
    ],
    matchConditions: [
      {
        name: "is-an-install-report",
        expression: `${cel(INSTALL_REPORT_NODE_ANNOTATION)} in ${annotations}`,
      },
    ],
    variables: [TOKEN_NODE_NAME],
    validations: [
      {
        expression: `request.userInfo.username == ${cel(serviceAccountUser("agent"))}`,
        message: `only the Lockstep agent may write an Event annotated ${INSTALL_REPORT_NODE_ANNOTATION} (an install report)`,
      },
      {
        expression: `variables.nodeName != '' && object.metadata.annotations[${cel(INSTALL_REPORT_NODE_ANNOTATION)}] == variables.nodeName`,
        messageExpression: `'the Lockstep agent may only report about its own node (' + variables.nodeName + '), not ' + object.metadata.annotations[${cel(INSTALL_REPORT_NODE_ANNOTATION)}]`,
      },
    ],
  });
}

/**
 * A ProfileRecording's status.nodes: each node's agent writes its own entry (server-side apply) and
 * nothing else, so no agent can add calls to another node's report, remove them, or move the
 * controller's phase and summary. RBAC grants the agent the status subresource of every recording.
 */
export function agentRecordingEntryPolicy(): object[] {
  const nodes = (obj: string) =>
    `(${obj} != null && has(${obj}.status) && has(${obj}.status.nodes) ? ${obj}.status.nodes : [])`;
  const others = (obj: string) => `${nodes(obj)}.filter(e, e.node != variables.nodeName)`;
  const controllerFields = Object.keys(ProfileRecordingStatusSchema.shape).filter((f) => f !== "nodes");
  const sameStatusField = (f: string) =>
    `(has(object.status) && has(object.status.${f})) == (has(oldObject.status) && has(oldObject.status.${f})) && (!has(object.status) || !has(object.status.${f}) || object.status.${f} == oldObject.status.${f})`;
  return policy({
    name: "lockstep-agent-own-recording-entry",
    resourceRules: [
      {
        apiGroups: [GROUP],
        apiVersions: ["*"],
        operations: ["CREATE", "UPDATE", "DELETE"],
        resources: [PROFILE_RECORDING_PLURAL, `${PROFILE_RECORDING_PLURAL}/status`],
      },
    ],
    matchConditions: [isUser("agent")],
    variables: [TOKEN_NODE_NAME],
    validations: [
      {
        expression: `request.operation == 'UPDATE' && ${subresource} == 'status' && variables.nodeName != ''`,
        message: `the Lockstep agent may only update the status of a ${PROFILE_RECORDING_KIND}, with a token bound to its node`,
      },
      {
        expression: `${others("object")} == ${others("oldObject")}`,
        messageExpression:
          "'the Lockstep agent of ' + variables.nodeName + ' may only write its own entry of status.nodes'",
      },
      {
        expression: controllerFields.map(sameStatusField).join(" && "),
        message: `the Lockstep agent may only write its own entry of status.nodes: ${controllerFields.join(", ")} are the controller's`,
      },
    ],
  });
}

/** The agent: Lockstep label keys of its own Node, nothing else (DESIGN invariant 5). */
export function agentPolicy(): object[] {
  // Exactly the keys the agent sets (labels.ts, the rule its label patch removes by): its presence,
  // capability and revision labels, its failure labels and its nodeSelector record. Not the pods'
  // in-use prefixes: no released agent wrote per-profile labels on a Node (ADR 0024, ADR 0034).
  const isAgentKey = (k: string) =>
    `(${k} in ${celList(AGENT_NODE_LABEL_KEYS)} || ${celList(AGENT_NODE_LABEL_PREFIXES)}.exists(p, ${k}.startsWith(p)))`;
  const allowed = `${AGENT_NODE_LABEL_KEYS.join(", ")} and labels under ${AGENT_NODE_LABEL_PREFIXES.join(", ")}`;
  return policy({
    name: "lockstep-agent-own-node-labels",
    resourceRules: [
      {
        apiGroups: [""],
        apiVersions: ["v1"],
        operations: ["CREATE", "UPDATE", "DELETE"],
        resources: ["nodes", "nodes/status"],
      },
    ],
    matchConditions: [isUser("agent")],
    variables: [
      TOKEN_NODE_NAME,
      { name: "oldLabels", expression: labelsOf("oldObject") },
      { name: "newLabels", expression: labelsOf("object") },
    ],
    validations: [
      {
        expression: `request.operation == 'UPDATE' && ${subresource} == ''`,
        message: "the Lockstep agent may only update Node labels, never create, delete or change status",
      },
      {
        expression: "variables.nodeName != '' && object.metadata.name == variables.nodeName",
        messageExpression:
          "'the Lockstep agent may only change its own Node (' + variables.nodeName + '), not ' + object.metadata.name",
      },
      {
        expression:
          `variables.newLabels.all(k, ${isAgentKey("k")} || (k in variables.oldLabels && variables.oldLabels[k] == variables.newLabels[k])) && ` +
          `variables.oldLabels.all(k, ${isAgentKey("k")} || k in variables.newLabels)`,
        message: `the Lockstep agent may only change the labels ${allowed}`,
      },
      {
        // ownerReferences would let the garbage collector delete the Node; a finalizer would keep it forever.
        expression: `${unchanged("spec")} && ${OTHER_METADATA_UNCHANGED} && ${unchanged("metadata.finalizers")}`,
        message:
          "the Lockstep agent may only change labels: spec (taints), annotations, ownerReferences and finalizers stay as they are",
      },
    ],
  });
}

/**
 * The controller: the in-use finalizer (profiles) and status (profiles/status); its finalizer and status
 * of ProfileRecordings; and, for recordings only (docs/adr/0039-profile-recording.md), creating a
 * SeccompProfile that says it is a recorder or a recording's result, and deleting a recorder.
 */
export function controllerPolicy(): object[] {
  const ours = [IN_USE_FINALIZER, RECORDING_FINALIZER];
  const withoutOurs = (obj: string) =>
    `(has(${obj}.metadata.finalizers) ? ${obj}.metadata.finalizers : []).filter(f, !(f in ${celList(ours)}))`;
  const plurals = [SECCOMP_PROFILE_PLURAL, APPARMOR_PROFILE_PLURAL, PROFILE_RECORDING_PLURAL];
  const annotated = (obj: string, key: string) =>
    `has(${obj}.metadata.annotations) && ${cel(key)} in ${obj}.metadata.annotations`;
  const isSeccomp = `request.resource.resource == ${cel(SECCOMP_PROFILE_PLURAL)} && ${subresource} == ''`;
  return policy({
    name: "lockstep-controller-finalizer-and-status",
    resourceRules: [
      {
        apiGroups: [GROUP],
        apiVersions: ["*"],
        operations: ["CREATE", "UPDATE", "DELETE"],
        resources: [...plurals, ...plurals.map((p) => `${p}/status`)],
      },
    ],
    matchConditions: [isUser("controller")],
    validations: [
      {
        expression:
          `request.operation == 'UPDATE' || ` +
          `(request.operation == 'CREATE' && ${isSeccomp} && (${annotated("object", RECORDING_ANNOTATION)} || ${annotated("object", RECORDED_FROM_ANNOTATION)})) || ` +
          `(request.operation == 'DELETE' && ${isSeccomp} && ${annotated("oldObject", RECORDING_ANNOTATION)})`,
        message: `the Lockstep controller may only update profiles, create a SeccompProfile annotated ${RECORDING_ANNOTATION} or ${RECORDED_FROM_ANNOTATION}, and delete one annotated ${RECORDING_ANNOTATION}`,
      },
      {
        // On the status subresource the API server keeps everything but status, so this holds there too.
        expression: `request.operation != 'UPDATE' || (${unchanged("spec")} && ${unchanged("metadata.labels")} && ${OTHER_METADATA_UNCHANGED} && ${withoutOurs("object")} == ${withoutOurs("oldObject")})`,
        message: `the Lockstep controller may only add or remove its finalizers (${ours.join(", ")}) and write status: spec, labels, annotations, ownerReferences and other finalizers stay as they are`,
      },
    ],
  });
}

/** The webhook: caBundle of its own MutatingWebhookConfiguration, nothing else of it. */
export function webhookPolicy(): object[] {
  const webhookFields = [
    "clientConfig.url",
    "clientConfig.service",
    "rules",
    "failurePolicy",
    "matchPolicy",
    "namespaceSelector",
    "objectSelector",
    "sideEffects",
    "timeoutSeconds",
    "admissionReviewVersions",
    "reinvocationPolicy",
    "matchConditions",
  ];
  const sameWebhook = webhookFields.map((f) => unchanged(f, "w", "o")).join(" && ");
  return policy({
    name: "lockstep-webhook-ca-bundle-only",
    resourceRules: [
      {
        apiGroups: ["admissionregistration.k8s.io"],
        apiVersions: ["*"],
        operations: ["CREATE", "UPDATE", "DELETE"],
        resources: ["mutatingwebhookconfigurations"],
      },
    ],
    matchConditions: [isUser("webhook")],
    validations: [
      {
        expression: `request.operation == 'UPDATE' && object.metadata.name == ${cel(WEBHOOK_CONFIGURATION_NAME)}`,
        message: `the Lockstep webhook may only update the caBundle of ${WEBHOOK_CONFIGURATION_NAME}`,
      },
      {
        // Webhook names are unique within a configuration (the API server validates it).
        expression:
          `${unchanged("metadata.labels")} && ${OTHER_METADATA_UNCHANGED} && ${unchanged("metadata.finalizers")} && ` +
          `size(object.webhooks) == size(oldObject.webhooks) && ` +
          `object.webhooks.all(w, oldObject.webhooks.exists(o, o.name == w.name && ${sameWebhook}))`,
        message: `the Lockstep webhook may only change clientConfig.caBundle of ${WEBHOOK_CONFIGURATION_NAME}: rules, URLs, selectors and the rest stay as they are`,
      },
    ],
  });
}

/** Nobody changes a pod's in-use labels after creation: the controller's in-use protection relies on them. */
export function podInUseLabelsPolicy(): object[] {
  return policy({
    name: "lockstep-pod-in-use-labels",
    resourceRules: [
      { apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["pods", "pods/*"] },
    ],
    // Every pod subresource that is updated (status, ephemeralcontainers, resize) carries the Pod itself.
    matchConditions: [
      { name: "is-a-pod", expression: "request.kind.group == '' && request.kind.kind == 'Pod'" },
    ],
    variables: [
      { name: "oldLabels", expression: labelsOf("oldObject") },
      { name: "newLabels", expression: labelsOf("object") },
    ],
    validations: [
      {
        expression:
          `variables.newLabels.all(k, !${isInUseKey("k")} || (k in variables.oldLabels && variables.oldLabels[k] == variables.newLabels[k])) && ` +
          `variables.oldLabels.all(k, !${isInUseKey("k")} || k in variables.newLabels)`,
        messageExpression: `'pod ' + object.metadata.name + ': the labels under ${POD_IN_USE_PREFIXES.join(" and ")} record the profiles the pod uses; Lockstep sets them at creation and they cannot change (delete and recreate the pod instead)'`,
      },
    ],
  });
}

/** CEL: every `localhostProfile` of a Localhost `setting` in the pod, at pod level and in every container. */
function localhostProfiles(setting: "seccompProfile" | "appArmorProfile"): string {
  const isLocalhost = (ctx: string) =>
    `has(${ctx}) && has(${ctx}.${setting}) && ${ctx}.${setting}.type == 'Localhost' && has(${ctx}.${setting}.localhostProfile)`;
  const pod = "object.spec.securityContext";
  return [
    `(${isLocalhost(pod)} ? [${pod}.${setting}.localhostProfile] : [])`,
    ...CONTAINER_LISTS.map(
      (list) =>
        `(has(object.spec.${list}) ? object.spec.${list}.filter(c, ${isLocalhost("c.securityContext")}).map(c, c.securityContext.${setting}.localhostProfile) : [])`,
    ),
  ].join(" + ");
}

/** The policy (and its binding) that checks a pod's final affinity: tests switch it off by this name. */
export const POD_NODE_AFFINITY_POLICY = "lockstep-pod-node-affinity";

/**
 * Nobody creates a pod that names a Lockstep profile unless every node-selector term of its required
 * node affinity carries Lockstep's requirement (DESIGN invariant 2), whatever ran after Lockstep's
 * webhook: another mutating webhook that rewrites spec.affinity and is reinvoked after Lockstep's can
 * strip it (each webhook is reinvoked at most once), or the pod was created while the webhook was
 * bypassed. Two checks, both structural:
 * - each profile the pod names (as the kubelet resolves it) has its in-use label, which the webhook sets
 *   for exactly the profiles the pod uses: the label keys are then the distinct profiles, however many
 *   containers name them, and carry the label names CEL cannot compute for a long name (SHA-256);
 * - every term matches no node (no expressions, no fields) or carries, for each in-use label's kind the
 *   revision label with `Gt` and for each in-use label the profile's failure label with `DoesNotExist`.
 * It does not check the revision's value nor the profiles' nodeSelector and AppArmor requirements: CEL
 * cannot read the profiles (docs/adr/0033-final-pod-checked.md).
 */
export function podNodeAffinityPolicy(): object[] {
  const seccompElements = `p.split('/').filter(e, e != '' && e != '.')`;
  const suffix = SECCOMP_FILE_SUFFIX;
  // The kubelet cleans the path (resolveSeccompLocalhost); `..` and a leading `/` are refused by the
  // API server's validation, which runs before this policy. Anything but `lockstep/<name>.json` names no
  // profile and gets '/', which no label key holds: such a pod is refused.
  const seccompName =
    `size(e) == 2 && e[0] == ${cel(SECCOMP_LOCALHOST_DIR)} && e[1].endsWith(${cel(suffix)}) ? ` +
    `e[1].substring(0, size(e[1]) - ${suffix.length}) : '/'`;
  // AppArmor: only `lockstep.<name>` is Lockstep's (docs/adr/0027-apparmor-kernel-names.md); the object
  // name, which the in-use label names, is what follows the prefix.
  const appArmorPrefix = APPARMOR_KERNEL_NAME_PREFIX;
  const legacyLocalhost = LEGACY_APPARMOR_LOCALHOST + APPARMOR_KERNEL_NAME_PREFIX;
  const legacyAnnotation = `object.metadata.annotations[k].startsWith(${cel(legacyLocalhost)})`;
  const kinds: ProfileKind[] = ["seccomp", "apparmor"];
  const labels = "variables.labels";
  const inUse = (kind: ProfileKind) => `variables.${kind}InUse`;
  const exprs = "(has(t.matchExpressions) ? t.matchExpressions : [])";
  const has = (condition: string) => `${exprs}.exists(e, ${condition})`;
  const current = kinds
    .flatMap((kind) => [
      `(size(${inUse(kind)}) == 0 || ${has(`e.key == ${cel(SYNCED_REVISION_LABEL[kind])} && e.operator == 'Gt'`)})`,
      `${inUse(kind)}.all(k, ${has(`e.operator == 'DoesNotExist' && e.key == ${cel(FAILED_LABEL_PREFIX[kind])} + k.substring(${PROFILE_LABEL_PREFIX[kind].length})`)})`,
    ])
    .join(" && ");
  const matchesNoNode = `size(${exprs}) == 0 && (!has(t.matchFields) || size(t.matchFields) == 0)`;
  const required = "object.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution";
  const podName = "'pod ' + (has(object.metadata.name) ? object.metadata.name : '')";
  const bypassed =
    "(another mutating webhook removed it, or the pod did not pass through the Lockstep webhook)";
  return policy({
    name: POD_NODE_AFFINITY_POLICY,
    whileWebhookConfigured: true,
    resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] }],
    namespaceSelector: NOT_LOCKSTEP_NAMESPACE,
    matchConditions: [{ name: "names-a-lockstep-profile", expression: namesLockstepProfileExpression() }],
    variables: [
      {
        name: "seccompNames",
        expression: `(${localhostProfiles("seccompProfile")}).filter(p, p.matches(r'${seccompLocalhostPattern()}')).map(p, ${seccompElements}).map(e, ${seccompName})`,
      },
      {
        name: "apparmorNames",
        expression:
          `(${localhostProfiles("appArmorProfile")}).filter(p, p.startsWith(${cel(appArmorPrefix)})).map(p, p.substring(${appArmorPrefix.length})) + ` +
          `(has(object.metadata.annotations) ? object.metadata.annotations.filter(k, k.startsWith(${cel(LEGACY_APPARMOR_ANNOTATION_PREFIX)}) && ${legacyAnnotation}).map(k, object.metadata.annotations[k].substring(${legacyLocalhost.length})) : [])`,
      },
      // Label names (or stems, profileLabelNameCel), once per reference.
      ...kinds.map((kind) => ({
        name: `${kind}LabelNames`,
        expression: `variables.${kind}Names.map(n, ${profileLabelNameCel("n")})`,
      })),
      { name: "labels", expression: "has(object.metadata.labels) ? object.metadata.labels : {}" },
      ...kinds.map((kind) => ({
        name: `${kind}InUse`,
        expression: `${labels}.filter(k, k.startsWith(${cel(PROFILE_LABEL_PREFIX[kind])}))`,
      })),
      {
        name: "terms",
        expression:
          `has(object.spec.affinity) && has(object.spec.affinity.nodeAffinity) && ` +
          `has(${required}) && has(${required}.nodeSelectorTerms) ? ${required}.nodeSelectorTerms : []`,
      },
    ],
    validations: [
      {
        expression: kinds
          .map(
            (kind) =>
              `variables.${kind}LabelNames.all(n, ${hasProfileLabelKeyCel(labels, PROFILE_LABEL_PREFIX[kind], "n")})`,
          )
          .join(" && "),
        messageExpression: `${podName} + ' names a Lockstep profile without its in-use label (${POD_IN_USE_PREFIXES.join(", ")}), which the Lockstep webhook sets with the node affinity ${bypassed}: the pod could run on a node without the profile. Find the webhook that rewrites the pod (kubectl get mutatingwebhookconfigurations)'`,
      },
      {
        expression: `size(variables.terms) > 0 && variables.terms.all(t, (${matchesNoNode}) || (${current}))`,
        messageExpression: `${podName} + ' names a Lockstep profile, but a node-selector term of spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution lacks the requirement the Lockstep webhook adds ${bypassed}: the pod could run on a node without the profile. Find the webhook that rewrites spec.affinity (kubectl get mutatingwebhookconfigurations)'`,
      },
    ],
  });
}

/** An admission file of deploy/: what its comment says, and its objects. */
export interface AdmissionFile {
  comment: string;
  docs: object[];
}
const file = (comment: string, docs: object[]): AdmissionFile => ({ comment, docs });

/** Each admission file, keyed by its path under deploy/ (files.ts writes them). */
export function admissionFiles(): Record<string, AdmissionFile> {
  return {
    "webhook/mutating-webhook.yaml": file(
      `Only pods that reference a Lockstep profile (or carry an in-use label) reach the webhook
(matchConditions), so failurePolicy Fail is safe: while the webhook is down, every other pod is created as
usual, and a pod that needs a profile is refused with a clear error rather than admitted without its guard.
In a namespace labelled ${BINDINGS_NAMESPACE_LABEL} (enabled or no-override) every pod reaches the webhook,
on the route of that mode, so ProfileBindings apply to pods that name no profile (docs/adr/0036-profile-bindings.md).
In a namespace labelled ${RECORDING_NAMESPACE_LABEL}=${RECORDING_NAMESPACE_ENABLED} every pod also reaches it on the recording
route (the last entry), so an active ProfileRecording puts new pods under its recorder profile (docs/adr/0039-profile-recording.md).
UPDATE of pods/ephemeralcontainers is kubectl debug: a debug container's profile must be on the pod's node.
reinvocationPolicy IfNeeded: another webhook may add a container or a profile after ours ran.
caBundle is written by the webhook itself (--cert-mode=self) or by cert-manager's CA injector.
Lockstep's own namespace is excluded: Lockstep's pods never wait on Lockstep.`,
      [mutatingWebhookConfiguration()],
    ),
    "webhook/admission-policy.yaml": file(
      `lockstep-pod-in-use-labels: the webhook sets a pod's in-use labels at CREATE, exactly the profiles it
uses; after that nobody changes them (not even cluster admins: no one needs to; delete the pod instead), so
nobody can hold a profile by adding one or release it by removing one. Label-preserving updates (kubelet
status writes, controllers' label changes, the garbage collector's ownerReferences) pass.
lockstep-webhook-ca-bundle-only: RBAC lets the webhook patch its one MutatingWebhookConfiguration (by
resourceNames); this keeps that to caBundle (docs/security.md).
lockstep-profile-bindings: a ProfileBinding only where the namespace is labelled for bindings (where every
pod reaches the webhook), and without override where the label says no-override.
lockstep-profile-recordings: a ProfileRecording is created only where the namespace is labelled
${RECORDING_NAMESPACE_LABEL}=${RECORDING_NAMESPACE_ENABLED} (where every pod reaches the webhook's recording route).
lockstep-pod-node-affinity: a pod that names a Lockstep profile is created only if every node-selector term
of its required node affinity carries Lockstep's requirement, whatever webhook ran after Lockstep's; only
while the webhook's configuration exists (its parameter), so removing Lockstep refuses no pod.`,
      [
        ...podInUseLabelsPolicy(),
        ...podNodeAffinityPolicy(),
        ...webhookPolicy(),
        ...profileBindingsPolicy(),
        ...profileRecordingsPolicy(),
      ],
    ),
    "controller/admission-policy.yaml": file(
      `RBAC lets the controller patch profiles (the in-use finalizer) and their status; this keeps that patch
to the finalizer: spec, labels, annotations and other finalizers stay as their owners wrote them. The same
holds for ProfileRecordings (their finalizer and status). RBAC lets it create and delete SeccompProfiles for
recordings; this keeps creation to profiles annotated as a recorder or a recording's result, and deletion
to recorders.`,
      controllerPolicy(),
    ),
    "agent/admission-policy.yaml": file(
      `Pins the node agent to its own Node (DESIGN invariant 5). A pod-bound service-account token carries the
node its pod runs on; the API server exposes it as userInfo.extra["authentication.kubernetes.io/node-name"].
The agent may change only that Node, and only the Lockstep label keys: no other label, annotation,
ownerReference, finalizer or spec field (taints).
lockstep-agent-own-install-reports: an Event annotated ${INSTALL_REPORT_NODE_ANNOTATION} tells the controller
why that node lacks a profile; only the agent of that node may write one.
lockstep-agent-own-recording-entry: each agent writes only its own node's entry of a ProfileRecording's
status.nodes (docs/adr/0039-profile-recording.md), never another node's nor the controller's fields.`,
      [...agentPolicy(), ...agentReportsPolicy(), ...agentRecordingEntryPolicy()],
    ),
  };
}
