// The one-line reason a failed `make demo` prints, from log lines as the control plane and the kubelet
// write them (klog, errors inside err="..." with their quotes escaped).
import { describe, expect, it } from "vitest";
import { demoFailureCause } from "../demo/demo-diagnosis.ts";

const WEBHOOK_REFUSED = String.raw`E1207 10:01:02.123456    1234 replica_set.go:560] "Unhandled Error" err="sync \"default/hardened-5d8f\" failed with Internal error occurred: failed calling webhook \"pods.lockstep.dev\": failed to call webhook: Post \"https://127.40.2.3:8443/mutate?timeout=10s\": dial tcp 127.40.2.3:8443: connect: connection refused" logger="UnhandledError"`;
const CRASH_LOOP = String.raw`E1207 10:01:05.000001    2345 pod_workers.go:1301] "Error syncing pod, skipping" err="failed to \"StartContainer\" for \"webhook\" with CrashLoopBackOff: \"back-off 10s restarting failed container=webhook pod=lockstep-webhook-7c9d_lockstep-system(0a1b)\"" pod="lockstep-system/lockstep-webhook-7c9d"`;
const NEVER_PULL = String.raw`E1207 10:01:06.000001    2345 pod_workers.go:1301] "Error syncing pod, skipping" err="failed to \"StartContainer\" for \"agent\" with ErrImageNeverPull: \"Container image \\\"ghcr.io/lockstep-dev/lockstep:0.1.0\\\" is not present with pull policy of Never\"" pod="lockstep-system/lockstep-agent-x"`;
const NO_PROFILE = String.raw`E1207 10:01:07.000001    2345 kuberuntime_manager.go:1400] "Unhandled Error" err="container app start failed in pod web-1: CreateContainerError: failed to create containerd container: cannot load seccomp profile \"/var/lib/kubelet/seccomp/lockstep/web.json\": open /var/lib/kubelet/seccomp/lockstep/web.json: no such file or directory"`;

describe("demoFailureCause", () => {
  it("names the webhook the API server could not call, its URL and why", () => {
    expect(
      demoFailureCause([
        { file: "kube-apiserver.log", text: "I1207 started\n" },
        { file: "kube-controller-manager.log", text: `I1207 ok\n${WEBHOOK_REFUSED}\n` },
      ]),
    ).toBe(
      "the API server could not call webhook pods.lockstep.dev at https://127.40.2.3:8443/mutate: connection refused (kube-controller-manager.log)",
    );
  });

  it("prefers the webhook over a crash loop it may explain, whatever the order of the logs", () => {
    const logs = [
      { file: "nodes/node-2/kubelet.log", text: CRASH_LOOP },
      { file: "kube-controller-manager.log", text: WEBHOOK_REFUSED },
    ];
    expect(demoFailureCause(logs)).toMatch(/^the API server could not call webhook/);
    expect(demoFailureCause(logs.slice(0, 1))).toBe(
      "container webhook keeps crashing (CrashLoopBackOff, nodes/node-2/kubelet.log)",
    );
  });

  it("names a missing image and a missing seccomp profile", () => {
    expect(demoFailureCause([{ file: "nodes/node-1/kubelet.log", text: NEVER_PULL }])).toBe(
      "a node has no image ghcr.io/lockstep-dev/lockstep:0.1.0 (ErrImageNeverPull, nodes/node-1/kubelet.log)",
    );
    expect(demoFailureCause([{ file: "nodes/node-3/kubelet.log", text: NO_PROFILE }])).toBe(
      "a container's seccomp profile /var/lib/kubelet/seccomp/lockstep/web.json is missing on its node (nodes/node-3/kubelet.log)",
    );
  });

  it("finds nothing in logs without a known cause", () => {
    expect(demoFailureCause([{ file: "etcd.log", text: "everything fine\n" }])).toBeUndefined();
    expect(demoFailureCause([])).toBeUndefined();
  });
});
