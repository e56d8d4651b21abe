// A guest kernel with AppArmor, for the tests that need the real thing: Debian's User-Mode Linux
// (package user-mode-linux, AppArmor built in), booted without KVM as an ordinary process tree
// (docs/adr/0028-real-apparmor-kernel.md). The guest's root is the host's own / through hostfs, read-only,
// so the host's node, apparmor_parser and this repository run inside unchanged; the guest's folder
// (AppArmorGuest.dir) is shared read-write at the same path on both sides, for inputs and results. Each
// run() is one boot: the command runs as the guest's PID 1 child, the guest powers off after it, and
// nothing the kernel held (loaded profiles) survives into the next run, as on a node that rebooted.
//
// No process outlives a run: the kernel's process tree lives in a PID namespace of its own, which the
// host kernel empties as soon as its first process (the guest kernel) dies, and that one dies with
// the test process (`--pdeathsig`/`--kill-child`). A guest folder left by a test process that died is
// removed by the next AppArmorGuest.create() on the machine.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { isAlive } from "./node-cleanup.ts";
import { startProcess } from "./processes.ts";

/** The guest kernel (Debian's user-mode-linux 6.1, tools/prerequisites.sh installs it). */
export const UML_KERNEL = "/usr/bin/linux.uml";

/**
 * Guest memory: the most it may touch, not what it takes (the memory file is sparse). The agent's
 * executor code under node, apparmor_parser compiling the corpus and a confined busybox fit well within
 * it (ADR 0028 has the figures).
 */
export const GUEST_MEMORY = "256M";

/** Boot to the guest command's exit, measured about 3 s; generous for a loaded 2-core machine. */
export const GUEST_RUN_TIMEOUT_MS = 120_000;

/**
 * The guest's kernel arguments besides its memory, init and bookkeeping folder. Debian's UML kernel
 * selects SELinux by default, so AppArmor is asked for by name.
 */
export const GUEST_KERNEL_ARGS = [
  // The host's / as the guest's root, read-only.
  "rootfstype=hostfs",
  "rootflags=/",
  "ro",
  "security=apparmor",
  "apparmor=1",
  // The first console to the kernel process's stdout (the guest's console log), no other consoles.
  "con0=null,fd:1",
  "con=null",
  // Boot messages below warnings stay in the guest's dmesg (where audit lines are read), off the console.
  "quiet",
] as const;

/**
 * slirp's `fullbolt` build: Debian's plain `slirp` passes no traffic to UML (measured: 8 packets out, none
 * back).
 */
const GUEST_NETWORK_ARG = "eth0=slirp,,/usr/bin/slirp-fullbolt";

/** The guest's PATH: the host's system folders, which the guest sees read-only. */
const GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Where UML keeps its guest memory file (created unlinked): RAM, not the disk. */
const MEMORY_FILE_DIR = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

/** How much of the kernel's console a result keeps: enough for the end of a panic. */
const CONSOLE_KEPT_CHARS = 64 * 1024;

const GUEST_DIR_PREFIX = "lockstep-uml-";
/** The owning test process's pid, in each guest folder: a folder whose owner is gone is swept. */
const OWNER_FILE = ".owner";
/** The harness's own files for one boot (init, outputs, UML's bookkeeping), inside the guest folder. */
const BOOT_DIR = ".boot";

/** The folders the guest mounts a tmpfs on: a host node's own, empty at boot. */
const GUEST_TMPFS = ["/tmp", "/run"] as const;

/**
 * Host folders a guest's command needs that a guest tmpfs would hide: the checkout (its sources,
 * node_modules and bootstrapped Node) and the running Node's own folder, when they live under /tmp or
 * /run (CI clones the repository into such a folder). Each is mounted back read-only at its own path; a
 * folder inside another one listed is covered by it.
 */
export function hiddenHostFolders(folders: readonly string[]): string[] {
  const under = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);
  const hidden = [...new Set(folders)].filter((f) => GUEST_TMPFS.some((t) => under(f, t) && f !== t));
  return hidden.filter((f) => !hidden.some((other) => other !== f && under(f, other))).sort();
}

