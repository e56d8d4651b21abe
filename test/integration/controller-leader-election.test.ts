// Lease-based leader election against the real API server, with several candidates in one process:
// at most one leads at any moment (resourceVersion preconditions make concurrent writes lose), a
// released Lease is taken over at once, and a holder that stops renewing is replaced after the lease
// duration; a leader whose renewals go unanswered (the API server stopped) steps down at its renew
// deadline. The kill-the-leader test with real processes is in controller.test.ts, and with pods in
// deploy-controller-webhook.test.ts.
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configFromKubeconfigFiles, KubeClient } from "../../src/kube/client.ts";
import { LeaderElector } from "../../src/kube/leader-election.ts";
import { createLogger } from "../../src/kube/logger.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";

let cp: ControlPlane;
let client: KubeClient;
const electors: LeaderElector[] = [];

beforeAll(async () => {
  cp = await ControlPlane.start({ scheduler: false, controllerManager: false });
  client = new KubeClient(await configFromKubeconfigFiles([cp.adminKubeconfigPath]));
  await cp
    .kubeConfig()
    .makeApiClient(k8s.CoreV1Api)
    .createNamespace({ body: { metadata: { name: "election" } } });
});

afterAll(async () => {
  await Promise.all(electors.map((e) => e.release()));
  client?.close();
  await cp?.stop();
});

function candidate(identity: string, lease = "race", through = client): LeaderElector {
  const elector = new LeaderElector({
    client: through,
    namespace: "election",
    name: lease,
    identity,
    leaseDurationMs: 3_000,
    renewDeadlineMs: 2_000,
    retryPeriodMs: 250,
    log: createLogger("leader-election-test", "silent"),
  });
  electors.push(elector);
  return elector;
}

describe("LeaderElector", () => {
  it("lets exactly one of several racing candidates lead, and hands over at once on release", async () => {
    const candidates = ["a", "b", "c"].map((identity) => candidate(identity));
    const lost: string[] = [];
    const acquired = candidates.map((c, i) => c.acquire(() => lost.push(String(i))).then(() => c));
    const first = await Promise.race(acquired);

    // Watch for overlap for a while: never two leaders, the first keeps renewing.
    for (let i = 0; i < 20; i++) {
      expect(candidates.filter((c) => c.isLeader())).toEqual([first]);
      await new Promise((r) => setTimeout(r, 100));
    }

    const lease = await cp
      .kubeConfig()
      .makeApiClient(k8s.CoordinationV1Api)
      .readNamespacedLease({ name: "race", namespace: "election" });
    expect(lease.spec?.leaseDurationSeconds).toBe(3);

    await first.release();
    const second = await Promise.race(acquired.filter((_, i) => candidates[i] !== first));
    expect(second).not.toBe(first);
    expect(candidates.filter((c) => c.isLeader())).toEqual([second]);
    expect(lost).toEqual([]);
  });

  it("replaces a holder that stopped renewing once the lease duration has passed on the candidate's clock", async () => {
    const coordination = cp.kubeConfig().makeApiClient(k8s.CoordinationV1Api);
    // A holder that died without releasing: renewed once, never again.
    await coordination.createNamespacedLease({
      namespace: "election",
      body: {
        metadata: { name: "dead", namespace: "election" },
        spec: {
          holderIdentity: "dead-holder",
          leaseDurationSeconds: 2,
          renewTime: new k8s.V1MicroTime(Date.now()),
        },
      },
    });
    const next = new LeaderElector({
      client,
      namespace: "election",
      name: "dead",
      identity: "successor",
      leaseDurationMs: 2_000,
      renewDeadlineMs: 1_500,
      retryPeriodMs: 250,
      log: createLogger("leader-election-test", "silent"),
    });
    electors.push(next);
    let acquired = false;
    const acquiring = next
      .acquire(() => undefined)
      .then(() => {
        acquired = true;
      });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(acquired).toBe(false);
    await acquiring;
    const lease = await waitFor("the successor to hold the Lease", async () => {
      const l = await coordination.readNamespacedLease({ name: "dead", namespace: "election" });
      return l.spec?.holderIdentity === "successor" ? l : undefined;
    });
    expect(lease.spec?.leaseTransitions).toBe(1);
  });

  it("renews with one request per retry period, the update alone, and reads again only when its write is refused", async () => {
    // The same client, counting what the elector asks of it: every call is a real request.
    const calls: string[] = [];
    const counting = new Proxy(client, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls.push(String(property));
          return value.apply(target, args);
        };
      },
    });
    const leader = candidate("one-request", "one-request", counting);
    await leader.acquire(() => undefined);
    calls.length = 0;
    await new Promise((r) => setTimeout(r, 2_000));
    // 250 ms retry period: about 8 renewals in 2 s, each a single PUT, no GET.
    expect(calls.filter((c) => c === "get")).toEqual([]);
    expect(calls.filter((c) => c === "replace").length).toBeGreaterThanOrEqual(4);
    expect(calls.length).toBeLessThanOrEqual(9);

    // Someone else writes the Lease (its resourceVersion moves): the next renewal is refused, the elector
    // reads the Lease again, still finds itself the holder, and goes on leading.
    const coordination = cp.kubeConfig().makeApiClient(k8s.CoordinationV1Api);
    const current = await coordination.readNamespacedLease({ name: "one-request", namespace: "election" });
    await coordination.replaceNamespacedLease({
      name: "one-request",
      namespace: "election",
      body: { ...current, metadata: { ...current.metadata, labels: { touched: "yes" } } },
    });
    calls.length = 0;
    await waitFor("the elector to read the Lease again", async () => calls.includes("get"));
    await new Promise((r) => setTimeout(r, 600));
    expect(leader.isLeader()).toBe(true);
    const after = await coordination.readNamespacedLease({ name: "one-request", namespace: "election" });
    expect(after.spec?.holderIdentity).toBe("one-request");
    expect(after.metadata?.labels?.touched).toBe("yes");
  });

  it("steps down at its renew deadline while the API server answers nothing, not once it answers again", async () => {
    const leader = candidate("paused", "paused");
    let lostAt = 0;
    await leader.acquire(() => {
      lostAt = Date.now();
    });
    const apiServer = cp.processes.find((p) => p.name === "kube-apiserver");
    if (!apiServer) throw new Error("no kube-apiserver process");
    // Stopped, not killed: connections stay open and requests wait, as with a hung server or lost packets.
    process.kill(apiServer.pid, "SIGSTOP");
    let resumedAt = 0;
    try {
      // The renew deadline is 2 s; 6 s leaves room for a busy machine.
      await waitFor("the leader to step down", async () => lostAt > 0, { timeoutMs: 6_000 }).catch(
        () => undefined,
      );
    } finally {
      resumedAt = Date.now();
      process.kill(apiServer.pid, "SIGCONT");
    }
    expect(lostAt).toBeGreaterThan(0);
    expect(lostAt).toBeLessThanOrEqual(resumedAt);
    expect(leader.isLeader()).toBe(false);
  });
});
