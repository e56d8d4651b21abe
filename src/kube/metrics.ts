// A small Prometheus registry (text exposition format 0.0.4). Lockstep exports a handful of counters,
// gauges and one histogram; a dependency for that would be more code to trust than this file.

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
function renderSingleValued(
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

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];
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
    return `${[...this.metrics.map((m) => m.render()), processMetrics()].join("\n")}\n`;
  }
  private add<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }
}

/**
 * The process's own memory, read at each scrape, with the names Prometheus' Node.js clients use: what a
 * memory limit is sized from (docs/benchmarks.md), and where it goes (the V8 heap or native memory).
 */
function processMetrics(): string {
  const usage = process.memoryUsage();
  const gauges: [string, string, number][] = [
    ["process_resident_memory_bytes", "Resident memory size in bytes", usage.rss],
    ["nodejs_heap_size_total_bytes", "V8 heap size in bytes", usage.heapTotal],
    ["nodejs_heap_size_used_bytes", "V8 heap in use in bytes", usage.heapUsed],
    [
      "nodejs_external_memory_bytes",
      "Memory of C++ objects bound to JavaScript objects, in bytes",
      usage.external,
    ],
  ];
  return gauges
    .map(([name, help, value]) => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}`)
    .join("\n");
}
