// What one node has seen of each ProfileRecording's pods (docs/adr/0039-profile-recording.md): per
// recording, per container, the set of syscalls and the count of audit records, within
// RECORDING_LIMITS, so that a noisy or hostile pod can never make the agent hold more than the caps allow
// nor write an entry the API server refuses. At a cap what is new is dropped and the entry says
// `truncated`. Pure: the reporter (recording-reporter.ts) feeds it and applies its entries.
import { RECORDING_LIMITS } from "../src/api/limits.ts";
import type { RecordedContainer, RecordingNodeEntry } from "../src/api/profile-recording.ts";

/** One call of a pod's container, as the ledger reads it (the fields of the collector's ObservedCall). */
export interface CallOfPod {
  pod: string;
  podUID: string;
  container: string;
  syscall: string;
  count: number;
}

interface ContainerCalls {
  pod: string;
  podUID: string;
  container: string;
  syscalls: Set<string>;
  events: number;
}

interface RecordingCalls {
  containers: Map<string, ContainerCalls>;
  /** Syscall names held over every container (the per-node cap). */
  names: number;
  truncated: boolean;
}

export interface LedgerLimits {
  containersPerNode: number;
  syscallNamesPerNode: number;
  syscallsPerContainer: number;
}

export class RecordingLedger {
  private readonly recordings = new Map<string, RecordingCalls>();
  private readonly limits: LedgerLimits;

  constructor(limits: LedgerLimits = RECORDING_LIMITS) {
    this.limits = limits;
  }

  private holding(recording: string): RecordingCalls {
    let held = this.recordings.get(recording);
    if (!held) {
      held = { containers: new Map(), names: 0, truncated: false };
      this.recordings.set(recording, held);
    }
    return held;
  }

  /** Adds a call to a recording (`<namespace>/<name>`). */
  add(recording: string, call: CallOfPod): void {
    const held = this.holding(recording);
    const key = `${call.podUID}/${call.container}`;
    let container = held.containers.get(key);
    if (!container) {
      if (held.containers.size >= this.limits.containersPerNode) {
        held.truncated = true;
        return;
      }
      container = {
        pod: call.pod,
        podUID: call.podUID,
        container: call.container,
        syscalls: new Set(),
        events: 0,
      };
      held.containers.set(key, container);
    }
    container.events += call.count;
    if (container.syscalls.has(call.syscall)) return;
    if (
      container.syscalls.size >= this.limits.syscallsPerContainer ||
      held.names >= this.limits.syscallNamesPerNode
    ) {
      held.truncated = true;
      return;
    }
    container.syscalls.add(call.syscall);
    held.names++;
  }

  /** This node's entry for a recording: containers and names sorted, so equal contents apply equally. */
  entry(recording: string, node: string, now: Date): RecordingNodeEntry | undefined {
    const held = this.recordings.get(recording);
    if (!held) return undefined;
    const containers: RecordedContainer[] = [...held.containers.values()]
      .map((c) => ({
        pod: c.pod,
        podUID: c.podUID,
        container: c.container,
        syscalls: [...c.syscalls].sort(),
        events: c.events,
      }))
      .sort((a, b) => (a.podUID === b.podUID ? cmp(a.container, b.container) : cmp(a.podUID, b.podUID)));
    return { node, updatedAt: now.toISOString(), containers, truncated: held.truncated };
  }

  /** The recordings held. */
  get held(): string[] {
    return [...this.recordings.keys()];
  }

  /**
   * Calls of this recording's pods were dropped before they reached the ledger (the collector's per-pod
   * or node caps, AUDIT_LIMITS): what it holds may be incomplete, and its entry says so.
   */
  lostCalls(recording: string): void {
    this.holding(recording).truncated = true;
  }

  forget(recording: string): void {
    this.recordings.delete(recording);
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
