// The agent's metrics (docs/metrics.md), registered once per agent on its own registry.
import type { MetricsRegistry } from "../src/kube/metrics.ts";

export function agentMetrics(m: MetricsRegistry) {
  return {
    installed: m.gauge(
      "lockstep_agent_profiles_installed",
      "Profiles verified as installed on this node, by kind",
    ),
    errors: m.counter(
      "lockstep_agent_install_errors_total",
      "Profiles that could not be installed, by reason",
    ),
    lastSync: m.gauge("lockstep_agent_last_sync_timestamp_seconds", "When the last successful sync finished"),
    patches: m.counter("lockstep_agent_node_patches_total", "PATCH requests sent for this Node's labels"),
    syncs: m.counter("lockstep_agent_syncs_total", "Syncs run, by result"),
  };
}

export type AgentMetrics = ReturnType<typeof agentMetrics>;
