// A real Kubernetes node on this machine: a private containerd 2.x (own root, state, socket, config)
// and a kubelet (own root dir, ports, cgroup subtree, node identity from the harness CA), both on
// loopback only. Pods really run, under Debian's runc, with the seccomp profile the kubelet resolves
// under <kubelet root>/seccomp: the folder a Lockstep agent writes into (agents.ts uses the same one).
//
// Network (docs/adr/0050-real-nodes-on-loopback.md): the CNI configuration holds only the
// `loopback` plugin, which is enough for the runtime to report its network ready and the node to go
// Ready, and every test pod runs with hostNetwork, so no pod IP, bridge or iptables rule exists. Each
// node has a loopback address of its own (nodeAddress): its kubelet and containerd's stream server
// listen there, the harness sets it as the Node's InternalIP (the API server reaches the kubelet
// there), and the kubelet reports it as every hostNetwork pod's IP, so two nodes' pods can listen on the
// same port, each on its pod IP (docs/adr/0062-deploy-on-real-nodes.md).
import { execFile, spawn } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { localhostProfileFor } from "../../src/api/labels.ts";
import { issueCertificate } from "../../src/kube/certificates.ts";
import { type ControlPlane, freePort, GiveUp, waitFor } from "./controlplane.ts";
import { BUSYBOX_IMAGE, buildNodeImages, PAUSE_IMAGE } from "./images.ts";
import {
  cgroupV1Mounts,
  haltNode,
  NODE_RECORD_FILE,
  type NodeRecord,
  removeNode,
  saveKernelTunables,
  sweepAbandonedNodes,
} from "./node-cleanup.ts";
import { type ManagedProcess, startProcess } from "./processes.ts";

const run = promisify(execFile);
const repo = join(import.meta.dirname, "../..");

/**
 * A node's own loopback address, drawn from 127.16.0.1-127.254.255.254: outside 127.0.0.0/12, where
 * 127.0.0.1, Debian's 127.0.1.1 hostname entry and the fixed addresses of other tests live. Random, so two
 * runs on one machine (and two nodes of one run) get the same one about once in 15 million; the kubelet's
 * ports are retried on a conflict anyway. Every 127/8 address is the loopback interface's on Linux: nothing
 * to add or remove.
 */
