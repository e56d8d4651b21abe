// One corpus, two validators: the real API server (CRD schema + CEL) and the zod schemas every Lockstep
// part parses with. They must accept and reject the same objects, and the API server's message must
// name the field, so a user sees the error at `kubectl apply` time.
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAppArmorProfile } from "../../src/api/apparmor.ts";
import { LIMITS } from "../../src/api/limits.ts";
import { renderAppArmorProfile } from "../../src/api/render-apparmor.ts";
import { parseSeccompProfile } from "../../src/api/seccomp.ts";
import { kubeErrorCode, kubeErrorMessage } from "../../src/kube/errors.ts";
import { ControlPlane } from "../harness/controlplane.ts";
import { largestAppArmorSpec, largestSeccompSpec } from "../harness/large-profiles.ts";

const root = `${import.meta.dirname}/../..`;

interface Case {
  name: string;
  kind: "SeccompProfile" | "AppArmorProfile";
  spec: Record<string, unknown>;
  /** undefined: valid. Otherwise a pattern the API server's message must match (naming the field). */
  rejectedWith?: RegExp;
}

const allow = (names: string[], extra: Record<string, unknown> = {}) => ({
  names,
  action: "SCMP_ACT_ALLOW",
  ...extra,
});

/** One case per Docker/podman field, each in a profile that is otherwise valid. */
function dockerFieldCases(): Case[] {
  const importHint = "a Docker/podman field that no OCI runtime reads; `lockstep import FILE`";
  const rule = { names: ["read"], action: "SCMP_ACT_ALLOW" };
  const inRule = (field: string, value: unknown): Case => ({
    name: `docker-rule-${field}`,
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_ERRNO", syscalls: [rule, { ...rule, [field]: value }] },
    rejectedWith: new RegExp(`spec\\.syscalls\\[1\\]\\.${field}: .*"${field}": ${escapeRegExp(importHint)}`),
  });
  return [
    {
      name: "docker-archmap",
      kind: "SeccompProfile",
      spec: {
        defaultAction: "SCMP_ACT_ERRNO",
        archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86"] }],
      },
      rejectedWith: new RegExp(`spec\\.archMap: .*"archMap": ${escapeRegExp(importHint)}`),
    },
    {
      name: "podman-default-errno",
      kind: "SeccompProfile",
      spec: { defaultAction: "SCMP_ACT_ERRNO", defaultErrno: "ENOSYS" },
      rejectedWith: new RegExp(`spec\\.defaultErrno: .*"defaultErrno": ${escapeRegExp(importHint)}`),
    },
    inRule("includes", { caps: ["CAP_SYS_ADMIN"] }),
    inRule("excludes", { arches: ["arm64"] }),
    inRule("comment", "allowed for the web server"),
    inRule("errno", "EPERM"),
    inRule("name", "write"),
  ];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

const corpus: Case[] = [
  // valid
  { name: "minimal", kind: "SeccompProfile", spec: { defaultAction: "SCMP_ACT_ALLOW" } },
  { name: "inherits-default", kind: "SeccompProfile", spec: { baseProfileName: "runtime/default" } },
  {
    name: "full-oci",
    kind: "SeccompProfile",
    spec: {
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 1,
      architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
      flags: ["SECCOMP_FILTER_FLAG_LOG"],
      syscalls: [
        allow(["read", "write", "statx", "rseq", "clone3", "openat2"]),
        { names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 38 },
        {
          names: ["personality"],
          action: "SCMP_ACT_ALLOW",
          args: [{ index: 0, value: 0, op: "SCMP_CMP_EQ" }],
        },
        {
          names: ["socket"],
          action: "SCMP_ACT_ALLOW",
          args: [{ index: 0, value: 40, valueTwo: 0, op: "SCMP_CMP_NE" }],
        },
      ],
      nodeSelector: { "node.kubernetes.io/pool": "web", tier: "a" },
      disabled: false,
    },
  },
  {
    name: "structured-aa",
    kind: "AppArmorProfile",
    spec: {
      executables: ["/bin/busybox"],
      paths: { readOnly: ["/etc/**"], readWrite: ["/tmp/**"] },
      network: { families: ["inet"], protocols: ["tcp"] },
      capabilities: ["net_bind_service"],
      mode: "complain",
    },
  },
  {
    name: "raw-aa",
    kind: "AppArmorProfile",
    spec: { rawPolicy: "#include <tunables/global>\nprofile raw-aa {\n  #include <abstractions/base>\n}\n" },
  },
  {
    name: "raw-aa-flags",
    kind: "AppArmorProfile",
    spec: {
      rawPolicy:
        "abi <abi/3.0>,\n#include <tunables/global>\nprofile raw-aa-flags flags=(attach_disconnected) {\n  #include <abstractions/base>\n  include if exists <abstractions/nameservice>\n}\n",
    },
  },
  {
    // Docker's and containerd's templates quote the name; a comment may mention an include.
    name: "aa-raw-quoted",
    kind: "AppArmorProfile",
    spec: {
      rawPolicy:
        '#include <tunables/global>\n# see include <local/README> for site additions\nprofile "aa-raw-quoted" flags=(attach_disconnected,mediate_deleted) {\n  #include <abstractions/base>\n}\n',
    },
  },
  {
    name: "aa-inet6-tcp",
    kind: "AppArmorProfile",
    spec: { network: { families: ["inet", "inet6", "unix"], protocols: ["tcp"] } },
  },
  // invalid
  {
    name: "unknown-action",
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["read"], action: "SCMP_ACT_PERMIT" }] },
    rejectedWith: /spec\.syscalls\[0\]\.action: Unsupported value: "SCMP_ACT_PERMIT"/,
  },
  {
    name: "unknown-default-action",
    kind: "SeccompProfile",
    spec: { defaultAction: "ALLOW" },
    rejectedWith: /spec\.defaultAction: Unsupported value: "ALLOW"/,
  },
  {
    name: "notify",
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_NOTIFY" },
    rejectedWith: /spec\.defaultAction: Unsupported value: "SCMP_ACT_NOTIFY"/,
  },
  {
    name: "unknown-operator",
    kind: "SeccompProfile",
    spec: {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [allow(["personality"], { args: [{ index: 0, value: 0, op: "SCMP_CMP_LIKE" }] })],
    },
    rejectedWith: /spec\.syscalls\[0\]\.args\[0\]\.op: Unsupported value: "SCMP_CMP_LIKE"/,
  },
  {
    name: "errno-with-allow",
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [allow(["mkdir"], { errnoRet: 1 })] },
    rejectedWith: /spec\.syscalls\[0\]\.errnoRet: .*only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE/,
  },
  {
    name: "default-errno-with-kill",
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_KILL", defaultErrnoRet: 1 },
    rejectedWith: /spec\.defaultErrnoRet: .*only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE/,
  },
  {
    name: "seven-args",
    kind: "SeccompProfile",
    spec: {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [
        allow(["ioctl"], {
          args: [0, 1, 2, 3, 4, 5, 5].map((index) => ({ index, value: 1, op: "SCMP_CMP_EQ" })),
        }),
      ],
    },
    rejectedWith: /spec\.syscalls\[0\]\.args: Too many: 7: must have at most 6 items/,
  },
  {
    name: "arg-index-6",
    kind: "SeccompProfile",
    spec: {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [allow(["ioctl"], { args: [{ index: 6, value: 1, op: "SCMP_CMP_EQ" }] })],
    },
    rejectedWith: /spec\.syscalls\[0\]\.args\[0\]\.index: Invalid value: 6: .*less than or equal to 5/,
  },
  {
    name: "empty-names",
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [allow([])] },
    rejectedWith: /spec\.syscalls\[0\]\.names: Invalid value: .*should have at least 1 items/,
  },
  {
    name: "unknown-syscall",
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [allow(["read", "opn"])] },
    rejectedWith: /spec\.syscalls\[0\]\.names\[1\]: Invalid value: "opn": unknown syscall "opn"/,
  },
  {
    name: "no-default-no-base",
    kind: "SeccompProfile",
    spec: { syscalls: [allow(["read"])] },
    rejectedWith: /spec\.defaultAction: .*required unless baseProfileName is set/,
  },
  {
    name: "bad-base-name",
    kind: "SeccompProfile",
    spec: { baseProfileName: "../etc/passwd" },
    rejectedWith: /spec\.baseProfileName: .*invalid base profile "..\/etc\/passwd"/,
  },
  // Docker/podman fields: refused by name with a pointer to `lockstep import`, not pruned.
  ...dockerFieldCases(),
  {
    name: "too-many-rules",
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_ALLOW", syscalls: Array.from({ length: 513 }, () => allow(["read"])) },
    rejectedWith: /spec\.syscalls: Too many: 513: must have at most 512 items/,
  },
  {
    name: "bad-node-selector",
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_ALLOW", nodeSelector: { "bad key!": "x" } },
    rejectedWith: /spec\.nodeSelector: .*every key must be a valid label key/,
  },
  {
    name: "aa-raw-and-structured",
    kind: "AppArmorProfile",
    spec: { rawPolicy: "profile aa-raw-and-structured {}", executables: ["/bin/sh"] },
    rejectedWith: /spec\.rawPolicy: .*cannot be combined with the structured fields/,
  },
  {
    name: "aa-injected-path",
    kind: "AppArmorProfile",
    spec: { paths: { readOnly: ["/etc/** r,\n  /** rwx"] } },
    rejectedWith: /spec\.paths\.readOnly\[0\]: Invalid value: .*should match/,
  },
  {
    name: "aa-unknown-capability",
    kind: "AppArmorProfile",
    spec: { capabilities: ["CAP_SYS_ADMIN"] },
    rejectedWith: /spec\.capabilities\[0\]: Unsupported value: "CAP_SYS_ADMIN"/,
  },
  {
    name: "aa-inet6-icmp",
    kind: "AppArmorProfile",
    spec: { network: { families: ["inet6"], protocols: ["icmp"] } },
    rejectedWith: /spec\.network\.families: .*a family has none of the given protocols/,
  },
  {
    name: "aa-raw-wrong-name",
    kind: "AppArmorProfile",
    spec: {
      rawPolicy: "#include <tunables/global>\nprofile someone-else {\n  #include <abstractions/base>\n}\n",
    },
    rejectedWith: /spec\.rawPolicy: .*must declare "profile aa-raw-wrong-name \{"/,
  },
  {
    name: "aa-raw-foreign-include",
    kind: "AppArmorProfile",
    spec: { rawPolicy: "#include </etc/shadow>\nprofile aa-raw-foreign-include {\n}\n" },
    rejectedWith: /spec\.rawPolicy: .*may include only <tunables\/...> and <abstractions\/...>/,
  },
  {
    name: "aa-raw-local-include",
    kind: "AppArmorProfile",
    spec: {
      rawPolicy: "profile aa-raw-local-include {\n  include if exists <local/aa-raw-local-include>\n}\n",
    },
    rejectedWith: /spec\.rawPolicy: .*may include only <tunables\/...> and <abstractions\/...>/,
  },
  {
    name: "aa-raw-include-after-rule",
    kind: "AppArmorProfile",
    spec: { rawPolicy: 'profile aa-raw-include-after-rule {\n  /etc/x r, include "/etc/shadow"\n}\n' },
    rejectedWith: /spec\.rawPolicy: .*may include only <tunables\/...> and <abstractions\/...>/,
  },
  {
    name: "aa-raw-too-long",
    kind: "AppArmorProfile",
    spec: { rawPolicy: `profile aa-raw-too-long {\n${"#".repeat(64 * 1024)}\n}\n` },
    rejectedWith: /spec\.rawPolicy: Too long: may not be (more|longer) than 65536/,
  },
  {
    name: "aa-path-too-long",
    kind: "AppArmorProfile",
    spec: { paths: { readOnly: [`/${"a".repeat(4096)}`] } },
    rejectedWith: /spec\.paths\.readOnly\[0\]: Too long: may not be (more|longer) than 4096/,
  },
  {
    name: "too-many-names",
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [allow(Array.from({ length: 601 }, () => "read"))] },
    rejectedWith: /spec\.syscalls\[0\]\.names: Too many: 601: must have at most 600 items/,
  },
  {
    name: "empty-syscall-name",
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_ALLOW", syscalls: [allow([""])] },
    rejectedWith: /spec\.syscalls\[0\]\.names\[0\]: Invalid value: "": unknown syscall ""/,
  },
  {
    name: "aa-bad-mode",
    kind: "AppArmorProfile",
    spec: { mode: "audit" },
    rejectedWith: /spec\.mode: Unsupported value: "audit"/,
  },
  {
    // "<name>.json" would not fit in a file name (NAME_MAX 255) on the nodes.
    name: `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(60)}`,
    kind: "SeccompProfile",
    spec: { defaultAction: "SCMP_ACT_ALLOW" },
    rejectedWith: /metadata\.name: Too long: may not be (longer|more) than 250/,
  },
  // Size limits (src/api/limits.ts): the largest specs they allow pass within the CEL cost budget, one
  // name or path character more is refused with the limit named.
  { name: "largest-seccomp", kind: "SeccompProfile", spec: largestSeccompSpec() },
  {
    name: "too-many-syscall-names",
    kind: "SeccompProfile",
    spec: largestSeccompSpec(LIMITS.syscallNamesTotal + 1),
    rejectedWith: new RegExp(`spec\\.syscalls: .*at most ${LIMITS.syscallNamesTotal} syscall names`),
  },
  { name: "largest-apparmor", kind: "AppArmorProfile", spec: largestAppArmorSpec() },
  {
    name: "too-many-path-characters",
    kind: "AppArmorProfile",
    spec: largestAppArmorSpec(LIMITS.policyPathBytes + 4 * LIMITS.pathsPerList),
    rejectedWith: new RegExp(`spec\\.paths: .*at most ${LIMITS.policyPathBytes} characters of paths`),
  },
];

