// The CustomResourceDefinitions of both profile kinds, built from the same constant lists the zod
// schemas use (actions, operators, syscall names, capabilities, ...), so the two cannot drift on
// what is allowed. `make manifests` writes them to crds/ (files.ts); a unit test fails when crds/ is stale, and an
// integration test proves on a corpus that the API server and zod accept and reject the same objects.
import {
  APPARMOR_MODES,
  DEFAULT_APPARMOR_MODE,
  FAMILY_PROTOCOLS,
  FORBIDDEN_INCLUDE_PATTERN,
  LINUX_CAPABILITIES,
  NETWORK_FAMILIES,
  NETWORK_PROTOCOLS,
  PROFILE_PATH_PATTERN,
} from "../api/apparmor.ts";
import { CONDITION_LIMITS, CONDITION_STATUSES, MAX_MISSING_NODES, PROFILE_PHASES } from "../api/common.ts";
import {
  APPARMOR_PROFILE_KIND,
  GROUP,
  RUNTIME_DEFAULT_PROFILE_NAME,
  SECCOMP_PROFILE_KIND,
  VERSION,
} from "../api/constants.ts";
import { LIMITS } from "../api/limits.ts";
import { APPARMOR_KERNEL_NAME_PREFIX } from "../api/paths.ts";
import {
  DNS_SUBDOMAIN_MAX,
  DNS_SUBDOMAIN_PATTERN,
  inCelString,
  LABEL_NAME_MAX,
  LABEL_NAME_PATTERN,
  LABEL_VALUE_PATTERN,
  REVISION_PATTERN,
} from "../api/patterns.ts";
import { RUNTIME_DEFAULT_SOURCE } from "../api/runtime-default.ts";
import {
  ENGINE_ONLY_PROFILE_FIELDS,
  ENGINE_ONLY_RULE_FIELDS,
  type EngineFieldType,
  ERRNO_ACTIONS,
  ERRNO_ACTIONS_PHRASE,
  engineFieldsMessage,
  MAX_ERRNO,
  MAX_SECCOMP_PROFILE_NAME,
  SECCOMP_ACTIONS,
  SECCOMP_FLAGS,
  SECCOMP_OPERATORS,
  SYSCALL_ARGS,
} from "../api/seccomp.ts";
import { KNOWN_SYSCALLS, SCMP_ARCHES } from "../api/syscalls.ts";

// SCMP_ACT_NOTIFY needs a listener Lockstep does not run; the CRD leaves it out of the enum.
const SUPPORTED_ACTIONS = SECCOMP_ACTIONS.filter((a) => a !== "SCMP_ACT_NOTIFY");
const ERRNO_ACTION_LIST = `[${ERRNO_ACTIONS.map((a) => `'${a}'`).join(", ")}]`;

// Patterns inside CEL rules are single-quoted string literals: their backslashes are doubled.
const DNS_SUBDOMAIN = inCelString(DNS_SUBDOMAIN_PATTERN);
const LABEL_NAME = inCelString(LABEL_NAME_PATTERN);

type Schema = Record<string, unknown>;

const errno = (description: string): Schema => ({
  type: "integer",
  minimum: 0,
  maximum: MAX_ERRNO,
  description,
});

const argValue = (description: string): Schema => ({
  type: "integer",
  minimum: 0,
  // JavaScript reads JSON numbers exactly only up to 2^53-1 (see src/api/seccomp.ts).
  maximum: Number.MAX_SAFE_INTEGER,
  description,
});

// A CEL map literal: `name in {...}` is a constant-cost lookup, where a list would cost one
// comparison per known name and exceed the API server's CEL cost budget for large profiles.
const knownSyscallMap = `{${[...KNOWN_SYSCALLS]
  .sort()
  .map((n) => `'${n}': true`)
  .join(", ")}}`;

const familiesWithProtocols = Object.entries(FAMILY_PROTOCOLS).filter(
  ([, protocols]) => protocols.length > 0,
);
const familyProtocolsMap = `{${familiesWithProtocols
  .map(([family, protocols]) => `'${family}': [${protocols.map((p) => `'${p}'`).join(", ")}]`)
  .join(", ")}}`;
const familyProtocolsText = familiesWithProtocols
  .map(([family, protocols]) => `${family} allows ${protocols.join(", ")}`)
  .join("; ");

