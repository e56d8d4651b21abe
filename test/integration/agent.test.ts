// The node agent against the real control plane: one real agent process per simulated node, each with
// its own kubelet root, authenticating with a pod-bound token of its service account.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OWNERSHIP_RECORD_FILE } from "../../node-agent/ownership-record.ts";
import { failedLabelKey } from "../../src/api/labels.ts";
import { kubeErrorCode, kubeErrorMessage } from "../../src/kube/errors.ts";
import { type AgentProcess, installAgentPrerequisites, startAgent, stopAgents } from "../harness/agents.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { largestSeccompSpec } from "../harness/large-profiles.ts";
import {
  applyProfile,
  deleteProfile,
  nodeHoldsProfile,
  type ProfileObjectKind,
} from "../harness/profiles.ts";
import { runInBusybox } from "../harness/runc.ts";

const cli = join(import.meta.dirname, "../../src/cli/main.ts");
let cp: ControlPlane;
let core: k8s.CoreV1Api;
let objects: k8s.CustomObjectsApi;
const agents: AgentProcess[] = [];
const agentOn = (node: string) => agents.find((a) => a.nodeName === node) as AgentProcess;

const holds = (node: string, kind: ProfileObjectKind, name: string) =>
  nodeHoldsProfile(cp.kubeConfig(), kind, name, node);

async function nodeLabels(node: string): Promise<Record<string, string>> {
  return (await core.readNode({ name: node })).metadata?.labels ?? {};
}

/** Every file under `dir`, recursively, relative to it. */
function filesUnder(dir: string, prefix = ""): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

beforeAll(async () => {
  cp = await ControlPlane.start();
  core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  objects = cp.kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  await cp.addNode("node-a", { labels: { pool: "web" } });
  await cp.addNode("node-b", { labels: { pool: "web" } });
  await cp.addNode("node-c", { labels: { pool: "batch" }, arch: "arm64" });
  await installAgentPrerequisites(cp);
  agents.push(await startAgent(cp, "node-a", { appArmor: true }));
  agents.push(await startAgent(cp, "node-b"));
  agents.push(await startAgent(cp, "node-c"));
});

afterAll(async () => {
  await stopAgents(agents);
  await cp?.stop();
});