export function nodeAddress(): string {
  return `127.${randomInt(16, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

export const CNI_PLUGIN_DIR = "/usr/lib/cni";
export const RUNC = "/usr/sbin/runc";
/** What a fresh machine lacks for a real node, with the line that installs it. */
const PREREQUISITES: [path: string, install: string][] = [
  [RUNC, "apt-get install runc"],
  [join(CNI_PLUGIN_DIR, "loopback"), "apt-get install containernetworking-plugins"],
  ["/usr/bin/setpriv", "apt-get install util-linux"],
];

/** The folder holding every real node's folder. */
export function nodesDir(cp: ControlPlane): string {
  return join(cp.workDir, "nodes");
}

/** The folder of everything a node named `name` has, agents.ts's kubelet root included. */
export function nodeDir(cp: ControlPlane, name: string): string {
  return join(nodesDir(cp), name);
}

export function nodeKubeletRoot(cp: ControlPlane, name: string): string {
  return join(nodeDir(cp, name), "kubelet");
}

/** A node's containerd state folder within the node's folder (containerdConfig's default). */
export const CONTAINERD_STATE_IN_NODE = join("containerd", "state");

/** The node's containerd state folder, whose bundles the agent reads. */
export function nodeContainerdState(cp: ControlPlane, name: string): string {
  return join(nodeDir(cp, name), CONTAINERD_STATE_IN_NODE);
}

/** The folder with kubelet, containerd, containerd-shim-runc-v2 and ctr; fails saying how to build it. */
export async function nodeBinDir(): Promise<string> {
  if (process.env.LOCKSTEP_NODE_BIN) return process.env.LOCKSTEP_NODE_BIN;
  try {
    const { stdout } = await run(join(repo, "tools/node/build.sh"), ["--cached"]);
    return stdout.trim();
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(stderr || "the kubelet and containerd are not built: run `make controlplane`");
  }
}

/** Where containerd keeps its images and state, and runc its containers' state. */
export interface ContainerdStorage {
  root: string;
  state: string;
  runcRoot: string;
}

export function containerdConfig(
  dir: string,
  address: string,
  listenAddress: string,
  storage: ContainerdStorage = {
    root: join(dir, "containerd", "root"),
    state: join(dir, CONTAINERD_STATE_IN_NODE),
    runcRoot: join(dir, "runc"),
  },
): string {
  const q = (s: string) => `'${s}'`;
  return `version = 3
root = ${q(storage.root)}
state = ${q(storage.state)}
# Plugins that would write outside the node's folder (/opt/containerd, the NRI socket) or that a
# test node does not use.
disabled_plugins = [
  'io.containerd.internal.v1.opt',
  'io.containerd.nri.v1.nri',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.erofs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
]

[grpc]
  address = ${q(address)}

[ttrpc]
  address = ${q(`${address}.ttrpc`)}

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = ${q(PAUSE_IMAGE)}

[plugins.'io.containerd.cri.v1.runtime']
  # Root here lacks CAP_SYS_RESOURCE: it may not lower an OOM score below its own.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  cdi_spec_dirs = []
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = ${q(RUNC)}
      Root = ${q(storage.runcRoot)}
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [${q(CNI_PLUGIN_DIR)}]
    conf_dir = ${q(join(dir, "cni"))}

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = ${q(listenAddress)}
  stream_server_port = '0'
`;
}

/** Only `loopback`: the runtime reports its network ready, and no pod gets an address anything could reach. */
export const LOOPBACK_ONLY_CNI = JSON.stringify({
  cniVersion: "1.0.0",
  name: "lockstep-loopback",
  plugins: [{ type: "loopback" }],
});

/** Where a kubelet listens: the node's own loopback address, its HTTPS port and its healthz port. */
export interface KubeletListen {
  address: string;
  port: number;
  healthzPort: number;
}

export function kubeletConfig(
  dir: string,
  record: Pick<NodeRecord, "containerdAddress" | "cgroupRoot">,
  listen: KubeletListen,
): string {
  return JSON.stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: listen.address,
    port: listen.port,
    readOnlyPort: 0,
    healthzBindAddress: listen.address,
    healthzPort: listen.healthzPort,
    tlsCertFile: join(dir, "pki", "kubelet.crt"),
    tlsPrivateKeyFile: join(dir, "pki", "kubelet.key"),
    // The API server presents its kubelet-client certificate from the harness CA; everyone else is asked about.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: join(dir, "pki", "ca.crt") },
    },
    authorization: { mode: "Webhook" },
    containerRuntimeEndpoint: `unix://${record.containerdAddress}`,
    // cgroup v1 (hybrid) machines: allowed explicitly since 1.35; cgroupfs, as no systemd runs here.
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    cgroupRoot: record.cgroupRoot,
    failSwapOn: false,
    podLogsDir: join(dir, "pod-logs"),
    volumePluginDir: join(dir, "volume-plugins"),
    // Nothing but the test's pods: never evict them or delete the imported images for disk space.
    evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    maxPods: 30,
  });
}

/** Makes the kubelet's cgroupRoot in every v1 hierarchy; cpuset needs its cpus and mems before any task joins. */
function createCgroupRoot(root: string): void {
  for (const mount of cgroupV1Mounts()) {
    const path = join(mount, root);
    mkdirSync(path, { recursive: true });
    for (const file of ["cpuset.cpus", "cpuset.mems"])
      if (existsSync(join(mount, file))) writeFileSync(join(path, file), readFileSync(join(mount, file)));
  }
}

function requirePrerequisites(): void {
  for (const [path, install] of PREREQUISITES)
    if (!existsSync(path)) throw new Error(`${path} is missing, a real node needs it: ${install}`);
}

/**
 * A real node: containerd and a kubelet under one folder, with the identity and the loopback address
 * the control plane expects. Made by `addRealNode`.
 */
export class RealNode {
  readonly name: string;
  readonly dir: string;
  readonly kubeletRoot: string;
  /** The node's own loopback address: its InternalIP, and the IP of its (hostNetwork) pods. */
  readonly address: string;
  /** The kubelet's HTTPS port on `address` (logs, exec), as the API server reaches it. */
  kubeletPort = 0;
  containerd: ManagedProcess | undefined;
  kubelet: ManagedProcess | undefined;
  private stopped = false;
  private readonly core: k8s.CoreV1Api;
  private readonly env: NodeJS.ProcessEnv;
  private readonly cp: ControlPlane;
  private readonly record: NodeRecord;
  private readonly bin: string;
  private readonly images: string;
  private readonly kubeconfig: string;

