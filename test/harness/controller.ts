// The controller as real processes, running as the lockstep-controller service account's user with
// deploy/'s RBAC, with leader election over a real Lease.
import { join } from "node:path";
import { componentArgs, componentEnv } from "./components.ts";
import { type ControlPlane, freePort, waitFor } from "./controlplane.ts";
import { type ManagedProcess, startProcess } from "./processes.ts";

const repo = join(import.meta.dirname, "../..");

export interface ControllerProcess {
  /** Its POD_NAME: the Lease's holderIdentity is `<name>_<uuid>` while it leads. */
  name: string;
  healthPort: number;
  process: ManagedProcess;
}

export async function installControllerPrerequisites(cp: ControlPlane): Promise<void> {
  for (const file of [
    "crds/lockstep.dev_seccompprofiles.yaml",
    "crds/lockstep.dev_apparmorprofiles.yaml",
    // The controller reconciles ProfileRecordings too (docs/adr/0039-profile-recording.md).
    "crds/lockstep.dev_profilerecordings.yaml",
    "deploy/namespace.yaml",
    "deploy/controller/rbac.yaml",
    "deploy/controller/admission-policy.yaml",
  ])
    await cp.applyFile(join(repo, file));
}

export interface StartControllerOptions {
  /** Short leases make hand-over tests quick: [duration, renewDeadline, retry] in seconds. */
  lease?: [number, number, number];
}

export async function startController(
  cp: ControlPlane,
  index: number,
  options: StartControllerOptions = {},
): Promise<ControllerProcess> {
  const kubeconfig = await cp.writeKubeconfigFor(
    "system:serviceaccount:lockstep-system:lockstep-controller",
    ["system:serviceaccounts", "system:serviceaccounts:lockstep-system"],
    "controller",
  );
  const healthPort = await freePort();
  const [duration, deadline, retry] = options.lease ?? [15, 10, 2];
  const name = `controller-${index}`;
  const proc = startProcess(
    name,
    process.execPath,
    [
      ...(await componentArgs("lockstep-controller")),
      `--health-port=${healthPort}`,
      `--lease-duration=${duration}`,
      `--renew-deadline=${deadline}`,
      `--retry-period=${retry}`,
    ],
    join(cp.workDir, `controller-${index}.log`),
    {
      env: {
        ...process.env,
        ...componentEnv("lockstep-controller"),
        KUBECONFIG: kubeconfig,
        LOG_LEVEL: "debug",
        POD_NAME: name,
      },
    },
  );
  await waitFor(`controller ${index} to serve health`, async () => {
    if (!proc.isRunning()) throw new Error(`controller exited:\n${proc.tail()}`);
    return (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).ok;
  });
  return { name, healthPort, process: proc };
}

/** Whether a Lease holderIdentity is this controller's. */
export function holdsLease(controller: ControllerProcess, holderIdentity: string): boolean {
  return holderIdentity.startsWith(`${controller.name}_`);
}
