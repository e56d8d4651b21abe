// Proves the harness is a real control plane: CRDs with printer columns, the real scheduler binding
// pods, PodSecurity admission, pod-bound tokens, and no process left behind.
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubeErrorCode, kubeErrorMessage } from "../../src/kube/errors.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";

let cp: ControlPlane;
let core: k8s.CoreV1Api;

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  for (const name of ["node-a", "node-b", "node-c"]) await cp.addNode(name);
});

afterAll(async () => {
  await cp?.stop();
});

describe("the test control plane", () => {
  it("serves a CRD with the printer columns kubectl get shows", async () => {
    const ext = cp.kubeConfig().makeApiClient(k8s.ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: "gadgets.smoke.lockstep.dev" },
        spec: {
          group: "smoke.lockstep.dev",
          scope: "Cluster",
          names: { plural: "gadgets", singular: "gadget", kind: "Gadget" },
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: "object",
                  properties: { spec: { type: "object", properties: { colour: { type: "string" } } } },
                },
              },
              additionalPrinterColumns: [{ name: "Colour", type: "string", jsonPath: ".spec.colour" }],
            },
          ],
        },
      },
    });
    const objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
    await waitFor("the Gadget API to be served", async () => {
      await objects.listClusterCustomObject({
        group: "smoke.lockstep.dev",
        version: "v1",
        plural: "gadgets",
      });
      return true;
    });
    await objects.createClusterCustomObject({
      group: "smoke.lockstep.dev",
      version: "v1",
      plural: "gadgets",
      body: {
        apiVersion: "smoke.lockstep.dev/v1",
        kind: "Gadget",
        metadata: { name: "g1" },
        spec: { colour: "teal" },
      },
    });

    const table = await cp.getTable("/apis/smoke.lockstep.dev/v1/gadgets");
    expect(table.columns).toEqual(["NAME", "COLOUR"]);
    expect(table.rows).toHaveLength(1);
    expect(table.rows[0]?.slice(0, 2)).toEqual(["g1", "teal"]);
  });

  it("binds a Deployment's pods to the simulated nodes with the real kube-scheduler", async () => {
    const apps = cp.kubeConfig().makeApiClient(k8s.AppsV1Api);
    const labels = { app: "smoke" };
    await apps.createNamespacedDeployment({
      namespace: "default",
      body: {
        metadata: { name: "smoke" },
        spec: {
          replicas: 4,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: "c", image: "busybox" }] },
          },
        },
      },
    });
    const pods = await waitFor(
      "4 pods bound to nodes",
      async () => {
        const list = await core.listNamespacedPod({ namespace: "default", labelSelector: "app=smoke" });
        const bound = list.items.filter((p) => p.spec?.nodeName);
        return bound.length === 4 ? bound : undefined;
      },
      { timeoutMs: 60_000 },
    );
    for (const pod of pods) expect(["node-a", "node-b", "node-c"]).toContain(pod.spec?.nodeName);
  });

  it("enforces Pod Security restricted on a labelled namespace", async () => {
    await core.createNamespace({
      body: {
        metadata: { name: "locked", labels: { "pod-security.kubernetes.io/enforce": "restricted" } },
      },
    });
    const privileged = core.createNamespacedPod({
      namespace: "locked",
      body: {
        metadata: { name: "root" },
        spec: { containers: [{ name: "c", image: "busybox", securityContext: { privileged: true } }] },
      },
    });
    const error = await privileged.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(kubeErrorCode(error)).toBe(403);
    expect(kubeErrorMessage(error)).toMatch(/violates PodSecurity "restricted:latest": privileged/);
  });

  it("mints pod-bound service-account tokens that carry the pod's node name", async () => {
    await core.createNamespacedServiceAccount({
      namespace: "default",
      body: { metadata: { name: "agent" } },
    });
    await core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "agent-pod" },
        spec: {
          nodeName: "node-b",
          serviceAccountName: "agent",
          containers: [{ name: "c", image: "busybox" }],
        },
      },
    });
    const token = await cp.podBoundToken("default", "agent", "agent-pod");
    const auth = cp.kubeConfigWithToken(token).makeApiClient(k8s.AuthenticationV1Api);
    const review = await auth.createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe("system:serviceaccount:default:agent");
    expect(review.status?.userInfo?.extra?.["authentication.kubernetes.io/node-name"]).toEqual(["node-b"]);
  });

  it("acts as any user, with that user's own permissions", async () => {
    const nobody = (await cp.kubeConfigAs("nobody")).makeApiClient(k8s.CoreV1Api);
    await expect(nobody.listNode()).rejects.toMatchObject({ code: 403 });
  });
});

describe("the harness's own clean-up", () => {
  it("leaves no process behind after stop", async () => {
    const second = await ControlPlane.start({ scheduler: false, controllerManager: false });
    const pids = second.processes.map((p) => p.pid);
    expect(pids).toHaveLength(2);
    await second.stop();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
