// What the API server says about itself (its /metrics, read as the cluster admin over loopback): how many
// requests it served by verb and resource, and how many watches are open. The scrape is a GET of a
// non-resource URL, which the request counts below leave out.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { type ControlPlane, kubectlBinary } from "../../test/harness/controlplane.ts";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format to samples (comments skipped; label values without escaped quotes suffice here). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key = "", value = ""] of (match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)) labels[key] = value;
    samples.push({ name: match[1] ?? "", labels, value: Number(match[3]) });
  }
  return samples;
}

export async function apiServerMetrics(cp: ControlPlane): Promise<Sample[]> {
  const { stdout } = await promisify(execFile)(
    kubectlBinary(),
    ["--kubeconfig", cp.adminKubeconfigPath, "get", "--raw", "/metrics"],
    { maxBuffer: 256 * 1024 * 1024 },
  );
  return parseMetrics(stdout);
}

/**
 * Requests served (apiserver_request_total), watches aside, by "VERB resource[/subresource]", with the
 * code appended for answers other than 2xx (a 429 is API Priority and Fairness turning a request away).
 */
export function requestsByKind(samples: readonly Sample[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== "apiserver_request_total" || s.labels.verb === "WATCH" || !s.labels.resource) continue;
    const code = s.labels.code?.startsWith("2") ? "" : ` ${s.labels.code}`;
    const kind = `${s.labels.verb} ${s.labels.resource}${s.labels.subresource ? `/${s.labels.subresource}` : ""}${code}`;
    counts.set(kind, (counts.get(kind) ?? 0) + s.value);
  }
  return counts;
}

/** The requests served between two scrapes, by kind (only kinds that moved). */
export function requestsBetween(before: readonly Sample[], after: readonly Sample[]): Map<string, number> {
  const was = requestsByKind(before);
  const moved = new Map<string, number>();
  for (const [kind, n] of requestsByKind(after))
    if (n > (was.get(kind) ?? 0)) moved.set(kind, n - (was.get(kind) ?? 0));
  return moved;
}

/** Watches open now: the long-running requests gauge for the WATCH verb. */
export function openWatches(samples: readonly Sample[]): number {
  return samples
    .filter((s) => s.name === "apiserver_longrunning_requests" && s.labels.verb === "WATCH")
    .reduce((sum, s) => sum + s.value, 0);
}

/** The Go runtime's view of the API server: goroutines, and heap and stacks in use (MiB). */
export function goRuntime(samples: readonly Sample[]): {
  goroutines: number;
  heapMiB: number;
  stackMiB: number;
} {
  const value = (name: string) => samples.find((s) => s.name === name)?.value ?? Number.NaN;
  return {
    goroutines: value("go_goroutines"),
    heapMiB: value("go_memstats_heap_inuse_bytes") / 2 ** 20,
    stackMiB: value("go_memstats_stack_inuse_bytes") / 2 ** 20,
  };
}
