// Runs a busybox container with runc using a seccomp profile file exactly as a CRI runtime passes it:
// the file's JSON becomes the OCI config's `linux.seccomp`, untouched. Proves that what Lockstep
// writes is enforced, not just well-formed.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BUSYBOX = "/usr/bin/busybox";

export interface ContainerResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function runcPath(): string {
  for (const candidate of ["/usr/sbin/runc", "/usr/bin/runc"]) {
    try {
      execFileSync(candidate, ["--version"], { stdio: "ignore" });
      return candidate;
    } catch {
      // try the next
    }
  }
  throw new Error("runc not found: install it (apt-get install runc)");
}

export interface ContainerOptions {
  /** The container's capabilities (bounding, effective, permitted); default: runc spec's three. */
  capabilities?: readonly string[];
  /** process.noNewPrivileges; default: runc spec's, true. Kubernetes leaves it off unless asked. */
  noNewPrivileges?: boolean;
}

/** Runs `busybox <args...>` in a fresh container confined by the seccomp profile in `seccompFile`. */
export async function runInBusybox(
  seccompFile: string,
  args: readonly string[],
  options: ContainerOptions = {},
): Promise<ContainerResult> {
  const runc = runcPath();
  const bundle = mkdtempSync(join(tmpdir(), "lockstep-runc-"));
  const id = `lockstep-${randomBytes(4).toString("hex")}`;
  try {
    mkdirSync(join(bundle, "rootfs", "bin"), { recursive: true });
    mkdirSync(join(bundle, "rootfs", "tmp"), { recursive: true });
    copyFileSync(BUSYBOX, join(bundle, "rootfs", "bin", "busybox"));
    execFileSync(runc, ["spec", "--bundle", bundle]);
    const config = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
    config.process.args = ["/bin/busybox", ...args];
    config.process.terminal = false;
    if (options.noNewPrivileges !== undefined) config.process.noNewPrivileges = options.noNewPrivileges;
    if (options.capabilities !== undefined)
      for (const set of ["bounding", "effective", "permitted"])
        config.process.capabilities[set] = [...options.capabilities];
    config.root.readonly = false;
    config.linux.seccomp = JSON.parse(readFileSync(seccompFile, "utf8"));
    writeFileSync(join(bundle, "config.json"), JSON.stringify(config));
    return await new Promise((resolve) => {
      execFile(runc, ["run", "--bundle", bundle, id], { timeout: 30_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ exitCode: code, stdout, stderr });
      });
    });
  } finally {
    try {
      execFileSync(runc, ["delete", "--force", id], { stdio: "ignore" });
    } catch {
      // already gone
    }
    rmSync(bundle, { recursive: true, force: true });
  }
}
