// Where Lockstep's profiles live: seccomp files on the node (the agent writes them) and as a pod names
// them (the webhook reads `localhostProfile`), and the prefix of every AppArmor profile name Lockstep
// loads into the kernel. One home, so the agent's folder and kernel names, the pods' references, the
// webhook's matchConditions and the docs can never disagree on a path or a name.
import { posix } from "node:path";

export const DEFAULT_KUBELET_ROOT = "/var/lib/kubelet";
/** The kubelet resolves a Localhost seccomp profile relative to `<kubelet-root>/seccomp`. */
export const KUBELET_SECCOMP_DIR = "seccomp";
/**
 * Lockstep owns only this subdirectory of the kubelet's seccomp root, so it never touches profiles
 * someone else put there; it is also the directory part of a pod's `localhostProfile`.
 */
export const SECCOMP_LOCALHOST_DIR = "lockstep";
export const SECCOMP_FILE_SUFFIX = ".json";

/** `<kubelet-root>/seccomp/lockstep`: the one folder of the node the agent writes to (DESIGN invariant 4). */
export function seccompProfileDir(kubeletRoot: string): string {
  return posix.resolve(kubeletRoot, KUBELET_SECCOMP_DIR, SECCOMP_LOCALHOST_DIR);
}

/** The file name of a profile in that folder. The caller has checked `name` is a valid object name. */
export function seccompProfileFileName(name: string): string {
  return `${name}${SECCOMP_FILE_SUFFIX}`;
}

/** What a pod writes in `securityContext.seccompProfile.localhostProfile` for the profile `name`. */
export function seccompLocalhostProfile(name: string): string {
  return `${SECCOMP_LOCALHOST_DIR}/${seccompProfileFileName(name)}`;
}

/**
 * Every AppArmor profile Lockstep loads is named `lockstep.<object name>` in the kernel, as every
 * seccomp file lives under `lockstep/`: no AppArmorProfile can take a name the container runtime or the
 * host loads (`cri-containerd.apparmor.d`, `docker-default`, `crio-default`, `unconfined`), whatever is
 * loaded when (docs/adr/0027-apparmor-kernel-names.md).
 */
export const APPARMOR_KERNEL_NAME_PREFIX = "lockstep.";

/** containerd's state folder on a node (its `state` setting), where the agent reads its CRI bundles. */
export const DEFAULT_CONTAINERD_STATE = "/run/containerd";
/**
 * Where containerd's runc shim keeps the OCI bundles of the CRI's containers, under the state folder:
 * `<state>/io.containerd.runtime.v2.task/k8s.io/<container id>/config.json`.
 */
export const CRI_BUNDLES = "io.containerd.runtime.v2.task/k8s.io";
