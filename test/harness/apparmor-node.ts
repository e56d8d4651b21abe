// A real node whose kernel has AppArmor: containerd 2.x, a kubelet and (optionally) the Lockstep agent,
// all inside a User-Mode Linux guest (uml.ts), registered with this machine's control plane through the
// guest's loopback-only network (docs/adr/0028-real-apparmor-kernel.md, "A kubelet node in the guest").
// Pods scheduled there run under Debian's runc in the guest, which applies their AppArmor profile through
// the guest kernel: what the kernel refuses is what the test reads from the pod's log.
//
// The guest differs from a host node (real-node.ts) only where its kernel makes it:
// - cgroup v2 in the guest (the host is v1 hybrid), no cpuset controller (the UML build has none);
// - overlayfs is a module in the UML build: the guest loads it from the package's own folder
//   (UML_OVERLAY_MODULE; modprobe would look for the host kernel's modules), and containerd's root is on a
//   guest tmpfs (the `native` snapshotter, plain copies of every layer per snapshot, filled a 768 MiB tmpfs
//   with the Lockstep image: measured);
// - the kubelet's root is /var/lib/kubelet on a guest tmpfs: its device-plugin socket path is fixed
//   there, and the host's copy of that folder is read-only in the guest;
// - UML's /proc/cpuinfo has no clock speed, which the kubelet's cAdvisor refuses to start without: the
//   guest adds a `cpu MHz` line (bind-mounted copy; the figure is only reported, never used to schedule);
// - the API server cannot reach the kubelet (slirp carries only guest-to-host connections), so pod logs
//   are read from the kubelet's podLogsDir, which is in the folder shared with the host.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { issueCertificate } from "../../src/kube/certificates.ts";
import { agentKubeconfig } from "./agents.ts";
import { type ControlPlane, GiveUp, waitFor } from "./controlplane.ts";
import { buildNodeImages } from "./images.ts";
import {
  containerdConfig,
  kubeletConfig,
  LOOPBACK_ONLY_CNI,
  markReachable,
  nodeAddress,
  nodeBinDir,
} from "./real-node.ts";
import { AppArmorGuest, type GuestRun, shellQuote } from "./uml.ts";

const repo = join(import.meta.dirname, "../..");

/**
 * The guest's memory ceiling: containerd, the kubelet, the agent and a few pods used about 250 MiB
 * (measured); the rest is room for the tmpfs holding containerd's unpacked images.
 */
const NODE_GUEST_MEMORY = "1536M";
/** Measured 15-25 s from boot to Ready on a quiet machine; generous for a loaded 2-core one. */
const NODE_READY_TIMEOUT_MS = 180_000;
/** A whole test's life of the node; the guest is powered off by stop() long before this. */
const NODE_GUEST_LIFETIME_MS = 30 * 60_000;
/** The guest kernel's overlayfs module, in the guest: Debian's user-mode-linux ships its modules here. */
const UML_OVERLAY_MODULE = "/usr/lib/uml/modules/$(uname -r)/kernel/fs/overlayfs/overlay.ko";
/** containerd's root and state: a guest tmpfs of its own (a host node's /run is one too). */
const GUEST_RUNTIME_DIR = "/run/lockstep-node";
/** The kubelet's root in the guest; also the agent's --kubelet-root. */
export const GUEST_KUBELET_ROOT = "/var/lib/kubelet";
/** How often the guest copies its kernel's profile list and AppArmor audit lines to the shared folder. */
const KERNEL_COPY_INTERVAL_S = 0.2;

export interface AppArmorNodeOptions {
  /**
   * Start the Lockstep agent (node-agent/main.ts from source) in the guest once the Node is Ready. Without
   * it, an agent comes the way it comes to every node: a DaemonSet's pod (make demo).
   */
  agent?: boolean;
  /**
   * The kubelet's root in the guest, default GUEST_KUBELET_ROOT. A DaemonSet's hostPath names one folder
   * for every node, so a node beside host nodes uses their layout (real-node.ts's nodeKubeletRoot); the
   * folder is the guest's own (its /tmp), whatever its path.
   */
  kubeletRoot?: string;
  /** OCI archives to import into the node's containerd besides the harness's (the Lockstep image). */
  images?: readonly string[];
}