const REPOSITORY = resolve(import.meta.dirname, "../..");

export interface GuestRun {
  /** The command's exit status in the guest (128 + signal when a signal ended it). */
  status: number;
  stdout: string;
  stderr: string;
  /** The kernel console (the tail of it, CONSOLE_KEPT_CHARS). */
  console: string;
  /** Seconds from the guest kernel's start to its init running (its /proc/uptime then). */
  initUptimeSeconds: number;
  /** Host milliseconds from starting the kernel to its exit. */
  wallMs: number;
}

export interface GuestCommand {
  /** Environment of the command; PATH, HOME and TMPDIR have guest defaults. */
  env?: Record<string, string>;
  /** Working folder in the guest (host paths are the same there), default the guest folder. */
  cwd?: string;
  timeoutMs?: number;
  /**
   * An eth0 through slirp, which reaches only the host's loopback: the guest's 10.0.2.2 is the host's
   * 127.0.0.1 (the guest is 10.0.2.15/24; no default route, so nothing else is reachable by address).
   */
  network?: boolean;
  /** The guest's memory ceiling (a sparse file, not an allocation); default GUEST_MEMORY. */
  memory?: string;
}

/** A shell word that is exactly `value`. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * PID 1 of the guest: mounts what a node has (proc, sys, securityfs, tmpfs on /tmp and /run), shares
 * `dir` read-write at its own path, runs the command with its outputs in `boot`, and powers off. It never
 * exits on its own (an exiting init panics the kernel), so the host's timeout is only for a hung command.
 */
export function guestInit(dir: string, argv: readonly string[], command: GuestCommand = {}): string {
  const boot = join(dir, BOOT_DIR);
  const env = { PATH: GUEST_PATH, HOME: "/tmp", TMPDIR: "/tmp", ...command.env };
  const q = shellQuote;
  return [
    "#!/bin/sh",
    "# PID 1 of a Lockstep test guest, written by test/harness/uml.ts.",
    // Init's own, whatever PATH the command gets.
    `export PATH=${q(GUEST_PATH)}`,
    "mount -t proc proc /proc",
    "read -r uptime _ < /proc/uptime",
    "mount -t sysfs sysfs /sys",
    "mount -t securityfs securityfs /sys/kernel/security",
    // The kernel mounts devtmpfs on /dev itself when it is built to (Debian's is); once is enough.
    "[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev",
    ...GUEST_TMPFS.map((t) => `mount -t tmpfs tmpfs ${t}`),
    // The checkout and Node, where a tmpfs above hid them: read-only, as the rest of the host's root.
    ...hiddenHostFolders([REPOSITORY, dirname(dirname(process.execPath))]).flatMap((f) => [
      `mkdir -p ${q(f)}`,
      `mount -r -t hostfs none ${q(f)} -o ${q(f)}`,
    ]),
    // After the tmpfs mounts, which may hide the host's copy of the folder.
    `mkdir -p ${q(dir)}`,
    `mount -t hostfs none ${q(dir)} -o ${q(dir)}`,
    `echo "$uptime" > ${q(join(boot, "init-uptime"))}`,
    "ip link set lo up",
    ...(command.network ? ["ip addr add 10.0.2.15/24 dev eth0", "ip link set eth0 up"] : []),
    `(cd ${q(command.cwd ?? dir)} && exec env ${Object.entries(env)
      .map(([k, v]) => q(`${k}=${v}`))
      .join(
        " ",
      )} ${argv.map(q).join(" ")}) < /dev/null > ${q(join(boot, "stdout"))} 2> ${q(join(boot, "stderr"))}`,
    `echo $? > ${q(join(boot, "status"))}`,
    "sync",
    "poweroff -f 2>/dev/null || busybox poweroff -f",
    // Neither power-off came: wait for the host's timeout rather than exit (and panic), and never spin.
    "while sleep 3600; do :; done",
    "",
  ].join("\n");
}

