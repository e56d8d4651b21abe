// Docker (moby profiles/seccomp) and podman (containers/common pkg/seccomp) seccomp JSON, resolved the
// way each engine resolves it before it hands `linux.seccomp` to runc: archMap picks the architectures
// for the host, and a rule's includes/excludes keep or drop it by the host's architecture, the
// container's capabilities and (Docker only) the kernel version. What comes out is plain OCI data that
// enforces exactly what that engine would, for the given architecture and capability set. Pure;
// `lockstep import` (src/cli/import-command.ts) reads the file and prints the result.
import * as z from "zod";
import { oneOf } from "../../api/common.ts";
import {
  ErrnoSchema,
  type LinuxSeccomp,
  SeccompActionSchema,
  SeccompArchSchema,
  SeccompArgSchema,
  SeccompFlagSchema,
  type SeccompSyscall,
} from "../../api/seccomp.ts";
import { errnoNumber } from "../../api/seccomp-abi.ts";

export const CONTAINER_ENGINES = ["docker", "podman"] as const;
export type ContainerEngine = (typeof CONTAINER_ENGINES)[number];

// Conditions of a rule. Docker compares `arches` with its own names for GOARCH (x86, amd64, arm64, ...)
// and reads `minKernel` ("<kernel>.<major>"); podman compares with libseccomp's native architecture name
// and has no minKernel field, so it ignores one.
const EngineFilterSchema = z.strictObject({
  caps: z.array(z.string()).nullish(),
  arches: z.array(z.string()).nullish(),
  minKernel: z.string().nullish(),
});

const EngineSyscallSchema = z.strictObject({
  /** The old single-name form; a rule has `name` or `names`, not both. */
  name: z.string().nullish(),
  names: z.array(z.string()).nullish(),
  action: SeccompActionSchema,
  args: z.array(SeccompArgSchema).nullish(),
  errnoRet: ErrnoSchema.nullish(),
  /** podman: an errno name or number; it overrides errnoRet. */
  errno: z.string().nullish(),
  comment: z.string().nullish(),
  includes: EngineFilterSchema.nullish(),
  excludes: EngineFilterSchema.nullish(),
});

/** A Docker or podman seccomp profile file. Unknown fields are refused rather than ignored, so a typo is seen. */
export const EngineSeccompSchema = z.strictObject({
  defaultAction: SeccompActionSchema.nullish(),
  defaultErrnoRet: ErrnoSchema.nullish(),
  /** podman: an errno name or number; it overrides defaultErrnoRet. */
  defaultErrno: z.string().nullish(),
  architectures: z.array(SeccompArchSchema).nullish(),
  archMap: z
    .array(
      z.strictObject({
        architecture: SeccompArchSchema,
        subArchitectures: z.array(SeccompArchSchema).nullish(),
      }),
    )
    .nullish(),
  flags: z.array(SeccompFlagSchema).nullish(),
  listenerPath: z.string().nullish(),
  listenerMetadata: z.string().nullish(),
  syscalls: z.array(EngineSyscallSchema).nullish(),
  comment: z.string().nullish(),
});
export type EngineSeccomp = z.infer<typeof EngineSeccompSchema>;
type EngineSyscall = z.infer<typeof EngineSyscallSchema>;
type EngineFilter = z.infer<typeof EngineFilterSchema>;

/**
 * How each engine names a host architecture, by `kubernetes.io/arch`: `native` is what `arches` in a
 * rule is compared with, `archMapKey` the archMap entry that applies (none: archMap is not used there).
 * Docker: goToNative and nativeToSeccomp in profiles/seccomp/seccomp_linux.go; podman: libseccomp's
 * native architecture name and its nativeToSeccomp, which lists fewer architectures.
 */
const ENGINE_ARCHES: Readonly<
  Record<ContainerEngine, Readonly<Record<string, { native: string; archMapKey?: string }>>>
> = {
  docker: {
    amd64: { native: "amd64", archMapKey: "SCMP_ARCH_X86_64" },
    arm64: { native: "arm64", archMapKey: "SCMP_ARCH_AARCH64" },
    ppc64le: { native: "ppc64le", archMapKey: "SCMP_ARCH_PPC64LE" },
    s390x: { native: "s390x", archMapKey: "SCMP_ARCH_S390X" },
    riscv64: { native: "riscv64", archMapKey: "SCMP_ARCH_RISCV64" },
  },
  podman: {
    amd64: { native: "amd64", archMapKey: "SCMP_ARCH_X86_64" },
    arm64: { native: "arm64", archMapKey: "SCMP_ARCH_AARCH64" },
    ppc64le: { native: "ppc64le" },
    s390x: { native: "s390x", archMapKey: "SCMP_ARCH_S390X" },
    riscv64: { native: "riscv64" },
  },
};

