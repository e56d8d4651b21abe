// Outlives the test process that started a control plane: when that process dies without cleaning up
// (Ctrl-C, SIGKILL, a crash), this removes the control plane's folder. Its processes need no help:
// `setpriv --pdeathsig` ends them with their parent (processes.ts). Real nodes have janitors of their
// own (node-janitor.ts), which unmount and remove their folders under <workDir>/nodes; this one waits
// for them, and never removes a folder with a mount below it (a recursive removal would descend into it).
// Usage (started detached by controlplane.ts): node workdir-janitor.ts <workDir> <owner pid>
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { isAlive } from "./node-cleanup.ts";

const [workDir, owner] = process.argv.slice(2);
const ownerPid = Number(owner);
if (!workDir || !Number.isInteger(ownerPid))
  throw new Error("usage: workdir-janitor.ts <workDir> <owner pid>");

/** How long to wait for node janitors after the owner died; then the folder is left for a person. */
const NODES_GRACE_MS = 5 * 60_000;

// Ctrl-C in a terminal signals the whole foreground process group; this process has its own session,
// but ignore the signals anyway so it always finishes its one job.
process.on("SIGINT", () => {});
process.on("SIGTERM", () => {});

const nodesLeft = () => {
  const nodes = join(workDir, "nodes");
  return existsSync(nodes) && readdirSync(nodes).length > 0;
};
const mountedBelow = () =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[4]?.startsWith(`${workDir}/`));

let ownerDiedAt: number | undefined;
const timer = setInterval(() => {
  // Stopped normally: ControlPlane.stop() removed the folder.
  if (!existsSync(workDir)) return clearInterval(timer);
  if (ownerDiedAt === undefined) {
    if (isAlive(ownerPid)) return;
    ownerDiedAt = Date.now();
  }
  if (nodesLeft() || mountedBelow()) {
    if (Date.now() - ownerDiedAt > NODES_GRACE_MS) clearInterval(timer);
    return;
  }
  clearInterval(timer);
  rmSync(workDir, { recursive: true, force: true });
}, 500);
