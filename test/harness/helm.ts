// The helm the chart's tests run: built from the Go module proxy by tools/helm/build.sh (cached under
// ~/.cache/lockstep; a second call builds nothing and only prints the path).
import { execFile, execFileSync } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";

const run = promisify(execFile);
const repo = join(import.meta.dirname, "../..");
export const CHART = join(repo, "charts/lockstep");
/**
 * The Kubernetes version `helm template` renders for when it has no cluster to ask: the test cluster's
 * (tools/controlplane/kubernetes/go.mod). The chart's kubeVersion refuses helm's built-in default.
 */
export const TEMPLATE_KUBE_VERSION = "1.37.2";

let cached: string | undefined;
/** The path of the helm binary (LOCKSTEP_HELM, or tools/helm/build.sh's). */
export function helmBinary(): string {
  cached ??=
    process.env.LOCKSTEP_HELM ??
    execFileSync(join(repo, "tools/helm/build.sh"), { encoding: "utf8" }).trim().split("\n").at(-1) ??
    "";
  return cached;
}

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
