// The Node labels status is computed from, by Node, and the views status reads, built once per change
// rather than once per reconcile (a rollout to 5,000 nodes reconciles every profile). Pure.
import type { NodeView } from "./status.ts";
import { nodeChangeWakes, type Wake } from "./triggers.ts";

export class NodeLabelCache {
  private readonly labels = new Map<string, Readonly<Record<string, string>>>();
  private viewCache: NodeView[] | undefined;

  /**
   * Takes a Node's labels (undefined: the Node is gone) and says which profiles that wakes
   * (triggers.ts). A change that wakes nothing changed no label a status reads, and is not taken.
   */
  update(name: string, labels: Readonly<Record<string, string>> | undefined): Wake {
    const wake = nodeChangeWakes(this.labels.get(name), labels);
    if (wake === undefined) return undefined;
    if (labels === undefined) this.labels.delete(name);
    else this.labels.set(name, labels);
    this.viewCache = undefined;
    return wake;
  }

  views(): readonly NodeView[] {
    this.viewCache ??= [...this.labels].map(([name, labels]) => ({ name, labels }));
    return this.viewCache;
  }
}
