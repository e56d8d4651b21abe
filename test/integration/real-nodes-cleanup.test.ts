// A test runner that dies in the middle of a run leaves nothing on the machine: Ctrl-C in a
// terminal (SIGINT to the whole process group, kubelet and containerd included) and SIGKILL of the
// runner alone (an OOM kill, a CI timeout). Each case starts a control plane (with a real node and a
// running pod, or simulated nodes only) in a child process, kills it, and looks for every kind of trace.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { waitFor } from "../harness/controlplane.ts";
import {
  cgroupV1Mounts,
  NODE_RECORD_FILE,
  NodeRecordSchema,
  shimSocketPaths,
} from "../harness/node-cleanup.ts";

const harness = join(import.meta.dirname, "../harness");

// The child: a control plane, one real node, one running pod; then it prints the node's record and waits.
const child = `
import * as k8s from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ControlPlane, waitFor } from ${JSON.stringify(join(harness, "controlplane.ts"))};
import { addRealNode, realNodePodSpec } from ${JSON.stringify(join(harness, "real-node.ts"))};
const cp = await ControlPlane.start();
const node = await addRealNode(cp, "doomed");
const core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
await core.createNamespacedPod({ namespace: "default", body: { metadata: { name: "sleeper" },
  spec: realNodePodSpec([{ name: "c", command: ["sleep", "3600"] }]) } });
await waitFor("sleeper to run", async () =>
  (await core.readNamespacedPod({ name: "sleeper", namespace: "default" })).status?.phase === "Running");
process.stdout.write(readFileSync(join(node.dir, ${JSON.stringify(NODE_RECORD_FILE)}), "utf8") + "\\n");
setInterval(() => {}, 1000);
`;

function argvOf(pid: string): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return [];
  }
}

function processesNaming(dir: string): string[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => argvOf(pid).some((arg) => arg.includes(dir)));
}

/** Runs `code` as a module in its own process group (as a terminal gives a foreground job); killed after the test. */
function startRunner(code: string) {
  const runner = spawn(process.execPath, ["--input-type=module", "-e", code], {
    cwd: join(import.meta.dirname, "../.."),
    detached: true,
    stdio: ["ignore", "pipe", "inherit"],
  });
  // Whatever happens to the test, the child must not outlive it.
  onTestFinished(() => {
    if (runner.exitCode === null && runner.signalCode === null) process.kill(-(runner.pid ?? 0), "SIGKILL");
  });
  let out = "";
  runner.stdout.on("data", (chunk) => {
    out += chunk;
  });
  /** The first line of its output that `read` accepts. */
  const reported = <T>(what: string, read: (line: string) => T | undefined) =>
    waitFor(
      what,
      async () => {
        if (runner.exitCode !== null) throw new Error(`the child exited (${runner.exitCode})`);
        for (const line of out.split("\n")) {
          const value = read(line);
          if (value !== undefined) return value;
        }
        return undefined;
      },
      { timeoutMs: 150_000 },
    );
  return { runner, reported };
}

describe("a control plane with simulated nodes whose test runner dies", () => {
  it("leaves no process and no folder after SIGKILL of the runner", async () => {
    const { runner, reported } = startRunner(`
import { ControlPlane } from ${JSON.stringify(join(harness, "controlplane.ts"))};
const cp = await ControlPlane.start({ scheduler: false });
await cp.addNode("simulated");
process.stdout.write("workDir=" + cp.workDir + "\\n");
setInterval(() => {}, 1000);
`);
    const workDir = await reported("the child to report its control plane", (line) =>
      line.startsWith("workDir=") ? line.slice("workDir=".length) : undefined,
    );
    expect(processesNaming(workDir).length).toBeGreaterThan(0);
    process.kill(runner.pid ?? 0, "SIGKILL");
    await waitFor("the janitor to remove the control plane's folder", async () => !existsSync(workDir), {
      timeoutMs: 30_000,
    });
    await waitFor(
      "every process of the control plane to be gone",
      async () => processesNaming(workDir).length === 0,
    );
  });
});

describe("a real node whose test runner dies", () => {
  for (const [how, kill] of [
    ["Ctrl-C (SIGINT to the process group)", (pid: number) => process.kill(-pid, "SIGINT")],
    ["SIGKILL of the runner alone", (pid: number) => process.kill(pid, "SIGKILL")],
  ] as const)
    it(`is removed from the machine after ${how}`, async () => {
      const { runner, reported } = startRunner(child);
      const record = await reported("the child to report its running node", (line) =>
        line.startsWith("{") ? NodeRecordSchema.parse(JSON.parse(line)) : undefined,
      );
      // The shims containerd daemonised for the pod: they outlive containerd and hold sockets in /run/containerd/s.
      const shimSockets = processesNaming(record.dir)
        .map(argvOf)
        .filter((argv) => argv[0]?.endsWith("containerd-shim-runc-v2"))
        .flatMap((argv) =>
          shimSocketPaths(
            record,
            argv[argv.indexOf("-namespace") + 1] ?? "",
            argv[argv.indexOf("-id") + 1] ?? "",
          ),
        );
      expect(shimSockets.filter((s) => existsSync(s)).length).toBeGreaterThan(0);

      kill(runner.pid ?? 0);
      await waitFor("the janitor to remove the node's folder", async () => !existsSync(record.dir), {
        timeoutMs: 60_000,
      });

      // The janitor names the folder too, until it has finished and exited.
      await waitFor(
        "every process of the node to be gone",
        async () => processesNaming(record.dir).length === 0,
        {
          timeoutMs: 10_000,
        },
      );
      expect(readFileSync("/proc/mounts", "utf8")).not.toContain(record.dir);
      expect(shimSockets.filter((s) => existsSync(s))).toEqual([]);
      for (const mount of [...cgroupV1Mounts(), "/sys/fs/cgroup/unified"])
        expect(existsSync(join(mount, record.cgroupRoot))).toBe(false);
      const workDir = join(record.dir, "../..");
      await waitFor("the child's control plane to exit", async () => processesNaming(workDir).length === 0);
      expect(existsSync(workDir)).toBe(false);
    });
});
