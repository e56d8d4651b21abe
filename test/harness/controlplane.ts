// A real Kubernetes control plane on loopback, in the spirit of controller-runtime's envtest plus a
// scheduler: etcd, kube-apiserver (RBAC, service-account issuer, PodSecurity), kube-scheduler and
// kube-controller-manager as local processes. Nodes are either simulated, API objects the harness
// creates to look like registered, Ready nodes, to which the real scheduler binds pods that never run,
// or real: a kubelet and containerd on this machine (real-node.ts), where pods really run.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import {
  createCertificateAuthority,
  createSigningKey,
  issueCertificate,
  type KeyPair,
} from "../../src/kube/certificates.ts";
import { applyYaml } from "./apply.ts";
import { type ManagedProcess, startProcess } from "./processes.ts";

/** A detached process that removes `workDir` if this process dies without stopping the control plane. */
function startWorkDirJanitor(workDir: string): void {
  spawn(process.execPath, [join(import.meta.dirname, "workdir-janitor.ts"), workDir, String(process.pid)], {
    detached: true,
    stdio: "ignore",
  }).unref();
}

export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";

export interface ControlPlaneOptions {
  /** Folder with kube-apiserver, kube-scheduler, kube-controller-manager and etcd. */
  binDir?: string;
  /** Where state, certificates and logs go; a fresh temporary folder by default. */
  workDir?: string;
  /** Start kube-scheduler (default true). */
  scheduler?: boolean;
  /** Start kube-controller-manager (default true). */
  controllerManager?: boolean;
  /** Extra kube-apiserver flags, e.g. feature gates. */
  apiServerFlags?: string[];
  /** Keep the work folder (logs) after stop; default: kept only when LOCKSTEP_KEEP_WORKDIR is set. */
  keepWorkDir?: boolean;
}

export interface SimulatedNodeOptions {
  labels?: Record<string, string>;
  arch?: string;
  /** allocatable pods; the scheduler needs room to bind pods. */
  pods?: number;
}

const BINARIES = ["etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"] as const;

export function controlPlaneBinDir(explicit?: string): string {
  const dir = explicit ?? process.env.LOCKSTEP_CONTROLPLANE_BIN;
  if (!dir) {
    throw new Error(
      "LOCKSTEP_CONTROLPLANE_BIN is not set: run the tests through `make test` (or `make integration`), " +
        "or build the control plane with `make controlplane` and export the folder it prints",
    );
  }
  return dir;
}

/**
 * The kubectl built with the control plane (tools/controlplane/build.sh): the same release as the API
 * server, and there on a machine without one of its own. It renders deploy/'s kustomize overlays.
 */
export function kubectlBinary(binDir?: string): string {
  return join(controlPlaneBinDir(binDir), "kubectl");
}

/**
 * A TCP port no address of this machine listens on. Asked on every address, not 127.0.0.1 alone: agents
 * serve health on 0.0.0.0, and real nodes listen on loopback addresses of their own (127.x.y.z), so a port
 * free on 127.0.0.1 may be taken there ("listen EADDRINUSE: address already in use 0.0.0.0:35671", seen
 * starting an agent).
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "0.0.0.0", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}

/** Thrown by a probe to stop `waitFor` at once, e.g. when the process it waits on has died. */
export class GiveUp extends Error {}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  { timeoutMs = 60_000, intervalMs = 200 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function kubeconfigYaml(server: string, caPem: string, user: { certPem: string; keyPem: string } | string) {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const credentials =
    typeof user === "string"
      ? { token: user }
      : { "client-certificate-data": b64(user.certPem), "client-key-data": b64(user.keyPem) };
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "lockstep", cluster: { server, "certificate-authority-data": b64(caPem) } }],
    users: [{ name: "user", user: credentials }],
    contexts: [{ name: "lockstep", context: { cluster: "lockstep", user: "user" } }],
    "current-context": "lockstep",
  });
}

export class ControlPlane {
  readonly processes: ManagedProcess[] = [];
  readonly workDir: string;
  /** The API server's URL, https on loopback. */
  readonly server: string;
  readonly ca: KeyPair;
  readonly adminKubeconfigPath: string;
  private readonly keepWorkDir: boolean;
  private readonly stopHooks: (() => Promise<void>)[] = [];
  private stopping = false;

  private constructor(
    workDir: string,
    server: string,
    ca: KeyPair,
    adminKubeconfigPath: string,
    keep: boolean,
  ) {
    this.workDir = workDir;
    this.server = server;
    this.ca = ca;
    this.adminKubeconfigPath = adminKubeconfigPath;
    this.keepWorkDir = keep;
  }

