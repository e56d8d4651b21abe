#!/usr/bin/env node
// The Lockstep controller (a Deployment, 2 replicas; one leads at a time).
//
//   KUBECONFIG                (env) a kubeconfig; in a pod, the in-cluster service-account token is used
//   --health-port N           /healthz, /readyz, /metrics (default 8081; 0 disables)
//   --health-host ADDR        the address they listen on (default 0.0.0.0; a pod's own IP on a shared host network)
//   --leader-elect            take part in Lease-based leader election (default true; --no-leader-elect for one replica)
//   --lease-namespace NS      where the Lease lives (default: POD_NAMESPACE, else lockstep-system)
//   POD_NAME                  (env) the Lease holder's name before its unique suffix (default: the hostname)
//   --lease-duration S        seconds a standby waits after the last renewal (default 15)
//   --renew-deadline S        seconds the leader keeps trying to renew before it gives up (default 10)
//   --retry-period S          seconds between tries (default 2)
//   --workers N               profiles reconciled in parallel (default 4; never one profile twice)
//   --in-use-recheck S        seconds between checks of a deleted profile that pods still use (default 3)
//   LOG_LEVEL                 (env) pino level, default info
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import * as z from "zod";
import {
  configOrExit,
  connectOrExit,
  HEALTH_FLAGS,
  HealthAddressSchema,
  healthAddressInput,
  runComponent,
} from "../kube/component.ts";
import { LeaderElector } from "../kube/leader-election.ts";
import { createLogger } from "../kube/logger.ts";
import { DEFAULT_WORKERS, ProfileController } from "./controller.ts";
import { RecordingController } from "./recordings.ts";

const log = createLogger("controller");

const ConfigSchema = z
  .object({
    health: HealthAddressSchema,
    leaderElect: z.boolean(),
    leaseNamespace: z.string().min(1),
    leaseDuration: z.coerce.number().positive(),
    renewDeadline: z.coerce.number().positive(),
    retryPeriod: z.coerce.number().positive(),
    workers: z.coerce.number().int().min(1).max(64),
    inUseRecheck: z.coerce.number().positive(),
  })
  .refine((c) => c.retryPeriod < c.renewDeadline && c.renewDeadline < c.leaseDuration, {
    message: "need --retry-period < --renew-deadline < --lease-duration",
  });

const { values } = parseArgs({
  options: {
    ...HEALTH_FLAGS,
    "leader-elect": { type: "boolean", default: true },
    "no-leader-elect": { type: "boolean", default: false },
    "lease-namespace": { type: "string", default: process.env.POD_NAMESPACE ?? "lockstep-system" },
    "lease-duration": { type: "string", default: "15" },
    "renew-deadline": { type: "string", default: "10" },
    "retry-period": { type: "string", default: "2" },
    workers: { type: "string", default: String(DEFAULT_WORKERS) },
    "in-use-recheck": { type: "string", default: "3" },
  },
});
const config = configOrExit(log, ConfigSchema, {
  health: healthAddressInput(values),
  leaderElect: values["leader-elect"] && !values["no-leader-elect"],
  leaseNamespace: values["lease-namespace"],
  leaseDuration: values["lease-duration"],
  renewDeadline: values["renew-deadline"],
  retryPeriod: values["retry-period"],
  workers: values.workers,
  inUseRecheck: values["in-use-recheck"],
});

const connection = await connectOrExit(log);
const { client, metrics } = connection;
// ProfileRecordings (docs/adr/0039-profile-recording.md): their own reconciler, led by the same Lease.
const recordings = new RecordingController({ client, log });
const controller = new ProfileController({
  client,
  log,
  metrics,
  workers: config.workers,
  inUseRecheckMs: config.inUseRecheck * 1000,
});
// Unique per process, as client-go's components make it (hostname + "_" + UUID): two replicas in their own
// PID namespaces both run as pid 1, and on the host network (or one machine's nodes) share a hostname.
// The pod's name first, so the Lease says which pod leads.
const identity = `${process.env.POD_NAME ?? hostname()}_${randomUUID()}`;
const elector = config.leaderElect
  ? new LeaderElector({
      client,
      namespace: config.leaseNamespace,
      name: "lockstep-controller",
      identity,
      leaseDurationMs: config.leaseDuration * 1000,
      renewDeadlineMs: config.renewDeadline * 1000,
      retryPeriodMs: config.retryPeriod * 1000,
      log,
    })
  : undefined;
const isLeader = metrics.gauge("lockstep_controller_is_leader", "1 on the replica that holds the Lease");
isLeader.set(0);

await runComponent(log, connection, config.health, {
  // A standby is ready (it can take over at any time); the leader once its caches have synced.
  notReadyReason: () =>
    elector && !elector.isLeader() ? undefined : (controller.notReadyReason() ?? recordings.notReadyReason()),
  start: async () => {
    if (elector) {
      log.info({ identity }, "waiting to become leader");
      await elector.acquire(() => {
        // Another replica may already be reconciling: stop at once and let the Deployment restart us.
        log.fatal("lost leadership; exiting");
        process.exit(1);
      });
      isLeader.set(1);
    }
    await controller.start();
    await recordings.start();
  },
  stop: async () => {
    await Promise.all([controller.stop(), recordings.stop()]);
    await elector?.release();
  },
});
