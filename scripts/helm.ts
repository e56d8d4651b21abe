// The helm `make release` packages the chart with, and the chart's tests run: built from the Go module
// proxy by tools/helm/build.sh (cached under ~/.cache/lockstep; a second call builds nothing and only
// prints the path), or LOCKSTEP_HELM.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const repo = join(import.meta.dirname, "..");

let cached: string | undefined;
/** The path of the helm binary (LOCKSTEP_HELM, or tools/helm/build.sh's). */
export function helmBinary(): string {
  cached ??=
    process.env.LOCKSTEP_HELM ??
    execFileSync(join(repo, "tools/helm/build.sh"), { encoding: "utf8" }).trim().split("\n").at(-1) ??
    "";
  return cached;
}
