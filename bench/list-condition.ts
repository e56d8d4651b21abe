// Waiting for a condition on an informer's cache instead of polling the API server: listing every few
// milliseconds would load the same 2 cores the API server and the measured components share, and slow
// down what is being measured. The informer is started before the change being timed, so its own start
// is not measured.
import type { Informer, KubeObject } from "../src/kube/informer.ts";

export class ListCondition<T extends KubeObject> {
  private readonly informer: Informer<T>;
  private check = () => {};

  constructor(informer: Informer<T>) {
    this.informer = informer;
    for (const verb of ["add", "update"] as const) informer.on(verb, () => this.check());
  }

  /**
   * Resolves with performance.now() the first time `holds` is true of the cached list (checked at once,
   * then on every add and update), and rejects after `timeoutMs`. One wait at a time.
   */
  until(what: string, holds: (items: T[]) => boolean, timeoutMs = 120_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timeout = setTimeout(() => {
        this.check = () => {};
        reject(new Error(`${what}: not within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.check = () => {
        if (!holds(this.informer.list())) return;
        clearTimeout(timeout);
        this.check = () => {};
        resolve(performance.now());
      };
      this.check();
    });
  }
}