/** The `kubernetes.io/arch` values import resolves a profile for. */
export const IMPORT_ARCHES = Object.keys(ENGINE_ARCHES.docker);

/** A kernel version as Docker compares it: "<kernel>.<major>", minor revisions and suffixes ignored. */
export interface KernelVersion {
  kernel: number;
  major: number;
}

/** "6.1", "6.1.0-13-amd64" or "5.15.0-91-generic" as Docker reads it, or undefined when it is not one. */
export function parseKernelVersion(text: string): KernelVersion | undefined {
  const match = /^(\d+)\.(\d+)/.exec(text);
  return match ? { kernel: Number(match[1]), major: Number(match[2]) } : undefined;
}

function atLeast(have: KernelVersion, want: KernelVersion): boolean {
  return have.kernel !== want.kernel ? have.kernel > want.kernel : have.major >= want.major;
}

export interface ImportTarget {
  engine: ContainerEngine;
  /** `kubernetes.io/arch` of the nodes, one of IMPORT_ARCHES. */
  nodeArch: string;
  /** The container's bounding capabilities, `CAP_...`. */
  capabilities: ReadonlySet<string>;
  /** The nodes' kernel; undefined: assume one at least as new as every minKernel in the profile. */
  kernel?: KernelVersion | undefined;
}

export type ImportResult =
  | {
      ok: true;
      seccomp: LinuxSeccomp;
      /** minKernel conditions decided by assuming a new kernel (no target kernel given). */
      assumedKernels: string[];
    }
  | { ok: false; message: string };

/**
 * The OCI `linux.seccomp` the engine builds from `profile` for a container of `target`: the engine's
 * setupSeccomp, rule for rule, in the order of the file.
 */
export function resolveEngineProfile(profile: EngineSeccomp, target: ImportTarget): ImportResult {
  const host = ENGINE_ARCHES[target.engine][target.nodeArch];
  if (host === undefined)
    return {
      ok: false,
      message: `architecture ${JSON.stringify(target.nodeArch)}: expected one of ${IMPORT_ARCHES.join(", ")}`,
    };
  const syscalls = profile.syscalls ?? [];
  if (!profile.defaultAction)
    return {
      ok: false,
      message:
        syscalls.length === 0
          ? "defaultAction: missing, and no syscalls: the engine would run the container without seccomp"
          : "defaultAction: missing",
    };
  if (profile.listenerPath)
    return {
      ok: false,
      message: "listenerPath: names a seccomp notify listener, which Lockstep does not run",
    };
  if ((profile.architectures?.length ?? 0) > 0 && (profile.archMap?.length ?? 0) > 0)
    return { ok: false, message: "architectures and archMap: both given; the engine refuses that, give one" };

  const architectures = [...(profile.architectures ?? [])];
  const mapped = profile.archMap?.find((entry) => entry.architecture === host.archMapKey);
  if (mapped) architectures.push(mapped.architecture, ...(mapped.subArchitectures ?? []));

  const defaultErrno = errnoOf(profile.defaultErrno, profile.defaultErrnoRet, target.engine);
  if (!defaultErrno.ok) return { ok: false, message: `defaultErrno: ${defaultErrno.message}` };

  const assumedKernels: string[] = [];
  const rules: SeccompSyscall[] = [];
  for (const [index, rule] of syscalls.entries()) {
    const where = `syscalls[${index}]`;
    if (rule.name && (rule.names?.length ?? 0) > 0)
      return { ok: false, message: `${where}: name and names both given; the engine refuses that, give one` };
    const applies = ruleApplies(rule, host.native, target, (minKernel) =>
      assumedKernels.push(`${where} (minKernel ${minKernel})`),
    );
    if (applies === "invalid kernel")
      return { ok: false, message: `${where}: minKernel: expected "<kernel>.<major>", like "4.8"` };
    if (!applies) continue;
    const errno = errnoOf(rule.errno, rule.errnoRet, target.engine);
    if (!errno.ok) return { ok: false, message: `${where}.errno: ${errno.message}` };
    const names = rule.name ? [rule.name] : (rule.names ?? []);
    if (names.length === 0) continue;
    rules.push(
      withoutUndefined({
        names,
        action: rule.action,
        errnoRet: errno.value,
        args: rule.args && rule.args.length > 0 ? rule.args : undefined,
      }),
    );
  }
  return {
    ok: true,
    assumedKernels,
    seccomp: withoutUndefined({
      defaultAction: profile.defaultAction,
      defaultErrnoRet: defaultErrno.value,
      architectures: architectures.length > 0 ? architectures : undefined,
      flags: profile.flags && profile.flags.length > 0 ? profile.flags : undefined,
      syscalls: rules,
    }),
  };
}

