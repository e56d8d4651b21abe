// `make cli`: the lockstep CLI as an npm package, packed into dist/<tarball> (and by `make release` into
// dist/release/). `npm install -g <tarball>` (or `npx <tarball>`) gives a `lockstep` command on Node
// >= package.json's engines.node, with nothing else to download (docs/adr/0067-cli-package.md):
//   package.json        generated from the repository's: name, version, engines, bin; no dependencies,
//   bin/lockstep.js     the repository's launcher (Node version check first), pointed at the bundle,
//   lib/lockstep.mjs    src/cli/main.ts and every library it uses (client-node included), one ES module,
//   README.md           what the package is and where the CLI's documentation lives.
// A package and not the repository itself: the CLI's source is TypeScript, which Node refuses to strip
// under node_modules, and the repository's package.json brings the components' dependencies along.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { buildSync } from "esbuild";
import * as z from "zod";
import { BUNDLE_OPTIONS } from "./build.ts";

const root = join(import.meta.dirname, "..");

/** The package's name on a registry; its command is `lockstep` whatever the name. */
export const CLI_PACKAGE_NAME = "@lockstep-dev/cli";
const BUNDLE = "lib/lockstep.mjs";
const LAUNCHER = "bin/lockstep.js";
/** The one line of bin/lockstep.js that names what it runs: the source in a checkout, the bundle in the package. */
const SOURCE_ENTRY = 'import("../src/cli/main.ts")';
const REPOSITORY = "https://github.com/lockstep-dev/lockstep";

const RootPackageSchema = z.object({
  version: z.string(),
  description: z.string(),
  license: z.string(),
  engines: z.object({ node: z.string() }),
  bin: z.object({ lockstep: z.literal(LAUNCHER) }),
});

/** The CLI package's package.json, from the repository's (its one home for version, engines and licence). Pure. */
export function cliPackageManifest(rootPackageText: string) {
  const rootPackage = RootPackageSchema.parse(JSON.parse(rootPackageText));
  return {
    name: CLI_PACKAGE_NAME,
    version: rootPackage.version,
    description: `The lockstep command: ${rootPackage.description.replace(/^./, (c) => c.toLowerCase())}; records, lints, converts and imports profiles`,
    license: rootPackage.license,
    type: "module",
    engines: rootPackage.engines,
    bin: { lockstep: LAUNCHER },
    files: ["bin/", "lib/"],
    repository: { type: "git", url: `git+${REPOSITORY}.git` },
    homepage: `${REPOSITORY}/blob/main/docs/cli.md`,
  };
}

/** bin/lockstep.js as the package carries it: the same version check, then the bundle instead of the source. Pure. */
export function packagedLauncher(launcherText: string): string {
  const parts = launcherText.split(SOURCE_ENTRY);
  if (parts.length !== 2)
    throw new Error(`${LAUNCHER}: expected ${SOURCE_ENTRY} exactly once, found it ${parts.length - 1} times`);
  return parts.join(`import("../${BUNDLE}")`);
}

const packageReadme = (version: string, node: string) => `# lockstep ${version}

The command-line tool of [Lockstep](${REPOSITORY}), the Kubernetes operator that distributes seccomp and
AppArmor profiles to nodes and keeps pods off nodes that lack them. It records a minimal profile from a
running program, lints, converts, diffs and imports profiles (Docker, podman, security-profiles-operator),
and shows what a node holds (\`lockstep node NODE\`, with any kubeconfig kubectl takes).

    npm install -g ${CLI_PACKAGE_NAME}
    lockstep --help

Needs Node.js ${node}. One bundled file, no dependencies. Every command: ${REPOSITORY}/blob/main/docs/cli.md
`;

/** Writes the package's files into `dir` (bundling the CLI); returns the files written. */
export function writeCliPackage(dir: string): string[] {
  const rootPackageText = readFileSync(join(root, "package.json"), "utf8");
  const manifest = cliPackageManifest(rootPackageText);
  buildSync({ ...BUNDLE_OPTIONS, entryPoints: [join(root, "src/cli/main.ts")], outfile: join(dir, BUNDLE) });
  mkdirSync(join(dir, "bin"), { recursive: true });
  writeFileSync(join(dir, LAUNCHER), packagedLauncher(readFileSync(join(root, LAUNCHER), "utf8")));
  chmodSync(join(dir, LAUNCHER), 0o755);
  writeFileSync(join(dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(dir, "README.md"), packageReadme(manifest.version, manifest.engines.node));
  return ["package.json", LAUNCHER, BUNDLE, "README.md"];
}

/**
 * Builds the package and packs it with `npm pack` into `out`; returns the tarball's path. Synchronous
 * (esbuild's buildSync), so that `make release` writes it beside the other files in one step.
 */
export function packCliPackage(out: string): string {
  const staging = mkdtempSync(join(tmpdir(), "lockstep-cli-package-"));
  try {
    writeCliPackage(staging);
    mkdirSync(out, { recursive: true });
    const packed = z
      .array(z.object({ filename: z.string() }))
      .length(1)
      .parse(
        JSON.parse(
          execFileSync("npm", ["pack", "--json", "--pack-destination", out], {
            cwd: staging,
            encoding: "utf8",
            // npm's own lines ("npm notice ...") go to stderr; only the JSON comes back.
            stdio: ["ignore", "pipe", "pipe"],
          }),
        ),
      );
    return join(out, packed[0]?.filename ?? "");
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const tarball = packCliPackage(join(root, "dist"));
  process.stdout.write(`${relative(root, tarball)}\n`);
}
