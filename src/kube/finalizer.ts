// A finalizer around one reconcile, in the spirit of kube-rs's kube-runtime/src/finalizer.rs: the
// reconcile says what to do with a live object (apply) and with one being deleted (cleanup); this
// module alone adds the finalizer, decides which of the two runs, and removes the finalizer once
// cleanup says the object may go. Every finalizer write is conditional on the resourceVersion the
// object carries, so a concurrent change to the list is never overwritten (the 409 retries the key).
//
// One difference from kube-rs: the finalizer is added after apply, on the object as apply left it,
// not before. The controller's first status write of a generation fixes the profile's revision (ADR
// 0024); a finalizer write before it would move the revision every agent must then claim.
import type { KubeObject } from "./informer.ts";

/** An object that may carry finalizers. */
export type Finalizable = KubeObject & { metadata?: KubeObject["metadata"] & { finalizers?: string[] } };

export interface Finalizer<T extends Finalizable> {
  /** The finalizer's name, e.g. lockstep.dev/in-use. */
  name: string;
  /** Sets the object's finalizers, conditional on its resourceVersion: the object after, undefined when gone. */
  patch(obj: T, finalizers: string[]): Promise<T | undefined>;
}

/** Apply: the result, and the object as the apply left it (undefined when not known yet). */
export interface Applied<T, R> {
  result: R;
  current: T | undefined;
}

/** Cleanup: done (the finalizer goes and the object with it), or not yet, with the reconcile's result. */
export type Cleaned<R> = { done: true } | { done: false; result: R };

export interface FinalizerHandlers<T, R> {
  apply(obj: T): Promise<Applied<T, R>>;
  cleanup(obj: T): Promise<Cleaned<R>>;
}

/** Which handler an object gets: cleanup only while it is being deleted and this finalizer holds it. */
export function finalizerEvent(obj: Finalizable, finalizer: string): "apply" | "cleanup" {
  return isDeleting(obj) && holds(obj, finalizer) ? "cleanup" : "apply";
}

/** Whether the finalizer should be added: to a live object that lacks it. */
export function needsFinalizer(obj: Finalizable, finalizer: string): boolean {
  return !isDeleting(obj) && !holds(obj, finalizer);
}

export function isDeleting(obj: Finalizable): boolean {
  return obj.metadata?.deletionTimestamp != null;
}

function holds(obj: Finalizable, finalizer: string): boolean {
  return (obj.metadata?.finalizers ?? []).includes(finalizer);
}

/**
 * Runs one reconcile of `obj` under `finalizer`. The result is the handler's, undefined once cleanup
 * released the object (there is nothing left to reconcile).
 */
export async function reconcileWithFinalizer<T extends Finalizable, R>(
  finalizer: Finalizer<T>,
  obj: T,
  handlers: FinalizerHandlers<T, R>,
): Promise<R | undefined> {
  const finalizers = obj.metadata?.finalizers ?? [];
  if (finalizerEvent(obj, finalizer.name) === "cleanup") {
    const cleaned = await handlers.cleanup(obj);
    if (!cleaned.done) return cleaned.result;
    await finalizer.patch(
      obj,
      finalizers.filter((f) => f !== finalizer.name),
    );
    return undefined;
  }
  const { result, current } = await handlers.apply(obj);
  // Unknown while the cache is behind the reconcile's own write: the watch wakes the object again.
  if (current && needsFinalizer(current, finalizer.name))
    await finalizer.patch(current, [...(current.metadata?.finalizers ?? []), finalizer.name]);
  return result;
}
