// What `lockstep node` needs from a cluster, as a managed cluster's user has it: a real API server with
// the CRDs, a Node and a SeccompProfile, and a kubeconfig whose credentials come from an exec credential
// plugin (`aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin`), so the CLI's client-node path is
// the one under test. Shared by the CLI's tests from source (cli.test.ts) and from its npm package
// (cli-package.test.ts).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { stringify } from "yaml";
import { ControlPlane, waitFor } from "./controlplane.ts";
import { createProfile } from "./profiles.ts";

/** The Node every kubeconfig here can read, and the SeccompProfile it is asked about. */
export const NODE_NAME = "worker-1";
export const PROFILE_NAME = "web";

/** A plugin that prints an ExecCredential with the cluster's token and records that it ran (at RAN). */
export const GOOD_PLUGIN = `#!/bin/sh\ntouch RAN\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"TOKEN"}}'\n`;

export interface ExecCredentialCluster {
  cp: ControlPlane;
  /**
   * Writes into `dir` a kubeconfig whose current context points nowhere and whose "eks" context gets
   * its token from `plugin` (a shell script; RAN and TOKEN in it are replaced by the file it may touch
   * and a service account's token).
   */
  execKubeconfig(dir: string, plugin: string): { path: string; ran: string };
  stop(): Promise<void>;
}

/** Starts an API server (no scheduler, no nodes) holding a Node and a SeccompProfile. */
export async function startExecCredentialCluster(): Promise<ExecCredentialCluster> {
  const cp = await ControlPlane.start({ scheduler: false, controllerManager: false });
  try {
    const token = await prepare(cp);
    return {
      cp,
      execKubeconfig: (dir, plugin) => writeExecKubeconfig(cp, token, dir, plugin),
      stop: () => cp.stop(),
    };
  } catch (error) {
    await cp.stop();
    throw error;
  }
}

async function prepare(cp: ControlPlane): Promise<string> {
  for (const crd of ["lockstep.dev_seccompprofiles.yaml", "lockstep.dev_apparmorprofiles.yaml"])
    await cp.applyFile(join(import.meta.dirname, "../../crds", crd));
  const kc = cp.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNode({
    body: { metadata: { name: NODE_NAME, labels: { "lockstep.dev/agent": "test" } } },
  });
  await core.createNamespacedServiceAccount({
    namespace: "default",
    body: { metadata: { name: "viewer" } },
  });
  await kc.makeApiClient(k8s.RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: "viewer" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ kind: "ServiceAccount", name: "viewer", namespace: "default" }],
    },
  });
  const issued = await core.createNamespacedServiceAccountToken({
    name: "viewer",
    namespace: "default",
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const objects = kc.makeApiClient(k8s.CustomObjectsApi);
  await waitFor("the CRDs to be served", async () => {
    for (const plural of ["seccompprofiles", "apparmorprofiles"])
      await objects.listClusterCustomObject({ group: "lockstep.dev", version: "v1alpha1", plural });
    return true;
  });
  await createProfile(objects, "SeccompProfile", PROFILE_NAME, { baseProfileName: "runtime/default" });
  return issued.status?.token ?? "";
}

function writeExecKubeconfig(cp: ControlPlane, token: string, dir: string, plugin: string) {
  const id = randomBytes(3).toString("hex");
  const ran = join(dir, `plugin-ran-${id}`);
  const script = join(dir, `plugin-${id}.sh`);
  writeFileSync(script, plugin.replace("RAN", ran).replace("TOKEN", token));
  execFileSync("chmod", ["+x", script]);
  const ca = Buffer.from(cp.ca.certPem).toString("base64");
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: "eks", cluster: { server: cp.server, "certificate-authority-data": ca } },
      { name: "nowhere", cluster: { server: "https://127.0.0.1:9" } },
    ],
    users: [
      {
        name: "eks-user",
        user: {
          exec: {
            apiVersion: "client.authentication.k8s.io/v1",
            command: script,
            args: [],
            interactiveMode: "Never",
          },
        },
      },
      { name: "nobody", user: { token: "wrong" } },
    ],
    contexts: [
      { name: "eks", context: { cluster: "eks", user: "eks-user" } },
      { name: "nowhere", context: { cluster: "nowhere", user: "nobody" } },
    ],
    "current-context": "nowhere",
  };
  const path = join(dir, `exec-${id}.kubeconfig`);
  writeFileSync(path, stringify(config));
  return { path, ran };
}
