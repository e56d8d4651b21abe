// A small Prometheus registry (text exposition format 0.0.4). Lockstep exports a handful of counters,
// gauges and histograms, and each process's own figures (memory, CPU, event loop, GC); a dependency for
// that would be more code to trust than this file. docs/metrics.md lists every metric.

import { readdirSync, readFileSync } from "node:fs";
import {
  monitorEventLoopDelay,
  type PerformanceEntry,
  PerformanceObserver,
  performance,
} from "node:perf_hooks";
import { getHeapSpaceStatistics } from "node:v8";

type Labels = Readonly<Record<string, string>>;

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  const escapeValue = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  return `{${entries.map(([k, v]) => `${k}="${escapeValue(v)}"`).join(",")}}`;
}

// Label names sort by code unit (the default sort): localeCompare would load ICU's collation data into
// every component (about 3 MiB resident, measured) and is slower, for names that are ASCII anyway.
function seriesKey(labels: Labels): string {
  return JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  );
}

interface Metric {
  render(): string;
}

/** The Prometheus text of a counter or gauge: its help, its type, one line per label set. */
export function renderSingleValued(
  name: string,
  help: string,
  type: "counter" | "gauge",
  series: Iterable<{ labels: Labels; value: number }>,
): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const { labels, value } of series) lines.push(`${name}${labelText(labels)} ${value}`);
  return lines.join("\n");
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  readonly name: string;
  readonly help: string;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  inc(labels: Labels = {}, by = 1): void {
    const key = seriesKey(labels);
    const series = this.values.get(key) ?? { labels, value: 0 };
    series.value += by;
    this.values.set(key, series);
  }
  get(labels: Labels = {}): number {
    return this.values.get(seriesKey(labels))?.value ?? 0;
  }
  /** Drops a series (of an object that is gone), so a bounded set of series stays bounded. */
  delete(labels: Labels): void {
    this.values.delete(seriesKey(labels));
  }
  render(): string {
    return renderSingleValued(this.name, this.help, "counter", this.values.values());
  }
}

