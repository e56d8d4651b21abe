import { describe, expect, it } from "vitest";
import { MetricsRegistry, ProcessMetrics, type ProcessSample, renderProcessMetrics } from "./metrics.ts";

const sample: ProcessSample = {
  cpu: { user: 1_500_000, system: 250_000 },
  memory: { rss: 50 << 20, heapTotal: 8 << 20, heapUsed: 6 << 20, external: 1 << 20, arrayBuffers: 4096 },
  heapSpaces: [
    { name: "new_space", size: 1024, used: 512, available: 256 },
    { name: "old_space", size: 4096, used: 2048, available: 1024 },
  ],
  startTime: 1_700_000_000.5,
  openFds: 17,
  maxFds: 1024,
  eventLoopDelay: { min: 0, max: 0.25, mean: 0.002, stddev: 0.01, p50: 0.001, p90: 0.004, p99: 0.2 },
  eventLoopActive: 3.5,
  nodeVersion: "v24.21.0",
};

/** The value lines (no HELP or TYPE) of a rendering, by series. */
const values = (text: string) =>
  Object.fromEntries(
    text
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => [line.slice(0, line.lastIndexOf(" ")), Number(line.slice(line.lastIndexOf(" ") + 1))]),
  );

describe("renderProcessMetrics", () => {
  it("renders CPU in seconds, memory in bytes, each heap space, the delay and the version", () => {
    expect(values(renderProcessMetrics(sample))).toEqual({
      process_cpu_user_seconds_total: 1.5,
      process_cpu_system_seconds_total: 0.25,
      process_cpu_seconds_total: 1.75,
      process_start_time_seconds: 1_700_000_000.5,
      process_resident_memory_bytes: 50 << 20,
      process_open_fds: 17,
      process_max_fds: 1024,
      nodejs_heap_size_total_bytes: 8 << 20,
      nodejs_heap_size_used_bytes: 6 << 20,
      nodejs_external_memory_bytes: 1 << 20,
      nodejs_array_buffers_bytes: 4096,
      'nodejs_heap_space_size_total_bytes{space="new_space"}': 1024,
      'nodejs_heap_space_size_total_bytes{space="old_space"}': 4096,
      'nodejs_heap_space_size_used_bytes{space="new_space"}': 512,
      'nodejs_heap_space_size_used_bytes{space="old_space"}': 2048,
      'nodejs_heap_space_size_available_bytes{space="new_space"}': 256,
      'nodejs_heap_space_size_available_bytes{space="old_space"}': 1024,
      nodejs_eventloop_lag_min_seconds: 0,
      nodejs_eventloop_lag_max_seconds: 0.25,
      nodejs_eventloop_lag_mean_seconds: 0.002,
      nodejs_eventloop_lag_stddev_seconds: 0.01,
      nodejs_eventloop_lag_p50_seconds: 0.001,
      nodejs_eventloop_lag_p90_seconds: 0.004,
      nodejs_eventloop_lag_p99_seconds: 0.2,
      nodejs_eventloop_active_seconds_total: 3.5,
      'nodejs_version_info{version="v24.21.0",major="24",minor="21",patch="0"}': 1,
    });
  });

  it("keeps every metric's HELP and TYPE when a figure is unknown, and leaves out only its value", () => {
    const text = renderProcessMetrics({
      ...sample,
      openFds: undefined,
      maxFds: undefined,
      eventLoopDelay: undefined,
    });
    expect(text).toContain("# TYPE process_open_fds gauge\n# HELP process_max_fds");
    expect(text).toContain("# TYPE nodejs_eventloop_lag_p99_seconds gauge\n# HELP");
    expect(Object.keys(values(text)).filter((k) => k.includes("lag") || k.includes("fds"))).toEqual([]);
  });
});

describe("ProcessMetrics", () => {
  it("serves the process's figures after the registry's own, GC pauses included", () => {
    const processMetrics = ProcessMetrics.start();
    try {
      const registry = new MetricsRegistry({ process: processMetrics });
      registry.counter("lockstep_test_total", "a test counter").inc();
      const text = registry.render();
      expect(text.indexOf("lockstep_test_total 1")).toBeLessThan(
        text.indexOf("process_resident_memory_bytes"),
      );
      expect(values(text).process_resident_memory_bytes).toBeGreaterThan(0);
      expect(values(text).process_open_fds).toBeGreaterThan(0);
      expect(text).toContain("# TYPE nodejs_gc_duration_seconds histogram");
      expect(text.endsWith("\n")).toBe(true);
    } finally {
      processMetrics.stop();
    }
  });

  it("is served only by a registry that is given it", () => {
    expect(new MetricsRegistry().render()).not.toContain("process_");
  });
});