  constructor(
    cp: ControlPlane,
    record: NodeRecord,
    address: string,
    bin: string,
    images: string,
    kubeconfig: string,
  ) {
    this.cp = cp;
    this.record = record;
    this.bin = bin;
    this.images = images;
    this.kubeconfig = kubeconfig;
    this.name = record.name;
    this.dir = record.dir;
    this.kubeletRoot = nodeKubeletRoot(cp, record.name);
    this.address = address;
    this.core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
    this.env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` };
  }

  /** Starts containerd, imports the images, starts the kubelet and waits until the Node is Ready. */
  async boot(): Promise<void> {
    const bootedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    createCgroupRoot(this.record.cgroupRoot);
    this.containerd = await this.startContainerd();
    await this.ctr("images", "import", "--all-platforms", this.images);
    [this.kubelet, this.kubeletPort] = await this.startKubelet();
    await markReachable(this.core, this.name, this.address, bootedAt, () =>
      this.kubelet?.isRunning() ? undefined : (this.kubelet?.tail() ?? ""),
    );
  }

  /**
   * A power cut and boot: every process, container, mount and cgroup of the node goes, its disks
   * (kubelet root, containerd root) stay; then containerd and the kubelet start again. The node's
   * agent is one of its processes: restart it after this.
   */
  async reboot(): Promise<void> {
    haltNode(this.record);
    // /run is a tmpfs on a real machine: containerd's state does not survive a reboot.
    rmSync(join(this.dir, "containerd", "state"), { recursive: true, force: true });
    await this.boot();
  }

  /** Stops everything and removes the node's folder and every trace on the machine. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.kubelet?.stop(5_000);
    await this.containerd?.stop(5_000);
    if (process.env.LOCKSTEP_KEEP_WORKDIR)
      for (const log of ["kubelet.log", "containerd.log"])
        if (existsSync(join(this.dir, log)))
          copyFileSync(join(this.dir, log), join(this.cp.workDir, `${this.name}-${log}`));
    removeNode(this.record);
  }

  /**
   * Imports an OCI archive into this node's containerd (the image store the kubelet runs pods from),
   * as the harness's own images are: pods name it with `imagePullPolicy: Never`. A reboot keeps it.
   */
  async importImage(archive: string): Promise<void> {
    await this.ctr("images", "import", "--all-platforms", archive);
  }

  /**
   * Names an imported image a second way (`ctr images tag`), e.g. by the digest a release pins it by
   * (`<repository>@sha256:...`), which a registry's pull would record and an import does not.
   */
  async tagImage(source: string, target: string): Promise<void> {
    await this.ctr("images", "tag", source, target);
  }

  private ctr(...args: string[]) {
    return run(join(this.bin, "ctr"), ["--address", this.record.containerdAddress, "-n", "k8s.io", ...args]);
  }

  private async startContainerd(): Promise<ManagedProcess> {
    const p = startProcess(
      `containerd-${this.name}`,
      join(this.bin, "containerd"),
      ["--config", join(this.dir, "containerd.toml"), "--log-level", "info"],
      join(this.dir, "containerd.log"),
      { env: this.env },
    );
    await waitFor(`containerd of ${this.name} to serve`, async () => {
      if (!p.isRunning()) throw new GiveUp(`containerd on ${this.name} exited:\n${p.tail()}`);
      await this.ctr("version");
      return true;
    });
    return p;
  }

  private async startKubelet(): Promise<[ManagedProcess, number]> {
    // Ports are free when chosen but may be taken before the kubelet binds: try again with new ones.
    for (let attempt = 1; ; attempt++) {
      const listen = { address: this.address, port: await freePort(), healthzPort: await freePort() };
      writeFileSync(join(this.dir, "kubelet.json"), kubeletConfig(this.dir, this.record, listen));
      const p = startProcess(
        `kubelet-${this.name}`,
        join(this.bin, "kubelet"),
        [
          `--config=${join(this.dir, "kubelet.json")}`,
          `--kubeconfig=${this.kubeconfig}`,
          `--root-dir=${this.kubeletRoot}`,
          `--cert-dir=${join(this.dir, "pki")}`,
          `--hostname-override=${this.name}`,
          // The kubelet refuses a loopback node IP and would publish the machine's own address;
          // with an external cloud provider it keeps whatever addresses the Node has, which the
          // harness sets to the node's own loopback address once (markReachable).
          "--cloud-provider=external",
          "--v=2",
        ],
        join(this.dir, "kubelet.log"),
        { env: this.env },
      );
      try {
        await waitFor(`the kubelet of ${this.name} to serve healthz`, async () => {
          if (!p.isRunning()) throw new GiveUp(`kubelet on ${this.name} exited:\n${p.tail()}`);
          return (await fetch(`http://${this.address}:${listen.healthzPort}/healthz`)).ok;
        });
        return [p, listen.port];
      } catch (error) {
        await p.stop(5_000);
        if (attempt < 3 && /address already in use/.test(p.tail(50))) continue;
        throw error;
      }
    }
  }
}

