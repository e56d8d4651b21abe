// Why a `make demo` run failed, in one line, from the logs it kept: a timeout ("waiting for the hardened
// pods to run") says what did not happen, and a newcomer cannot see why. The known causes are read from the
// control plane's and the nodes' logs; the first cause found in the order below is the one
// printed (a webhook that cannot be called explains pods that never appear, not the other way round).
// Pure: the demo hands it the logs' text.

export interface KeptLog {
  /** The log's path relative to the run's folder, e.g. `kube-controller-manager.log`, `nodes/node-1/kubelet.log`. */
  file: string;
  text: string;
}

interface Cause {
  pattern: RegExp;
  explain: (match: RegExpMatchArray, file: string) => string;
}

// klog writes an error inside err="..." with its quotes escaped; the patterns read the unescaped text.
const CAUSES: readonly Cause[] = [
  {
    // The API server's call to a mutating webhook failed: every pod it guards is refused
    // (failurePolicy: Fail), so a ReplicaSet creates none. Logged by whoever created the pod.
    pattern: /failed calling webhook "([^"]+)": failed to call webhook: Post "([^"?]+)[^"]*": ([^"\n]+)/,
    explain: (m, file) =>
      `the API server could not call webhook ${m[1]} at ${m[2]}: ${m[3]?.replace(/^.*: /, "")} (${file})`,
  },
  {
    pattern: /for "([^"]+)" with CrashLoopBackOff/,
    explain: (m, file) => `container ${m[1]} keeps crashing (CrashLoopBackOff, ${file})`,
  },
  {
    pattern: /(ErrImageNeverPull|ImagePullBackOff|ErrImagePull)[^\n]*?[Ii]mage \\*"([^"\\]+)/,
    explain: (m, file) => `a node has no image ${m[2]} (${m[1]}, ${file})`,
  },
  {
    pattern: /cannot load seccomp profile "([^"]+)"/,
    explain: (m, file) => `a container's seccomp profile ${m[1]} is missing on its node (${file})`,
  },
];

/** The first known cause found in the logs, as one line; undefined when none matches. */
export function demoFailureCause(logs: readonly KeptLog[]): string | undefined {
  for (const cause of CAUSES) {
    for (const log of logs) {
      const match = log.text.replaceAll('\\"', '"').match(cause.pattern);
      if (match) return cause.explain(match, log.file);
    }
  }
  return undefined;
}