let cp: ControlPlane;
let objects: k8s.CustomObjectsApi;

beforeAll(async () => {
  cp = await ControlPlane.start({ scheduler: false, controllerManager: false });
  await cp.applyFile(`${root}/crds/lockstep.dev_seccompprofiles.yaml`);
  await cp.applyFile(`${root}/crds/lockstep.dev_apparmorprofiles.yaml`);
  objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
});

afterAll(async () => {
  await cp?.stop();
});

function toObject(c: Case) {
  return { apiVersion: "lockstep.dev/v1alpha1", kind: c.kind, metadata: { name: c.name }, spec: c.spec };
}

async function createOnServer(
  c: Case,
  fieldValidation: "Strict" | "Warn" | "Ignore" = "Strict",
): Promise<string | undefined> {
  try {
    await objects.createClusterCustomObject({
      group: "lockstep.dev",
      version: "v1alpha1",
      plural: c.kind === "SeccompProfile" ? "seccompprofiles" : "apparmorprofiles",
      body: toObject(c),
      // Strict by default: an unknown field is an error, as `kubectl apply` reports it, not silently pruned.
      fieldValidation,
    });
    return undefined;
  } catch (error) {
    if (kubeErrorCode(error) === undefined) throw error;
    return kubeErrorMessage(error);
  }
}