/**
 * InternalIP the node's own address, and no taints: the jobs of a cloud controller and of the node lifecycle
 * controller. Waits for a Ready heartbeat from this boot (`bootedAt`), not one left from before a reboot;
 * `kubeletExited` gives the end of the kubelet's log once it has exited (then waiting stops).
 */
export async function markReachable(
  core: k8s.CoreV1Api,
  name: string,
  address: string,
  bootedAt: Date,
  kubeletExited: () => string | undefined,
): Promise<void> {
  await waitFor(`Node ${name} to register`, async () => core.readNode({ name }), { timeoutMs: 90_000 });
  await core.patchNodeStatus(
    { name, body: { status: { addresses: [{ type: "InternalIP", address }] } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
  await waitFor(
    `Node ${name} to be Ready`,
    async () => {
      const exited = kubeletExited();
      if (exited !== undefined) throw new GiveUp(`kubelet on ${name} exited:\n${exited}`);
      const ready = (await core.readNode({ name })).status?.conditions?.find((c) => c.type === "Ready");
      return ready?.status === "True" && new Date(ready.lastHeartbeatTime ?? 0) >= bootedAt;
    },
    { timeoutMs: 90_000 },
  );
  await core.patchNode(
    { name, body: [{ op: "replace", path: "/spec/taints", value: [] }] },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
  );
}

/**
 * Starts a real node named `name`, registered with `cp` and Ready, its images imported. The node is
 * stopped and removed from the machine by `cp.stop()`, and by a detached janitor if this process dies.
 */
export async function addRealNode(cp: ControlPlane, name: string): Promise<RealNode> {
  requirePrerequisites();
  const bin = await nodeBinDir();
  sweepAbandonedNodes();
  const dir = nodeDir(cp, name);
  for (const sub of ["pki", "cni", "containerd", "pod-logs", "volume-plugins", "runc"])
    mkdirSync(join(dir, sub), { recursive: true });
  mkdirSync(nodeKubeletRoot(cp, name), { recursive: true });
  const record: NodeRecord = {
    name,
    dir,
    containerdAddress: join(dir, "containerd.sock"),
    cgroupRoot: `/lockstep-${name}-${randomBytes(3).toString("hex")}`,
    ownerPid: process.pid,
  };
  writeFileSync(join(dir, NODE_RECORD_FILE), JSON.stringify(record));
  const address = nodeAddress();
  spawn(process.execPath, [join(import.meta.dirname, "node-janitor.ts"), dir], {
    detached: true,
    stdio: "ignore",
  }).unref();
  saveKernelTunables();

  const serving = await issueCertificate(cp.ca, {
    commonName: name,
    dnsNames: [name],
    ipAddresses: [address],
    usage: "server",
  });
  writeFileSync(join(dir, "pki", "ca.crt"), cp.ca.certPem);
  writeFileSync(join(dir, "pki", "kubelet.crt"), serving.certPem);
  writeFileSync(join(dir, "pki", "kubelet.key"), serving.keyPem, { mode: 0o600 });
  // The identity NodeRestriction and the Node authorizer expect of this node's kubelet.
  const kubeconfig = await cp.writeKubeconfigFor(`system:node:${name}`, ["system:nodes"], `kubelet-${name}`);
  writeFileSync(join(dir, "cni", "10-loopback.conflist"), LOOPBACK_ONLY_CNI);
  writeFileSync(join(dir, "containerd.toml"), containerdConfig(dir, record.containerdAddress, address));

  const node = new RealNode(cp, record, address, bin, buildNodeImages(cp.workDir), kubeconfig);
  cp.onStop(() => node.stop());
  try {
    await node.boot();
  } catch (error) {
    const logs = `containerd:\n${node.containerd?.tail(20) ?? ""}\nkubelet:\n${node.kubelet?.tail(20) ?? ""}`;
    await node.stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${logs}`);
  }
  return node;
}

/** A pod template spec that runs on a real node without any pull and without a pod network. */
export function realNodePodSpec(containers: k8s.V1Container[]): k8s.V1PodSpec {
  return {
    hostNetwork: true,
    terminationGracePeriodSeconds: 2,
    containers: containers.map((c) => ({ image: BUSYBOX_IMAGE, imagePullPolicy: "Never", ...c })),
  };
}

/** A pod on a real node whose one container sleeps under the SeccompProfile `profile`. */
export function sleepingSeccompPod(name: string, profile: string): k8s.V1Pod {
  return {
    metadata: { name },
    spec: realNodePodSpec([
      {
        name: "app",
        command: ["sleep", "3600"],
        securityContext: {
          seccompProfile: { type: "Localhost", localhostProfile: localhostProfileFor("seccomp", profile) },
        },
      },
    ]),
  };
}