/** A running AppArmor node; `stop()` powers the guest off. Made by `addAppArmorNode`. */
export class AppArmorNode {
  readonly name: string;
  /** The node's folder, shared with the guest at the same path. */
  readonly dir: string;
  readonly address: string;
  private readonly guest: AppArmorGuest;
  private readonly run: Promise<GuestRun>;
  private finished: GuestRun | Error | undefined;
  private stopped: Promise<GuestRun | Error> | undefined;

  constructor(name: string, dir: string, address: string, guest: AppArmorGuest, run: Promise<GuestRun>) {
    this.name = name;
    this.dir = dir;
    this.address = address;
    this.guest = guest;
    this.run = run;
    run.then(
      (r) => {
        this.finished = r;
      },
      (error: unknown) => {
        this.finished = error instanceof Error ? error : new Error(String(error));
      },
    );
  }

  private read(file: string): string {
    const path = join(this.dir, file);
    return existsSync(path) ? readFileSync(path, "utf8") : "";
  }

  /** The guest kernel's profile list (`name (mode)` lines), as of the last copy. */
  kernelProfiles(): string[] {
    return this.read("profiles.now").split("\n").filter(Boolean);
  }

  /** The guest kernel's AppArmor audit lines so far (from its ring buffer). */
  auditLines(): string[] {
    return this.read("audit.now")
      .split("\n")
      .filter((l) => l.includes("apparmor="));
  }

  agentLog(): string {
    return this.read("agent.log");
  }

  /** The end of the kubelet's log, or undefined while the guest still runs it. */
  exited(): string | undefined {
    if (this.finished === undefined) return undefined;
    return `${this.finished instanceof Error ? this.finished.message : this.finished.console.slice(-2000)}\n${this.read("kubelet.log").slice(-3000)}`;
  }

  /** What a container of a pod on this node printed: its log file, without the CRI line prefixes. */
  podLog(namespace: string, pod: string, container: string): string {
    const logs = join(this.dir, "pod-logs");
    const podDir = readdirSync(logs).find((d) => d.startsWith(`${namespace}_${pod}_`));
    if (podDir === undefined) return "";
    const containerDir = join(logs, podDir, container);
    if (!existsSync(containerDir)) return "";
    return readdirSync(containerDir)
      .sort()
      .map((f) => readFileSync(join(containerDir, f), "utf8"))
      .join("")
      .split("\n")
      .filter(Boolean)
      .map((line) => line.replace(/^\S+ (stdout|stderr) [FP] /, ""))
      .join("\n");
  }

  /**
   * Runs a shell script in the guest as root, between two copies of its kernel state (the guest's node
   * processes keep running); resolves with its exit status and output.
   */
  async exec(script: string): Promise<{ status: number; output: string }> {
    const status = join(this.dir, "command.status");
    rmSync(status, { force: true });
    writeFileSync(join(this.dir, "command.sh.new"), script);
    renameSync(join(this.dir, "command.sh.new"), join(this.dir, "command.sh"));
    await waitFor("the guest to run a command", async () => existsSync(status), { timeoutMs: 60_000 });
    return { status: Number(readFileSync(status, "utf8").trim()), output: this.read("command.out") };
  }

  /** The agent's pid in the guest (it runs again after it exits, unless held: holdAgent). */
  agentPid(): number {
    return Number(this.read("agent.pid").trim());
  }

  /** While held, an agent that exited is not started again. */
  holdAgent(held: boolean): void {
    if (held) writeFileSync(join(this.dir, "agent.hold"), "held");
    else rmSync(join(this.dir, "agent.hold"), { force: true });
  }

  /** Powers the guest off (agent, kubelet and containerd stopped first) and removes its folder. */
  stop(): Promise<GuestRun | Error> {
    this.stopped ??= (async () => {
      writeFileSync(join(this.dir, "stop"), "stop");
      const result = await this.run.catch((error: unknown) =>
        error instanceof Error ? error : new Error(String(error)),
      );
      if (!process.env.LOCKSTEP_KEEP_WORKDIR) this.guest.dispose();
      return result;
    })();
    return this.stopped;
  }
}

/** The guest's init command: the node's processes, and the copies of its kernel state the host reads. */
interface NodeScript {
  dir: string;
  bin: string;
  apiPort: string;
  name: string;
  agent: boolean;
  kubeletRoot: string;
  images: readonly string[];
}

