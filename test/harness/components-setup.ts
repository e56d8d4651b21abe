// Vitest global setup of the integration tests: the components' bundles (scripts/build.ts) are built
// once for the whole run into one private folder, handed to every test file through the environment,
// and removed when the run ends, however the test files themselves end.
import { buildComponentsIntoTemp } from "../../scripts/build.ts";
import { COMPONENTS_DIR_ENV } from "./components.ts";

export default async function setup(): Promise<() => Promise<void>> {
  const { dir, remove } = await buildComponentsIntoTemp();
  process.env[COMPONENTS_DIR_ENV] = dir;
  return remove;
}
