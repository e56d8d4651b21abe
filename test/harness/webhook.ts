// The webhook as a real process on loopback, registered with the real API server through the
// MutatingWebhookConfiguration from deploy/ (only its clientConfig points at 127.0.0.1 instead of the
// in-cluster Service), running as the lockstep-webhook service account's user with deploy/'s RBAC.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { WEBHOOK_PATH } from "../../src/api/constants.ts";
import { applyYaml } from "./apply.ts";
import { checkPreloaded, componentArgs, componentEnv } from "./components.ts";
import { type ControlPlane, freePort, waitFor } from "./controlplane.ts";
import { type ManagedProcess, startProcess } from "./processes.ts";

const repo = join(import.meta.dirname, "../..");

/**
 * An AdmissionReview of a pod as the API server sends it (the webhook routes on resource, subresource
 * and operation): a CREATE, or with `ephemeral` an UPDATE of the ephemeralcontainers subresource.
 */
export function podReview(
  object: unknown,
  { uid, namespace, ephemeral }: { uid: string; namespace: string; ephemeral?: { oldObject: unknown } },
): object {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      ...(ephemeral ? { subResource: "ephemeralcontainers" } : {}),
      operation: ephemeral ? "UPDATE" : "CREATE",
      namespace,
      object,
      ...(ephemeral ? { oldObject: ephemeral.oldObject } : {}),
    },
  };
}

/** The body of a pod CREATE's AdmissionReview. */
export function podCreateReview(object: unknown, where: { uid: string; namespace: string }): string {
  return JSON.stringify(podReview(object, where));
}

export interface WebhookProcess {
  port: number;
  healthPort: number;
  process: ManagedProcess;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Sum of lockstep_webhook_reviews_total over all results (its own count of reviews answered). */
  reviewCount(): Promise<number>;
}

export interface WebhookOptions {
  /**
   * pino level; the tests read debug lines, the benchmark measures the level that ships (info: a debug line
   * per patched pod costs a third of the webhook's capacity at saturation and 10 MiB, measured).
   */
  logLevel?: "debug" | "info";
}

export async function installWebhook(
  cp: ControlPlane,
  { logLevel = "debug" }: WebhookOptions = {},
): Promise<WebhookProcess> {
  for (const file of [
    // The webhook caches ProfileBindings: it is ready once their list is in.
    "crds/lockstep.dev_profilebindings.yaml",
    "crds/lockstep.dev_profilerecordings.yaml",
    "deploy/namespace.yaml",
    "deploy/webhook/rbac.yaml",
    "deploy/webhook/admission-policy.yaml",
  ])
    await cp.applyFile(join(repo, file));
  const port = await freePort();
  const healthPort = await freePort();
  const config = k8s.loadYaml<k8s.V1MutatingWebhookConfiguration>(
    readFileSync(join(repo, "deploy/webhook/mutating-webhook.yaml"), "utf8"),
  );
  // Each entry keeps its route: the plain one, or a bindings mode's (ADR 0036).
  for (const webhook of config.webhooks ?? [])
    webhook.clientConfig = {
      url: `https://127.0.0.1:${port}${webhook.clientConfig.service?.path ?? WEBHOOK_PATH}`,
    };
  await applyYaml(cp.kubeConfig(), k8s.dumpYaml(config));

  const kubeconfig = await cp.writeKubeconfigFor(
    "system:serviceaccount:lockstep-system:lockstep-webhook",
    ["system:serviceaccounts", "system:serviceaccounts:lockstep-system"],
    "webhook",
  );
  const logPath = join(cp.workDir, "webhook.log");
  writeFileSync(logPath, "");
  const componentStart = await componentArgs("lockstep-webhook");
  const spawn = () =>
    startProcess(
      "webhook",
      process.execPath,
      [
        ...componentStart,
        `--port=${port}`,
        "--host=127.0.0.1",
        `--health-port=${healthPort}`,
        "--cert-mode=self",
        "--extra-san=127.0.0.1",
      ],
      logPath,
      {
        env: {
          ...process.env,
          ...componentEnv("lockstep-webhook"),
          KUBECONFIG: kubeconfig,
          LOG_LEVEL: logLevel,
        },
      },
    );
  const handle: WebhookProcess = {
    port,
    healthPort,
    process: spawn(),
    start: async () => {
      if (!handle.process.isRunning()) handle.process = spawn();
      await waitFor("the webhook to be ready", async () => {
        if (!handle.process.isRunning()) throw new Error(`webhook exited:\n${handle.process.tail()}`);
        return (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok;
      });
      checkPreloaded("lockstep-webhook", handle.process.pid);
      // The API server must trust the CA the webhook just published in caBundle.
      const admission = cp.kubeConfig().makeApiClient(k8s.AdmissionregistrationV1Api);
      await waitFor("caBundle to be published", async () => {
        const c = await admission.readMutatingWebhookConfiguration({ name: "lockstep-webhook" });
        return (c.webhooks ?? []).every((w) => Boolean(w.clientConfig.caBundle));
      });
    },
    stop: () => handle.process.stop(10_000),
    reviewCount: async () => {
      const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
      return text
        .split("\n")
        .filter((l) => l.startsWith("lockstep_webhook_reviews_total"))
        .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
    },
  };
  await handle.start();
  return handle;
}