function nodeScript({ dir, bin, apiPort, name, agent, kubeletRoot, images }: NodeScript): string {
  const q = shellQuote;
  const file = (f: string) => q(join(dir, f));
  const ctr = `${bin}/ctr --address ${GUEST_RUNTIME_DIR}/containerd.sock`;
  return [
    "#!/bin/sh",
    "mount -t cgroup2 none /sys/fs/cgroup",
    "echo '+cpu +io +memory +pids' > /sys/fs/cgroup/cgroup.subtree_control",
    // cAdvisor needs a clock speed; UML's cpuinfo has none.
    `{ cat /proc/cpuinfo; printf 'cpu MHz\\t\\t: 1000.000\\n'; } > /run/cpuinfo && mount --bind /run/cpuinfo /proc/cpuinfo`,
    // busybox-static (a prerequisite) has insmod; the host may have no kmod.
    `busybox insmod ${UML_OVERLAY_MODULE} || exit 1`,
    `mkdir -p ${GUEST_RUNTIME_DIR} && mount -t tmpfs -o size=90% tmpfs ${GUEST_RUNTIME_DIR}`,
    "mount -t tmpfs tmpfs /var/log",
    // The kubelet's device-plugin socket is at this fixed path whatever its root.
    `mount -t tmpfs tmpfs ${GUEST_KUBELET_ROOT}`,
    `mkdir -p ${q(kubeletRoot)}`,
    `node ${q(join(repo, "test/harness/guest-loopback-forward.ts"))} ${apiPort} &`,
    `${bin}/containerd --config ${file("containerd.toml")} > ${file("containerd.log")} 2>&1 &`,
    "containerd=$!",
    `until ${ctr} version > /dev/null 2>&1; do kill -0 $containerd || exit 1; sleep 0.2; done`,
    ...["images.tar", ...images].map(
      (image) => `${ctr} -n k8s.io images import --all-platforms ${file(image)} > /dev/null || exit 1`,
    ),
    `${bin}/kubelet --config=${file("kubelet.json")} --kubeconfig=${file("kubelet.kubeconfig")} --root-dir=${q(kubeletRoot)} --cert-dir=${file("pki")} --hostname-override=${name} --cloud-provider=external --v=2 > ${file("kubelet.log")} 2>&1 &`,
    "kubelet=$!",
    "agent=",
    `until [ -s ${file("stop")} ]; do`,
    "  kill -0 $kubelet || break",
    ...(agent
      ? [
          // The host writes the agent's kubeconfig once the Node exists (its token is bound to a pod there).
          // Like a DaemonSet's pod, the agent starts again when it exits, unless the host holds it down
          // (agent.hold) to change the cluster while no agent runs.
          `  if [ -s ${file("agent.kubeconfig")} ] && [ ! -e ${file("agent.hold")} ] && { [ -z "$agent" ] || ! kill -0 $agent 2>/dev/null; }; then`,
          `    NODE_NAME=${q(name)} KUBECONFIG=${file("agent.kubeconfig")} LOG_LEVEL=debug node ${q(join(repo, "node-agent/main.ts"))} --kubelet-root=${q(kubeletRoot)} --health-port=0 >> ${file("agent.log")} 2>&1 &`,
          "    agent=$!",
          `    echo $agent > ${file("agent.pid")}`,
          "  fi",
        ]
      : []),
    // A command from the host (AppArmorNode.exec): its output and status beside it.
    `  if [ -s ${file("command.sh")} ]; then sh ${file("command.sh")} > ${file("command.out")} 2>&1; echo $? > ${file("command.status.new")}; rm ${file("command.sh")}; mv ${file("command.status.new")} ${file("command.status")}; fi`,
    `  cat /sys/kernel/security/apparmor/profiles > ${file("profiles.new")}; mv ${file("profiles.new")} ${file("profiles.now")}`,
    `  dmesg | grep apparmor= > ${file("audit.new")}; mv ${file("audit.new")} ${file("audit.now")}`,
    `  sleep ${KERNEL_COPY_INTERVAL_S}`,
    "done",
    `[ -n "$agent" ] && kill $agent 2>/dev/null`,
    "kill $kubelet; wait $kubelet",
    "kill $containerd; wait $containerd",
    `cat /sys/kernel/security/apparmor/profiles > ${file("profiles.now")}`,
    "",
  ].join("\n");
}

/**
 * Starts a node named `name` in a UML guest whose kernel has AppArmor, registered with `cp` and Ready,
 * its images imported; with `agent`, the Lockstep agent runs there too (the agent's RBAC must be
 * installed: installAgentPrerequisites). Stopped by `cp.stop()`, and with the test process if it dies.
 */
