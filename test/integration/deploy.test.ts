// The whole of deploy/ applies to a real API server, and Lockstep practises what it preaches: the
// controller's and the webhook's pods pass Pod Security "restricted".
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubeErrorMessage } from "../../src/kube/errors.ts";
import { applyYaml } from "../harness/apply.ts";
import { ControlPlane } from "../harness/controlplane.ts";

const root = join(import.meta.dirname, "../..");

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((entry) => {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) return entry === "cert-manager" ? [] : yamlFilesUnder(path);
      return entry.endsWith(".yaml") && entry !== "kustomization.yaml" ? [path] : [];
    })
    .sort();
}

/** Namespaces and CRDs first, as `kubectl apply -k` orders them, then everything else. */
function deployDocuments(): { file: string; doc: k8s.KubernetesObject }[] {
  const files = [...yamlFilesUnder(join(root, "crds")), ...yamlFilesUnder(join(root, "deploy"))];
  const docs = files.flatMap((file) =>
    (k8s.loadAllYaml(readFileSync(file, "utf8")) as k8s.KubernetesObject[])
      .filter((doc) => doc?.kind)
      .map((doc) => ({ file: relative(root, file), doc })),
  );
  const rank = (kind?: string) => (kind === "Namespace" ? 0 : kind === "CustomResourceDefinition" ? 1 : 2);
  return docs.sort((a, b) => rank(a.doc.kind) - rank(b.doc.kind));
}

let cp: ControlPlane;

beforeAll(async () => {
  cp = await ControlPlane.start({ scheduler: false });
});

afterAll(async () => {
  await cp?.stop();
});

describe("deploy/", () => {
  const docs = deployDocuments();

  it("contains the namespace, CRDs, RBAC, the three workloads and the admission configuration", () => {
    const kinds = new Set(docs.map((d) => d.doc.kind));
    for (const kind of [
      "Namespace",
      "CustomResourceDefinition",
      "ServiceAccount",
      "ClusterRole",
      "ClusterRoleBinding",
      "Deployment",
      "DaemonSet",
      "Service",
      "MutatingWebhookConfiguration",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
    ]) {
      expect(kinds, `deploy/ has no ${kind}`).toContain(kind);
    }
  });

  it("applies as a whole to a real API server (server-side apply)", async () => {
    for (const { file, doc } of docs) {
      try {
        await applyYaml(cp.kubeConfig(), k8s.dumpYaml(doc));
      } catch (error) {
        throw new Error(`${file}: ${doc.kind} ${doc.metadata?.name}: ${kubeErrorMessage(error)}`);
      }
    }
  });

  it("runs the controller and the webhook with pods that pass Pod Security restricted", async () => {
    const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({
      body: {
        metadata: {
          name: "restricted-check",
          labels: { "pod-security.kubernetes.io/enforce": "restricted" },
        },
      },
    });
    const deployments = docs.filter((d) => d.doc.kind === "Deployment").map((d) => d.doc as k8s.V1Deployment);
    expect(deployments.map((d) => d.metadata?.name).sort()).toEqual([
      "lockstep-controller",
      "lockstep-webhook",
    ]);
    for (const deployment of deployments) {
      const template = deployment.spec?.template;
      // A dry-run CREATE goes through admission, PodSecurity included, and stores nothing.
      const pod: k8s.V1Pod = {
        metadata: { name: `${deployment.metadata?.name}-check`, labels: template?.metadata?.labels },
        spec: { ...template?.spec, serviceAccountName: "default" } as k8s.V1PodSpec,
      };
      try {
        await core.createNamespacedPod({ namespace: "restricted-check", body: pod, dryRun: "All" });
      } catch (error) {
        throw new Error(`${deployment.metadata?.name}: ${kubeErrorMessage(error)}`);
      }
    }
  });
});
