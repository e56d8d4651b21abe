// The benchmarks' reading of the API server's /metrics (bench/load/apiserver-metrics.ts): which requests
// a rollout cost and how many watches are open decide figures in docs/benchmarks.md and ADR 0037.
import { describe, expect, it } from "vitest";
import { goRuntime, openWatches, parseMetrics, requestsBetween } from "../../bench/load/apiserver-metrics.ts";

const scrape = (patches: number, gets: number) =>
  parseMetrics(`# HELP apiserver_request_total Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="nodes",scope="resource",subresource="",verb="PATCH",version="v1"} ${patches}
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="nodes",scope="resource",subresource="",verb="PATCH",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="lockstep.dev",resource="seccompprofiles",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="",scope="",subresource="/metrics",verb="GET",version=""} ${gets}
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} ${gets}
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 40
apiserver_longrunning_requests{component="apiserver",group="",resource="nodes",scope="cluster",subresource="",verb="WATCH",version="v1"} 7
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="namespace",subresource="exec",verb="CONNECT",version="v1"} 1
go_goroutines 1234
go_memstats_heap_inuse_bytes 1.048576e+08
go_memstats_stack_inuse_bytes 2097152
`);

describe("the API server's metrics", () => {
  it("counts resource requests between two scrapes by verb and resource, refusals apart, watches and its own scrape aside", () => {
    expect(Object.fromEntries(requestsBetween(scrape(10, 1), scrape(1010, 9)))).toEqual({
      "PATCH nodes": 1000,
    });
  });

  it("counts open watches and reads the Go runtime's figures", () => {
    expect(openWatches(scrape(0, 0))).toBe(47);
    expect(goRuntime(scrape(0, 0))).toEqual({ goroutines: 1234, heapMiB: 100, stackMiB: 2 });
  });
});