export class Gauge implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  readonly name: string;
  readonly help: string;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  set(value: number, labels: Labels = {}): void {
    this.values.set(seriesKey(labels), { labels, value });
  }
  /** Replaces every series at once, e.g. profiles by phase after a full recount. */
  reset(): void {
    this.values.clear();
  }
  get(labels: Labels = {}): number | undefined {
    return this.values.get(seriesKey(labels))?.value;
  }
  render(): string {
    return renderSingleValued(this.name, this.help, "gauge", this.values.values());
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();
  readonly name: string;
  readonly help: string;
  readonly buckets: readonly number[];
  constructor(name: string, help: string, buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.buckets = [...buckets].sort((a, b) => a - b);
  }
  observe(value: number, labels: Labels = {}): void {
    const key = seriesKey(labels);
    const s = this.series.get(key) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((bound, i) => {
      if (value <= bound) s.counts[i] = (s.counts[i] ?? 0) + 1;
    });
    s.sum += value;
    s.count += 1;
    this.series.set(key, s);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((bound, i) => {
        lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(bound) })} ${s.counts[i] ?? 0}`);
      });
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines.join("\n");
  }
}

export interface MetricsRegistryOptions {
  /** The process's own figures (memory, CPU, event loop, GC), rendered after the registry's metrics. */
  process?: ProcessMetrics;
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];
  private readonly process: ProcessMetrics | undefined;
  constructor(options: MetricsRegistryOptions = {}) {
    this.process = options.process;
  }
  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }
  render(): string {
    const own = this.metrics.map((m) => m.render());
    return `${[...own, ...(this.process ? [this.process.render()] : [])].join("\n")}\n`;
  }
  private add<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }
}

/** Event-loop delay over an interval, in seconds (from Node's histogram, less the sampling interval). */
export interface EventLoopDelay {
  min: number;
  max: number;
  mean: number;
  stddev: number;
  p50: number;
  p90: number;
  p99: number;
}

/** What the process says of itself at one scrape: the input of renderProcessMetrics. */
export interface ProcessSample {
  /** process.cpuUsage(), microseconds since start. */
  cpu: { user: number; system: number };
  /** process.memoryUsage(). */
  memory: { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number };
  /** v8.getHeapSpaceStatistics(), one entry per V8 heap space (new_space, old_space, code_space, ...). */
  heapSpaces: readonly { name: string; size: number; used: number; available: number }[];
  /** Seconds since the epoch at which the process started. */
  startTime: number;
  /** Open file descriptors and their limit; undefined where /proc is not there to read. */
  openFds: number | undefined;
  maxFds: number | undefined;
  /** Since the previous scrape; undefined when the histogram has no sample yet. */
  eventLoopDelay: EventLoopDelay | undefined;
  /** Seconds the event loop spent running callbacks, since it started (performance.eventLoopUtilization). */
  eventLoopActive: number;
  nodeVersion: string;
}

/**
 * The process's figures in Prometheus text, with the names Prometheus' Node.js clients (prom-client) use
 * where they have one, so existing dashboards read them. Pure: a sample in, text out.
 */
export function renderProcessMetrics(sample: ProcessSample): string {
  const single = (name: string, help: string, type: "counter" | "gauge", value: number | undefined) =>
    renderSingleValued(name, help, type, value === undefined ? [] : [{ labels: {}, value }]);
  const perSpace = (name: string, help: string, pick: (s: ProcessSample["heapSpaces"][number]) => number) =>
    renderSingleValued(
      name,
      help,
      "gauge",
      sample.heapSpaces.map((space) => ({ labels: { space: space.name }, value: pick(space) })),
    );
  const delay = sample.eventLoopDelay;
  const delays: [keyof EventLoopDelay, string][] = [
    ["min", "Smallest"],
    ["max", "Largest"],
    ["mean", "Mean"],
    ["stddev", "Standard deviation of the"],
    ["p50", "Median"],
    ["p90", "90th percentile of the"],
    ["p99", "99th percentile of the"],
  ];
  const [major = "0", minor = "0", patch = "0"] = sample.nodeVersion.replace(/^v/, "").split(".");
  return [
    single(
      "process_cpu_user_seconds_total",
      "User CPU time spent in seconds",
      "counter",
      sample.cpu.user / 1e6,
    ),
    single(
      "process_cpu_system_seconds_total",
      "System CPU time spent in seconds",
      "counter",
      sample.cpu.system / 1e6,
    ),
    single(
      "process_cpu_seconds_total",
      "Total user and system CPU time spent in seconds",
      "counter",
      (sample.cpu.user + sample.cpu.system) / 1e6,
    ),
    single(
      "process_start_time_seconds",
      "Start time of the process since the Unix epoch in seconds",
      "gauge",
      sample.startTime,
    ),
    single("process_resident_memory_bytes", "Resident memory size in bytes", "gauge", sample.memory.rss),
    single("process_open_fds", "Number of open file descriptors", "gauge", sample.openFds),
    single("process_max_fds", "Maximum number of open file descriptors", "gauge", sample.maxFds),
    single("nodejs_heap_size_total_bytes", "V8 heap size in bytes", "gauge", sample.memory.heapTotal),
    single("nodejs_heap_size_used_bytes", "V8 heap in use in bytes", "gauge", sample.memory.heapUsed),
    single(
      "nodejs_external_memory_bytes",
      "Memory of C++ objects bound to JavaScript objects, in bytes",
      "gauge",
      sample.memory.external,
    ),
    single(
      "nodejs_array_buffers_bytes",
      "Memory of ArrayBuffers and Buffers, in bytes (part of the external memory)",
      "gauge",
      sample.memory.arrayBuffers,
    ),
    perSpace("nodejs_heap_space_size_total_bytes", "V8 heap space size in bytes, by space", (s) => s.size),
    perSpace("nodejs_heap_space_size_used_bytes", "V8 heap space in use in bytes, by space", (s) => s.used),
    perSpace(
      "nodejs_heap_space_size_available_bytes",
      "V8 heap space still available in bytes, by space",
      (s) => s.available,
    ),
    ...delays.map(([key, words]) =>
      single(
        `nodejs_eventloop_lag_${key}_seconds`,
        `${words} event-loop delay in seconds since the previous scrape`,
        "gauge",
        delay?.[key],
      ),
    ),
    single(
      "nodejs_eventloop_active_seconds_total",
      "Seconds the event loop spent running callbacks (its rate is the event-loop utilization)",
      "counter",
      sample.eventLoopActive,
    ),
    renderSingleValued("nodejs_version_info", "Node.js version info", "gauge", [
      { labels: { version: sample.nodeVersion, major, minor, patch }, value: 1 },
    ]),
  ].join("\n");
}

/** performance's GC entry kinds (perf_hooks.constants.NODE_PERFORMANCE_GC_*), by prom-client's names. */
const GC_KINDS: Readonly<Record<number, string>> = {
  1: "minor",
  2: "minor_mark_sweep",
  4: "major",
  8: "incremental",
  16: "weakcb",
};

/**
 * How often Node's event-loop delay histogram samples, in milliseconds: a native timer (no JavaScript
 * runs). Each wake-up costs CPU in a process that is otherwise idle, as an agent on every node mostly is:
 * measured with the agent's flags over 20 s, 20 ms (50 wake-ups a second) cost 2.9 ms of CPU a second,
 * 100 ms cost 0.7 ms. A block shorter than this may go unseen; a longer one is always measured, and
 * nodejs_eventloop_active_seconds_total misses nothing.
 */
export const EVENT_LOOP_RESOLUTION_MS = 100;

/**
 * The process's figures for /metrics: memory, CPU, file descriptors, event-loop delay and utilization,
 * and GC pauses. The delay histogram and the GC observer start with the component; everything else is
 * read at each scrape. The delay figures cover the time since the previous scrape (the histogram is reset
 * after each), as prom-client's do.
 */
export class ProcessMetrics {
  private readonly gcDuration = new Histogram(
    "nodejs_gc_duration_seconds",
    "Garbage collection pauses in seconds, by kind",
    [0.001, 0.01, 0.1, 1, 2, 5],
  );
  private readonly delay = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  private readonly gcObserver: PerformanceObserver;
  private readonly maxFds: number | undefined;

  private constructor() {
    this.delay.enable();
    this.gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0;
        this.gcDuration.observe(entry.duration / 1000, { kind: GC_KINDS[kind] ?? String(kind) });
      }
    });
    this.gcObserver.observe({ entryTypes: ["gc"] });
    this.maxFds = readMaxFds();
  }

  static start(): ProcessMetrics {
    return new ProcessMetrics();
  }

  sample(): ProcessSample {
    const memory = process.memoryUsage();
    const h = this.delay;
    // Node's histogram records each timer's whole interval, the resolution included: less it, the delay.
    const seconds = (ns: number) => Math.max(0, ns / 1e9 - EVENT_LOOP_RESOLUTION_MS / 1e3);
    const eventLoopDelay =
      h.count === 0
        ? undefined
        : {
            min: seconds(h.min),
            max: seconds(h.max),
            mean: seconds(h.mean),
            stddev: h.stddev / 1e9,
            p50: seconds(h.percentile(50)),
            p90: seconds(h.percentile(90)),
            p99: seconds(h.percentile(99)),
          };
    h.reset();
    return {
      cpu: process.cpuUsage(),
      memory,
      heapSpaces: getHeapSpaceStatistics().map((s) => ({
        name: s.space_name,
        size: s.space_size,
        used: s.space_used_size,
        available: s.space_available_size,
      })),
      // timeOrigin: when this process started, in milliseconds since the epoch.
      startTime: performance.timeOrigin / 1000,
      openFds: countOpenFds(),
      maxFds: this.maxFds,
      eventLoopDelay,
      eventLoopActive: performance.eventLoopUtilization().active / 1000,
      nodeVersion: process.version,
    };
  }

  render(): string {
    return `${renderProcessMetrics(this.sample())}\n${this.gcDuration.render()}`;
  }

  stop(): void {
    this.delay.disable();
    this.gcObserver.disconnect();
  }
}

function countOpenFds(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return undefined;
  }
}

/** The soft limit of open files, from /proc/self/limits ("Max open files  1048576  1048576  files"). */
function readMaxFds(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return line ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}
