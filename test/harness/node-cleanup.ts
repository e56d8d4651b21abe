// Taking a real test node off the machine: what a kubelet and containerd leave outside their own
// processes (container processes and shims that containerd daemonises, overlay and tmpfs mounts, the
// kubelet's bind mount of its root, cgroups in every v1 hierarchy, shim sockets in /run/containerd/s,
// /var/log/containers links, kernel tunables). One synchronous code path, so the same steps run on a
// normal stop, on a simulated reboot, from the process exit hook and from the janitor that outlives a
// killed test runner (node-janitor.ts).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import * as z from "zod";

/** What a node's clean-up needs to know, written to `<dir>/node.json` before anything is started. */
export const NodeRecordSchema = z.object({
  name: z.string(),
  /** Every file of the node lives below it: /tmp/lockstep-.../nodes/<name>. */
  dir: z.string().startsWith("/tmp/lockstep-"),
  containerdAddress: z.string(),
  /** The kubelet's cgroupRoot, created in every v1 hierarchy: /lockstep-<name>-<random>. */
  cgroupRoot: z.string().startsWith("/lockstep-"),
  ownerPid: z.number().int(),
});
export type NodeRecord = z.infer<typeof NodeRecordSchema>;

export const NODE_RECORD_FILE = "node.json";
/** containerd's shim sockets: as root the shim always puts them here, whatever containerd's state dir. */
const SHIM_SOCKET_DIR = "/run/containerd/s";
const CONTAINER_LOG_LINKS = "/var/log/containers";
/** libcni's result cache, written only when a pod outside the host network is set up. */
const CNI_CACHE_DIRS = ["/var/lib/cni/results", "/var/lib/cni"];
/** The kubelet sets these at start (setupKernelTunables); the harness puts the machine's values back. */
export const KUBELET_KERNEL_TUNABLES = [
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
] as const;
const KERNEL_DEFAULTS_FILE = "/tmp/lockstep-kernel-tunables.json";
const KernelDefaultsSchema = z.record(z.string(), z.string());

export function readNodeRecord(dir: string): NodeRecord | undefined {
  try {
    return NodeRecordSchema.parse(JSON.parse(readFileSync(join(dir, NODE_RECORD_FILE), "utf8")));
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The v1 hierarchies' mount points (cgroup v1 or hybrid); the kubelet needs its cgroupRoot in each. */
export function cgroupV1Mounts(): string[] {
  return cgroupMounts(["cgroup"]);
}

function cgroupMounts(types: readonly string[]): string[] {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" "))
    .filter((f) => types.includes(f[2] ?? "") && f[1] !== undefined)
    .map((f) => f[1] as string);
}

function procEntries(): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

function readProc(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return "";
  }
}

/**
 * Every cgroup folder below `root` in each hierarchy, deepest first: the v1 ones the harness made and
 * the ones runc adds in the hybrid layout's unified (v2) hierarchy.
 */
function cgroupTree(root: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    let entries: string[];
    try {
      entries = readdirSync(path, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) walk(join(path, e));
    found.push(path);
  };
  for (const mount of cgroupMounts(["cgroup", "cgroup2"])) walk(join(mount, root));
  return found;
}

/**
 * SIGKILLs every process of the node: its containers (by cgroup) and its daemons and shims (by argv).
 * Returns the [namespace, id] of each shim it found, whose sockets the shims can no longer remove.
 */
function killNodeProcesses(record: NodeRecord): [string, string][] {
  const shims: [string, string][] = [];
  for (let round = 0; round < 50; round++) {
    const victims = new Set<number>();
    for (const cg of cgroupTree(record.cgroupRoot)) {
      const procs = (() => {
        try {
          return readFileSync(join(cg, "cgroup.procs"), "utf8");
        } catch {
          return "";
        }
      })();
      for (const pid of procs.split("\n").filter(Boolean)) victims.add(Number(pid));
    }
    // containerd and the kubelet name the node's folder in their arguments, each shim names the socket.
    for (const pid of procEntries()) {
      const argv = readProc(pid, "cmdline").split("\0");
      if (!argv.some((arg) => arg.includes(record.dir))) continue;
      victims.add(pid);
      const flag = (name: string) => argv[argv.indexOf(name) + 1];
      const [ns, id] = [flag("-namespace"), flag("-id")];
      if (argv.includes("-address") && ns && id) shims.push([ns, id]);
    }
    victims.delete(process.pid);
    if (victims.size === 0) return shims;
    for (const pid of victims) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    execFileSync("sleep", ["0.1"]);
  }
  return shims;
}

/**
 * Removes the sockets of this node's shims (shim.CreateSocketAddress: a hash of containerd's address,
 * namespace and id), known from the shims' arguments and from containerd's task folders.
 */
function removeShimSockets(record: NodeRecord, shims: [string, string][]): void {
  const taskDir = join(record.dir, "containerd", "state", "io.containerd.runtime.v2.task");
  const tasks: [string, string][] = [];
  try {
    for (const ns of readdirSync(taskDir))
      for (const id of readdirSync(join(taskDir, ns))) tasks.push([ns, id]);
  } catch {
    // no task folders (never started, or already wiped)
  }
  for (const [ns, id] of [...shims, ...tasks])
    for (const socket of shimSocketPaths(record, ns, id)) rmSync(socket, { force: true });
}