/**
 * What Lockstep itself says about an object: the zod schema, and for a raw AppArmor policy also the
 * renderer, which checks the policy text (its profile name, its includes) the way the controller does
 * before it reports phase Invalid.
 */
function lockstepVerdict(c: Case): { ok: true } | { ok: false; message: string } {
  if (c.kind === "SeccompProfile") return parseSeccompProfile(toObject(c));
  const parsed = parseAppArmorProfile(toObject(c));
  if (!parsed.ok) return parsed;
  const rendered = renderAppArmorProfile(c.name, parsed.value.spec);
  return rendered.ok ? { ok: true } : { ok: false, message: rendered.message };
}

describe("the CRD schema and the zod schemas", () => {
  it.each(corpus.map((c) => [c.rejectedWith ? "rejects" : "accepts", c.name, c] as const))(
    "%s %s, on the API server and in zod alike",
    async (_, __, c) => {
      const serverError = await createOnServer(c);
      const parsed = lockstepVerdict(c);
      if (c.rejectedWith) {
        expect(serverError, "the API server accepted it").toBeDefined();
        expect(serverError).toMatch(c.rejectedWith);
        expect(parsed.ok, "zod accepted it").toBe(false);
      } else {
        expect(serverError).toBeUndefined();
        expect(parsed.ok ? "ok" : parsed.message).toBe("ok");
      }
    },
  );

  it("accepts every known syscall name within the CEL cost budget", async () => {
    const { KNOWN_SYSCALLS } = await import("../../src/api/syscalls.ts");
    const c: Case = {
      name: "every-syscall",
      kind: "SeccompProfile",
      spec: { defaultAction: "SCMP_ACT_ERRNO", syscalls: [allow([...KNOWN_SYSCALLS])] },
    };
    expect(await createOnServer(c)).toBeUndefined();
  });
});

