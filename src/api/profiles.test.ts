import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ProfileObjectRef,
  type RenderedProfile,
  renderSeccompProfiles,
  SeccompRenderMemo,
} from "./profiles.ts";

/** What a rendering says, without its functions. */
const summary = (p: RenderedProfile) =>
  p.ok
    ? { name: p.name, version: p.version, content: p.contentFor("amd64") }
    : { name: p.name, why: p.message };

describe("renderSeccompProfiles with a memo kept across passes", () => {
  it("renders exactly as a fresh pass does, through any sequence of spec changes", () => {
    const change = fc.record({
      profile: fc.nat(11),
      base: fc.option(fc.nat(13), { nil: undefined }),
      action: fc.constantFrom("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_KILL", "SCMP_ACT_NOTIFY"),
      remove: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(change, { minLength: 1, maxLength: 25 }), (changes) => {
        const memo = new SeccompRenderMemo();
        const objects = new Map<string, ProfileObjectRef>();
        for (const c of changes) {
          const name = `p${c.profile}`;
          // A new spec object for every change, as a watch cache stores one; the others are kept.
          if (c.remove) objects.delete(name);
          else
            objects.set(name, {
              name,
              spec:
                c.base === undefined
                  ? { defaultAction: c.action }
                  : { baseProfileName: `p${c.base}`, syscalls: [{ names: ["read"], action: c.action }] },
            });
          const list = [...objects.values()];
          expect(renderSeccompProfiles(list, memo).map(summary)).toEqual(
            renderSeccompProfiles(list).map(summary),
          );
        }
      }),
      { numRuns: 200 },
    );
  });
});
