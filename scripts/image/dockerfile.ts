// What the Dockerfile's final stage says the image is, read from the Dockerfile itself so that
// `make image` (no container engine here) builds the image the Dockerfile describes rather than a second
// description of it that could drift. Only the instructions this Dockerfile uses are understood; any
// other instruction in the final stage is an error, so a change to the Dockerfile that `make image` would
// silently ignore fails the build instead. `make lint` (dockerfile-utils) vouches for the syntax.
import * as z from "zod";

export const InstructionSchema = z.object({
  keyword: z.string(),
  args: z.string(),
  line: z.number().int().positive(),
});
export type Instruction = z.infer<typeof InstructionSchema>;

/** Instructions in order: comments dropped, `\` continuations joined, keyword upper-cased. */
export function parseInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { parts: string[]; line: number } | undefined;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && !pending)) return;
    const continued = line.endsWith("\\");
    const part = continued ? line.slice(0, -1).trim() : line;
    pending = pending ? { ...pending, parts: [...pending.parts, part] } : { parts: [part], line: index + 1 };
    if (continued) return;
    const joined = pending.parts.filter((p) => p !== "").join(" ");
    const space = joined.search(/\s/);
    out.push({
      keyword: (space < 0 ? joined : joined.slice(0, space)).toUpperCase(),
      args: space < 0 ? "" : joined.slice(space + 1).trim(),
      line: pending.line,
    });
    pending = undefined;
  });
  return out;
}

export const CopySchema = z.object({
  /** The stage it copies from (`--from=`), or undefined for the build context. */
  from: z.string().optional(),
  sources: z.array(z.string()).min(1),
  /** Absolute, resolved against WORKDIR, without a trailing slash. */
  destination: z.string().startsWith("/"),
  /** The destination was written with a trailing slash: a file source lands inside it, under its own name. */
  intoDirectory: z.boolean(),
});
export type Copy = z.infer<typeof CopySchema>;

export const RuntimeStageSchema = z.object({
  /** The base image's Node version, from `ARG NODE_IMAGE=node:<version>-<debian>-slim`. */
  nodeVersion: z.string().regex(/^\d+\.\d+\.\d+$/),
  /** The Debian release the base image is built on (bookworm). */
  debianRelease: z.string().min(1),
  /** Debian packages the stage installs with apt-get. */
  aptPackages: z.array(z.string()),
  workdir: z.string().startsWith("/"),
  copies: z.array(CopySchema),
  /** ENV as written; `$PATH` stands for the base image's PATH. */
  env: z.record(z.string(), z.string()),
  user: z.string().regex(/^\d+(:\d+)?$/, "a numeric user, so Kubernetes can check runAsNonRoot"),
  entrypoint: z.array(z.string()).min(1),
  cmd: z.array(z.string()),
});
export type RuntimeStage = z.infer<typeof RuntimeStageSchema>;

function jsonArray(instruction: Instruction): string[] {
  const parsed = z.array(z.string()).safeParse(JSON.parse(instruction.args));
  if (!parsed.success)
    throw new Error(`Dockerfile:${instruction.line}: ${instruction.keyword} is not a JSON array`);
  return parsed.data;
}

/** `KEY=value KEY2=value2` (ENV and ARG), values without spaces as this Dockerfile writes them. */
function assignments(args: string): Record<string, string> {
  return Object.fromEntries(
    args.split(/\s+/).map((pair) => {
      const eq = pair.indexOf("=");
      return eq < 0 ? [pair, ""] : [pair.slice(0, eq), pair.slice(eq + 1)];
    }),
  );
}

/** The final stage of `text`, checked against the schema. */
export function runtimeStage(text: string): RuntimeStage {
  const instructions = parseInstructions(text);
  const args: Record<string, string> = {};
  let stageStart = -1;
  instructions.forEach((instruction, index) => {
    if (instruction.keyword === "ARG" && stageStart < 0) Object.assign(args, assignments(instruction.args));
    if (instruction.keyword === "FROM") stageStart = index;
  });
  if (stageStart < 0) throw new Error("Dockerfile: no FROM");
  const from = instructions[stageStart]?.args.split(/\s+/)[0] ?? "";
  const baseImage = from.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? "");
  const base = /^node:(\d+\.\d+\.\d+)-(\w+)-slim$/.exec(baseImage);
  if (!base)
    throw new Error(`Dockerfile: the final stage's base "${baseImage}" is not node:<version>-<debian>-slim`);

  let workdir = "/";
  const stage: Omit<RuntimeStage, "nodeVersion" | "debianRelease"> = {
    aptPackages: [],
    workdir,
    copies: [],
    env: {},
    user: "",
    entrypoint: [],
    cmd: [],
  };
  for (const instruction of instructions.slice(stageStart + 1)) {
    const words = instruction.args.split(/\s+/);
    switch (instruction.keyword) {
      case "RUN": {
        const install = /apt-get install ([^&]*)/.exec(instruction.args);
        if (!install?.[1])
          throw new Error(`Dockerfile:${instruction.line}: only apt-get install RUNs are understood`);
        stage.aptPackages.push(
          ...install[1].split(/\s+/).filter((word) => word !== "" && !word.startsWith("-")),
        );
        break;
      }
      case "WORKDIR":
        workdir = instruction.args;
        stage.workdir = workdir;
        break;
      case "COPY": {
        const from = words.find((word) => word.startsWith("--from="))?.slice("--from=".length);
        const paths = words.filter((word) => !word.startsWith("--"));
        const destination = paths.at(-1) ?? "";
        stage.copies.push({
          ...(from ? { from } : {}),
          sources: paths.slice(0, -1),
          intoDirectory: destination.endsWith("/"),
          destination: destination.startsWith("/")
            ? destination
            : `${workdir}/${destination.replace(/^\.\//, "")}`.replace(/\/$/, "").replace(/\/\.$/, ""),
        });
        break;
      }
      case "ENV":
        Object.assign(stage.env, assignments(instruction.args));
        break;
      case "USER":
        stage.user = instruction.args;
        break;
      case "ENTRYPOINT":
        stage.entrypoint = jsonArray(instruction);
        break;
      case "CMD":
        stage.cmd = jsonArray(instruction);
        break;
      default:
        throw new Error(
          `Dockerfile:${instruction.line}: ${instruction.keyword} in the final stage is not understood by make image (scripts/image/dockerfile.ts)`,
        );
    }
  }
  return RuntimeStageSchema.parse({ ...stage, nodeVersion: base[1], debianRelease: base[2] });
}