describe("the node agent", () => {
  it("labels each node ready, with whether it has AppArmor", async () => {
    expect(await nodeLabels("node-a")).toMatchObject({
      "lockstep.dev/agent": "0.1.0",
      "lockstep.dev/apparmor": "enabled",
    });
    expect(await nodeLabels("node-b")).toMatchObject({
      "lockstep.dev/agent": "0.1.0",
      "lockstep.dev/apparmor": "unavailable",
    });
  });

  it("installs a seccomp profile on matching nodes only, updates it, and removes it", async () => {
    const spec = { baseProfileName: "runtime/default", nodeSelector: { pool: "web" } };
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "web", spec);
    const file = (node: string) => join(agentOn(node).seccompDir, "web.json");
    await waitFor(
      "web on node-a and node-b",
      async () =>
        (await holds("node-a", "SeccompProfile", "web")) && holds("node-b", "SeccompProfile", "web"),
    );
    for (const node of ["node-a", "node-b"]) {
      const content = readFileSync(file(node), "utf8");
      const json = JSON.parse(content);
      expect(json.defaultAction).toBe("SCMP_ACT_ERRNO");
      expect(json.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
      for (const dockerOnly of ["archMap", "includes", "excludes", "comment"])
        expect(content).not.toContain(dockerOnly);
    }
    expect(existsSync(file("node-c"))).toBe(false);
    expect(await holds("node-c", "SeccompProfile", "web")).toBe(false);
    // Outside the nodeSelector: no failure label either, just nothing (the selector keeps pods away).
    expect((await nodeLabels("node-c"))[failedLabelKey("seccomp", "web")]).toBeUndefined();

    await applyProfile(cp.kubeConfig(), "SeccompProfile", "web", {
      ...spec,
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 38 }],
    });
    // The update has a new revision: a node holds it only once its agent caught up with it.
    await waitFor(
      "both nodes to hold the new version",
      async () =>
        (await holds("node-a", "SeccompProfile", "web")) && holds("node-b", "SeccompProfile", "web"),
    );
    for (const node of ["node-a", "node-b"])
      expect(readFileSync(file(node), "utf8")).toContain('"errnoRet": 38');

    await deleteProfile(cp.kubeConfig(), "SeccompProfile", "web");
    await waitFor("web's files to be gone, with no label left for it", async () => {
      const gone = await Promise.all(
        ["node-a", "node-b"].map(
          async (n) =>
            (await nodeLabels(n))[failedLabelKey("seccomp", "web")] === undefined && !existsSync(file(n)),
        ),
      );
      return gone.every(Boolean);
    });
  });

  it("writes a file that runc really enforces: allowed programs run, a denied syscall fails with its errno", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "no-mkdir", {
      baseProfileName: "runtime/default",
      syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 38 }],
    });
    const file = join(agentOn("node-a").seccompDir, "no-mkdir.json");
    await waitFor("no-mkdir on node-a", async () => await holds("node-a", "SeccompProfile", "no-mkdir"));
    const allowed = await runInBusybox(file, ["sh", "-c", "echo hello > /tmp/f && cat /tmp/f"]);
    expect(allowed.stdout.trim()).toBe("hello");
    expect(allowed.exitCode).toBe(0);
    const denied = await runInBusybox(file, ["mkdir", "/tmp/d"]);
    expect(denied.exitCode).not.toBe(0);
    // errno 38 is ENOSYS: the errno the profile configured, not a generic EPERM.
    expect(denied.stderr).toMatch(/Function not implemented|not implemented/);
  });

  it("writes exactly what `lockstep convert` prints for the same profile and node", async () => {
    const object = await objects.getClusterCustomObject({
      group: "lockstep.dev",
      version: "v1alpha1",
      plural: "seccompprofiles",
      name: "no-mkdir",
    });
    const file = join(cp.workDir, "no-mkdir.yaml");
    writeFileSync(file, k8s.dumpYaml(object));
    for (const [node, arch] of [
      ["node-a", "amd64"],
      ["node-c", "arm64"],
    ] as const) {
      await waitFor(`no-mkdir on ${node}`, async () => await holds(node, "SeccompProfile", "no-mkdir"));
      const converted = spawnSync(process.execPath, [cli, "convert", file, "--node-arch", arch], {
        encoding: "utf8",
      });
      expect(converted.status, converted.stderr).toBe(0);
      expect(converted.stdout).toBe(readFileSync(join(agentOn(node).seccompDir, "no-mkdir.json"), "utf8"));
    }
  });

  it("renders per architecture: an arm64 node gets the ARM arches", async () => {
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "everywhere", { defaultAction: "SCMP_ACT_ALLOW" });
    await waitFor("everywhere on node-c", async () => await holds("node-c", "SeccompProfile", "everywhere"));
    const json = JSON.parse(readFileSync(join(agentOn("node-c").seccompDir, "everywhere.json"), "utf8"));
    expect(json.architectures).toEqual(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  });

  it("loads AppArmor only where AppArmor exists, and reports an invalid policy per node", async () => {
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "web-aa", {
      executables: ["/bin/busybox"],
      paths: { readOnly: ["/etc/**"], readWrite: ["/tmp/**"] },
      network: { families: ["inet"], protocols: ["tcp"] },
    });
    await waitFor("web-aa on node-a", async () => await holds("node-a", "AppArmorProfile", "web-aa"));
    const loaded = readFileSync(join(agentOn("node-a").securityfs as string, "apparmor", "profiles"), "utf8");
    expect(loaded).toContain("lockstep.web-aa (enforce)");
    expect(await holds("node-b", "AppArmorProfile", "web-aa")).toBe(false);

    // Passes the schema, fails apparmor_parser: a rule without its terminating comma.
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", "broken-aa", {
      rawPolicy: "#include <tunables/global>\nprofile lockstep.broken-aa {\n  /etc/** r\n}\n",
    });
    const event = await waitFor("an InstallFailed event for broken-aa", async () => {
      const events = await core.listNamespacedEvent({
        namespace: "default",
        fieldSelector:
          "involvedObject.kind=AppArmorProfile,involvedObject.name=broken-aa,reason=InstallFailed",
      });
      return events.items[0];
    });
    expect(event.message).toMatch(
      /^node node-a: InvalidPolicy: AppArmor parser error for spec.rawPolicy .*syntax error/,
    );
    expect(event.source?.host).toBe("node-a");
    expect(await holds("node-a", "AppArmorProfile", "broken-aa")).toBe(false);
    expect(await holds("node-a", "AppArmorProfile", "web-aa")).toBe(true);
  });

  it("never writes outside its folder, whatever the names and sizes", async () => {
    const longName = `${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.${"d".repeat(60)}`;
    await applyProfile(cp.kubeConfig(), "SeccompProfile", longName, { defaultAction: "SCMP_ACT_ALLOW" });
    // The largest profile the CRD's limits allow (src/api/limits.ts), on every node.
    const { baseProfileName: _, nodeSelector: __, ...largest } = largestSeccompSpec();
    await applyProfile(cp.kubeConfig(), "SeccompProfile", "huge", largest);
    await waitFor(
      "both on node-b",
      async () =>
        (await holds("node-b", "SeccompProfile", longName)) && holds("node-b", "SeccompProfile", "huge"),
    );
    expect(failedLabelKey("seccomp", longName).length).toBeLessThanOrEqual(
      "failed.seccomp.lockstep.dev/".length + 63,
    );
    expect(readFileSync(join(agentOn("node-b").seccompDir, "huge.json")).length).toBeGreaterThan(200_000);
    // Names with separators or `..` never reach the agent: the API server refuses them.
    const hostile = await applyProfile(cp.kubeConfig(), "SeccompProfile", "../../etc/passwd", {
      defaultAction: "SCMP_ACT_ALLOW",
    }).then(
      () => undefined,
      (e: unknown) => kubeErrorMessage(e),
    );
    expect(hostile).toBeDefined();
    // Nothing outside seccomp/lockstep/ in any kubelet root.
    for (const agent of agents)
      for (const file of filesUnder(agent.kubeletRoot))
        expect(file.startsWith("seccomp/lockstep/")).toBe(true);
    for (const agent of agents) expect(agent.process.isRunning()).toBe(true);
  });

  it("after SIGKILL in a burst of 100 updates, restarts to no partial or stale file and labels equal to the disk", async () => {
    const agent = agentOn("node-b");
    const burst = (async () => {
      for (let i = 0; i < 100; i++)
        await applyProfile(cp.kubeConfig(), "SeccompProfile", "burst", {
          defaultAction: "SCMP_ACT_ERRNO",
          defaultErrnoRet: (i % 100) + 1,
          syscalls: [{ names: ["read", "write", "exit_group"], action: "SCMP_ACT_ALLOW" }],
        });
    })();
    await new Promise((r) => setTimeout(r, 400));
    await agent.process.kill();
    await burst;
    await agent.restart();
    await waitFor("burst held with its final version", async () => {
      const content = readFileSync(join(agent.seccompDir, "burst.json"), "utf8");
      return JSON.parse(content).defaultErrnoRet === 100 && holds("node-b", "SeccompProfile", "burst");
    });
    expect(filesUnder(agent.seccompDir).filter((f) => f.startsWith(".tmp-"))).toEqual([]);
    // Labels equal the disk: node-b holds exactly the profiles whose files are there, and carries no
    // failure label.
    const files = filesUnder(agent.seccompDir)
      .filter((f) => f !== OWNERSHIP_RECORD_FILE)
      .map((f) => f.replace(/\.json$/, ""));
    const profiles = (
      (
        await objects.listClusterCustomObject({
          group: "lockstep.dev",
          version: "v1alpha1",
          plural: "seccompprofiles",
        })
      ).items as { metadata: { name: string } }[]
    ).map((p) => p.metadata.name);
    const held = [];
    for (const name of profiles) if (await holds("node-b", "SeccompProfile", name)) held.push(name);
    expect(held.sort()).toEqual(files.sort());
    expect(Object.keys(await nodeLabels("node-b")).filter((k) => k.startsWith("failed."))).toEqual([]);
  });
});

