import { describe, expect, it } from "vitest";
import {
  type Finalizable,
  type Finalizer,
  finalizerEvent,
  needsFinalizer,
  reconcileWithFinalizer,
} from "./finalizer.ts";

const NAME = "example.dev/in-use";

function object(resourceVersion: string, finalizers: string[], deleting = false): Finalizable {
  return {
    metadata: {
      name: "p",
      resourceVersion,
      finalizers,
      ...(deleting && { deletionTimestamp: "2026-01-01T00:00:00Z" }),
    },
  };
}

/** A finalizer whose patch records what it was asked, as the API server would answer it. */
function recording() {
  const patches: { resourceVersion: string | undefined; finalizers: string[] }[] = [];
  const finalizer: Finalizer<Finalizable> = {
    name: NAME,
    patch: async (obj, finalizers) => {
      patches.push({ resourceVersion: obj.metadata?.resourceVersion, finalizers });
      return object(String(Number(obj.metadata?.resourceVersion) + 1), finalizers);
    },
  };
  return { finalizer, patches };
}

describe("finalizerEvent and needsFinalizer", () => {
  it("cleans up only an object being deleted that the finalizer holds, and adds it only to a live one", () => {
    expect(finalizerEvent(object("1", [NAME], true), NAME)).toBe("cleanup");
    expect(finalizerEvent(object("1", ["other"], true), NAME)).toBe("apply");
    expect(finalizerEvent(object("1", [NAME]), NAME)).toBe("apply");
    expect(needsFinalizer(object("1", []), NAME)).toBe(true);
    expect(needsFinalizer(object("1", [NAME]), NAME)).toBe(false);
    expect(needsFinalizer(object("1", [], true), NAME)).toBe(false);
  });
});

describe("reconcileWithFinalizer", () => {
  it("applies first, then adds the finalizer to the object as the apply left it, keeping the others", async () => {
    const { finalizer, patches } = recording();
    const result = await reconcileWithFinalizer(finalizer, object("5", ["other"]), {
      apply: async () => ({ result: "applied", current: object("6", ["other"]) }),
      cleanup: async () => {
        throw new Error("a live object is not cleaned up");
      },
    });
    expect(result).toBe("applied");
    expect(patches).toEqual([{ resourceVersion: "6", finalizers: ["other", NAME] }]);
  });

  it("writes no finalizer while the object after the apply is unknown, or already carries it", async () => {
    const { finalizer, patches } = recording();
    for (const current of [undefined, object("6", [NAME])])
      await reconcileWithFinalizer(finalizer, object("5", []), {
        apply: async () => ({ result: undefined, current }),
        cleanup: async () => ({ done: true }),
      });
    expect(patches).toEqual([]);
  });

  it("removes the finalizer, conditional on the object read, once cleanup is done", async () => {
    const { finalizer, patches } = recording();
    const result = await reconcileWithFinalizer(finalizer, object("7", ["other", NAME], true), {
      apply: async () => {
        throw new Error("an object being deleted is cleaned up");
      },
      cleanup: async () => ({ done: true }),
    });
    expect(result).toBeUndefined();
    expect(patches).toEqual([{ resourceVersion: "7", finalizers: ["other"] }]);
  });

  it("keeps the finalizer while cleanup is not done, and returns its result", async () => {
    const { finalizer, patches } = recording();
    const result = await reconcileWithFinalizer(finalizer, object("7", [NAME], true), {
      apply: async () => ({ result: "no", current: undefined }),
      cleanup: async () => ({ done: false, result: "again in 3 s" }),
    });
    expect(result).toBe("again in 3 s");
    expect(patches).toEqual([]);
  });

  it("applies to an object being deleted that other finalizers hold, and never adds its own to it", async () => {
    const { finalizer, patches } = recording();
    const deleting = object("7", ["other"], true);
    const result = await reconcileWithFinalizer(finalizer, deleting, {
      apply: async (obj) => ({ result: "applied", current: obj }),
      cleanup: async () => ({ done: true }),
    });
    expect(result).toBe("applied");
    expect(patches).toEqual([]);
  });
});
