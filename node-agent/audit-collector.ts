// The agent's collector of seccomp's audit records (docs/adr/0038): runs native/audit-reader while at
// least one seccomp profile installed on this node makes the kernel log (a LOG action, default or rule,
// or SECCOMP_FILTER_FLAG_LOG), and not otherwise, so a node without one runs no reader and holds no
// socket. The reader's lines become ObservedCall batches (audit-events.ts decides; this is the shell),
// handed every batch interval to whoever registered with onCalls: the metric and Events of
// call-reports.ts, and the recording's reporter.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { AUDIT_LIMITS } from "../src/api/limits.ts";
import { CRI_BUNDLES } from "../src/api/paths.ts";
import type { Logger } from "../src/kube/logger.ts";
import type { MetricsRegistry } from "../src/kube/metrics.ts";
import {
  type CallBatch,
  CallBatcher,
  type CallBatcherLimits,
  type ContainerIdentity,
  type IgnoredReason,
  identityFromBundle,
  mapReaderCalls,
  type ObservedCall,
  parseReaderLine,
  profileLogsCalls,
  type ReaderStats,
} from "./audit-events.ts";

/** The reader as the image installs it (Dockerfile), found on PATH. */
export const DEFAULT_AUDIT_READER = "lockstep-audit-reader";
/** --audit-reader's value for a node without the audit path (no reader, no call metric or Events, no recording). */
export const AUDIT_READER_NONE = "none";

/** Containers remembered (a node runs at most a few hundred); the oldest are forgotten past it. */
const RESOLVED_MAX = 4096;

/**
 * Which pod and container a container id is, from its OCI bundle's config.json under this node's
 * containerd state folder. An id with no bundle there is another node's (tests run several nodes on
 * one kernel, and every reader sees every record) or a process outside Kubernetes: remembered as such.
 */
export class ContainerResolver {
  private readonly bundles: string;
  private readonly known = new Map<string, ContainerIdentity | null>();

  constructor(containerdState: string) {
    this.bundles = join(containerdState, CRI_BUNDLES);
  }

  resolve(containerId: string): ContainerIdentity | undefined {
    let identity = this.known.get(containerId);
    if (identity === undefined) {
      // Synchronous: a small file on a tmpfs, read once per container for the container's life.
      let config: string | undefined;
      try {
        config = readFileSync(join(this.bundles, containerId, "config.json"), "utf8");
      } catch {
        config = undefined;
      }
      identity = (config !== undefined && identityFromBundle(config)) || null;
      this.known.set(containerId, identity);
      for (const oldest of this.known.keys()) {
        if (this.known.size <= RESOLVED_MAX) break;
        this.known.delete(oldest);
      }
    }
    return identity ?? undefined;
  }
}

export interface AuditCollectorOptions {
  /** The audit reader's executable and its arguments (tests pass a smaller buffer). */
  reader: string;
  readerArgs?: readonly string[];
  containerdState: string;
  /** The host's /proc, to read a process's cgroup when the reader could not. */
  procRoot: string;
  log: Logger;
  metrics: MetricsRegistry;
  /** How often batches are handed out. */
  batchMs?: number;
  limits?: CallBatcherLimits;
}

export type CallsHandler = (calls: readonly ObservedCall[], batch: CallBatch) => void;

