// `make native`: the Go programs of native/ (docs/adr/0038), built reproducibly for one or both of the
// image's architectures into build/native/<arch>/: the same source, Go release and golang.org/x/sys
// (go.sum) give the same bytes: no cgo, no paths (-trimpath), no build id, no VCS stamp, and the Go
// on this machine rather than one go.mod might download (GOTOOLCHAIN=local).
//
//   node scripts/native.ts [amd64|arm64 ...]    (default: both) prints one path per line
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
export const NATIVE_DIR = join(root, "native");
export const NATIVE_ARCHES = ["amd64", "arm64"] as const;
export type NativeArch = (typeof NATIVE_ARCHES)[number];
/** The programs: the audit reader ships in the image; log-storm is the tests' and the benchmark's load. */
export const NATIVE_PROGRAMS = { auditReader: "audit-reader", logStorm: "log-storm" } as const;
/** The audit reader's name in the image (on PATH) and in build/native/<arch>/. */
export const AUDIT_READER_BINARY = "lockstep-audit-reader";

/** Where `make native` writes, outside git (.gitignore). */
const NATIVE_OUT = join(root, "build", "native");

export function nativeBinary(
  program: keyof typeof NATIVE_PROGRAMS,
  arch: NativeArch,
  outDir: string = NATIVE_OUT,
): string {
  const name = program === "auditReader" ? AUDIT_READER_BINARY : NATIVE_PROGRAMS[program];
  return join(outDir, arch, name);
}

/** This machine's architecture as Go names it. */
export const HOST_ARCH: NativeArch = process.arch === "arm64" ? "arm64" : "amd64";

/**
 * Builds every program for `arch` into `outDir`/<arch>/ (Go's own cache makes a second build of the same
 * source instant). `make image` builds into its own folder: two builds at once never share a file.
 */
export function buildNative(arch: NativeArch = HOST_ARCH, outDir: string = NATIVE_OUT): void {
  for (const program of Object.keys(NATIVE_PROGRAMS) as (keyof typeof NATIVE_PROGRAMS)[]) {
    execFileSync(
      "go",
      [
        "build",
        "-trimpath",
        "-buildvcs=false",
        "-ldflags=-buildid=",
        "-o",
        nativeBinary(program, arch, outDir),
        `./${NATIVE_PROGRAMS[program]}`,
      ],
      {
        cwd: NATIVE_DIR,
        stdio: ["ignore", "inherit", "inherit"],
        env: {
          ...process.env,
          CGO_ENABLED: "0",
          GOOS: "linux",
          GOARCH: arch,
          GOTOOLCHAIN: "local",
          GOFLAGS: "-mod=readonly",
        },
      },
    );
  }
}

if (import.meta.main) {
  const named = process.argv.slice(2);
  for (const arch of named)
    if (!(NATIVE_ARCHES as readonly string[]).includes(arch))
      throw new Error(`unknown architecture "${arch}": ${NATIVE_ARCHES.join(" or ")}`);
  const arches = named.length > 0 ? (named as NativeArch[]) : NATIVE_ARCHES;
  for (const arch of arches) {
    buildNative(arch);
    for (const program of Object.keys(NATIVE_PROGRAMS) as (keyof typeof NATIVE_PROGRAMS)[])
      process.stdout.write(`${nativeBinary(program, arch)}\n`);
  }
}
