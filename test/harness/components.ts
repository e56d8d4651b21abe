// The components as they ship: the bundles `make build` produces (scripts/build.ts). The integration
// tests get them built once per run (components-setup.ts); anything else that starts components (the
// demo, the benchmarks, `make cluster`) builds them on first use into a private temporary folder that is
// removed when the process exits.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { buildComponentsIntoTemp, COMPONENTS, type Component } from "../../scripts/build.ts";

/** Set by the integration tests' global setup: the folder holding the bundles for the whole run. */
export const COMPONENTS_DIR_ENV = "LOCKSTEP_COMPONENTS_DIR";

let built: Promise<string> | undefined;

function componentsDir(): Promise<string> {
  const shared = process.env[COMPONENTS_DIR_ENV];
  if (shared) return Promise.resolve(shared);
  built ??= buildComponentsIntoTemp().then(({ dir }) => {
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  });
  return built;
}

/** The environment a component runs with, beyond the process's own (its launcher sets it in the image). */
export function componentEnv(component: Component): Readonly<Record<string, string>> {
  return COMPONENTS[component].env ?? {};
}

/**
 * Throws unless every library the component's environment preloads (LD_PRELOAD) is mapped into the
 * running process: ld.so only warns when one is missing, and the tests and benchmarks must run the
 * component as it ships.
 */
export function checkPreloaded(component: Component, pid: number): void {
  const preload = componentEnv(component).LD_PRELOAD;
  if (!preload) return;
  const maps = readFileSync(`/proc/${pid}/maps`, "utf8");
  for (const library of preload.split(/[\s:]+/).filter(Boolean))
    if (!maps.includes(`/${library}\n`))
      throw new Error(
        `${component} runs without ${library}, which its launcher preloads: install it (tools/prerequisites.sh)`,
      );
}

/**
 * Replaces a component's Node flags, for measuring other ones (docs/benchmarks.md): e.g.
 * `LOCKSTEP_NODE_FLAGS_LOCKSTEP_AGENT="--max-semi-space-size=1 --lite-mode" make bench`.
 */
export function nodeFlagsOverrideEnv(component: Component): string {
  return `LOCKSTEP_NODE_FLAGS_${component.toUpperCase().replaceAll("-", "_")}`;
}

/**
 * The arguments that start a component under `node` (process.execPath) as the image starts it: its Node
 * flags, then its bundle.
 */
export async function componentArgs(component: Component): Promise<string[]> {
  const override = process.env[nodeFlagsOverrideEnv(component)];
  const flags =
    override === undefined ? COMPONENTS[component].nodeFlags : override.split(/\s+/).filter(Boolean);
  return [...flags, join(await componentsDir(), `${component}.mjs`)];
}
