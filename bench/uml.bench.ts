// The cold path of the AppArmor guest (test/harness/uml.ts, docs/adr/0028-real-apparmor-kernel.md): how
// long a boot takes to reach its init, a whole run (boot, one command, power-off) with a trivial command
// and with node, one apparmor_parser load inside, the host memory the guest's process tree holds, and how
// long a whole AppArmor node (containerd and a kubelet in the guest, test/harness/apparmor-node.ts) takes
// from its start to Ready on a running control plane.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { compileOnHost } from "../test/harness/apparmor-kernel.ts";
import { addAppArmorNode } from "../test/harness/apparmor-node.ts";
import { ControlPlane } from "../test/harness/controlplane.ts";
import { AppArmorGuest, runningGuestKernels } from "../test/harness/uml.ts";
import { quantile, type Results } from "./stats.ts";

const RUNS = 5;
const LOADS = 10;

const median = (values: number[]) => Math.round(quantile(values, 0.5));

export async function run(): Promise<Results> {
  const guest = AppArmorGuest.create();
  try {
    const initMs: number[] = [];
    const trueMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const result = await guest.run(["true"]);
      initMs.push(result.initUptimeSeconds * 1000);
      trueMs.push(result.wallMs);
    }
    const nodeMs: number[] = [];
    for (let i = 0; i < RUNS; i++)
      nodeMs.push(
        (await guest.run([process.execPath, "-e", "0"], { env: { PATH: dirname(process.execPath) } })).wallMs,
      );

    // One parser load in the guest, timed inside it (the guest's clock is the host's).
    const policy = join(guest.dir, "policy");
    writeFileSync(policy, "profile lockstep-bench {\n  /etc/** r,\n}\n");
    writeFileSync(join(guest.dir, "policy.bin"), compileOnHost(policy, false));
    const loads = await guest.run([
      "/bin/sh",
      "-c",
      `for i in $(seq ${LOADS}); do a=$(date +%s%N); apparmor_parser --replace --binary policy.bin; b=$(date +%s%N); echo $(( (b - a) / 1000000 )); done`,
    ]);
    const loadMs = loads.stdout.trim().split("\n").map(Number);

    // Host memory of the guest's whole process tree while it idles in a command.
    const idle = guest.run(["sleep", "4"]);
    await new Promise((r) => setTimeout(r, 3000));
    const pids = spawnSync("/usr/bin/pgrep", ["-f", `uml_dir=${guest.dir}`], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")
      .filter(Boolean);
    const tree = new Set(pids);
    for (const pid of pids)
      for (const child of spawnSync("/usr/bin/pgrep", ["-P", pid], { encoding: "utf8" }).stdout.split("\n"))
        if (child) tree.add(child);
    let rssKiB = 0;
    for (const pid of tree)
      try {
        rssKiB += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
      } catch {
        // exited meanwhile
      }
    await idle;
    if (runningGuestKernels().length > 0) throw new Error("a guest kernel outlived its run");

    // A node in the guest: boot, containerd, the harness's images, the kubelet, the Node Ready.
    const cp = await ControlPlane.start();
    let nodeReadyMs: number;
    try {
      const started = performance.now();
      await addAppArmorNode(cp, "bench-apparmor-node");
      nodeReadyMs = performance.now() - started;
    } finally {
      await cp.stop();
    }

    return {
      boot_to_init_median: { value: median(initMs), unit: "ms" },
      run_true_median: { value: median(trueMs), unit: "ms" },
      run_true_max: { value: Math.round(Math.max(...trueMs)), unit: "ms" },
      run_node_median: { value: median(nodeMs), unit: "ms" },
      apparmor_load_in_guest_median: { value: median(loadMs), unit: "ms" },
      guest_tree_rss_idle: { value: Math.round(rssKiB / 1024), unit: "MiB" },
      apparmor_node_start_to_ready: { value: Math.round(nodeReadyMs), unit: "ms" },
    };
  } finally {
    guest.dispose();
  }
}