  /** Starts etcd, the API server and (by default) the scheduler and controller-manager; waits until ready. */
  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const binDir = controlPlaneBinDir(options.binDir);
    const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), "lockstep-cp-")));
    const keep = options.keepWorkDir ?? Boolean(process.env.LOCKSTEP_KEEP_WORKDIR);
    if (!keep) startWorkDirJanitor(workDir);
    await mkdir(join(workDir, "pki"), { recursive: true });
    const path = (...p: string[]) => join(workDir, ...p);

    const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const server = `https://127.0.0.1:${apiPort}`;

    const ca = await createCertificateAuthority("lockstep-test-ca");
    const serving = await issueCertificate(ca, {
      commonName: "kube-apiserver",
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
      ipAddresses: ["127.0.0.1"],
      usage: "server",
    });
    const admin = await issueCertificate(ca, {
      commonName: "lockstep-admin",
      organizations: ["system:masters"],
      usage: "client",
    });
    // The API server's client certificate towards kubelets (logs, exec of pods on real nodes).
    const kubeletClient = await issueCertificate(ca, {
      commonName: "kube-apiserver-kubelet-client",
      organizations: ["system:masters"],
      usage: "client",
    });
    const saKey = await createSigningKey();
    await Promise.all([
      writeFile(path("pki", "ca.crt"), ca.certPem),
      writeFile(path("pki", "apiserver.crt"), serving.certPem),
      writeFile(path("pki", "apiserver.key"), serving.keyPem, { mode: 0o600 }),
      writeFile(path("pki", "sa.key"), saKey.privateKeyPem, { mode: 0o600 }),
      writeFile(path("pki", "kubelet-client.crt"), kubeletClient.certPem),
      writeFile(path("pki", "kubelet-client.key"), kubeletClient.keyPem, { mode: 0o600 }),
      writeFile(path("pki", "sa.pub"), saKey.publicKeyPem),
      writeFile(path("admin.kubeconfig"), kubeconfigYaml(server, ca.certPem, admin), { mode: 0o600 }),
    ]);
    const cp = new ControlPlane(workDir, server, ca, path("admin.kubeconfig"), keep);

    try {
      const bin = (name: (typeof BINARIES)[number]) => join(binDir, name);
      const etcd = cp.track(
        startProcess(
          "etcd",
          bin("etcd"),
          [
            "--name=default",
            `--data-dir=${path("etcd")}`,
            `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
            `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
            `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
            `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
            `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
            // Test data is thrown away: skip fsync so a 2-core machine is not bound by the disk.
            "--unsafe-no-fsync",
            "--log-level=warn",
          ],
          path("etcd.log"),
        ),
      );
      await waitFor("etcd health", async () => {
        if (!etcd.isRunning()) throw new GiveUp(`etcd exited:\n${etcd.tail()}`);
        const res = await fetch(`http://127.0.0.1:${etcdPort}/health`);
        return res.ok;
      });

      const apiserver = cp.track(
        startProcess(
          "kube-apiserver",
          bin("kube-apiserver"),
          [
            `--etcd-servers=http://127.0.0.1:${etcdPort}`,
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            // The `kubernetes` Service's endpoints would point at a loopback address, which the
            // endpoint reconciler refuses; nothing in these tests reaches the API server through it.
            "--endpoint-reconciler-type=none",
            `--secure-port=${apiPort}`,
            `--cert-dir=${path("pki")}`,
            `--tls-cert-file=${path("pki", "apiserver.crt")}`,
            `--tls-private-key-file=${path("pki", "apiserver.key")}`,
            `--client-ca-file=${path("pki", "ca.crt")}`,
            "--authorization-mode=Node,RBAC",
            `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
            `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
            `--service-account-key-file=${path("pki", "sa.pub")}`,
            `--service-account-signing-key-file=${path("pki", "sa.key")}`,
            // Only an address range for Service objects; nothing routes to it.
            "--service-cluster-ip-range=10.96.0.0/16",
            // PodSecurity is in the default plugin set; naming it keeps that explicit.
            "--enable-admission-plugins=NodeRestriction,PodSecurity",
            "--allow-privileged=true",
            // Real nodes (real-node.ts) serve with a certificate of this CA at InternalIP 127.0.0.1.
            `--kubelet-client-certificate=${path("pki", "kubelet-client.crt")}`,
            `--kubelet-client-key=${path("pki", "kubelet-client.key")}`,
            `--kubelet-certificate-authority=${path("pki", "ca.crt")}`,
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
            ...(options.apiServerFlags ?? []),
          ],
          path("kube-apiserver.log"),
        ),
      );
      await waitFor(
        "kube-apiserver /readyz",
        async () => {
          if (!apiserver.isRunning()) throw new GiveUp(`kube-apiserver exited:\n${apiserver.tail()}`);
          return (await cp.rawGet("/readyz")).status === 200;
        },
        { timeoutMs: 120_000 },
      );

      // Flags the scheduler and the controller-manager share: their identity, a loopback-only
      // serving port of their own, and no leader election (one replica of each).
      const componentFlags = async (kubeconfig: string) => [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${await freePort()}`,
        "--leader-elect=false",
      ];
      if (options.controllerManager ?? true) {
        const kubeconfig = await cp.writeKubeconfigFor("system:kube-controller-manager", [], "kcm");
        cp.track(
          startProcess(
            "kube-controller-manager",
            bin("kube-controller-manager"),
            [
              ...(await componentFlags(kubeconfig)),
              // Without kubelets, the node lifecycle controllers would taint every simulated Node
              // unreachable and evict its pods.
              "--controllers=*,-node-lifecycle-controller",
              "--use-service-account-credentials=true",
              `--service-account-private-key-file=${path("pki", "sa.key")}`,
              `--root-ca-file=${path("pki", "ca.crt")}`,
              "--service-cluster-ip-range=10.96.0.0/16",
            ],
            path("kube-controller-manager.log"),
          ),
        );
      }
      if (options.scheduler ?? true) {
        const kubeconfig = await cp.writeKubeconfigFor("system:kube-scheduler", [], "scheduler");
        cp.track(
          startProcess(
            "kube-scheduler",
            bin("kube-scheduler"),
            [...(await componentFlags(kubeconfig))],
            path("kube-scheduler.log"),
          ),
        );
      }
      // The default namespace's service account is created by the controller-manager; tests that
      // create pods need it before the ServiceAccount admission plugin lets a pod in.
      if (options.controllerManager ?? true) {
        const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
        await waitFor("the default service account", async () => {
          await core.readNamespacedServiceAccount({ name: "default", namespace: "default" });
          return true;
        });
      }
      return cp;
    } catch (error) {
      await cp.stop();
      throw error;
    }
  }

  private track(p: ManagedProcess): ManagedProcess {
    this.processes.push(p);
    void p.exited.then((code) => {
      if (!this.stopping) console.error(`[controlplane] ${p.name} exited (${code}):\n${p.tail(15)}`);
    });
    return p;
  }

  /** Runs `hook` at `stop()`, before the control plane's own processes stop (real nodes use it). */
  onStop(hook: () => Promise<void>): void {
    this.stopHooks.push(hook);
  }

  /** Stops every process it started, newest first, and removes its work folder. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const hook of this.stopHooks.splice(0).reverse()) await hook();
    for (const p of [...this.processes].reverse()) await p.stop(5_000);
    if (!this.keepWorkDir) await rm(this.workDir, { recursive: true, force: true });
  }

  /** A client config for the cluster admin (system:masters). */
  kubeConfig(): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(this.adminKubeconfigPath);
    return kc;
  }

  /** Server-side applies a YAML file (or several documents in one) as the admin. */
  async applyFile(path: string): Promise<k8s.KubernetesObject[]> {
    return applyYaml(this.kubeConfig(), await readFile(path, "utf8"));
  }

  /** A client config that authenticates as `user` in `groups`, with a client certificate the test CA signs. */
  async kubeConfigAs(user: string, groups: string[] = []): Promise<k8s.KubeConfig> {
    const path = await this.writeKubeconfigFor(user, groups, `user-${Buffer.from(user).toString("hex")}`);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(path);
    return kc;
  }

  /** A client config that presents a bearer token, such as a pod-bound service-account token. */
  kubeConfigWithToken(token: string): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromString(kubeconfigYaml(this.server, this.ca.certPem, token));
    return kc;
  }

  /** Writes a kubeconfig file for `user` (client certificate) and returns its path. */
  async writeKubeconfigFor(user: string, groups: string[], fileStem: string): Promise<string> {
    const cert = await issueCertificate(this.ca, {
      commonName: user,
      organizations: groups,
      usage: "client",
    });
    const file = join(this.workDir, `${fileStem}.kubeconfig`);
    await writeFile(file, kubeconfigYaml(this.server, this.ca.certPem, cert), { mode: 0o600 });
    return file;
  }

  /**
   * Mints a service-account token bound to a pod, exactly as the kubelet gets one for a projected
   * volume: the API server writes the pod's node name into it, which ValidatingAdmissionPolicies read
   * from `request.userInfo.extra["authentication.kubernetes.io/node-name"]`.
   */
  async podBoundToken(namespace: string, serviceAccount: string, podName: string): Promise<string> {
    const core = this.kubeConfig().makeApiClient(k8s.CoreV1Api);
    const pod = await core.readNamespacedPod({ name: podName, namespace });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: {
        spec: {
          audiences: [SERVICE_ACCOUNT_ISSUER],
          expirationSeconds: 3600,
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: podName, uid: pod.metadata?.uid },
        },
      },
    });
    const token = tokenRequest.status?.token;
    if (!token) throw new Error(`no token issued for ${namespace}/${serviceAccount}`);
    return token;
  }

  /**
   * Creates a Node object that looks like one a kubelet registered: the well-known labels, capacity,
   * and a Ready condition. The TaintNodesByCondition admission plugin adds a not-ready taint at
   * creation which the (disabled) node lifecycle controller would lift; the harness lifts it itself.
   */
  async addNode(name: string, options: SimulatedNodeOptions = {}): Promise<k8s.V1Node> {
    const core = this.kubeConfig().makeApiClient(k8s.CoreV1Api);
    const arch = options.arch ?? "amd64";
    await core.createNode({
      body: {
        metadata: {
          name,
          labels: {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
            ...options.labels,
          },
        },
      },
    });
    const now = new Date();
    const capacity = {
      cpu: "4",
      memory: "8Gi",
      pods: String(options.pods ?? 110),
      "ephemeral-storage": "50Gi",
    };
    // A merge patch, not a replace: the controller-manager annotates new Nodes concurrently.
    await core.patchNodeStatus(
      {
        name,
        body: {
          status: {
            capacity,
            allocatable: capacity,
            conditions: [
              {
                type: "Ready",
                status: "True",
                reason: "KubeletReady",
                message: "simulated by the Lockstep test harness",
                lastHeartbeatTime: now,
                lastTransitionTime: now,
              },
            ],
            addresses: [{ type: "Hostname", address: name }],
            nodeInfo: {
              architecture: arch,
              operatingSystem: "linux",
              kernelVersion: "6.1.0",
              osImage: "Debian GNU/Linux 12 (bookworm)",
              containerRuntimeVersion: "containerd://2.1.0",
              kubeletVersion: "v1.37.2",
              kubeProxyVersion: "",
              bootID: name,
              machineID: name,
              systemUUID: name,
            },
          },
        },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    return core.patchNode(
      { name, body: [{ op: "replace", path: "/spec/taints", value: [] }] },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
    );
  }

  /**
   * The rows `kubectl get` prints for `path`: the server-side Table rendering kubectl itself asks for,
   * so tests see the printer columns a user sees without depending on a kubectl binary.
   */
  async getTable(path: string, { wide = false } = {}): Promise<{ columns: string[]; rows: string[][] }> {
    const res = await this.rawGet(path, { Accept: "application/json;as=Table;v=v1;g=meta.k8s.io" });
    if (res.status !== 200) throw new Error(`GET ${path} as Table: ${res.status} ${res.body}`);
    const table = JSON.parse(res.body) as {
      columnDefinitions: { name: string; priority: number }[];
      rows: { cells: unknown[] }[];
    };
    // kubectl shows priority-0 columns by default, and the others too with -o wide.
    const shown = table.columnDefinitions
      .map((c, i) => ({ ...c, i }))
      .filter((c) => wide || c.priority === 0);
    return {
      columns: shown.map((c) => c.name.toUpperCase()),
      rows: table.rows.map((r) => shown.map((c) => String(r.cells[c.i] ?? ""))),
    };
  }

  /** A GET on the API server as the admin, without the typed client (health endpoints, metrics). */
  rawGet(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
    const kc = this.kubeConfig();
    const user = kc.getCurrentUser();
    const decode = (s?: string) => (s ? Buffer.from(s, "base64").toString() : undefined);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        `${this.server}${path}`,
        {
          ca: this.ca.certPem,
          cert: decode(user?.certData),
          key: decode(user?.keyData),
          headers,
          timeout: 5_000,
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk) => {
            body += chunk;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
      req.on("error", reject);
      req.end();
    });
  }
}