/** The socket and debug socket of the shim for container `id` in namespace `ns` of this node's containerd. */
export function shimSocketPaths(record: NodeRecord, ns: string, id: string): string[] {
  return ["", "/debug"].map((suffix) =>
    join(
      SHIM_SOCKET_DIR,
      createHash("sha256")
        .update(`${join(record.containerdAddress, ns, id)}${suffix}`)
        .digest("hex"),
    ),
  );
}

/** Every mount point at or below `dir`, deepest first (the kubelet's bind mount of its root, overlays, tmpfs). */
function mountsBelow(dir: string): string[] {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((line) => (line.split(" ")[1] ?? "").replace(/\\040/g, " "))
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .reverse();
}

function unmountBelow(dir: string): void {
  for (let round = 0; round < 10; round++) {
    const points = mountsBelow(dir);
    if (points.length === 0) return;
    for (const point of points) {
      try {
        execFileSync("umount", ["--lazy", point], { stdio: "ignore" });
      } catch {
        // stacked or already gone: the next round sees what is left
      }
    }
  }
}

function removeCgroups(record: NodeRecord): void {
  for (const cg of cgroupTree(record.cgroupRoot)) {
    try {
      rmdirSync(cg);
    } catch {
      // a process still exiting; the caller's next pass or the janitor retries
    }
  }
}

function removeContainerLogLinks(record: NodeRecord): void {
  let links: string[];
  try {
    links = readdirSync(CONTAINER_LOG_LINKS);
  } catch {
    return;
  }
  for (const link of links) {
    const path = join(CONTAINER_LOG_LINKS, link);
    try {
      if (readlinkSync(path).startsWith(`${record.dir}/`)) unlinkSync(path);
    } catch {
      // not a link
    }
  }
}

/**
 * What a power cut leaves of a node: its processes, mounts, cgroups and sockets are gone, its folders
 * stay. Used for a simulated reboot and as the first half of `removeNode`.
 */
export function haltNode(record: NodeRecord): void {
  removeShimSockets(record, killNodeProcesses(record));
  unmountBelow(record.dir);
  removeCgroups(record);
  removeContainerLogLinks(record);
}

/** Takes the node off the machine entirely; safe to run twice and from another process. */
export function removeNode(record: NodeRecord): void {
  haltNode(record);
  rmSync(record.dir, { recursive: true, force: true });
  // Folders the kubelet and containerd create on first use; removed only when empty, since another
  // runtime on the machine may use them.
  for (const dir of [SHIM_SOCKET_DIR, dirname(SHIM_SOCKET_DIR), CONTAINER_LOG_LINKS, ...CNI_CACHE_DIRS]) {
    try {
      rmdirSync(dir);
    } catch {
      // not empty (another containerd on the machine) or never created
    }
  }
  if (liveNodeRecords().length === 0) restoreKernelTunables();
}

/** Records the machine's kernel tunables before the first kubelet of any test changes them. */
export function saveKernelTunables(): void {
  if (existsSync(KERNEL_DEFAULTS_FILE)) return;
  const values = Object.fromEntries(
    KUBELET_KERNEL_TUNABLES.map((t) => [t, readFileSync(`/proc/sys/${t}`, "utf8").trim()]),
  );
  writeFileSync(KERNEL_DEFAULTS_FILE, JSON.stringify(values));
}

function restoreKernelTunables(): void {
  if (!existsSync(KERNEL_DEFAULTS_FILE)) return;
  const values = KernelDefaultsSchema.parse(JSON.parse(readFileSync(KERNEL_DEFAULTS_FILE, "utf8")));
  for (const [tunable, value] of Object.entries(values)) {
    try {
      writeFileSync(`/proc/sys/${tunable}`, value);
    } catch {
      // read-only here: nothing was changed either
    }
  }
  rmSync(KERNEL_DEFAULTS_FILE, { force: true });
}

/** The records of real nodes on this machine whose owning test process still runs. */
export function liveNodeRecords(): NodeRecord[] {
  return allNodeRecords().filter((r) => isAlive(r.ownerPid));
}

function allNodeRecords(): NodeRecord[] {
  const records: NodeRecord[] = [];
  for (const top of readdirSync("/tmp").filter((e) => e.startsWith("lockstep-"))) {
    const nodes = join("/tmp", top, "nodes");
    let names: string[];
    try {
      names = readdirSync(nodes);
    } catch {
      continue;
    }
    for (const name of names) {
      const record = readNodeRecord(join(nodes, name));
      if (record) records.push(record);
    }
  }
  return records;
}

/** Removes what runs of dead test processes left (a runner killed before its janitor could act). */
export function sweepAbandonedNodes(): void {
  for (const record of allNodeRecords()) if (!isAlive(record.ownerPid)) removeNode(record);
}
