// Outlives the test process that started a real node: when that process dies without cleaning up
// (Ctrl-C, SIGKILL, a crash), this removes the node from the machine. containerd daemonises its shims
// and the kernel keeps mounts and cgroups, so `setpriv --pdeathsig` alone does not clear them.
// Usage (started detached by real-node.ts): node node-janitor.ts <node dir>
import { existsSync } from "node:fs";
import { isAlive, readNodeRecord, removeNode } from "./node-cleanup.ts";

const dir = process.argv[2];
if (!dir) throw new Error("usage: node-janitor.ts <node dir>");
const record = readNodeRecord(dir);
if (!record) process.exit(0);

// Ctrl-C in a terminal signals the whole foreground process group; this process has its own session,
// but ignore the signals anyway so it always finishes its one job.
process.on("SIGINT", () => {});
process.on("SIGTERM", () => {});

const timer = setInterval(() => {
  if (!existsSync(dir)) {
    clearInterval(timer);
    return;
  }
  if (!isAlive(record.ownerPid)) {
    clearInterval(timer);
    // The control plane's folder (<workDir>/nodes/<name>) is its own janitor's to remove
    // (workdir-janitor.ts), once every node's folder is gone.
    removeNode(record);
  }
}, 500);
