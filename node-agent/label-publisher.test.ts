import type { V1Node } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { NodeLabelPublisher } from "./label-publisher.ts";

const node = (resourceVersion: string, labels: Record<string, string>): V1Node => ({
  metadata: { name: "n1", resourceVersion, labels },
});

/** A publisher whose PATCHes an API server at resourceVersion 10 answers, one version up each time. */
function publisher() {
  const sent: Record<string, string | null>[] = [];
  let version = 10;
  let labels: Record<string, string> = {};
  const p = new NodeLabelPublisher("n1", async (patch) => {
    sent.push(patch);
    labels = Object.fromEntries(
      Object.entries({ ...labels, ...patch }).filter((e): e is [string, string] => e[1] !== null),
    );
    version++;
    return node(String(version), labels);
  });
  return { p, sent };
}

const REVISION = "lockstep.dev/seccomp-revision";

describe("NodeLabelPublisher", () => {
  it("sends only the difference, and nothing when the Node carries the labels already", async () => {
    const { p, sent } = publisher();
    const cached = node("10", {
      "kubernetes.io/arch": "amd64",
      "failed.seccomp.lockstep.dev/gone": "WriteFailed",
    });
    const published = await p.publish(cached, { [REVISION]: "5" }, async () => false);
    expect(published).toEqual({
      deferred: false,
      labels: { [REVISION]: "5", "failed.seccomp.lockstep.dev/gone": null },
    });
    expect(await p.publish(node("11", { [REVISION]: "5" }), { [REVISION]: "5" }, async () => false)).toEqual({
      deferred: false,
      labels: undefined,
    });
    expect(sent).toHaveLength(1);
  });

  it("leaves the PATCH to the next sync when a burst is still arriving, asking only when there is one", async () => {
    const { p, sent } = publisher();
    let asked = 0;
    const canWait = async () => {
      asked++;
      return true;
    };
    expect(await p.publish(node("10", {}), { [REVISION]: "5" }, canWait)).toEqual({ deferred: true });
    expect(await p.publish(node("10", { [REVISION]: "5" }), { [REVISION]: "5" }, canWait)).toEqual({
      deferred: false,
      labels: undefined,
    });
    expect([asked, sent.length]).toEqual([1, 0]);
  });

  it("reads its own PATCH back until the watch delivers it, and takes its echo for no news", async () => {
    const { p } = publisher();
    const cached = node("10", {});
    // Before the first publication every change is news.
    expect(p.changeNeedsSync({}, { [REVISION]: "5" })).toBe(true);
    await p.publish(cached, { [REVISION]: "5" }, async () => false);
    expect(p.current(cached)?.metadata?.labels).toEqual({ [REVISION]: "5" });
    expect(p.changeNeedsSync({}, { [REVISION]: "5" })).toBe(false);
    // Someone else's change to a Lockstep label, or any other label, is news.
    expect(p.changeNeedsSync({ [REVISION]: "5" }, { [REVISION]: "4" })).toBe(true);
    expect(p.changeNeedsSync({}, { pool: "a" })).toBe(true);
    const delivered = node("11", { [REVISION]: "5" });
    expect(p.current(delivered)).toBe(delivered);
    expect(p.current(undefined)).toBeUndefined();
  });

  it("marks profiles no longer here on their own PATCH, whose echo is no news either", async () => {
    const { p, sent } = publisher();
    const mark = "failed.seccomp.lockstep.dev/web";
    const after = await p.mark(new Map([[mark, "NoLongerHere"]]));
    expect(sent).toEqual([{ [mark]: "NoLongerHere" }]);
    expect(after.metadata?.labels).toEqual({ [mark]: "NoLongerHere" });
    expect(p.changeNeedsSync({}, { [mark]: "NoLongerHere" })).toBe(false);
    expect(p.current(node("10", {}))).toBe(after);
  });
});
