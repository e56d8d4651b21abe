// The whole node agent (node-agent/main.ts, as it ships from source) inside the AppArmor guest, syncing
// with this machine's control plane through the guest's loopback-only network: it detects AppArmor, loads
// an AppArmorProfile in complain mode into the real kernel and labels its Node; after a reboot of the guest
// (the kernel's policy gone, the agent's ownership record on the node's disk kept) it loads it again; once
// the object is deleted it unloads it. DESIGN invariants 1 and 9 with the real kernel and the real agent.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APPARMOR_LABEL } from "../../src/api/constants.ts";
import { appArmorKernelName } from "../../src/api/labels.ts";
import { agentKubeconfig, installAgentPrerequisites } from "../harness/agents.ts";
import { ControlPlane, waitFor } from "../harness/controlplane.ts";
import { applyProfile, deleteProfile, nodeHoldsProfile } from "../harness/profiles.ts";
import { AppArmorGuest, type GuestRun, shellQuote } from "../harness/uml.ts";

const repo = join(import.meta.dirname, "../..");
const NODE = "uml-node";
/** The object's name; the agent loads it as KERNEL_NAME (lockstep.<name>). */
const PROFILE = "guest-web";
const KERNEL_NAME = appArmorKernelName(PROFILE);

let cp: ControlPlane;
let guest: AppArmorGuest;

beforeAll(async () => {
  cp = await ControlPlane.start();
  await installAgentPrerequisites(cp);
  await cp.addNode(NODE);
  guest = AppArmorGuest.create();
  // The control plane's folder is under the host's /tmp, which the guest's own /tmp hides.
  writeFileSync(join(guest.dir, "agent.kubeconfig"), readFileSync(await agentKubeconfig(cp, NODE)));
}, 300_000);

afterAll(async () => {
  guest?.dispose();
  await cp?.stop();
});

const file = (name: string) => join(guest.dir, name);
const kernelList = () => (existsSync(file("profiles.now")) ? readFileSync(file("profiles.now"), "utf8") : "");

/**
 * One boot of the guest running the agent until the host writes `stop`; meanwhile the kernel's profile
 * list is copied to `profiles.now` every 0.2 s.
 */
function bootWithAgent(): Promise<GuestRun> {
  for (const f of ["stop", "profiles.now"]) if (existsSync(file(f))) writeFileSync(file(f), "");
  const port = new URL(cp.server).port;
  const q = shellQuote;
  const script = [
    `rm -f stop; : > profiles.now`,
    `node ${q(join(repo, "test/harness/guest-loopback-forward.ts"))} ${port} &`,
    `NODE_NAME=${NODE} KUBECONFIG=${q(file("agent.kubeconfig"))} node ${q(join(repo, "node-agent/main.ts"))} --kubelet-root=${q(file("kubelet"))} --health-port=0 > agent.log 2>&1 &`,
    "agent=$!",
    "until [ -s stop ]; do cat /sys/kernel/security/apparmor/profiles > profiles.new; mv profiles.new profiles.now; sleep 0.2; done",
    "kill $agent; wait $agent",
    "cat /sys/kernel/security/apparmor/profiles > profiles.now",
  ].join("\n");
  writeFileSync(file("agent.sh"), script);
  return guest.run(["/bin/sh", file("agent.sh")], {
    network: true,
    env: { PATH: `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin` },
    timeoutMs: 240_000,
  });
}

async function stop(run: Promise<GuestRun>): Promise<GuestRun> {
  writeFileSync(file("stop"), "stop");
  return await run;
}

const holds = () => nodeHoldsProfile(cp.kubeConfig(), "AppArmorProfile", PROFILE, NODE);
const nodeLabels = async () =>
  (await cp.kubeConfig().makeApiClient(k8s.CoreV1Api).readNode({ name: NODE })).metadata?.labels ?? {};
const agentLog = () =>
  existsSync(file("agent.log")) ? readFileSync(file("agent.log"), "utf8").slice(-3000) : "";

describe("the node agent inside a guest whose kernel has AppArmor", () => {
  it("loads a complain-mode profile into the real kernel and labels its Node; after a reboot, loads it again; deleted, unloads it", async () => {
    // Raw, without a mode flag: only `apparmor_parser --Complain` makes it complain (a structured profile
    // carries flags=(complain) in its rendered text as well).
    await applyProfile(cp.kubeConfig(), "AppArmorProfile", PROFILE, {
      rawPolicy: `profile ${KERNEL_NAME} {\n  /etc/** r,\n}\n`,
      mode: "complain",
    });

    const first = bootWithAgent();
    try {
      await waitFor("the agent in the guest to load and label", holds, { timeoutMs: 120_000 });
    } catch (error) {
      await stop(first);
      throw new Error(`${error}\nagent log:\n${agentLog()}`);
    }
    expect((await nodeLabels())[APPARMOR_LABEL]).toBe("enabled");
    await waitFor("the kernel to list it", async () => kernelList().includes(`${KERNEL_NAME} (complain)`));
    const firstRun = await stop(first);
    expect(firstRun.status).toBe(0);
    expect(readFileSync(file("profiles.now"), "utf8")).toBe(`${KERNEL_NAME} (complain)\n`);
    const record = JSON.parse(readFileSync(file("kubelet/seccomp/lockstep/.lockstep-agent-record"), "utf8"));
    expect(Object.keys(record.appArmor)).toEqual([PROFILE]);

    // Reboot: a new kernel with no policy, the same node disk (kubelet root, ownership record).
    const second = bootWithAgent();
    try {
      await waitFor(
        "the agent to load it again after the reboot",
        async () => kernelList().includes(`${KERNEL_NAME} (complain)`),
        { timeoutMs: 120_000 },
      );
      // The label follows the load (labels follow the kernel): the kernel may list it a PATCH earlier.
      await waitFor("its Node to hold it again", holds, { timeoutMs: 30_000 });
      await deleteProfile(cp.kubeConfig(), "AppArmorProfile", PROFILE);
      await waitFor("the agent to unload it", async () => kernelList() === "" && !(await holds()), {
        timeoutMs: 120_000,
      });
    } catch (error) {
      await stop(second);
      throw new Error(`${error}\nagent log:\n${agentLog()}`);
    }
    expect((await stop(second)).status).toBe(0);
    expect(readFileSync(file("profiles.now"), "utf8")).toBe("");
  });
});
