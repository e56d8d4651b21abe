// The thin REST client and informer the components use, against the real API server: every way of
// authenticating a component meets (client certificate, token, token file that rotates, in-cluster),
// the API server's own error messages, and a cache that follows adds, updates, deletes and selectors.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_VERSION, profilePath } from "../../src/api/constants.ts";
import { MAX_PROFILE_OBJECT_BYTES } from "../../src/api/limits.ts";
import {
  configFromKubeconfigFiles,
  inClusterConfig,
  KubeApiError,
  KubeClient,
  loadClientConfig,
} from "../../src/kube/client.ts";
import { Informer, type KubeObject } from "../../src/kube/informer.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { largestSeccompSpec } from "../harness/large-profiles.ts";

let cp: ControlPlane;
let admin: KubeClient;
let dir: string;

async function serviceAccountToken(name: string): Promise<string> {
  const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace: "default", body: { metadata: { name } } });
  const answer = await core.createNamespacedServiceAccountToken({
    name,
    namespace: "default",
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = answer.status?.token;
  if (!token) throw new Error("no token");
  return token;
}

beforeAll(async () => {
  cp = await ControlPlane.start({ scheduler: false, controllerManager: false });
  dir = await mkdtemp(join(tmpdir(), "lockstep-kube-client-"));
  admin = new KubeClient(await configFromKubeconfigFiles([cp.adminKubeconfigPath]));
});

afterAll(async () => {
  admin?.close();
  await cp?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("KubeClient", () => {
  it("authenticates with the client certificate of a kubeconfig and round-trips an object", async () => {
    const created = await admin.create<k8s.V1ConfigMap>("/api/v1/namespaces/default/configmaps", {
      metadata: { name: "client-roundtrip" },
      data: { a: "1" },
    });
    expect(created.metadata?.uid).toMatch(/./);
    const patched = await admin.patch<k8s.V1ConfigMap>(
      "/api/v1/namespaces/default/configmaps/client-roundtrip",
      "merge",
      { data: { b: "2" } },
    );
    expect(patched.data).toEqual({ a: "1", b: "2" });
    const jsonPatched = await admin.patch<k8s.V1ConfigMap>(
      "/api/v1/namespaces/default/configmaps/client-roundtrip",
      "json",
      [{ op: "remove", path: "/data/a" }],
    );
    expect(jsonPatched.data).toEqual({ b: "2" });
    await admin.delete("/api/v1/namespaces/default/configmaps/client-roundtrip");
    const gone = await admin.get("/api/v1/namespaces/default/configmaps/client-roundtrip").catch((e) => e);
    expect(gone).toBeInstanceOf(KubeApiError);
    expect((gone as KubeApiError).code).toBe(404);
    expect((gone as KubeApiError).reason).toBe("NotFound");
    expect((gone as KubeApiError).message).toBe('configmaps "client-roundtrip" not found');
  });

  it("carries the API server's own message for a refused request", async () => {
    const error = await admin
      .create("/api/v1/namespaces/default/configmaps", { metadata: { name: "Not_A_Name" } })
      .catch((e) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as KubeApiError).code).toBe(422);
    expect((error as KubeApiError).message).toContain('ConfigMap "Not_A_Name" is invalid');
  });

  it("authenticates with a bearer token and is authorized as that identity", async () => {
    const token = await serviceAccountToken("client-token");
    const client = new KubeClient({ server: cp.server, ca: cp.ca.certPem, token });
    const error = await client.get("/api/v1/nodes").catch((e) => e);
    expect((error as KubeApiError).code).toBe(403);
    expect((error as KubeApiError).message).toContain("system:serviceaccount:default:client-token");
    client.close();
  });

  it("re-reads a token file, so a rotated projected token is used without a restart", async () => {
    const tokenFile = join(dir, "token");
    await writeFile(tokenFile, "not-a-valid-token\n");
    const client = new KubeClient(
      { server: cp.server, ca: cp.ca.certPem, tokenFile },
      { tokenFileMaxAgeMs: 100 },
    );
    expect(((await client.get("/api/v1/nodes").catch((e) => e)) as KubeApiError).code).toBe(401);
    await writeFile(tokenFile, `${await serviceAccountToken("client-rotated")}\n`);
    await new Promise((r) => setTimeout(r, 150));
    expect(((await client.get("/api/v1/nodes").catch((e) => e)) as KubeApiError).code).toBe(403);
    client.close();
  });

  it("configures itself in a pod from the service-account files and the service environment", async () => {
    const token = join(dir, "sa-token");
    const ca = join(dir, "sa-ca.crt");
    await writeFile(token, await serviceAccountToken("client-in-cluster"));
    await writeFile(ca, cp.ca.certPem);
    const url = new URL(cp.server);
    const config = inClusterConfig(
      { KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port },
      { token, ca },
    );
    expect(config.server).toBe(cp.server.replace(/\/$/, ""));
    const client = new KubeClient(config);
    const review = await client.create<k8s.V1SelfSubjectReview>(
      "/apis/authentication.k8s.io/v1/selfsubjectreviews",
      { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
    );
    expect(review.status?.userInfo?.username).toBe("system:serviceaccount:default:client-in-cluster");
    client.close();
  });

  it("follows KUBECONFIG first, and refuses credential plugins with a clear message", async () => {
    const fromEnv = await loadClientConfig({ KUBECONFIG: `/nonexistent:${cp.adminKubeconfigPath}` });
    expect(fromEnv.server).toBe(cp.server);
    const plugin = join(dir, "plugin.kubeconfig");
    await writeFile(
      plugin,
      JSON.stringify({
        clusters: [{ name: "c", cluster: { server: cp.server } }],
        users: [{ name: "u", user: { exec: { command: "steal-credentials" } } }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      }),
    );
    await expect(loadClientConfig({ KUBECONFIG: plugin })).rejects.toThrow(
      'kubeconfig user "u": exec and auth-provider credential plugins are not supported',
    );
  });
});

describe("Informer", () => {
  it("caches a collection and reports adds, updates and deletes in order", async () => {
    const events: string[] = [];
    const informer = new Informer<KubeObject>(admin, {
      path: "/api/v1/namespaces/default/configmaps",
      labelSelector: "informer-test=yes",
    });
    for (const verb of ["add", "update", "delete"] as const)
      informer.on(verb, (o) => events.push(`${verb} ${o.metadata?.name}`));
    await admin.create("/api/v1/namespaces/default/configmaps", {
      metadata: { name: "before-start", labels: { "informer-test": "yes" } },
    });
    await informer.start();
    expect(informer.get("before-start", "default")?.metadata?.name).toBe("before-start");
    await admin.create("/api/v1/namespaces/default/configmaps", {
      metadata: { name: "unselected", labels: { "informer-test": "no" } },
    });
    await admin.create("/api/v1/namespaces/default/configmaps", {
      metadata: { name: "after-start", labels: { "informer-test": "yes" } },
    });
    await admin.patch("/api/v1/namespaces/default/configmaps/after-start", "merge", { data: { x: "1" } });
    await admin.delete("/api/v1/namespaces/default/configmaps/before-start");
    await waitFor("the informer to see every change", async () => events.length >= 4);
    expect(events).toEqual([
      "add before-start",
      "add after-start",
      "update after-start",
      "delete before-start",
    ]);
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(["after-start"]);
    // Server-side apply's bookkeeping is dropped from the cache: nothing reads it.
    expect(informer.get("after-start", "default")?.metadata).not.toHaveProperty("managedFields");
    await informer.stop();
  });

  it("with metadataOnly, caches labels without spec or status", async () => {
    await cp.addNode("informer-node");
    const informer = new Informer<k8s.V1Node>(admin, {
      path: "/api/v1/nodes",
      fieldSelector: "metadata.name=informer-node",
      metadataOnly: true,
    });
    await informer.start();
    const cached = informer.get("informer-node");
    expect(cached?.kind).toBe("PartialObjectMetadata");
    expect(cached?.spec).toBeUndefined();
    expect(cached?.status).toBeUndefined();
    await admin.patch("/api/v1/nodes/informer-node", "merge", { metadata: { labels: { colour: "blue" } } });
    await waitFor(
      "the label to reach the cache",
      async () => informer.get("informer-node")?.metadata?.labels?.colour === "blue",
    );
    expect(informer.get("informer-node")?.kind).toBe("PartialObjectMetadata");
    await informer.stop();
  });

  it("keeps trying while a collection is not served yet, and syncs once it is", async () => {
    const errors: unknown[] = [];
    const informer = new Informer<KubeObject>(admin, {
      path: "/apis/later.lockstep.dev/v1/widgets",
      onError: (e) => errors.push(e),
    });
    const started = informer.start();
    await waitFor("a first failure", async () => errors.length > 0);
    expect((errors[0] as KubeApiError).code).toBe(404);
    const ext = cp.kubeConfig().makeApiClient(k8s.ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: "widgets.later.lockstep.dev" },
        spec: {
          group: "later.lockstep.dev",
          scope: "Cluster",
          names: { plural: "widgets", singular: "widget", kind: "Widget" },
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: "object", x_kubernetes_preserve_unknown_fields: true } },
            },
          ],
        },
      },
    });
    await started;
    expect(informer.hasSynced()).toBe(true);
    await informer.stop();
  });

  it("relists many near-maximum profiles in pages that fit the answer limit", async () => {
    // The 64 MiB limit scaled down with the objects, to keep the test small: 24 profiles of the largest
    // size the CRD allows are about 5 MB, over a 4 MiB limit in one page (every relist failed so, before
    // pages were sized by MAX_PROFILE_OBJECT_BYTES), and within it in pages of two.
    const root = `${import.meta.dirname}/../..`;
    await cp.applyFile(`${root}/crds/lockstep.dev_seccompprofiles.yaml`);
    const path = profilePath("seccomp");
    const { baseProfileName: _, ...spec } = largestSeccompSpec();
    for (let i = 0; i < 24; i++)
      await waitFor("the CRD to be served", async () => {
        try {
          await admin.create(path, {
            apiVersion: API_VERSION,
            kind: "SeccompProfile",
            metadata: { name: `large-${i}` },
            spec,
          });
          return true;
        } catch (error) {
          if (error instanceof KubeApiError && error.code === 404) return false;
          throw error;
        }
      });
    const small = new KubeClient(admin.config, { maxResponseBytes: 4 * 2 ** 20 });
    const errors: unknown[] = [];
    const informer = new Informer<KubeObject>(small, {
      path,
      maxObjectBytes: MAX_PROFILE_OBJECT_BYTES,
      onError: (e) => errors.push(e),
    });
    try {
      await informer.start();
      expect(errors).toEqual([]);
      expect(informer.list()).toHaveLength(24);
      expect(informer.notLiveReason()).toBeUndefined();
    } finally {
      await informer.stop();
      small.close();
    }
  });
});
