// The components as they ship: the bundles `make build` produces (scripts/build.ts), built once per
// test process from the source as it is now into a private temporary folder, removed at exit.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { buildComponentsIntoTemp, COMPONENTS, type Component } from "../../scripts/build.ts";

let built: Promise<string> | undefined;

/**
 * The arguments that start a component under `node` (process.execPath) as the image starts it: its Node
 * flags, then its bundle. Builds all of them on the first call.
 */
export async function componentArgs(component: Component): Promise<string[]> {
  built ??= buildComponentsIntoTemp().then(({ dir }) => {
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  });
  return [...COMPONENTS[component].nodeFlags, join(await built, `${component}.mjs`)];
}
