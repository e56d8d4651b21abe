// How the agent publishes its Node's Lockstep labels: one merge PATCH of the difference, left to the
// next sync while a burst is still arriving (sync-trigger.ts), and read back as its own write until
// the watch delivers it (src/kube/own-writes.ts): a sync that runs before then must not take the
// cache's older labels for the truth and send the same PATCH again, and the PATCH's echo is no news
// (sync-causes.ts). One per agent; the PATCH itself is the caller's.
import type { V1Node } from "@kubernetes/client-node";
import { OwnWrites } from "../src/kube/own-writes.ts";
import { lockstepLabelPatch } from "./node-labels.ts";
import { nodeLabelsChangeNeedsSync } from "./sync-causes.ts";

/** Sends a merge patch of this Node's labels and returns the Node as it left it. */
export type PatchNodeLabels = (labels: Record<string, string | null>) => Promise<V1Node>;

export type Published =
  /** Part of a burst: the sync that follows at once publishes this one's work with its own. */
  | { deferred: true }
  /** The labels sent (undefined: the Node already carried them). */
  | { deferred: false; labels: Record<string, string | null> | undefined };

export class NodeLabelPublisher {
  private readonly nodeName: string;
  private readonly patch: PatchNodeLabels;
  private readonly own = new OwnWrites<V1Node>();
  /** The Lockstep labels the last published sync wanted on this Node: its own PATCH's echo is no news. */
  private ownLabels: ReadonlyMap<string, string> | undefined;

  constructor(nodeName: string, patch: PatchNodeLabels) {
    this.nodeName = nodeName;
    this.patch = patch;
  }

  /** The cached Node, or what the agent's own PATCH returned while the watch has not caught up. */
  current(cached: V1Node | undefined): V1Node | undefined {
    return cached && this.own.current(this.nodeName, cached.metadata?.resourceVersion, cached);
  }

  /** Whether a change of this Node's labels can change what a sync does (not its own PATCH's echo). */
  changeNeedsSync(
    before: Readonly<Record<string, string>>,
    after: Readonly<Record<string, string>>,
  ): boolean {
    return nodeLabelsChangeNeedsSync(before, after, this.ownLabels);
  }

  /**
   * Publishes NoLongerHere marks on their own, before anything is removed or unloaded (DESIGN
   * invariant 6), and returns this Node as the PATCH left it.
   */
  async mark(marks: ReadonlyMap<string, string>): Promise<V1Node> {
    // Its echo is no news: the sync's own PATCH will want the same marks.
    this.ownLabels = new Map([...(this.ownLabels ?? []), ...marks]);
    return this.patched(Object.fromEntries(marks));
  }

  /**
   * Publishes `desired` on `node` (as the sync's marks left it), unless `canWait` says a sync follows at
   * once that will publish this one's work with its own (asked only when there is something to send).
   */
  async publish(
    node: V1Node,
    desired: Record<string, string>,
    canWait: () => Promise<boolean>,
  ): Promise<Published> {
    const patch = lockstepLabelPatch(node.metadata?.labels ?? {}, desired);
    if (patch && (await canWait())) return { deferred: true };
    this.ownLabels = new Map(Object.entries(desired));
    if (patch) await this.patched(patch.metadata.labels);
    return { deferred: false, labels: patch?.metadata.labels };
  }

  private async patched(labels: Record<string, string | null>): Promise<V1Node> {
    const node = await this.patch(labels);
    this.own.wrote(this.nodeName, node.metadata?.resourceVersion, node);
    return node;
  }
}