/** CEL: the string `k` is a valid label key ([prefix/]name), as isValidLabelKey says. */
export const isLabelKeyCel = (k: string) =>
  `size(${k}) <= 317 && (${k}.contains('/') ? (${k}.split('/').size() == 2 && size(${k}.split('/')[0]) <= ${DNS_SUBDOMAIN_MAX} && ${k}.split('/')[0].matches('${DNS_SUBDOMAIN}') && size(${k}.split('/')[1]) <= ${LABEL_NAME_MAX} && ${k}.split('/')[1].matches('${LABEL_NAME}')) : (size(${k}) <= ${LABEL_NAME_MAX} && ${k}.matches('${LABEL_NAME}')))`;

const nodeSelector: Schema = {
  type: "object",
  description:
    "Install only on nodes whose labels match all of these (like a pod's nodeSelector). Empty: every node.",
  maxProperties: LIMITS.nodeSelectorEntries,
  additionalProperties: { type: "string", maxLength: LABEL_NAME_MAX, pattern: LABEL_VALUE_PATTERN },
  "x-kubernetes-validations": [
    {
      rule: `self.all(k, ${isLabelKeyCel("k")})`,
      message: "every key must be a valid label key ([prefix/]name)",
    },
  ],
};

const disabled: Schema = {
  type: "boolean",
  description: "Remove the profile from every node without deleting it; pods that need it stay Pending.",
};

export const STATUS_SCHEMA: Schema = {
  type: "object",
  description: "Derived by the controller from node labels; never written by users.",
  properties: {
    phase: { type: "string", enum: [...PROFILE_PHASES] },
    ready: { type: "string", description: "installed/desired, as kubectl get prints it" },
    observedGeneration: { type: "integer", format: "int64" },
    revision: {
      type: "string",
      pattern: REVISION_PATTERN,
      description:
        "The profile revision of the current generation: the resourceVersion at which the controller first saw it. A node whose lockstep.dev/<kind>-revision label is at least the highest such revision along the baseProfileName chain (this one, for a profile without a base), and that has no failed.<kind>.lockstep.dev/<name> label, holds this version (or a newer one).",
    },
    version: { type: "string", description: "The version label value of nodes holding the current content" },
    localhostProfile: { type: "string", description: "What a pod writes in localhostProfile" },
    nodes: {
      type: "object",
      properties: { installed: { type: "integer" }, desired: { type: "integer" } },
    },
    missingNodes: {
      type: "array",
      maxItems: MAX_MISSING_NODES,
      items: {
        type: "object",
        properties: { node: { type: "string" }, reason: { type: "string" } },
      },
    },
    conditions: {
      type: "array",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
      items: {
        type: "object",
        required: ["type", "status", "lastTransitionTime", "reason", "message"],
        properties: {
          type: { type: "string", maxLength: CONDITION_LIMITS.type },
          status: { type: "string", enum: [...CONDITION_STATUSES] },
          observedGeneration: { type: "integer", format: "int64", minimum: 0 },
          lastTransitionTime: { type: "string", format: "date-time" },
          reason: { type: "string", maxLength: CONDITION_LIMITS.reason },
          message: { type: "string", maxLength: CONDITION_LIMITS.message },
        },
      },
    },
  },
};

/**
 * Docker/podman fields, declared so that the API server sees them (an undeclared field is pruned
 * silently unless the client asks for strict field validation, and a profile that lost its conditions
 * would allow more than written) and refused by a rule that names the field and points at import.
 * Each is declared with its type, as CEL sees only typed fields.
 */
