// The CLI as people install it: `make cli`'s tarball (scripts/cli-package.ts), installed with the real npm
// into an empty folder and into a global prefix, from the tarball alone (--offline: it has no
// dependencies to fetch), and run as a user would run `lockstep`: its commands on files, and `lockstep
// node` against a real API server through an exec credential plugin. docs/adr/0067-cli-package.md.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CLI_PACKAGE_NAME, packCliPackage } from "../../scripts/cli-package.ts";
import {
  type ExecCredentialCluster,
  GOOD_PLUGIN,
  NODE_NAME,
  PROFILE_NAME,
  startExecCredentialCluster,
} from "../harness/exec-kubeconfig.ts";

const root = join(import.meta.dirname, "../..");
const rootPackage = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const work = mkdtempSync(join(tmpdir(), "lockstep-cli-package-"));
// npm's own state (cache, global config) inside the test's folder: the user's is neither read nor touched.
const npmEnv = {
  PATH: process.env.PATH,
  HOME: work,
  npm_config_cache: join(work, "npm-cache"),
  npm_config_userconfig: join(work, "npmrc"),
  npm_config_update_notifier: "false",
};
let tarball: string;
let cluster: ExecCredentialCluster;

beforeAll(async () => {
  tarball = packCliPackage(join(work, "packed"));
  cluster = await startExecCredentialCluster();
}, 180_000);
afterAll(async () => {
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** `npm install --offline ...` in `cwd`: the tarball must need nothing from a registry. */
const npmInstall = (cwd: string, ...args: string[]) =>
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", ...args, tarball], {
    cwd,
    env: npmEnv,
    encoding: "utf8",
  });

const emptyFolder = (name: string) => {
  const dir = join(work, name);
  mkdirSync(dir);
  return dir;
};

describe("the CLI's npm package", () => {
  it("holds the launcher, one bundle and no TypeScript, and depends on nothing", () => {
    const files = execFileSync("tar", ["tzf", tarball], { encoding: "utf8" }).trim().split("\n").sort();
    expect(files).toEqual([
      "package/README.md",
      "package/bin/lockstep.js",
      "package/lib/lockstep.mjs",
      "package/package.json",
    ]);
    const manifest = JSON.parse(
      execFileSync("tar", ["xzOf", tarball, "package/package.json"], { encoding: "utf8" }),
    );
    expect(manifest).toMatchObject({
      name: CLI_PACKAGE_NAME,
      version: rootPackage.version,
      engines: rootPackage.engines,
      bin: { lockstep: "bin/lockstep.js" },
    });
    expect(manifest.dependencies).toBeUndefined();
  });

  it("installed into an empty folder, runs its commands on files from node_modules/.bin", () => {
    const dir = emptyFolder("local");
    npmInstall(dir);
    const lockstep = join(dir, "node_modules/.bin/lockstep");
    // No checkout around it: the folder holds the package and nothing else of the repository.
    const run = (args: string[], input?: string) =>
      spawnSync(lockstep, args, { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH }, input });

    const version = run(["--version"]);
    expect(version.stdout).toBe(`lockstep ${rootPackage.version}\n`);
    expect(version.status).toBe(0);

    // lint: a profile with a dangerous allowance fails with its finding named.
    const profile = join(dir, "profile.yaml");
    writeFileSync(
      profile,
      "apiVersion: lockstep.dev/v1alpha1\nkind: SeccompProfile\nmetadata: {name: web}\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n    - names: [read, write, exit_group, ptrace]\n      action: SCMP_ACT_ALLOW\n",
    );
    const lint = run(["lint", "--output", "json", profile]);
    expect(lint.status, lint.stderr).toBe(1);
    expect(JSON.stringify(JSON.parse(lint.stdout))).toMatch(/ptrace/);

    // convert: the OCI JSON an agent writes.
    const convert = run(["convert", profile]);
    expect(convert.status, convert.stderr).toBe(0);
    expect(JSON.parse(convert.stdout)).toMatchObject({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["read", "write", "exit_group", "ptrace"], action: "SCMP_ACT_ALLOW" }],
    });

    // import: Docker's published default, resolved for amd64.
    const docker = join(root, "test/fixtures/seccomp/moby-profiles-seccomp-v0.3.0-default.json");
    const imported = run(["import", docker, "--name", "docker-default", "--arch", "amd64"]);
    expect(imported.status, imported.stderr).toBe(0);
    expect(parse(imported.stdout)).toMatchObject({
      kind: "SeccompProfile",
      metadata: { name: "docker-default" },
    });
  });

  it("installed globally (npm install -g --prefix), answers `lockstep node` through an exec credential plugin", () => {
    const prefix = emptyFolder("global");
    npmInstall(work, "--global", "--prefix", prefix);
    const { path, ran } = cluster.execKubeconfig(work, GOOD_PLUGIN);
    // `lockstep` found on PATH, as after a real `npm install -g`.
    const env = { PATH: `${join(prefix, "bin")}:${process.env.PATH}`, HOME: emptyFolder("home") };
    const result = spawnSync(
      "lockstep",
      ["node", NODE_NAME, "--kubeconfig", path, "--context", "eks", "--output", "json"],
      { cwd: prefix, encoding: "utf8", env },
    );
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toContainEqual(
      expect.objectContaining({ kind: "seccomp", name: PROFILE_NAME }),
    );
    expect(existsSync(ran)).toBe(true);
    // The current context points nowhere: without --context the CLI says where it failed, in one line.
    const nowhere = spawnSync("lockstep", ["node", NODE_NAME, "--kubeconfig", path], {
      encoding: "utf8",
      env,
    });
    expect(nowhere.status).toBe(2);
    expect(nowhere.stderr).toMatch(
      /^lockstep: cannot reach the API server https:\/\/127\.0\.0\.1:9 of the context "nowhere": /,
    );
    expect(nowhere.stderr).not.toMatch(/\n\s+at /);
  });

  // Debian's nodejs (Node 20) is on these machines; where it is not, there is no older Node to ask.
  it.runIf(
    existsSync("/usr/bin/node") &&
      !/^v2[2-9]\./.test(execFileSync("/usr/bin/node", ["--version"], { encoding: "utf8" })),
  )("installed, says in one line that an older Node cannot run it", () => {
    const dir = emptyFolder("old-node");
    npmInstall(dir);
    // What `#!/usr/bin/env node` finds on a machine whose node is Debian's.
    const result = spawnSync(join(dir, "node_modules/.bin/lockstep"), ["--version"], {
      encoding: "utf8",
      env: { PATH: `/usr/bin:/bin` },
    });
    expect(result.stderr).toMatch(
      /^lockstep: needs Node\.js [\d.]+ or newer, and this is Node\.js 20\.[\d.]+: install a newer Node\.js \(https:\/\/nodejs\.org\) or put it first in PATH\n$/,
    );
    expect(result.stdout).toBe("");
    expect(result.status).toBe(2);
  });
});