describe("Docker and podman fields", () => {
  // Helm, Argo CD and most client libraries do not ask for strict field validation; with Warn or
  // Ignore the API server prunes an undeclared field, and the profile would lose its conditions.
  it.each(
    dockerFieldCases().flatMap((c) =>
      (["Warn", "Ignore"] as const).map((mode) => [c.name, mode, c] as const),
    ),
  )("refuses %s with fieldValidation %s too", async (_, mode, c) => {
    const serverError = await createOnServer({ ...c, name: `${c.name}-${mode.toLowerCase()}` }, mode);
    expect(serverError, "the API server accepted it").toBeDefined();
    expect(serverError).toMatch(c.rejectedWith as RegExp);
  });
});

describe("discovery", () => {
  it("serves both kinds cluster-scoped, with short names and the lockstep category (kubectl get lockstep)", async () => {
    const res = await cp.rawGet("/apis/lockstep.dev/v1alpha1");
    expect(res.status).toBe(200);
    const resources = (
      JSON.parse(res.body) as {
        resources: {
          name: string;
          kind: string;
          namespaced: boolean;
          shortNames?: string[];
          categories?: string[];
        }[];
      }
    ).resources.filter((r) => !r.name.includes("/"));
    expect(resources.map((r) => [r.kind, r.namespaced, r.shortNames, r.categories]).sort()).toEqual([
      ["AppArmorProfile", false, ["aap", "apparmor"], ["lockstep"]],
      ["SeccompProfile", false, ["sp", "seccomp"], ["lockstep"]],
    ]);
  });
});