export class AuditCollector {
  private readonly opts: AuditCollectorOptions;
  private readonly resolver: ContainerResolver;
  private readonly batcher: CallBatcher;
  private readonly handlers: CallsHandler[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private batchTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private wanted = false;
  private lastStats: ReaderStats | undefined;
  private readonly m;

  constructor(options: AuditCollectorOptions) {
    this.opts = options;
    this.resolver = new ContainerResolver(options.containerdState);
    this.batcher = new CallBatcher(options.limits ?? AUDIT_LIMITS);
    const m = options.metrics;
    this.m = {
      running: m.gauge("lockstep_audit_reader_running", "1 while the audit reader runs on this node"),
      records: m.counter("lockstep_audit_records_total", "Seccomp audit records the reader received"),
      overruns: m.counter(
        "lockstep_audit_overruns_total",
        "Times the kernel found the reader's socket buffer full and dropped records (ENOBUFS)",
      ),
      unwritten: m.counter(
        "lockstep_audit_records_unwritten_total",
        "Records the reader dropped because the agent did not read its lines while it held its most keys",
      ),
      ignored: m.counter(
        "lockstep_audit_records_ignored_total",
        "Reader lines that gave no call of a container of this node, by reason",
      ),
      capped: m.counter(
        "lockstep_audit_calls_capped_total",
        "Calls counted but not reported because a pod (scope=pod) or the node (scope=node) reached its cap",
      ),
    };
    this.m.running.set(0);
  }

  /** `handler` gets every batch of calls (deduplicated per pod, container, syscall, arch and action). */
  onCalls(handler: CallsHandler): void {
    this.handlers.push(handler);
  }

  /** Whether the reader is wanted (it may be starting, or restarting after a failure). */
  get active(): boolean {
    return this.wanted;
  }

  /** The reader's process id while it runs. */
  get readerPid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Runs the reader when one of these installed seccomp profiles logs calls, else stops it. */
  follow(installedSeccomp: Iterable<string>): void {
    if ([...installedSeccomp].some(profileLogsCalls)) this.start();
    else void this.stop();
  }

  start(): void {
    this.wanted = true;
    if (this.child) return;
    const { reader, readerArgs = [], log } = this.opts;
    const child = spawn(reader, [...readerArgs, `--proc=${this.opts.procRoot}`], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.lastStats = undefined;
    this.m.running.set(1);
    log.info({ reader }, "audit reader started: a seccomp profile on this node logs calls");
    createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) =>
      this.take(line),
    );
    createInterface({ input: child.stderr }).on("line", (line) => log.warn({ reader: line }, "audit reader"));
    this.exited = new Promise((resolve) => {
      // A reader that cannot start emits "error" (and may never emit "close"); one that ran emits "close".
      let ended = false;
      const end = (what: object) => {
        if (ended) return;
        ended = true;
        this.child = undefined;
        this.m.running.set(0);
        this.flush();
        if (this.wanted) {
          log.error({ ...what, reader }, "audit reader stopped; starting it again in 5 s");
          this.restartTimer = setTimeout(() => this.wanted && this.start(), 5_000);
        }
        resolve();
      };
      child.once("error", (error) => end({ err: error.message }));
      child.once("close", (code, signal) => end({ code, signal }));
    });
    this.batchTimer ??= setInterval(() => this.flush(), this.opts.batchMs ?? 1_000);
  }

  /** Stops the reader (its last counts are handed out) and the batch timer. */
  async stop(): Promise<void> {
    this.wanted = false;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (child) {
      this.opts.log.info("audit reader stopped: no seccomp profile on this node logs calls");
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await this.exited;
      clearTimeout(killer);
    }
    clearInterval(this.batchTimer);
    this.batchTimer = undefined;
  }

  private take(line: string): void {
    const parsed = parseReaderLine(line);
    if (parsed.kind === "invalid") {
      this.opts.log.warn(
        { reason: parsed.reason },
        "audit reader wrote a line the agent does not understand",
      );
      return;
    }
    if (parsed.kind === "stats") {
      // The reader's counters run from its start; the agent's from its own.
      const { records, overruns } = parsed.stats;
      const last = this.lastStats;
      this.m.records.inc({}, records - (last?.records ?? 0));
      const lost = overruns - (last?.overruns ?? 0);
      if (lost > 0) {
        this.m.overruns.inc({}, lost);
        this.opts.log.warn(
          { overruns: lost },
          "the kernel dropped seccomp audit records: the reader fell behind",
        );
      }
      const unwritten = parsed.stats.unwritten - (last?.unwritten ?? 0);
      if (unwritten > 0) {
        this.m.unwritten.inc({}, unwritten);
        this.opts.log.warn(
          { unwritten },
          "the audit reader dropped records: the agent did not read its lines",
        );
      }
      this.lastStats = parsed.stats;
      return;
    }
    const procCgroup = parsed.calls.cgroup ? undefined : this.procCgroup(parsed.calls.pid);
    const mapped = mapReaderCalls(parsed.calls, procCgroup);
    const identity = mapped.ok ? this.resolver.resolve(mapped.containerId) : undefined;
    if (mapped.ok && identity) this.batcher.add({ ...identity, ...mapped.call });
    else this.ignore(mapped.ok ? "other-node" : mapped.reason);
  }

  private ignore(reason: IgnoredReason): void {
    this.m.ignored.inc({ reason });
  }

  private procCgroup(pid: number): string | undefined {
    try {
      return readFileSync(join(this.opts.procRoot, String(pid), "cgroup"), "utf8");
    } catch {
      return undefined;
    }
  }

  private flush(): void {
    if (this.batcher.size === 0) return;
    const batch = this.batcher.drain();
    for (const [podUID, { identity, dropped }] of batch.cappedPods) {
      this.m.capped.inc({ scope: "pod" }, dropped);
      this.opts.log.warn(
        { namespace: identity.namespace, pod: identity.pod, podUID, dropped },
        "pod reached its cap of distinct calls per interval; further calls are only counted",
      );
    }
    if (batch.droppedOverTotal > 0) this.m.capped.inc({ scope: "node" }, batch.droppedOverTotal);
    for (const handler of this.handlers) {
      try {
        handler(batch.calls, batch);
      } catch (error) {
        this.opts.log.error({ err: String(error) }, "a handler of observed calls failed");
      }
    }
  }
}
