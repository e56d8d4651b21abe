// The admission configuration in deploy/, generated from the same constants and rules the code uses
// (`make admission`; test/unit/admission-manifests.test.ts fails when a committed file is stale):
// - the webhook's MutatingWebhookConfiguration, whose matchConditions find a Lockstep profile the way
//   pod-profiles.ts does (seccompLocalhostPattern is the kubelet's path cleaning, as a regular expression);
// - ValidatingAdmissionPolicies that hold each identity to what docs/security.md says where RBAC cannot
//   express it (RBAC grants verbs on whole objects; these limit which fields change):
//   the agent changes only Lockstep labels of its own Node, the controller only the in-use finalizer and
//   status of profiles, the webhook only caBundle of its own configuration, and nobody changes a pod's
//   in-use labels after the webhook set them at creation.
import { Document } from "yaml";
import {
  APPARMOR_PROFILE_PLURAL,
  FAILED_LABEL_PREFIX,
  GROUP,
  IN_USE_FINALIZER,
  PROFILE_LABEL_PREFIX,
  SECCOMP_PROFILE_PLURAL,
  SELECTOR_SYNCED_PREFIX,
} from "./constants.ts";
import { INSTALL_REPORT_NODE_ANNOTATION } from "./install-report.ts";
import { seccompLocalhostPattern } from "./labels.ts";
import { EPHEMERAL_CONTAINERS_SUBRESOURCE, LEGACY_APPARMOR_ANNOTATION_PREFIX } from "./pod-profiles.ts";

export const LOCKSTEP_NAMESPACE = "lockstep-system";
/** The webhook server's one route for AdmissionReviews, whichever address the API server reaches it at. */
export const WEBHOOK_PATH = "/mutate";
export const WEBHOOK_CONFIGURATION_NAME = "lockstep-webhook";
/**
 * How long the API server waits for the webhook's answer (timeoutSeconds; the API server allows at most
 * 30). A request the webhook has not fully received by then is answered to nobody, so the webhook's
 * server cuts it off at that age (server.ts).
 */
export const WEBHOOK_TIMEOUT_SECONDS = 5;
/** The Secret the webhook keeps its CA and serving certificate in (--secret; deploy/webhook/rbac.yaml). */
export const WEBHOOK_TLS_SECRET = "lockstep-webhook-tls";
export const SERVICE_ACCOUNTS = {
  agent: "lockstep-agent",
  controller: "lockstep-controller",
  webhook: "lockstep-webhook",
} as const;

/** The username the API server gives a service account's tokens. */
export function serviceAccountUser(account: keyof typeof SERVICE_ACCOUNTS): string {
  return `system:serviceaccount:${LOCKSTEP_NAMESPACE}:${SERVICE_ACCOUNTS[account]}`;
}

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
    `(has(${appArmor}) && ${appArmor}.type == 'Localhost')))`
  );
}

/** The matchCondition: which pods the webhook must see. Every other pod is admitted without a call. */
export function referencesLockstepExpression(): string {
  const inContainers = (list: string) =>
    `(has(object.spec.${list}) && object.spec.${list}.exists(c, ${securityContextNamesProfile("c.securityContext")}))`;
  return [
    securityContextNamesProfile("object.spec.securityContext"),
    inContainers("containers"),
    inContainers("initContainers"),
    inContainers("ephemeralContainers"),
    `(has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith(${cel(LEGACY_APPARMOR_ANNOTATION_PREFIX)}) && object.metadata.annotations[k].startsWith('localhost/')))`,
    // A pod that carries an in-use label without using the profile: the webhook removes it.
    `(has(object.metadata.labels) && object.metadata.labels.exists(k, ${isInUseKey("k")}))`,
  ].join(" ||\n");
}

export function mutatingWebhookConfiguration(): object {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: WEBHOOK_CONFIGURATION_NAME },
    webhooks: [
      {
        name: `pods.${GROUP}`,
        admissionReviewVersions: ["v1"],
        sideEffects: "None",
        failurePolicy: "Fail",
        timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
        reinvocationPolicy: "IfNeeded",
        clientConfig: {
          service: { name: "lockstep-webhook", namespace: LOCKSTEP_NAMESPACE, path: WEBHOOK_PATH, port: 443 },
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
        namespaceSelector: {
          matchExpressions: [
            { key: "kubernetes.io/metadata.name", operator: "NotIn", values: [LOCKSTEP_NAMESPACE] },
          ],
        },
        matchConditions: [
          { name: "references-a-lockstep-profile", expression: referencesLockstepExpression() },
        ],
      },
    ],
  };
}

// --- policies ---------------------------------------------------------------------------------

interface PolicySpec {
  name: string;
  resourceRules: object[];
  matchConditions?: { name: string; expression: string }[];
  variables?: { name: string; expression: string }[];
  validations: { expression: string; message?: string; messageExpression?: string }[];
}

