#!/usr/bin/env node
// The Lockstep node agent (one per node, a DaemonSet).
//
//   NODE_NAME                 (env, required) this node's name, from the downward API
//   KUBECONFIG                (env) a kubeconfig; in a pod, the in-cluster service-account token is used
//   --kubelet-root DIR        kubelet root folder (default /var/lib/kubelet); profiles go to DIR/seccomp/lockstep/
//   --health-port N           /healthz, /readyz, /metrics (default 8081; 0 disables)
//   --health-host ADDR        the address they listen on (default 0.0.0.0; a pod's own IP on a shared host network)
//   --apparmor-securityfs DIR securityfs mount (default /sys/kernel/security)
//   --apparmor-enabled-file F AppArmor module parameter (default /sys/module/apparmor/parameters/enabled)
//   --apparmor-parser CMD     apparmor_parser command (default apparmor_parser)
//   --boot-id-file F          the kernel's boot id (default /proc/sys/kernel/random/boot_id; tests fake a reboot)
//   --containerd-state DIR    containerd's state folder, whose bundles name a container's pod (default /run/containerd)
//   --audit-reader CMD        native/audit-reader, run while a seccomp profile here logs calls (default lockstep-audit-reader);
//                             "none": this node reads no audit records (no call metric or Events, records no pods)
//   --proc DIR                the host's /proc, for a process's cgroup (default /proc)
//   --call-events-interval S  seconds between a pod's Events of calls its profile logged or refused (default 60)
//   LOG_LEVEL                 (env) pino level, default info
import { parseArgs } from "node:util";
import * as z from "zod";
import packageJson from "../package.json" with { type: "json" };
import { DEFAULT_CONTAINERD_STATE, DEFAULT_KUBELET_ROOT } from "../src/api/paths.ts";
import {
  configOrExit,
  connectOrExit,
  HEALTH_FLAGS,
  HealthAddressSchema,
  healthAddressInput,
  runComponent,
} from "../src/kube/component.ts";
import { createLogger } from "../src/kube/logger.ts";
import { NodeAgent } from "./agent.ts";
import { DEFAULT_APPARMOR_PATHS } from "./apparmor.ts";
import { AUDIT_READER_NONE, AuditCollector, DEFAULT_AUDIT_READER } from "./audit-collector.ts";
import { CALL_EVENTS_INTERVAL_MS, NodeAudit } from "./call-reports.ts";
import { agentEventRecorder } from "./events.ts";

const ConfigSchema = z.object({
  nodeName: z.string().min(1, "NODE_NAME must be set (the downward API's spec.nodeName)"),
  kubeletRoot: z.string().startsWith("/", "--kubelet-root must be an absolute path"),
  health: HealthAddressSchema,
  securityfs: z.string(),
  enabledFile: z.string(),
  parser: z.string().min(1),
  bootIdFile: z.string().min(1),
  containerdState: z.string().startsWith("/", "--containerd-state must be an absolute path"),
  auditReader: z.string().min(1),
  procRoot: z.string().startsWith("/", "--proc must be an absolute path"),
  callEventsSeconds: z.coerce.number().int().min(1, "--call-events-interval must be at least 1 (seconds)"),
});

const log = createLogger("agent");

function readConfig() {
  const { values } = parseArgs({
    options: {
      "kubelet-root": { type: "string", default: DEFAULT_KUBELET_ROOT },
      ...HEALTH_FLAGS,
      "apparmor-securityfs": { type: "string", default: DEFAULT_APPARMOR_PATHS.securityfs },
      "apparmor-enabled-file": { type: "string", default: DEFAULT_APPARMOR_PATHS.enabledParameter },
      "apparmor-parser": { type: "string", default: DEFAULT_APPARMOR_PATHS.parser },
      "boot-id-file": { type: "string", default: DEFAULT_APPARMOR_PATHS.bootId },
      "containerd-state": { type: "string", default: DEFAULT_CONTAINERD_STATE },
      "audit-reader": { type: "string", default: DEFAULT_AUDIT_READER },
      proc: { type: "string", default: "/proc" },
      "call-events-interval": { type: "string", default: String(CALL_EVENTS_INTERVAL_MS / 1000) },
    },
  });
  return configOrExit(log, ConfigSchema, {
    nodeName: process.env.NODE_NAME ?? "",
    kubeletRoot: values["kubelet-root"],
    health: healthAddressInput(values),
    securityfs: values["apparmor-securityfs"],
    enabledFile: values["apparmor-enabled-file"],
    parser: values["apparmor-parser"],
    bootIdFile: values["boot-id-file"],
    containerdState: values["containerd-state"],
    auditReader: values["audit-reader"],
    procRoot: values.proc,
    callEventsSeconds: values["call-events-interval"],
  });
}

const config = readConfig();
const connection = await connectOrExit(log);
const agentLog = log.child({ node: config.nodeName });
// Without the audit path (a node that may not read the kernel's audit records) nothing here runs at all.
const audit =
  config.auditReader === AUDIT_READER_NONE
    ? undefined
    : new NodeAudit({
        collector: new AuditCollector({
          reader: config.auditReader,
          containerdState: config.containerdState,
          procRoot: config.procRoot,
          log: agentLog,
          metrics: connection.metrics,
        }),
        metrics: connection.metrics,
        events: agentEventRecorder(connection.client, config.nodeName, agentLog),
        eventsIntervalMs: config.callEventsSeconds * 1000,
      });
const agent = new NodeAgent({
  client: connection.client,
  nodeName: config.nodeName,
  kubeletRoot: config.kubeletRoot,
  appArmor: {
    securityfs: config.securityfs,
    enabledParameter: config.enabledFile,
    parser: config.parser,
    bootId: config.bootIdFile,
  },
  version: packageJson.version,
  log: agentLog,
  metrics: connection.metrics,
  audit,
});
// Recorded pods' calls go to their ProfileRecording too (ADR 0039), beside the metric and Events.
audit?.collector.onCalls((calls, batch) => agent.recordings.onCalls(calls, batch));
await runComponent(log, connection, config.health, agent);
