import { describe, expect, it } from "vitest";
import {
  CallBatcher,
  containerIdFromCgroup,
  identityFromBundle,
  mapReaderCalls,
  type ObservedCall,
  parseReaderLine,
  profileLogsCalls,
  seccompActionName,
} from "./audit-events.ts";

const ID = "a".repeat(60) + "0123";
const X86_64 = 0xc000003e;
const LOG = 0x7ffc0000;

describe("the audit reader's lines", () => {
  it("reads a count line and a stats line", () => {
    const calls = { pid: 42, arch: X86_64, syscall: 83, code: LOG, count: 3, comm: "mkdir", cgroup: "0::/x" };
    expect(parseReaderLine(JSON.stringify(calls))).toEqual({ kind: "calls", calls });
    const stats = { records: 5, lines: 2, overruns: 1, unparsed: 0, unwritten: 0, rcvbuf: 425984 };
    expect(parseReaderLine(JSON.stringify({ stats }))).toEqual({ kind: "stats", stats });
  });

  it("refuses what is not a line of the reader, saying why, without throwing", () => {
    expect(parseReaderLine("{").kind).toBe("invalid");
    expect(
      parseReaderLine(JSON.stringify({ pid: -1, arch: 1, syscall: 1, code: 1, count: 1 })),
    ).toMatchObject({
      kind: "invalid",
      reason: expect.stringContaining("pid"),
    });
    expect(parseReaderLine(" ".repeat(10_000))).toEqual({
      kind: "invalid",
      reason: "line of 10000 characters",
    });
  });
});

describe("seccomp actions", () => {
  it("names the action of a filter's return value, whatever its data", () => {
    expect(seccompActionName(LOG)).toBe("log");
    expect(seccompActionName(0x00050000 | 95)).toBe("errno");
    expect(seccompActionName(0x80000000)).toBe("kill_process");
    expect(seccompActionName(0)).toBe("kill_thread");
    expect(seccompActionName(0x12340000)).toBeUndefined();
  });
});

describe("which container a process is in", () => {
  it("finds the id in cgroup v2, the systemd driver's scope and a v1 hierarchy", () => {
    expect(containerIdFromCgroup(`0::/kubepods/besteffort/pod1234/${ID}\n`)).toBe(ID);
    expect(containerIdFromCgroup(`0::/kubepods.slice/x.slice/cri-containerd-${ID}.scope\n`)).toBe(ID);
    expect(containerIdFromCgroup(`4:memory:/kubepods/pod1/${ID}\n0::/\n`)).toBe(ID);
    expect(containerIdFromCgroup("0::/user.slice/session-1.scope\n")).toBeUndefined();
    expect(containerIdFromCgroup("")).toBeUndefined();
  });

  it("reads a container's identity from its bundle's CRI annotations, and only a container's", () => {
    const annotations = {
      "io.kubernetes.cri.container-type": "container",
      "io.kubernetes.cri.sandbox-namespace": "web",
      "io.kubernetes.cri.sandbox-name": "web-1",
      "io.kubernetes.cri.sandbox-uid": "uid-1",
      "io.kubernetes.cri.container-name": "app",
    };
    expect(identityFromBundle(JSON.stringify({ annotations }))).toEqual({
      namespace: "web",
      pod: "web-1",
      podUID: "uid-1",
      container: "app",
    });
    const sandbox = { ...annotations, "io.kubernetes.cri.container-type": "sandbox" };
    expect(identityFromBundle(JSON.stringify({ annotations: sandbox }))).toBeUndefined();
    expect(identityFromBundle(JSON.stringify({ ociVersion: "1.2.0" }))).toBeUndefined();
    expect(identityFromBundle("not json")).toBeUndefined();
  });
});

describe("a reader line to a call", () => {
  const line = { pid: 7, arch: X86_64, syscall: 83, code: LOG, count: 2, cgroup: `0::/k/${ID}` };

  it("names the syscall, the architecture and the action, with the container id", () => {
    expect(mapReaderCalls(line)).toEqual({
      ok: true,
      containerId: ID,
      call: { syscall: "mkdir", arch: "x86_64", action: "log", count: 2 },
    });
  });

  it("falls back to the agent's own read of the cgroup, and says why a line gives no call", () => {
    expect(mapReaderCalls({ ...line, cgroup: "" }, `0::/k/${ID}`)).toMatchObject({ ok: true });
    expect(mapReaderCalls({ ...line, cgroup: "" })).toEqual({ ok: false, reason: "not-a-container" });
    expect(mapReaderCalls({ ...line, code: 0x12340000 })).toEqual({ ok: false, reason: "unknown-action" });
    expect(mapReaderCalls({ ...line, arch: 0x40000003 })).toEqual({ ok: false, reason: "unknown-syscall" });
    expect(mapReaderCalls({ ...line, syscall: 99_999 })).toEqual({ ok: false, reason: "unknown-syscall" });
  });
});

describe("which profiles make audit records", () => {
  it("is a profile whose default or one rule logs, or that asks the kernel to log its other actions", () => {
    expect(profileLogsCalls(JSON.stringify({ defaultAction: "SCMP_ACT_LOG" }))).toBe(true);
    const rule = {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_LOG" }],
    };
    expect(profileLogsCalls(JSON.stringify(rule))).toBe(true);
    const flagged = { defaultAction: "SCMP_ACT_ERRNO", flags: ["SECCOMP_FILTER_FLAG_LOG"] };
    expect(profileLogsCalls(JSON.stringify(flagged))).toBe(true);
    const quiet = {
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW" }],
    };
    expect(profileLogsCalls(JSON.stringify(quiet))).toBe(false);
    expect(profileLogsCalls("{")).toBe(false);
  });
});

describe("batches of calls", () => {
  const call = (podUID: string, syscall: string, count = 1): ObservedCall => ({
    namespace: "ns",
    pod: `pod-${podUID}`,
    podUID,
    container: "app",
    syscall,
    arch: "x86_64",
    action: "log",
    count,
  });

  it("sums a repeated call into one entry and starts empty after a drain", () => {
    const batcher = new CallBatcher({ callKeysPerPod: 4, callKeys: 8 });
    batcher.add(call("a", "mkdir", 2));
    batcher.add(call("a", "mkdir", 3));
    batcher.add(call("a", "rmdir"));
    const batch = batcher.drain();
    expect(batch.calls).toEqual([call("a", "mkdir", 5), call("a", "rmdir")]);
    expect(batcher.drain().calls).toEqual([]);
  });

  it("keeps a noisy pod to its share, so a quiet pod's calls still get through, and says so", () => {
    const batcher = new CallBatcher({ callKeysPerPod: 3, callKeys: 5 });
    for (let i = 0; i < 100; i++) batcher.add(call("noisy", `s${i}`, 10));
    batcher.add(call("quiet", "mkdir"));
    const batch = batcher.drain();
    expect(batch.calls.filter((c) => c.podUID === "noisy")).toHaveLength(3);
    expect(batch.calls.filter((c) => c.podUID === "quiet")).toEqual([call("quiet", "mkdir")]);
    expect(batch.cappedPods.get("noisy")?.dropped).toBe(970);
    expect(batch.droppedOverTotal).toBe(0);
  });

  it("refuses new keys past the node's total and counts them", () => {
    const batcher = new CallBatcher({ callKeysPerPod: 2, callKeys: 3 });
    for (const pod of ["a", "b", "c"]) for (const s of ["x", "y"]) batcher.add(call(pod, s));
    const batch = batcher.drain();
    expect(batch.calls).toHaveLength(3);
    expect(batch.droppedOverTotal).toBe(3);
  });
});
