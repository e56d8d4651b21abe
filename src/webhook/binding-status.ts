// What the webhook tells a ProfileBinding about the pods it bound and could not bind (its status). The
// webhook writes it because only the webhook sees a refused pod: such a pod never exists as an object.
// Kept cheap: outcomes are gathered in memory and written at most once per STATUS_FLUSH_MS per binding
// (one merge PATCH of the status subresource, only for bindings that had news), counted on top of the
// status the cache holds, with its resourceVersion as precondition so two replicas never lose each
// other's counts (a 409 puts the news back for the next flush). Bounded: one entry per binding that had
// news, each with at most BINDING_LIMITS.statusRefusals refusals.
import { BINDING_LIMITS, type BindingRefusal, type ProfileBindingStatus } from "../api/profile-binding.ts";
import type { BindingOutcome } from "./bind.ts";

export const STATUS_FLUSH_MS = 5_000;

interface News {
  bound: number;
  refused: number;
  /** Newest first. */
  refusals: BindingRefusal[];
  lastBound: { pod: string; time: string } | undefined;
}

export interface StatusWrite {
  namespace: string;
  name: string;
  /** A merge patch of the status subresource, preconditioned on the cached resourceVersion. */
  body: { metadata: { resourceVersion: string }; status: ProfileBindingStatus };
  /** Call when the write failed: its news go back for the next flush. */
  restore(): void;
}

const key = (namespace: string, name: string) => `${namespace}/${name}`;

const cut = (message: string) =>
  message.length <= BINDING_LIMITS.statusMessageChars
    ? message
    : `${message.slice(0, BINDING_LIMITS.statusMessageChars)}...`;

/** Newest first, at most the limit. */
function newest(lists: readonly BindingRefusal[][]): BindingRefusal[] {
  return lists
    .flat()
    .sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0))
    .slice(0, BINDING_LIMITS.statusRefusals);
}

export class BindingStatusRecorder {
  private news = new Map<string, News>();

  /** The outcomes of one review of `pod` (namespace/name, or generateName* before it has a name). */
  record(namespace: string, pod: string, outcomes: readonly BindingOutcome[], now: Date): void {
    const time = now.toISOString();
    for (const o of outcomes) {
      const k = key(namespace, o.binding);
      const n = this.news.get(k) ?? { bound: 0, refused: 0, refusals: [], lastBound: undefined };
      if (o.result === "bound") {
        n.bound++;
        n.lastBound = { pod, time };
      } else {
        n.refused++;
        n.refusals = newest([[{ pod, reason: o.reason, message: cut(o.message), time }], n.refusals]);
      }
      this.news.set(k, n);
    }
  }

  /** How many bindings have news waiting. */
  get pending(): number {
    return this.news.size;
  }

  /**
   * The writes for every binding with news, against what the cache holds now; news of a binding the
   * cache no longer holds (deleted) are dropped.
   */
  drain(
    current: (
      namespace: string,
      name: string,
    ) => { resourceVersion: string; status: ProfileBindingStatus } | undefined,
  ): StatusWrite[] {
    const news = this.news;
    this.news = new Map();
    const writes: StatusWrite[] = [];
    for (const [k, n] of news) {
      const slash = k.indexOf("/");
      const [namespace, name] = [k.slice(0, slash), k.slice(slash + 1)];
      const cached = current(namespace, name);
      if (!cached) continue;
      const s = cached.status;
      writes.push({
        namespace,
        name,
        body: {
          metadata: { resourceVersion: cached.resourceVersion },
          status: {
            boundPods: (s.boundPods ?? 0) + n.bound,
            refusedPods: (s.refusedPods ?? 0) + n.refused,
            refusals: newest([n.refusals, s.refusals ?? []]),
            ...(n.lastBound
              ? { lastBoundPod: n.lastBound.pod, lastBoundTime: n.lastBound.time }
              : s.lastBoundPod !== undefined
                ? { lastBoundPod: s.lastBoundPod, lastBoundTime: s.lastBoundTime }
                : {}),
          },
        },
        restore: () => this.putBack(k, n),
      });
    }
    return writes;
  }

  private putBack(k: string, n: News): void {
    const later = this.news.get(k);
    if (!later) {
      this.news.set(k, n);
      return;
    }
    this.news.set(k, {
      bound: later.bound + n.bound,
      refused: later.refused + n.refused,
      refusals: newest([later.refusals, n.refusals]),
      lastBound: later.lastBound ?? n.lastBound,
    });
  }
}