export async function addAppArmorNode(
  cp: ControlPlane,
  name: string,
  options: AppArmorNodeOptions = {},
): Promise<AppArmorNode> {
  const bin = await nodeBinDir();
  const guest = AppArmorGuest.create();
  const dir = join(guest.dir, "node");
  for (const sub of ["pki", "cni", "pod-logs", "volume-plugins"])
    mkdirSync(join(dir, sub), { recursive: true });
  // The address the Node reports: the API server never reaches the guest's kubelet (see the top).
  const address = nodeAddress();
  const serving = await issueCertificate(cp.ca, {
    commonName: name,
    dnsNames: [name],
    ipAddresses: ["127.0.0.1"],
    usage: "server",
  });
  writeFileSync(join(dir, "pki", "ca.crt"), cp.ca.certPem);
  writeFileSync(join(dir, "pki", "kubelet.crt"), serving.certPem);
  writeFileSync(join(dir, "pki", "kubelet.key"), serving.keyPem, { mode: 0o600 });
  // Copies, not paths: the control plane's folder is under the host's /tmp, which the guest's /tmp hides.
  copyFileSync(
    await cp.writeKubeconfigFor(`system:node:${name}`, ["system:nodes"], `kubelet-${name}`),
    join(dir, "kubelet.kubeconfig"),
  );
  copyFileSync(buildNodeImages(cp.workDir), join(dir, "images.tar"));
  const images = (options.images ?? []).map((archive, i) => {
    copyFileSync(archive, join(dir, `extra-image-${i}.tar`));
    return `extra-image-${i}.tar`;
  });
  writeFileSync(join(dir, "cni", "10-loopback.conflist"), LOOPBACK_ONLY_CNI);
  const containerdAddress = join(GUEST_RUNTIME_DIR, "containerd.sock");
  writeFileSync(
    join(dir, "containerd.toml"),
    containerdConfig(dir, containerdAddress, "127.0.0.1", {
      root: join(GUEST_RUNTIME_DIR, "root"),
      state: join(GUEST_RUNTIME_DIR, "state"),
      // Not in the shared folder: on hostfs, a container running as a non-root user could not open runc's
      // exec fifo ("open exec fifo /proc/self/fd/5: permission denied", measured with the web example).
      runcRoot: join(GUEST_RUNTIME_DIR, "runc"),
    }),
  );
  writeFileSync(
    join(dir, "kubelet.json"),
    kubeletConfig(
      dir,
      { containerdAddress, cgroupRoot: "/" },
      { address: "127.0.0.1", port: 10250, healthzPort: 10248 },
    ),
  );
  writeFileSync(
    join(dir, "node.sh"),
    nodeScript({
      dir,
      bin,
      apiPort: new URL(cp.server).port,
      name,
      agent: options.agent ?? false,
      kubeletRoot: options.kubeletRoot ?? GUEST_KUBELET_ROOT,
      images,
    }),
  );

  const bootedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
  const run = guest.run(["/bin/sh", join(dir, "node.sh")], {
    network: true,
    memory: NODE_GUEST_MEMORY,
    timeoutMs: NODE_GUEST_LIFETIME_MS,
    env: { PATH: `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin` },
  });
  const node = new AppArmorNode(name, dir, address, guest, run);
  cp.onStop(async () => {
    await node.stop();
  });
  try {
    const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    await waitFor(
      `the guest's kubelet to register ${name}`,
      async () => {
        const exited = node.exited();
        if (exited !== undefined) throw new GiveUp(`the guest's node ended:\n${exited}`);
        return core.readNode({ name });
      },
      { timeoutMs: NODE_READY_TIMEOUT_MS },
    );
    await markReachable(core, name, address, bootedAt, () => node.exited());
    if (options.agent) {
      const kubeconfig = await agentKubeconfig(cp, name);
      writeFileSync(join(dir, "agent.kubeconfig"), readFileSync(kubeconfig), { mode: 0o600 });
    }
  } catch (error) {
    const logs = `kubelet:\n${readLog(dir, "kubelet.log")}\ncontainerd:\n${readLog(dir, "containerd.log")}`;
    const result = await node.stop();
    const tail = result instanceof Error ? result.message : result.console.slice(-2000);
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nguest:\n${tail}\n${logs}`);
  }
  return node;
}

function readLog(dir: string, file: string): string {
  const path = join(dir, file);
  return existsSync(path) ? readFileSync(path, "utf8").slice(-3000) : "(none)";
}
