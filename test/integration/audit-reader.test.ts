// The audit reader (native/audit-reader) against this kernel's real seccomp audit records: a process
// under a filter that logs every call (native/log-storm) makes getppid(2) calls, and the reader's lines,
// read through the agent's own parser and mapping (node-agent/audit-events.ts), count every one of
// them, named getppid with action "log". And the agent's collector runs the reader only while an
// installed profile logs calls (docs/adr/0038).
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditCollector } from "../../node-agent/audit-collector.ts";
import { mapReaderCalls, parseReaderLine, type ReaderStats } from "../../node-agent/audit-events.ts";
import { buildNative, HOST_ARCH, nativeBinary } from "../../scripts/native.ts";
import { createLogger } from "../../src/kube/logger.ts";
import { MetricsRegistry } from "../../src/kube/metrics.ts";

const reader = nativeBinary("auditReader", HOST_ARCH);
const storm = nativeBinary("logStorm", HOST_ARCH);
const children: ChildProcess[] = [];

beforeAll(() => buildNative(HOST_ARCH), 300_000);
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
});

/** Starts the reader; resolves once it has joined the group (its first stats line), with its lines. */
async function startReader() {
  const child = spawn(reader, ["--flush=100ms"], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const lines: string[] = [];
  const bound = new Promise<void>((resolve) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      lines.push(line);
      if (lines.length === 1) resolve();
    });
  });
  await bound;
  return { child, lines };
}

describe("the audit reader on this kernel", () => {
  it("receives every seccomp LOG record of a process that logs each of its calls", async () => {
    const { child, lines } = await startReader();
    // Asynchronously: this process must go on reading the reader's lines meanwhile.
    const { stdout } = await promisify(execFile)(storm, ["--duration=2s"], { encoding: "utf8" });
    const produced = JSON.parse(stdout) as { calls: number; pid: number };
    await new Promise((r) => setTimeout(r, 500));
    child.kill("SIGTERM");
    await once(child, "close");
    let received = 0;
    let stats: ReaderStats | undefined;
    for (const line of lines) {
      const parsed = parseReaderLine(line);
      expect(parsed.kind).not.toBe("invalid");
      if (parsed.kind === "stats") stats = parsed.stats;
      if (parsed.kind !== "calls" || parsed.calls.pid !== produced.pid) continue;
      const mapped = mapReaderCalls({ ...parsed.calls, cgroup: `0::/k/${"f".repeat(64)}` });
      if (mapped.ok && mapped.call.syscall === "getppid") {
        expect(mapped.call.action).toBe("log");
        received += mapped.call.count;
      }
    }
    expect(produced.calls).toBeGreaterThan(10_000);
    expect(received).toBe(produced.calls);
    expect(stats?.overruns).toBe(0);
    expect(stats?.unwritten).toBe(0);
    expect(stats?.records).toBeGreaterThanOrEqual(produced.calls);
  }, 30_000);

  it("refuses to run where it cannot join the group, saying what it needs", () => {
    // Without CAP_AUDIT_READ (setpriv drops every capability), bind fails with EPERM.
    const run = () =>
      execFileSync("setpriv", ["--inh-caps=-all", "--bounding-set=-all", reader], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    expect(run).toThrow(/CAP_AUDIT_READ/);
  });
});

describe("the agent's audit collector", () => {
  it("runs the reader only while an installed seccomp profile logs calls", async () => {
    const collector = new AuditCollector({
      reader,
      containerdState: "/nonexistent",
      procRoot: "/proc",
      log: createLogger("test", "silent"),
      metrics: new MetricsRegistry(),
    });
    const quiet = JSON.stringify({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }],
    });
    const logging = JSON.stringify({ defaultAction: "SCMP_ACT_LOG" });
    try {
      collector.follow([quiet]);
      expect(collector.running).toBe(false);
      collector.follow([quiet, logging]);
      expect(collector.running).toBe(true);
      const pid = collector.readerPid ?? 0;
      expect(pid).toBeGreaterThan(0);
      expect(() => process.kill(pid, 0)).not.toThrow();
      collector.follow([quiet]);
      await expect.poll(() => collector.running).toBe(false);
      expect(() => process.kill(pid, 0)).toThrow();
    } finally {
      await collector.stop();
    }
  });
});
