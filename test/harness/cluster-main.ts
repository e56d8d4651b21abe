// `make cluster`: the test control plane in the foreground, for a person with kubectl.
import { ControlPlane } from "./controlplane.ts";

const nodeCount = Number(process.env.LOCKSTEP_NODES ?? 3);
process.stdout.write("starting etcd, kube-apiserver, kube-scheduler and kube-controller-manager ...\n");
const cp = await ControlPlane.start();
for (let i = 1; i <= nodeCount; i++) await cp.addNode(`node-${i}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  process.stdout.write("\nstopping the control plane ...\n");
  await cp.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

process.stdout.write(
  [
    `control plane ready at ${cp.server} with ${nodeCount} simulated nodes`,
    "",
    `  export KUBECONFIG=${cp.adminKubeconfigPath}`,
    "  kubectl get nodes",
    "",
    `logs: ${cp.workDir}/*.log    Ctrl-C stops everything`,
    "",
  ].join("\n"),
);