function engineOnlyFields(fields: Readonly<Record<string, EngineFieldType>>): {
  properties: Schema;
  rules: Schema[];
} {
  const anyObject = { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  const schemaOf: Record<EngineFieldType, Schema> = {
    array: { type: "array", items: anyObject },
    object: anyObject,
    string: { type: "string" },
  };
  return {
    properties: Object.fromEntries(
      Object.entries(fields).map(([field, type]) => [
        field,
        {
          ...schemaOf[type],
          description: "Docker/podman only; refused. Convert the profile with `lockstep import`.",
        },
      ]),
    ),
    rules: Object.keys(fields).map((field) => ({
      rule: `!has(self.${field})`,
      fieldPath: `.${field}`,
      message: engineFieldsMessage([field]),
    })),
  };
}
const engineOnlyProfileFields = engineOnlyFields(ENGINE_ONLY_PROFILE_FIELDS);
const engineOnlyRuleFields = engineOnlyFields(ENGINE_ONLY_RULE_FIELDS);

const seccompSpec: Schema = {
  type: "object",
  description: "The OCI runtime-spec linux.seccomp fields, plus inheritance and node selection.",
  properties: {
    baseProfileName: {
      type: "string",
      maxLength: 253,
      description: `Inherit from another SeccompProfile, or from "${RUNTIME_DEFAULT_PROFILE_NAME}" (containerd ${RUNTIME_DEFAULT_SOURCE.version}'s default policy, for the default capabilities). This profile's rules take over the syscalls they name.`,
      "x-kubernetes-validations": [
        {
          rule: `self == '${RUNTIME_DEFAULT_PROFILE_NAME}' || self.matches('${DNS_SUBDOMAIN}')`,
          messageExpression: `'invalid base profile "' + self + '": must be "${RUNTIME_DEFAULT_PROFILE_NAME}" or the name of a SeccompProfile'`,
        },
      ],
    },
    defaultAction: {
      type: "string",
      enum: SUPPORTED_ACTIONS,
      description: "Action for syscalls no rule matches",
    },
    defaultErrnoRet: errno("errno returned by defaultAction SCMP_ACT_ERRNO (default EPERM)"),
    architectures: {
      type: "array",
      maxItems: LIMITS.architectures,
      items: { type: "string", enum: [...SCMP_ARCHES] },
      description: "Limited on each node to what that node can run.",
    },
    flags: {
      type: "array",
      maxItems: SECCOMP_FLAGS.length,
      items: { type: "string", enum: [...SECCOMP_FLAGS] },
    },
    syscalls: {
      type: "array",
      maxItems: LIMITS.syscallRules,
      items: {
        type: "object",
        required: ["names", "action"],
        properties: {
          names: {
            type: "array",
            minItems: 1,
            maxItems: LIMITS.namesPerRule,
            items: {
              type: "string",
              maxLength: 64,
              "x-kubernetes-validations": [
                { rule: `self in ${knownSyscallMap}`, messageExpression: `'unknown syscall "' + self + '"'` },
              ],
            },
          },
          action: { type: "string", enum: SUPPORTED_ACTIONS },
          errnoRet: errno("errno returned by SCMP_ACT_ERRNO, or passed to the tracer by SCMP_ACT_TRACE"),
          args: {
            type: "array",
            maxItems: SYSCALL_ARGS,
            items: {
              type: "object",
              required: ["index", "value", "op"],
              properties: {
                index: {
                  type: "integer",
                  minimum: 0,
                  maximum: SYSCALL_ARGS - 1,
                  description: `Argument position, 0..${SYSCALL_ARGS - 1}`,
                },
                value: argValue("Value compared with the argument"),
                valueTwo: argValue("Second value, for SCMP_CMP_MASKED_EQ (the value after masking)"),
                op: { type: "string", enum: [...SECCOMP_OPERATORS] },
              },
            },
          },
          ...engineOnlyRuleFields.properties,
        },
        "x-kubernetes-validations": [
          {
            rule: `!has(self.errnoRet) || self.action in ${ERRNO_ACTION_LIST}`,
            fieldPath: ".errnoRet",
            messageExpression: `'errnoRet is ${ERRNO_ACTIONS_PHRASE}, not ' + self.action`,
          },
          ...engineOnlyRuleFields.rules,
        ],
      },
    },
    nodeSelector,
    disabled,
    ...engineOnlyProfileFields.properties,
  },
  "x-kubernetes-validations": [
    ...engineOnlyProfileFields.rules,
    // Totals over all rules: per-rule limits alone let one object reach etcd's request limit (limits.ts).
    {
      rule: `!has(self.syscalls) || self.syscalls.map(r, size(r.names)).sum() <= ${LIMITS.syscallNamesTotal}`,
      fieldPath: ".syscalls",
      message: `at most ${LIMITS.syscallNamesTotal} syscall names in all rules together: merge rules with the same action, or split the profile with baseProfileName`,
    },
    {
      rule: `!has(self.syscalls) || self.syscalls.map(r, has(r.args) ? size(r.args) : 0).sum() <= ${LIMITS.syscallArgsTotal}`,
      fieldPath: ".syscalls",
      message: `at most ${LIMITS.syscallArgsTotal} argument conditions in all rules together`,
    },
    {
      rule: "has(self.defaultAction) || has(self.baseProfileName)",
      fieldPath: ".defaultAction",
      message: `required unless baseProfileName is set (for example "${RUNTIME_DEFAULT_PROFILE_NAME}")`,
    },
    {
      rule: `!has(self.defaultErrnoRet) || !has(self.defaultAction) || self.defaultAction in ${ERRNO_ACTION_LIST}`,
      fieldPath: ".defaultErrnoRet",
      messageExpression: `'defaultErrnoRet is ${ERRNO_ACTIONS_PHRASE}, not ' + self.defaultAction`,
    },
  ],
};

const profilePath: Schema = { type: "string", maxLength: LIMITS.pathLength, pattern: PROFILE_PATH_PATTERN };
const pathList = (description: string): Schema => ({
  type: "array",
  maxItems: LIMITS.pathsPerList,
  items: profilePath,
  description,
});

/** CEL: the characters of the paths in an optional list of paths. */
const pathBytes = (list: string) => `(has(${list}) ? ${list}.map(p, size(p)).sum() : 0)`;

const appArmorSpec: Schema = {
  type: "object",
  description: "A structured policy (executables, paths, network, capabilities) or a raw AppArmor policy.",
  properties: {
    executables: pathList("Programs the confined process may run; they run under the same profile"),
    paths: {
      type: "object",
      properties: {
        readOnly: pathList("Paths (AppArmor globs) the process may read"),
        readWrite: pathList("Paths the process may read and write"),
        writeOnly: pathList("Paths the process may write but not read"),
      },
    },
    network: {
      type: "object",
      // Protocols narrow the inet families; a family left with none of them allowed is a mistake
      // (AppArmor rejects `network inet6 icmp`). The same rule as AppArmorNetworkSchema's.
      "x-kubernetes-validations": [
        {
          rule: `!has(self.families) || !has(self.protocols) || size(self.protocols) == 0 || self.families.all(f, !(f in ${familyProtocolsMap}) || self.protocols.exists(p, p in ${familyProtocolsMap}[f]))`,
          fieldPath: ".families",
          message: `a family has none of the given protocols (${familyProtocolsText})`,
        },
      ],
      properties: {
        families: {
          type: "array",
          maxItems: NETWORK_FAMILIES.length,
          items: { type: "string", enum: [...NETWORK_FAMILIES] },
        },
        protocols: {
          type: "array",
          maxItems: NETWORK_PROTOCOLS.length,
          items: { type: "string", enum: [...NETWORK_PROTOCOLS] },
        },
      },
    },
    capabilities: {
      type: "array",
      maxItems: LIMITS.capabilities,
      items: { type: "string", enum: [...LINUX_CAPABILITIES] },
      description: "Linux capabilities the process may use, lower case without CAP_ (e.g. net_bind_service)",
    },
    rawPolicy: {
      type: "string",
      minLength: 1,
      maxLength: LIMITS.rawPolicyBytes,
      // The cheap, certain check at apply time (the renderer runs the same pattern and names the line);
      // the agent has apparmor_parser judge the rest and reports it in an InstallFailed Event.
      "x-kubernetes-validations": [
        {
          rule: `!self.matches('${FORBIDDEN_INCLUDE_PATTERN}')`,
          message:
            "may include only <tunables/...> and <abstractions/...>: node-local (include if exists <local/...>), quoted, relative and absolute includes are refused",
        },
      ],
      description: `A complete AppArmor profile for experts, loaded as written: exactly one profile, named ${APPARMOR_KERNEL_NAME_PREFIX}<metadata.name> (quoted or not; pods name it so in localhostProfile), with no attachment and no mode flag (spec.mode sets the mode); it may include only <tunables/...> and <abstractions/...>.`,
    },
    mode: { type: "string", enum: [...APPARMOR_MODES], default: DEFAULT_APPARMOR_MODE },
    nodeSelector,
    disabled,
  },
  "x-kubernetes-validations": [
    {
      rule: `${pathBytes("self.executables")} + ${["readOnly", "readWrite", "writeOnly"].map((list) => `(has(self.paths) ? ${pathBytes(`self.paths.${list}`)} : 0)`).join(" + ")} <= ${LIMITS.policyPathBytes}`,
      fieldPath: ".paths",
      message: `at most ${LIMITS.policyPathBytes} characters of paths in executables and paths together: use globs, or a rawPolicy`,
    },
    {
      rule: "!has(self.rawPolicy) || !(has(self.executables) || has(self.paths) || has(self.network) || has(self.capabilities))",
      fieldPath: ".rawPolicy",
      message:
        "cannot be combined with the structured fields (executables, paths, network, capabilities): give one or the other",
    },
  ],
};

// A raw AppArmor policy must declare the profile under its object's kernel name, `lockstep.<name>`
// (appArmorKernelName): the agent loads it under that name and pods refer to it by that name. Only a
// rule on the whole object can see metadata.name. `contains`, not a regex built from the name: a regex
// over 64 KiB exceeds the API server's CEL cost budget, and so do more than two `contains` (no check of
// what follows the name: the agent's parser check names a longer name as a second profile). The same
// test as declaresProfileName in src/api/apparmor.ts; the quoted form is what Docker's and containerd's
// templates write.
const KERNEL_NAME = `'${APPARMOR_KERNEL_NAME_PREFIX}' + self.metadata.name`;
const rawPolicyDeclaresName = {
  rule: `!has(self.spec.rawPolicy) || self.spec.rawPolicy.contains('profile ' + ${KERNEL_NAME}) || self.spec.rawPolicy.contains('profile "' + ${KERNEL_NAME} + '"')`,
  fieldPath: ".spec.rawPolicy",
  messageExpression: `'must declare "profile ' + ${KERNEL_NAME} + ' {": that is the kernel name of the profile, which pods give in localhostProfile'`,
};

/** What sets one Lockstep CRD apart; the frame (group, version, status subresource, category) is shared. */
export interface LockstepCrd {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: "Cluster" | "Namespaced";
  printerColumns: Schema[];
  /** The object's description (`kubectl explain`). */
  what: string;
  metadata: Schema;
  spec: Schema;
  status: Schema;
  objectRules?: Schema[];
}

/** A CustomResourceDefinition of group lockstep.dev, one served and stored version with a status. */
export function lockstepCrd(crd: LockstepCrd) {
  const { kind, plural, objectRules = [] } = crd;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: crd.scope,
      names: {
        kind,
        plural,
        singular: crd.singular,
        listKind: `${kind}List`,
        shortNames: crd.shortNames,
        categories: ["lockstep"],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: crd.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: crd.what,
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: crd.metadata,
                spec: crd.spec,
                status: crd.status,
              },
              ...(objectRules.length > 0 ? { "x-kubernetes-validations": objectRules } : {}),
            },
          },
        },
      ],
    },
  };
}

