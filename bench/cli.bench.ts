// `lockstep record` on the test program of test/integration/cli.test.ts (a busybox script that reads and
// writes files and opens a loopback socket): the recorded profile's size next to runtime/default's, both
// rendered for an amd64 node exactly as the agent writes them, and what recording costs: the script's
// wall time under `lockstep record` (strace -f) divided by its plain wall time, in the same run.
// Needs no control plane: recording and rendering talk to no API server.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { renderSeccompForNode, serializeSeccomp } from "../src/api/render-seccomp.ts";
import { RUNTIME_DEFAULT_SECCOMP } from "../src/api/runtime-default.ts";
import type { LinuxSeccomp } from "../src/api/seccomp.ts";
import type { Results } from "./stats.ts";

const cli = join(import.meta.dirname, "../src/cli/main.ts");
const SCRIPT = "echo hello > /tmp/f; cat /tmp/f; busybox nc -w 1 127.0.0.1 9 </dev/null; echo done";
// A loop makes the script long enough that process start-up does not dominate the ratio.
const LOOP = `i=0; while [ $i -lt 300 ]; do echo line $i >> /tmp/lockstep-bench; cat /tmp/lockstep-bench > /dev/null; i=$((i+1)); done; rm /tmp/lockstep-bench`;

/** Syscall names a profile allows, conditionally or not. */
function allowedCount(seccomp: LinuxSeccomp): number {
  return new Set(seccomp.syscalls.filter((r) => r.action === "SCMP_ACT_ALLOW").flatMap((r) => r.names)).size;
}

function wallMs(command: string, args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

export async function run(): Promise<Results> {
  const recorded = spawnSync(
    process.execPath,
    [cli, "record", "--output", "json", "--", "busybox", "sh", "-c", SCRIPT],
    {
      encoding: "utf8",
    },
  );
  if (recorded.status !== 0) throw new Error(`lockstep record failed: ${recorded.stderr}`);
  const recordedJson = recorded.stdout;
  const runtimeDefaultJson = serializeSeccomp(renderSeccompForNode(RUNTIME_DEFAULT_SECCOMP, "amd64"));

  // Median of 5 of each, interleaved so that load on the machine hits both alike.
  const plain: number[] = [];
  const traced: number[] = [];
  for (let i = 0; i < 5; i++) {
    plain.push(wallMs("busybox", ["sh", "-c", LOOP]));
    traced.push(
      wallMs(process.execPath, [cli, "record", "--output", "json", "--", "busybox", "sh", "-c", LOOP]),
    );
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

  return {
    recorded_syscalls: { value: allowedCount(JSON.parse(recordedJson)), unit: "syscalls" },
    recorded_bytes: { value: Buffer.byteLength(recordedJson), unit: "bytes" },
    runtime_default_syscalls: { value: allowedCount(JSON.parse(runtimeDefaultJson)), unit: "syscalls" },
    runtime_default_bytes: { value: Buffer.byteLength(runtimeDefaultJson), unit: "bytes" },
    recording_slowdown: { value: median(traced) / median(plain), unit: "x (wall time, record / plain)" },
  };
}
