// Server-side apply of multi-document YAML, as `kubectl apply --server-side` does it: used by the
// demo and the tests (test-only: no component applies YAML) to install crds/ and deploy/ without a kubectl binary.
import * as k8s from "@kubernetes/client-node";

export const FIELD_MANAGER = "lockstep";

/** Applies every object in `yamlText` in order; CRDs are waited on until their API is served. */
export async function applyYaml(kc: k8s.KubeConfig, yamlText: string, fieldManager = FIELD_MANAGER) {
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  const applied: k8s.KubernetesObject[] = [];
  for (const doc of k8s.loadAllYaml(yamlText) as k8s.KubernetesObject[]) {
    if (!doc?.kind) continue;
    const result = await client.patch(
      doc,
      undefined,
      undefined,
      fieldManager,
      true,
      k8s.PatchStrategy.ServerSideApply,
    );
    applied.push(result);
    if (doc.kind === "CustomResourceDefinition") await waitForCrdEstablished(kc, doc.metadata?.name ?? "");
  }
  return applied;
}

async function waitForCrdEstablished(kc: k8s.KubeConfig, name: string, timeoutMs = 30_000): Promise<void> {
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const crd = await ext.readCustomResourceDefinition({ name });
    if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`CustomResourceDefinition ${name} was not established within ${timeoutMs} ms`);
}