const PROFILE_PRINTER_COLUMNS: Schema[] = [
  { name: "Status", type: "string", jsonPath: ".status.phase" },
  { name: "Ready", type: "string", jsonPath: ".status.ready", description: "Installed/desired nodes" },
  { name: "Profile", type: "string", jsonPath: ".status.localhostProfile", description: "What a pod writes" },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

function profileCrd(
  kind: string,
  plural: string,
  singular: string,
  shortNames: string[],
  spec: Schema,
  what: string,
  maxNameLength: number,
  objectRules: Schema[] = [],
) {
  return lockstepCrd({
    kind,
    plural,
    singular,
    shortNames,
    // Cluster-scoped: the kubelet's seccomp root and the kernel's AppArmor namespace are node-global.
    scope: "Cluster",
    printerColumns: PROFILE_PRINTER_COLUMNS,
    what,
    metadata: { type: "object", properties: { name: { type: "string", maxLength: maxNameLength } } },
    spec,
    status: STATUS_SCHEMA,
    objectRules,
  });
}

export function seccompProfileCrd() {
  return profileCrd(
    SECCOMP_PROFILE_KIND,
    "seccompprofiles",
    "seccompprofile",
    ["sp", "seccomp"],
    seccompSpec,
    "A seccomp profile that Lockstep installs on nodes as <kubelet-root>/seccomp/lockstep/<name>.json.",
    MAX_SECCOMP_PROFILE_NAME,
  );
}

export function appArmorProfileCrd() {
  return profileCrd(
    APPARMOR_PROFILE_KIND,
    "apparmorprofiles",
    "apparmorprofile",
    ["aap", "apparmor"],
    appArmorSpec,
    `An AppArmor profile that Lockstep loads on every node that has AppArmor, named ${APPARMOR_KERNEL_NAME_PREFIX}<name> in the kernel.`,
    253,
    [rawPolicyDeclaresName],
  );
}
