// Runs a busybox container with runc using a seccomp profile file exactly as a CRI runtime passes it:
// the file's JSON becomes the OCI config's `linux.seccomp`, untouched. Proves that what Lockstep
// writes is enforced, not just well-formed.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Capability } from "../../src/cli/record/capabilities.ts";
import { findRunc, ociCapability } from "../../src/cli/record/container.ts";

const BUSYBOX = "/usr/bin/busybox";

export interface ContainerResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function runcPath(): string {
  const runc = findRunc();
  if (!runc) throw new Error("runc not found: install it (apt-get install runc)");
  return runc;
}

export interface BusyboxOptions {
  /** Exactly these capabilities; default: runc's default set. */
  capabilities?: readonly Capability[];
  /** Share the host's network namespace: a fresh one has its loopback down, a pod's has it up. */
  hostNetwork?: boolean;
}

/** Runs `busybox <args...>` in a fresh container confined by the seccomp profile in `seccompFile`. */
export async function runInBusybox(
  seccompFile: string,
  args: readonly string[],
  options: BusyboxOptions = {},
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
    config.root.readonly = false;
    config.linux.seccomp = JSON.parse(readFileSync(seccompFile, "utf8"));
    if (options.capabilities) {
      const capabilities = options.capabilities.map(ociCapability);
      config.process.capabilities = {
        bounding: capabilities,
        effective: capabilities,
        permitted: capabilities,
      };
    }
    if (options.hostNetwork)
      config.linux.namespaces = config.linux.namespaces.filter(
        (ns: { type: string }) => ns.type !== "network",
      );
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