function policy(spec: PolicySpec): object[] {
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name: spec.name },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: { resourceRules: spec.resourceRules },
        ...(spec.matchConditions ? { matchConditions: spec.matchConditions } : {}),
        ...(spec.variables ? { variables: spec.variables } : {}),
        validations: spec.validations.map((v) => ({ ...v, reason: "Forbidden" })),
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name: spec.name },
      spec: { policyName: spec.name, validationActions: ["Deny"] },
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

/** The agent: Lockstep label keys of its own Node, nothing else (DESIGN invariant 5). */
export function agentPolicy(): object[] {
  // Its failure labels, its revision, presence and capability labels (lockstep.dev/...), and an older
  // agent's per-profile labels, which it removes (docs/adr/0024-node-labels-that-scale.md).
  const prefixes = [
    ...Object.values(FAILED_LABEL_PREFIX),
    SELECTOR_SYNCED_PREFIX,
    ...POD_IN_USE_PREFIXES,
    `${GROUP}/`,
  ];
  const isAgentKey = (k: string) => `${celList(prefixes)}.exists(p, ${k}.startsWith(p))`;
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
        message: `the Lockstep agent may only change labels under ${prefixes.join(", ")}`,
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

/** The controller: the in-use finalizer (profiles) and status (profiles/status), nothing else. */
export function controllerPolicy(): object[] {
  const withoutOurs = (obj: string) =>
    `(has(${obj}.metadata.finalizers) ? ${obj}.metadata.finalizers : []).filter(f, f != ${cel(IN_USE_FINALIZER)})`;
  const plurals = [SECCOMP_PROFILE_PLURAL, APPARMOR_PROFILE_PLURAL];
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
        expression: "request.operation == 'UPDATE'",
        message: "the Lockstep controller may only update profiles, never create or delete them",
      },
      {
        // On the status subresource the API server keeps everything but status, so this holds there too.
        expression: `${unchanged("spec")} && ${unchanged("metadata.labels")} && ${OTHER_METADATA_UNCHANGED} && ${withoutOurs("object")} == ${withoutOurs("oldObject")}`,
        message: `the Lockstep controller may only add or remove the ${IN_USE_FINALIZER} finalizer and write status: spec, labels, annotations, ownerReferences and other finalizers stay as they are`,
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

const HEADER = "# Generated by `make admission` from src/api/admission-manifests.ts. Do not edit by hand.\n";

function file(comment: string, docs: object[]): string {
  const body = docs.map((d) => new Document(d).toString({ lineWidth: 0 })).join("---\n");
  const commentLines = comment
    .trim()
    .split("\n")
    .map((l) => `# ${l}`.trimEnd())
    .join("\n");
  return `${HEADER}${commentLines}\n${body}`;
}

/** The text of each generated admission file, keyed by its path in the repository. */
export function admissionFiles(): Record<string, string> {
  return {
    "deploy/webhook/mutating-webhook.yaml": file(
      `Only pods that reference a Lockstep profile (or carry an in-use label) reach the webhook
(matchConditions), so failurePolicy Fail is safe: while the webhook is down, every other pod is created as
usual, and a pod that needs a profile is refused with a clear error rather than admitted without its guard.
UPDATE of pods/ephemeralcontainers is kubectl debug: a debug container's profile must be on the pod's node.
reinvocationPolicy IfNeeded: another webhook may add a container or a profile after ours ran.
caBundle is written by the webhook itself (--cert-mode=self) or by cert-manager's CA injector.
Lockstep's own namespace is excluded: Lockstep's pods never wait on Lockstep.`,
      [mutatingWebhookConfiguration()],
    ),
    "deploy/webhook/admission-policy.yaml": file(
      `lockstep-pod-in-use-labels: the webhook sets a pod's in-use labels at CREATE, exactly the profiles it
uses; after that nobody changes them (not even cluster admins: no one needs to; delete the pod instead), so
nobody can hold a profile by adding one or release it by removing one. Label-preserving updates (kubelet
status writes, controllers' label changes, the garbage collector's ownerReferences) pass.
lockstep-webhook-ca-bundle-only: RBAC lets the webhook patch its one MutatingWebhookConfiguration (by
resourceNames); this keeps that to caBundle (docs/security.md).`,
      [...podInUseLabelsPolicy(), ...webhookPolicy()],
    ),
    "deploy/controller/admission-policy.yaml": file(
      `RBAC lets the controller patch profiles (the in-use finalizer) and their status; this keeps that patch
to the finalizer: spec, labels, annotations and other finalizers stay as their owners wrote them.`,
      controllerPolicy(),
    ),
    "deploy/agent/admission-policy.yaml": file(
      `Pins the node agent to its own Node (DESIGN invariant 5). A pod-bound service-account token carries the
node its pod runs on; the API server exposes it as userInfo.extra["authentication.kubernetes.io/node-name"].
The agent may change only that Node, and only the Lockstep label keys: no other label, annotation,
ownerReference, finalizer or spec field (taints).
lockstep-agent-own-install-reports: an Event annotated ${INSTALL_REPORT_NODE_ANNOTATION} tells the controller
why that node lacks a profile; only the agent of that node may write one.`,
      [...agentPolicy(), ...agentReportsPolicy()],
    ),
  };
}
