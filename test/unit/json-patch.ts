// For unit tests: the webhook's JSONPatch applied as the API server applies it.
import type { JsonPatchOperation } from "../../src/api/affinity.ts";

/** A minimal RFC 6902 applier for the operations the webhook emits (what the API server does with them). */
export function applyPatch<T>(doc: T, ops: readonly JsonPatchOperation[]): T {
  const copy = structuredClone(doc) as Record<string, unknown>;
  for (const op of ops) {
    const tokens = op.path
      .split("/")
      .slice(1)
      .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = tokens.pop() as string;
    let parent: Record<string, unknown> | unknown[] = copy;
    for (const t of tokens) {
      const next = (parent as Record<string, unknown>)[t];
      if (next === undefined || next === null) throw new Error(`path ${op.path}: ${t} does not exist`);
      parent = next as Record<string, unknown>;
    }
    if (op.op === "remove") {
      if (Array.isArray(parent) || !(last in parent)) throw new Error(`remove of missing ${op.path}`);
      delete parent[last];
    } else if (Array.isArray(parent)) {
      if (last === "-") parent.push(op.value);
      else parent.splice(Number(last), op.op === "add" ? 0 : 1, op.value);
    } else {
      if (op.op === "replace" && !(last in parent)) throw new Error(`replace of missing ${op.path}`);
      parent[last] = op.value;
    }
  }
  return copy as T;
}
