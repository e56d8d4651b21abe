// The chart's tests' helm calls; the binary is scripts/helm.ts's (built from the Go module proxy).
import { execFile } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type * as k8s from "@kubernetes/client-node";
import { parse, parseAllDocuments, stringify } from "yaml";
import * as z from "zod";
import { helmBinary } from "../../scripts/helm.ts";
import { kubectlBinary } from "./controlplane.ts";
import { type LocalDeployOptions, runKustomization, TEST_OVERLAY } from "./deploy-local.ts";

const run = promisify(execFile);
const repo = join(import.meta.dirname, "../..");
export const CHART = join(repo, "charts/lockstep");
/**
 * The Kubernetes version `helm template` renders for when it has no cluster to ask: the test cluster's
 * (tools/controlplane/kubernetes/go.mod). The chart's kubeVersion refuses helm's built-in default.
 */
export const TEMPLATE_KUBE_VERSION = "1.37.2";

/** Runs helm with `args`; its standard output. */
export async function helm(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stdout } = await run(helmBinary(), [...args], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
    env: { ...process.env, ...env },
  });
  return stdout;
}

/** `helm template` of the chart (or a packaged one) with `values` (--set-json), as objects. */
export async function helmTemplate(
  values: Record<string, unknown> = {},
  chart = CHART,
): Promise<k8s.KubernetesObject[]> {
  const set = Object.entries(values).flatMap(([key, value]) => [
    "--set-json",
    `${key}=${JSON.stringify(value)}`,
  ]);
  const text = await helm(["template", "lockstep", chart, "--kube-version", TEMPLATE_KUBE_VERSION, ...set]);
  // A template whose condition does not hold leaves an empty document.
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as k8s.KubernetesObject | null)
    .filter((doc): doc is k8s.KubernetesObject => Boolean(doc?.kind));
}

/**
 * A helm post-renderer that changes what the chart renders exactly as deploy-overlays/test-local and the
 * per-run kustomization change deploy/ (test/harness/deploy-local.ts): the same patches, applied by
 * `kubectl kustomize` to helm's output. Returns the executable's path, for `--post-renderer`.
 */
export async function writeLocalPostRenderer(workDir: string, options: LocalDeployOptions): Promise<string> {
  const dir = join(workDir, "helm-post-render");
  await mkdir(dir, { recursive: true });
  const Patches = z.object({ patches: z.array(z.unknown()) });
  const overlay = Patches.parse(parse(await readFile(join(TEST_OVERLAY, "kustomization.yaml"), "utf8")));
  const run = Patches.parse(parse(runKustomization(dir, options)));
  await writeFile(
    join(dir, "kustomization.yaml"),
    stringify({
      apiVersion: "kustomize.config.k8s.io/v1beta1",
      kind: "Kustomization",
      resources: ["rendered.yaml"],
      patches: [...overlay.patches, ...run.patches],
    }),
  );
  const script = join(dir, "post-render.sh");
  await writeFile(
    script,
    `#!/bin/sh\nset -e\ncat > '${dir}/rendered.yaml'\nexec '${kubectlBinary()}' kustomize '${dir}'\n`,
    { mode: 0o755 },
  );
  return script;
}