/** Removes guest folders whose test process died before removing them. */
export function sweepAbandonedGuests(): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(GUEST_DIR_PREFIX)) continue;
    const dir = join(tmpdir(), entry);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, OWNER_FILE), "utf8"));
    } catch {
      continue; // being created, or not ours
    }
    if (Number.isInteger(owner) && !isAlive(owner)) rmSync(dir, { recursive: true, force: true });
  }
}

function requireKernel(): void {
  if (!existsSync(UML_KERNEL))
    throw new Error(
      `${UML_KERNEL} is missing: install Debian's user-mode-linux (tools/prerequisites.sh does, as root)`,
    );
  if (process.getuid?.() !== 0)
    throw new Error("the AppArmor guest needs root (a PID namespace of its own, and hostfs as root)");
}

export class AppArmorGuest {
  /** Shared read-write with the guest, at the same path; removed by dispose(). */
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static create(): AppArmorGuest {
    requireKernel();
    sweepAbandonedGuests();
    const dir = mkdtempSync(join(tmpdir(), GUEST_DIR_PREFIX));
    writeFileSync(join(dir, OWNER_FILE), String(process.pid));
    return new AppArmorGuest(dir);
  }

  /** Boots the guest, runs `argv` in it and powers it off; throws if the guest did not finish. */
  async run(argv: readonly string[], command: GuestCommand = {}): Promise<GuestRun> {
    const boot = join(this.dir, BOOT_DIR);
    rmSync(boot, { recursive: true, force: true });
    mkdirSync(boot);
    const init = join(boot, "init");
    writeFileSync(init, guestInit(this.dir, argv, command), { mode: 0o755 });
    const consoleLog = join(boot, "console.log");
    const started = performance.now();
    const kernel = startProcess(
      "uml",
      "/usr/bin/unshare",
      [
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child=SIGKILL",
        UML_KERNEL,
        `mem=${command.memory ?? GUEST_MEMORY}`,
        ...GUEST_KERNEL_ARGS,
        ...(command.network ? [GUEST_NETWORK_ARG] : []),
        `init=${init}`,
        // UML's pid file and control socket go here, not to ~/.uml.
        `uml_dir=${boot}`,
        `umid=${GUEST_DIR_PREFIX}${process.pid}`,
      ],
      consoleLog,
      // slirp, the network helper, refuses to start without a HOME.
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TMPDIR: MEMORY_FILE_DIR, HOME: boot }, cwd: boot },
    );
    const timeoutMs = command.timeoutMs ?? GUEST_RUN_TIMEOUT_MS;
    const timer = setTimeout(() => void kernel.kill(), timeoutMs);
    try {
      await kernel.exited;
    } finally {
      clearTimeout(timer);
      await kernel.kill();
    }
    const wallMs = performance.now() - started;
    const read = (file: string) => {
      try {
        return readFileSync(join(boot, file), "utf8");
      } catch {
        return undefined;
      }
    };
    const console = (read("console.log") ?? "").slice(-CONSOLE_KEPT_CHARS);
    const status = read("status");
    if (status === undefined)
      throw new Error(
        `the guest did not finish ${JSON.stringify(argv)} within ${timeoutMs} ms; its console ends:\n${console.slice(-4000)}\nthe command's output ends:\n${(read("stdout") ?? "").slice(-2000)}\n${(read("stderr") ?? "").slice(-2000)}`,
      );
    return {
      status: Number(status.trim()),
      stdout: read("stdout") ?? "",
      stderr: read("stderr") ?? "",
      console,
      initUptimeSeconds: Number(read("init-uptime")?.trim()),
      wallMs,
    };
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The pids of guest kernels a test process started that are still running (none, after run()). */
export function runningGuestKernels(ownerPid = process.pid): number[] {
  const umid = `umid=${GUEST_DIR_PREFIX}${ownerPid}`;
  // pgrep exits 1 when nothing matches.
  const out = spawnSync("/usr/bin/pgrep", ["-f", "--", umid], { encoding: "utf8" }).stdout.trim();
  return out === "" ? [] : out.split("\n").map(Number);
}
