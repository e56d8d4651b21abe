/**
 * Runs tasks one at a time, in order, each in a later turn of the event loop (setImmediate, after the
 * I/O callbacks already waiting): the webhook answers a large review here, so a real review (a few KiB,
 * answered as soon as it is read) waits for at most the one large review in progress, not for every
 * large one read before it. JavaScript runs on one thread, so parsing is serial anyway; what this
 * changes is who goes first.
 */
export class SerialLane {
  private tail: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(() => new Promise<void>((resolve) => setImmediate(resolve))).then(task);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
