// `make build`: each long-running component as one minified ES module in dist/, which the image runs,
// and which the tests, the benchmarks and the demo run too (what is measured is what ships).
//
// Why a bundle and not the TypeScript source under Node's type stripping: stripping loads a WebAssembly
// TypeScript parser into every process (about 17 MiB resident, 12 MiB anonymous, measured), and one
// file of JavaScript loads faster and lighter than hundreds of module files. Libraries needed only on a
// rare path (the YAML parser for a kubeconfig file, the X.509 issuer) are dynamic imports, split into
// chunks that a process loads only if it takes that path. docs/adr/0013-thin-kube-client.md.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";

const root = join(import.meta.dirname, "..");

/** Component -> its entry point; the bundle is `<outdir>/<component>.mjs`. */
export const COMPONENT_ENTRIES = {
  "lockstep-agent": "node-agent/main.ts",
  "lockstep-controller": "src/controller/main.ts",
  "lockstep-webhook": "src/webhook/main.ts",
} as const;
export type Component = keyof typeof COMPONENT_ENTRIES;

export const DIST = join(root, "dist");

export async function buildComponents(outdir: string = DIST): Promise<void> {
  await build({
    absWorkingDir: root,
    entryPoints: Object.entries(COMPONENT_ENTRIES).map(([out, entry]) => ({ in: entry, out })),
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node22",
    minify: process.env.LOCKSTEP_BUILD_NO_MINIFY === undefined,
    // Stack traces and error messages keep the source's names: the logs are read by people.
    keepNames: true,
    sourcemap: false,
    legalComments: "none",
    logLevel: "warning",
    // Some bundled CommonJS dependencies call require() for Node's own modules.
    banner: {
      js: 'import { createRequire as __lockstepRequire } from "node:module"; const require = __lockstepRequire(import.meta.url);',
    },
  });
}

/**
 * Builds into a fresh private folder and returns it: for the test harness, so each test process runs
 * bundles of the source as it is now, and two runs never write into each other's folder.
 */
export async function buildComponentsIntoTemp(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "lockstep-dist-"));
  await buildComponents(dir);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

if (import.meta.main) {
  await rm(DIST, { recursive: true, force: true });
  await buildComponents();
  process.stdout.write(`built ${Object.keys(COMPONENT_ENTRIES).join(", ")} into dist/\n`);
}
