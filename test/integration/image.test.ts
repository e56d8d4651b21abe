// `make image` built twice from the same inputs: the same bytes, the image the Dockerfile describes
// (user, entry points, files), and its programs run as a container runtime would run them (runc, the
// image's non-root user, a read-only root): node, apparmor_parser, each component's launcher, the CLI.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { guardedParserCommand } from "../../node-agent/parser-runner.ts";
import { COMPONENTS } from "../../scripts/build.ts";
import {
  type BuiltImage,
  bootstrappedNodeDir,
  buildImage,
  NODE_IN_IMAGE,
} from "../../scripts/image/build.ts";
import { runtimeStage } from "../../scripts/image/dockerfile.ts";
import { runInImage, type UnpackedImage, unpackImage } from "../harness/image.ts";

const root = join(import.meta.dirname, "../..");
const stage = runtimeStage(readFileSync(join(root, "Dockerfile"), "utf8"));
const out = mkdtempSync(join(tmpdir(), "lockstep-image-build-"));
let first: BuiltImage;
let second: BuiltImage;
let image: UnpackedImage | undefined;

const fileSha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

beforeAll(async () => {
  first = await buildImage({ nodeDir: bootstrappedNodeDir(), archive: join(out, "first.oci.tar") });
  second = await buildImage({ nodeDir: bootstrappedNodeDir(), archive: join(out, "second.oci.tar") });
  image = unpackImage(first.archive);
}, 300_000);

afterAll(() => {
  image?.remove();
  rmSync(out, { recursive: true, force: true });
});

const unpacked = (): UnpackedImage => {
  if (!image) throw new Error("the image was not unpacked");
  return image;
};

describe("make image", () => {
  it("gives the same digest and the same archive bytes from the same inputs", () => {
    expect(second.digest).toBe(first.digest);
    expect(fileSha(second.archive)).toBe(fileSha(first.archive));
  });

  it("names the image as deploy/ runs it", () => {
    expect(first.reference).toMatch(/^ghcr\.io\/lockstep-dev\/lockstep:\d+\.\d+\.\d+$/);
  });

  it("runs as the Dockerfile's numeric non-root user, with its entry point, command, environment and folder", () => {
    const { config } = unpacked().config;
    expect(config.User).toBe(stage.user);
    expect(Number(config.User.split(":")[0])).toBeGreaterThan(0);
    expect(config.Entrypoint).toEqual(stage.entrypoint);
    expect(config.Cmd).toEqual(stage.cmd);
    expect(config.WorkingDir).toBe(stage.workdir);
    expect(config.Env).toContain(`NODE_ENV=${stage.env.NODE_ENV}`);
    const path = config.Env.find((entry) => entry.startsWith("PATH="))?.split(":") ?? [];
    expect(path[0]).toBe("PATH=/app/bin");
    expect(path).toContain("/usr/local/bin");
  });

  it("holds every COPY destination of the Dockerfile, owned by root and not writable by the image's user", () => {
    for (const copy of stage.copies) {
      const path = join(unpacked().rootfs, copy.destination);
      const stat = statSync(path);
      expect(stat.uid, copy.destination).toBe(0);
      expect(stat.mode & 0o022, copy.destination).toBe(0);
    }
    // What the Dockerfile's stages produce, not just their folders: the production modules and the bundles.
    for (const dependency of ["@kubernetes/client-node", "pino", "zod", "yaml"])
      expect(statSync(join(unpacked().rootfs, "app/node_modules", dependency, "package.json")).isFile()).toBe(
        true,
      );
    for (const component of Object.keys(COMPONENTS))
      expect(statSync(join(unpacked().rootfs, "app/dist", `${component}.mjs`)).isFile()).toBe(true);
    // No dev dependency reaches the image.
    for (const devOnly of ["vitest", "esbuild", "typescript", "@biomejs"])
      expect(() => statSync(join(unpacked().rootfs, "app/node_modules", devOnly))).toThrow(/ENOENT/);
  });

  it("has an executable entry point for the CLI and for every component, in the layers", () => {
    const entries = unpacked().layerEntries.flat();
    for (const entrypoint of [
      stage.entrypoint[0] ?? "",
      ...Object.keys(COMPONENTS).map((c) => `/app/dist/bin/${c}`),
    ]) {
      expect(entries, entrypoint).toContain(entrypoint.slice(1));
      expect(statSync(join(unpacked().rootfs, entrypoint)).mode & 0o111, entrypoint).toBe(0o111);
    }
  });

  it("runs the Makefile's Node as the image's user", async () => {
    const result = await runInImage(unpacked(), [
      NODE_IN_IMAGE,
      "-p",
      "process.version + ' ' + process.getuid()",
    ]);
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe(`v${stage.nodeVersion} ${stage.user.split(":")[0]}`);
  });

  it("has apparmor_parser for the agent", async () => {
    const result = await runInImage(unpacked(), ["apparmor_parser", "--version"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^AppArmor parser version \d+\.\d+/);
  });

  it("runs apparmor_parser as the agent does: under setpriv, prlimit and the guard (node-agent/parser-runner.ts)", async () => {
    const result = await runInImage(unpacked(), guardedParserCommand("apparmor_parser", ["--version"]));
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^AppArmor parser version \d+\.\d+/);
  });

  it("runs each component's launcher, which stops with its own reason outside a cluster", async () => {
    const agent = await runInImage(unpacked(), ["/app/dist/bin/lockstep-agent"]);
    expect(agent.exitCode).toBe(2);
    expect(agent.stdout).toContain("NODE_NAME must be set");
    for (const component of ["lockstep-controller", "lockstep-webhook"]) {
      const result = await runInImage(unpacked(), [`/app/dist/bin/${component}`]);
      expect(result.exitCode, component).not.toBe(0);
      expect(result.stdout, component).toContain(`"name":"${component}"`);
      expect(result.stdout, component).not.toContain("Cannot find module");
      // ld.so only warns when a library the launcher preloads is missing (the webhook's jemalloc).
      expect(result.stderr, component).not.toContain("cannot be preloaded");
    }
  });

  it("runs the CLI from its source as the Dockerfile's entry point", async () => {
    const result = await runInImage(unpacked(), [...stage.entrypoint, ...stage.cmd]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^lockstep: /);
    expect(result.stdout).toContain("usage: lockstep <command>");
  });
});
