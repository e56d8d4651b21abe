// One corpus of ProfileBindings, two validators: the real API server (the CRD from binding-crd.ts, schema
// and CEL) and ProfileBindingSchema, which the webhook parses every cached binding with. They must accept
// and reject the same objects, so a binding the webhook would ignore is refused at `kubectl apply`.
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_VERSION, GROUP, VERSION } from "../../src/api/constants.ts";
import {
  BINDING_LIMITS,
  PROFILE_BINDING_KIND,
  PROFILE_BINDING_PLURAL,
  ProfileBindingSchema,
} from "../../src/api/profile-binding.ts";
import { kubeErrorMessage } from "../../src/kube/errors.ts";
import { ControlPlane } from "../harness/controlplane.ts";

const NS = "default";
let cp: ControlPlane;
let objects: k8s.CustomObjectsApi;

const corpus: { name: string; spec: Record<string, unknown>; valid: boolean }[] = [
  { name: "default", spec: { seccompProfile: "baseline" }, valid: true },
  {
    name: "full",
    spec: {
      podSelector: {
        matchLabels: { app: "web", "example.com/tier": "front" },
        matchExpressions: [
          { key: "zone", operator: "In", values: ["a", "b"] },
          { key: "canary", operator: "DoesNotExist" },
        ],
      },
      image: "registry.example/team/*:1.*",
      seccompProfile: "web",
      appArmorProfile: "web.strict",
      override: true,
    },
    valid: true,
  },
  { name: "no-profile", spec: { image: "nginx:*" }, valid: false },
  {
    name: "bad-label-key",
    spec: { seccompProfile: "x", podSelector: { matchLabels: { "bad key": "v" } } },
    valid: false,
  },
  {
    name: "bad-label-value",
    spec: { seccompProfile: "x", podSelector: { matchLabels: { app: "a b" } } },
    valid: false,
  },
  {
    name: "in-without-values",
    spec: { seccompProfile: "x", podSelector: { matchExpressions: [{ key: "app", operator: "In" }] } },
    valid: false,
  },
  {
    name: "exists-with-values",
    spec: {
      seccompProfile: "x",
      podSelector: { matchExpressions: [{ key: "app", operator: "Exists", values: ["a"] }] },
    },
    valid: false,
  },
  {
    name: "unknown-operator",
    spec: {
      seccompProfile: "x",
      podSelector: { matchExpressions: [{ key: "app", operator: "Gt", values: ["1"] }] },
    },
    valid: false,
  },
  {
    name: "bad-expression-key",
    spec: { seccompProfile: "x", podSelector: { matchExpressions: [{ key: "-app", operator: "Exists" }] } },
    valid: false,
  },
  { name: "image-with-space", spec: { seccompProfile: "x", image: "nginx latest" }, valid: false },
  {
    name: "image-longest",
    spec: { seccompProfile: "x", image: "a".repeat(BINDING_LIMITS.imagePatternChars) },
    valid: true,
  },
  {
    name: "image-too-long",
    spec: { seccompProfile: "x", image: "a".repeat(BINDING_LIMITS.imagePatternChars + 1) },
    valid: false,
  },
  { name: "profile-upper-case", spec: { seccompProfile: "Web" }, valid: false },
  { name: "apparmor-name-with-slash", spec: { appArmorProfile: "a/b" }, valid: false },
  {
    name: "too-many-labels",
    spec: {
      seccompProfile: "x",
      podSelector: {
        matchLabels: Object.fromEntries(
          Array.from({ length: BINDING_LIMITS.matchLabels + 1 }, (_, i) => [`k${i}`, "v"]),
        ),
      },
    },
    valid: false,
  },
  {
    name: "most-labels",
    spec: {
      seccompProfile: "x",
      podSelector: {
        matchLabels: Object.fromEntries(
          Array.from({ length: BINDING_LIMITS.matchLabels }, (_, i) => [`k${i}`, "v"]),
        ),
      },
    },
    valid: true,
  },
];

beforeAll(async () => {
  cp = await ControlPlane.start();
  await cp.applyFile(join(import.meta.dirname, "../../crds/lockstep.dev_profilebindings.yaml"));
  objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
});

afterAll(async () => {
  await cp?.stop();
});

describe("the ProfileBinding CRD and ProfileBindingSchema", () => {
  it.each(corpus)("agree on $name", async ({ name, spec, valid }) => {
    const body = {
      apiVersion: API_VERSION,
      kind: PROFILE_BINDING_KIND,
      metadata: { name, namespace: NS },
      spec,
    };
    expect(ProfileBindingSchema.safeParse(body).success).toBe(valid);
    let apiServer: string | undefined;
    try {
      // Retried while the CRD is being established (404 until its API is served).
      for (let attempt = 0; ; attempt++)
        try {
          await objects.createNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: NS,
            plural: PROFILE_BINDING_PLURAL,
            body,
            dryRun: "All",
          });
          break;
        } catch (error) {
          if (attempt < 50 && error instanceof k8s.ApiException && error.code === 404) {
            await new Promise((r) => setTimeout(r, 200));
            continue;
          }
          throw error;
        }
    } catch (error) {
      apiServer = kubeErrorMessage(error);
    }
    if (valid) expect(apiServer).toBeUndefined();
    else expect(apiServer).toMatch(/spec/);
  });
});