describe("lockstep node", () => {
  it("lists what a node holds, what failed there and why, and what does not belong there", async () => {
    const kubeconfig = await cp.writeKubeconfigFor("node-viewer", ["system:masters"], "node-viewer");
    const run = (node: string) => {
      const out = spawnSync(process.execPath, [cli, "node", node, "--output", "json"], {
        encoding: "utf8",
        env: { PATH: process.env.PATH, KUBECONFIG: kubeconfig },
      });
      expect(out.status, out.stderr).toBe(0);
      return JSON.parse(out.stdout) as { kind: string; name: string; state: string; reason?: string }[];
    };
    const nodeA = run("node-a");
    expect(nodeA).toContainEqual({ kind: "apparmor", name: "web-aa", state: "installed" });
    expect(nodeA).toContainEqual({
      kind: "apparmor",
      name: "broken-aa",
      state: "failed",
      reason: "InvalidPolicy",
    });
    expect(run("node-b")).toContainEqual({ kind: "apparmor", name: "web-aa", state: "elsewhere" });
    // Every line agrees with the rule the scheduler applies.
    for (const line of nodeA)
      expect(
        await holds("node-a", line.kind === "seccomp" ? "SeccompProfile" : "AppArmorProfile", line.name),
        line.name,
      ).toBe(line.state === "installed");
    const text = spawnSync(process.execPath, [cli, "node", "node-a"], {
      encoding: "utf8",
      env: { PATH: process.env.PATH, KUBECONFIG: kubeconfig },
    });
    expect(text.stdout).toMatch(/^node node-a: \d+\/\d+ profiles installed\nKIND +NAME +STATE +REASON\n/);
    const missing = spawnSync(process.execPath, [cli, "node", "no-such-node"], {
      encoding: "utf8",
      env: { PATH: process.env.PATH, KUBECONFIG: kubeconfig },
    });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe('lockstep: node "no-such-node" not found\n');
  });
});

