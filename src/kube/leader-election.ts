// Lease-based leader election (coordination.k8s.io/v1), as client-go's leaderelection does it: the
// holder renews the Lease every retry period; a candidate takes it over once renewTime + leaseDuration
// has passed. Every write carries the resourceVersion it read, so two candidates can never both win.
// A leader that cannot renew within renewDeadline stops leading (the caller exits), because another
// replica may already have taken over. Every attempt is bounded in time, as client-go bounds each one by
// the renew deadline: a paused or unreachable API server leaves a request unanswered, never failed, and
// a leader waiting on it would go on leading after its Lease expired.
// A leader renews with one request, the update alone, from the Lease its last write returned (client-go's
// "fast path" since 1.27); only when that write is refused (someone else changed the Lease) does it read
// the Lease again. A standby reads once per retry period. So each replica sends one request per retry
// period: 30 a minute at deploy/'s 2 s, where reading before every renewal cost the leader 60.
import type { V1Lease, V1LeaseSpec } from "@kubernetes/client-node";
import type { KubeClient } from "./client.ts";
import { isKubeError, kubeErrorMessage } from "./errors.ts";
import type { Logger } from "./logger.ts";

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
}

export class LeaderElector {
  private readonly opts: LeaderElectionOptions;
  private readonly client: KubeClient;
  private stopped = false;
  private leading = false;
  /** The Lease record (holder and renewTime) last read, and when (local clock) it was first seen. */
  private observed = { record: "", at: 0 };
  /** The Lease as this replica's last successful write returned it (its resourceVersion the precondition of the next renewal). */
  private written: V1Lease | undefined;

  constructor(opts: LeaderElectionOptions) {
    this.opts = opts;
    this.client = opts.client;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Resolves once this replica holds the Lease; then renews it until stop() or a lost renewal. */
  async acquire(onLost: () => void): Promise<void> {
    const { log, retryPeriodMs } = this.opts;
    while (!this.stopped && !(await this.tryAcquireOrRenew(AbortSignal.timeout(this.opts.renewDeadlineMs))))
      await sleep(retryPeriodMs);
    if (this.stopped) return;
    this.leading = true;
    log.info(
      { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity },
      "became leader",
    );
    void this.renewLoop(onLost);
  }

  /** Gives the Lease up (so a standby takes over at once, not after the lease duration). */
  async release(): Promise<void> {
    this.stopped = true;
    if (!this.leading) return;
    this.leading = false;
    this.written = undefined;
    try {
      const lease = await this.client.get<V1Lease>(this.leasePath());
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      lease.spec = { ...lease.spec, holderIdentity: undefined, renewTime: undefined, acquireTime: undefined };
      await this.client.replace(this.leasePath(), lease);
    } catch (error) {
      this.opts.log.warn({ err: kubeErrorMessage(error) }, "could not release the lease");
    }
  }

  private async renewLoop(onLost: () => void): Promise<void> {
    let lastRenew = Date.now();
    while (!this.stopped) {
      await sleep(this.opts.retryPeriodMs);
      if (this.stopped) return;
      // An attempt still unanswered at the deadline is a failed one.
      const left = Math.max(1, lastRenew + this.opts.renewDeadlineMs - Date.now());
      if (await this.tryAcquireOrRenew(AbortSignal.timeout(left))) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.opts.renewDeadlineMs) {
        this.leading = false;
        this.written = undefined;
        this.opts.log.error("lost the lease");
        onLost();
        return;
      }
    }
  }

  private leasePath(): string {
    const { namespace, name } = this.opts;
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases/${encodeURIComponent(name)}`;
  }

  /** The leader's renewal in one request; false when the write is refused or fails (the caller reads again). */
  private async renewFromWritten(spec: V1LeaseSpec, signal: AbortSignal): Promise<boolean> {
    const written = this.written;
    if (!this.leading || !written) return false;
    try {
      this.written = await this.client.replace<V1Lease>(
        this.leasePath(),
        { ...written, spec: { ...written.spec, ...spec } },
        { signal },
      );
      return true;
    } catch (error) {
      this.written = undefined;
      if (!isKubeError(error, 409))
        this.opts.log.warn({ err: kubeErrorMessage(error) }, "lease renewal failed, reading the lease again");
      return false;
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { namespace, name, identity, leaseDurationMs } = this.opts;
    const now = microTime(new Date()) as unknown as Date;
    const spec: V1LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      renewTime: now,
    };
    if (await this.renewFromWritten(spec, signal)) return true;
    if (signal.aborted) return false;
    try {
      let lease: V1Lease;
      try {
        lease = await this.client.get<V1Lease>(this.leasePath(), { signal });
      } catch (error) {
        if (!isKubeError(error, 404)) throw error;
        this.written = await this.client.create<V1Lease>(
          `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
          {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name, namespace },
            spec: { ...spec, acquireTime: now, leaseTransitions: 0 },
          },
          { signal },
        );
        return true;
      }
      const holder = lease.spec?.holderIdentity;
      // Expiry is judged on this replica's clock, from when it last saw the record change (as
      // client-go does): comparing the holder's renewTime with our clock would trust two clocks.
      const record = `${holder}|${lease.spec?.renewTime ? new Date(lease.spec.renewTime).toISOString() : ""}`;
      if (record !== this.observed.record) this.observed = { record, at: Date.now() };
      const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
      if (holder && holder !== identity && this.observed.at + duration > Date.now()) return false;
      const takingOver = holder !== identity;
      lease.spec = {
        ...lease.spec,
        ...spec,
        ...(takingOver
          ? { acquireTime: now, leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 }
          : {}),
      };
      this.written = await this.client.replace<V1Lease>(this.leasePath(), lease, { signal });
      return true;
    } catch (error) {
      // 409: someone else wrote the Lease between our read and write; they won this round.
      if (!isKubeError(error, 409))
        this.opts.log.warn({ err: kubeErrorMessage(error) }, "lease update failed");
      return false;
    }
  }
}

/** metav1.MicroTime's wire form: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