/**
 * Whether the engine keeps a rule: excludes drop it when the host architecture is listed, when the
 * container has any listed capability or (Docker) the kernel is at least minKernel; includes keep it
 * only when the architecture is listed, the container has every listed capability and (Docker) the
 * kernel is at least minKernel.
 */
function ruleApplies(
  rule: EngineSyscall,
  native: string,
  target: ImportTarget,
  assumeKernel: (minKernel: string) => void,
): boolean | "invalid kernel" {
  const kernelAtLeast = (filter: EngineFilter | null | undefined): boolean | "invalid kernel" | undefined => {
    if (target.engine === "podman" || !filter?.minKernel) return undefined;
    const wanted = parseKernelVersion(filter.minKernel);
    if (wanted === undefined || !/^\d+\.\d+$/.test(filter.minKernel)) return "invalid kernel";
    if (target.kernel === undefined) {
      assumeKernel(filter.minKernel);
      return true;
    }
    return atLeast(target.kernel, wanted);
  };
  const { excludes, includes } = rule;
  if (excludes?.arches?.length && excludes.arches.includes(native)) return false;
  if (excludes?.caps?.length && excludes.caps.some((cap) => target.capabilities.has(cap))) return false;
  const excludedByKernel = kernelAtLeast(excludes);
  if (excludedByKernel === "invalid kernel") return excludedByKernel;
  if (excludedByKernel === true) return false;
  if (includes?.arches?.length && !includes.arches.includes(native)) return false;
  if (includes?.caps?.length && !includes.caps.every((cap) => target.capabilities.has(cap))) return false;
  const includedByKernel = kernelAtLeast(includes);
  if (includedByKernel === "invalid kernel") return includedByKernel;
  return includedByKernel !== false;
}

/** podman's getErrno: a name or number in `errno` wins over errnoRet; Docker has no `errno` field. */
function errnoOf(
  errno: string | null | undefined,
  errnoRet: number | null | undefined,
  engine: ContainerEngine,
): { ok: true; value: number | undefined } | { ok: false; message: string } {
  if (engine === "docker" || !errno) return { ok: true, value: errnoRet ?? undefined };
  const value = /^\d+$/.test(errno) ? Number(errno) : errnoNumber(errno);
  return value === undefined
    ? { ok: false, message: `unknown errno ${JSON.stringify(errno)}` }
    : { ok: true, value };
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}

/** Which engine's reading applies to a file when none is named: podman's fields mark a podman file. */
export function engineOf(profile: EngineSeccomp): ContainerEngine {
  const podmanOnly =
    profile.defaultErrno != null || (profile.syscalls ?? []).some((rule) => rule.errno != null);
  return podmanOnly ? "podman" : "docker";
}

export const ContainerEngineSchema = oneOf(CONTAINER_ENGINES, "engine");

/**
 * The rules of several architectures' results in one profile, for nodes of all of them: each rule once,
 * in the order first seen, and the union of the architectures. `onlyOn` lists, for each rule that not
 * every architecture keeps, the architectures that do.
 */
export function mergeArchitectures(results: readonly { nodeArch: string; seccomp: LinuxSeccomp }[]): {
  seccomp: LinuxSeccomp;
  onlyOn: { rule: SeccompSyscall; nodeArches: string[] }[];
} {
  const [first] = results;
  if (first === undefined) throw new Error("mergeArchitectures needs at least one result");
  const key = (rule: SeccompSyscall) => JSON.stringify(rule);
  const rules = new Map<string, { rule: SeccompSyscall; nodeArches: string[] }>();
  for (const { nodeArch, seccomp } of results)
    for (const rule of seccomp.syscalls) {
      const entry = rules.get(key(rule)) ?? { rule, nodeArches: [] };
      entry.nodeArches.push(nodeArch);
      rules.set(key(rule), entry);
    }
  const architectures = [...new Set(results.flatMap((r) => r.seccomp.architectures ?? []))];
  return {
    seccomp: withoutUndefined({
      ...first.seccomp,
      architectures: architectures.length > 0 ? architectures : undefined,
      syscalls: [...rules.values()].map((entry) => entry.rule),
    }),
    onlyOn: [...rules.values()].filter((entry) => entry.nodeArches.length < results.length),
  };
}