describe("the agent's identity", () => {
  it("may change Lockstep labels on its own Node only", async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(agentOn("node-a").kubeconfigPath);
    const asAgent = kc.makeApiClient(k8s.CoreV1Api);
    const patch = (name: string, labels: Record<string, string>) =>
      asAgent.patchNode(
        { name, body: { metadata: { labels } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    const denial = async (p: Promise<unknown>) =>
      p.then(
        () => "allowed",
        (e: unknown) => `${kubeErrorCode(e)}: ${kubeErrorMessage(e)}`,
      );

    expect(await denial(patch("node-a", { "lockstep.dev/seccomp-revision": "1" }))).toBe("allowed");
    // A per-profile key is the pods' in-use label; no agent sets it on a Node (ADR 0024).
    expect(await denial(patch("node-a", { "seccomp.lockstep.dev/manual": "abc" }))).toMatch(
      /^403: .*may only change the labels lockstep\.dev\/agent, /,
    );
    expect(
      await denial(
        patch("node-a", {
          "failed.seccomp.lockstep.dev/manual": "NameTaken",
          "selector.lockstep.dev/pool": "web",
        }),
      ),
    ).toBe("allowed");
    expect(await denial(patch("node-b", { "selector.lockstep.dev/pool": "web" }))).toMatch(
      /^403: .*may only change its own Node \(node-a\), not node-b/,
    );
    expect(await denial(patch("node-a", { "node-role.kubernetes.io/control-plane": "" }))).toMatch(
      /^403: .*may only change the labels lockstep\.dev\/agent, lockstep\.dev\/apparmor, lockstep\.dev\/seccomp-revision, lockstep\.dev\/apparmor-revision and labels under failed\.seccomp\.lockstep\.dev\/, failed\.apparmor\.lockstep\.dev\/, selector\.lockstep\.dev\//,
    );
    expect(await denial(asAgent.deleteNode({ name: "node-a" }))).toMatch(/^403: /);
    expect(await denial(asAgent.listSecretForAllNamespaces())).toMatch(/^403: /);
    expect(await denial(asAgent.deleteNamespacedPod({ namespace: "default", name: "any" }))).toMatch(
      /^403: /,
    );
  });
});
