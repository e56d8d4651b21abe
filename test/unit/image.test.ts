// The pure parts of `make image`: the Dockerfile read as the image builder reads it, and the places that
// must agree with it (the Makefile's Node, deploy/'s image and commands, the bundles' launchers).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import * as z from "zod";
import { COMPONENTS } from "../../scripts/build.ts";
import {
  BASE_PATH,
  dockerIgnored,
  imageConfig,
  imageReference,
  productionPackages,
} from "../../scripts/image/build.ts";
import { parseInstructions, runtimeStage } from "../../scripts/image/dockerfile.ts";

const root = join(import.meta.dirname, "../..");
const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");

describe("the Dockerfile, as make image reads it", () => {
  it("joins continued lines and drops comments", () => {
    expect(parseInstructions("# c\nFROM a AS b\nRUN x \\\n    && y\n\nUSER 1\n")).toEqual([
      { keyword: "FROM", args: "a AS b", line: 2 },
      { keyword: "RUN", args: "x && y", line: 3 },
      { keyword: "USER", args: "1", line: 6 },
    ]);
  });

  it("describes the final stage: Node and Debian from the base image, packages, copies, user, entry point", () => {
    const stage = runtimeStage(dockerfile);
    expect(stage.debianRelease).toBe("bookworm");
    expect(stage.aptPackages).toEqual([
      "apparmor",
      "util-linux",
      "libcap-ng0",
      "libsmartcols1",
      "libjemalloc2",
    ]);
    expect(stage.user).toBe("65532:65532");
    expect(stage.entrypoint).toEqual(["/app/bin/lockstep"]);
    expect(stage.copies).toContainEqual({
      from: "build",
      sources: ["/app/dist"],
      destination: "/app/dist",
      intoDirectory: false,
    });
    expect(stage.copies).toContainEqual({
      sources: ["package.json"],
      destination: "/app",
      intoDirectory: true,
    });
  });

  it("carries the Node the Makefile bootstraps (NODE_VERSION)", () => {
    const makefile = readFileSync(join(root, "Makefile"), "utf8");
    expect(makefile).toContain(`NODE_VERSION := ${runtimeStage(dockerfile).nodeVersion}\n`);
  });

  it("refuses a final-stage instruction make image would ignore, and a user Kubernetes cannot check", () => {
    expect(() => runtimeStage(`${dockerfile}\nVOLUME /data\n`)).toThrow(
      /VOLUME in the final stage is not understood/,
    );
    expect(() => runtimeStage(`${dockerfile}\nUSER lockstep\n`)).toThrow(/numeric user/);
    expect(() => runtimeStage(`${dockerfile}\nRUN curl -o x y\n`)).toThrow(/only apt-get install RUNs/);
  });

  it("gives the image the base image's PATH behind the Dockerfile's", () => {
    const config = imageConfig(runtimeStage(dockerfile), ["sha256:a"], ["layer"]);
    expect(config.config.Env).toEqual([`PATH=/app/bin:${BASE_PATH}`, "NODE_ENV=production"]);
    expect(config.rootfs.diff_ids).toEqual(["sha256:a"]);
  });
});

describe("what reaches the image", () => {
  it("takes the lock file's non-dev packages, as npm ci --omit=dev does", () => {
    const lock = JSON.stringify({
      packages: {
        "": {},
        "node_modules/pino": {},
        "node_modules/vitest": { dev: true },
        "node_modules/a/node_modules/b": { optional: true },
        "node_modules/linked": { link: true },
      },
    });
    expect(productionPackages(lock)).toEqual(["node_modules/a/node_modules/b", "node_modules/pino"]);
  });

  it("reads .dockerignore as Docker does: patterns match from the context's root", () => {
    expect(dockerIgnored(["test", "*.log"], "test/unit/x.ts")).toBe(true);
    expect(dockerIgnored(["test", "*.log"], "debug.log")).toBe(true);
    expect(dockerIgnored(["test", "*.log"], "src/debug.log")).toBe(false);
    expect(dockerIgnored(["test", "*.log"], "src/test.ts")).toBe(false);
  });
});

const ContainerSchema = z.object({ image: z.string(), command: z.array(z.string()) });
const WorkloadSchema = z.object({
  kind: z.string(),
  spec: z.object({ template: z.object({ spec: z.object({ containers: z.array(ContainerSchema) }) }) }),
});

function workloads(dir: string): z.infer<typeof WorkloadSchema>[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return workloads(path);
    if (!entry.endsWith(".yaml")) return [];
    return parseAllDocuments(readFileSync(path, "utf8"))
      .map((doc) => doc.toJS())
      .filter((doc) => ["Deployment", "DaemonSet"].includes(doc?.kind))
      .map((doc) => WorkloadSchema.parse(doc));
  });
}

describe("deploy/ runs what make image builds", () => {
  const containers = workloads(join(root, "deploy")).flatMap((w) => w.spec.template.spec.containers);

  it("names the image make image writes", () => {
    expect(containers.length).toBe(Object.keys(COMPONENTS).length);
    for (const container of containers) expect(container.image).toBe(imageReference());
  });

  it("starts each component through its launcher in the image's dist/", () => {
    const dist = runtimeStage(dockerfile).copies.find((copy) => copy.from === "build")?.destination;
    expect(containers.map((c) => c.command[0]).sort()).toEqual(
      Object.keys(COMPONENTS).map((component) => `${dist}/bin/${component}`),
    );
  });
});
