// Runs the recorded command in a runc container shaped like the pod the recording proposes: its
// seccomp filter, exactly the given capabilities, no_new_privs (allowPrivilegeEscalation: false) and,
// when asked, a read-only root with an empty writable directory at each path named writable (what an
// emptyDir gives a pod). The container sees this machine's files read-only, because the command was
// recorded here, not in an image; it shares the host's network namespace, because a fresh one has its
// loopback down and a pod's has it up (traffic stays on loopback: 127.0.0.1 in a pod and here alike).
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import type { LinuxSeccomp } from "../../api/seccomp.ts";
import type { Capability } from "./capabilities.ts";
import { straceArgs } from "./strace.ts";

export interface ContainerSpec {
  /** Absolute path of the program and its arguments. */
  argv: readonly string[];
  /** The OCI `linux.seccomp` object, exactly as the node agent writes it. */
  seccomp: LinuxSeccomp;
  capabilities: readonly Capability[];
  readOnlyRoot: boolean;
  /** Each gets an empty writable directory (tmpfs), the way a volume mounted there would be. */
  writable: readonly string[];
  cwd: string;
  timeoutMs: number;
  /** When given, runc runs under `strace -f` writing here, so the program's calls can be compared. */
  tracePath?: string;
}

export interface ContainerOutcome {
  /** The program's exit code, 128+N when a signal N ended it, as runc reports it. */
  exitCode: number;
  timedOut: boolean;
  stderr: string;
}

// Host directories the container does not take from the host: the runtime mounts its own /proc, /dev
// and /sys, and /tmp and /run start empty in a container as they do in an image.
const NOT_SHARED = new Set(["proc", "dev", "sys", "tmp", "run", "lost+found"]);

export function findRunc(): string | undefined {
  for (const candidate of [
    "/usr/sbin/runc",
    "/usr/bin/runc",
    "/usr/local/sbin/runc",
    "/usr/local/bin/runc",
  ]) {
    try {
      execFileSync(candidate, ["--version"], { stdio: "ignore" });
      return candidate;
    } catch {
      // try the next
    }
  }
  return undefined;
}

/** `CAP_NET_BIND_SERVICE` for `net_bind_service`: the OCI config's spelling. */
function ociCapability(capability: Capability): string {
  return `CAP_${capability.toUpperCase()}`;
}

export async function runInHostContainer(runc: string, spec: ContainerSpec): Promise<ContainerOutcome> {
  const bundle = mkdtempSync(join(tmpdir(), "lockstep-prove-"));
  const rootfs = join(bundle, "rootfs");
  const id = `lockstep-prove-${randomBytes(4).toString("hex")}`;
  try {
    mkdirSync(rootfs);
    const mounts: object[] = [];
    for (const entry of readdirSync("/")) {
      if (NOT_SHARED.has(entry)) continue;
      const host = join("/", entry);
      const stat = lstatSync(host);
      // /bin -> usr/bin on a merged-/usr system: the same link, so paths resolve as on the host.
      if (stat.isSymbolicLink()) symlinkSync(readlinkSync(host), join(rootfs, entry));
      else if (stat.isDirectory())
        mounts.push({ destination: host, type: "bind", source: host, options: ["rbind", "ro", "nosuid"] });
    }
    for (const path of spec.writable)
      mounts.push({
        destination: path,
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "nodev", "mode=1777"],
      });
    execFileSync(runc, ["spec", "--bundle", bundle]);
    const config = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
    const capabilities = spec.capabilities.map(ociCapability);
    config.process = {
      ...config.process,
      terminal: false,
      args: [...spec.argv],
      env: Object.entries(process.env).map(([key, value]) => `${key}=${value}`),
      cwd: spec.cwd,
      noNewPrivileges: true,
      capabilities: { bounding: capabilities, effective: capabilities, permitted: capabilities },
    };
    config.root = { path: rootfs, readonly: spec.readOnlyRoot };
    config.mounts = [...config.mounts, ...mounts];
    config.linux.namespaces = config.linux.namespaces.filter((ns: { type: string }) => ns.type !== "network");
    config.linux.seccomp = spec.seccomp;
    writeFileSync(join(bundle, "config.json"), JSON.stringify(config));
    // stdin is /dev/null: a program that reads it sees end of file instead of waiting for the timeout.
    const runcArgv = [runc, "run", "--bundle", bundle, id];
    const [command, ...args] =
      spec.tracePath === undefined ? runcArgv : ["strace", ...straceArgs(spec.tracePath, runcArgv)];
    const child = spawn(command as string, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      if (stderr.length < 64 * 1024) stderr += chunk;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      spawnSync(runc, ["kill", id, "KILL"], { stdio: "ignore" });
    }, spec.timeoutMs);
    const exitCode = await new Promise<number>((resolve) =>
      child.on("close", (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0))),
    );
    clearTimeout(timer);
    return { exitCode, timedOut, stderr };
  } finally {
    try {
      execFileSync(runc, ["delete", "--force", id], { stdio: "ignore" });
    } catch {
      // already gone
    }
    rmSync(bundle, { recursive: true, force: true });
  }
}
