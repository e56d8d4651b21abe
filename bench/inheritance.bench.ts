// How long resolving inheritance takes for every SeccompProfile of a cluster, as every agent and the
// controller do after each spec change (renderSeccompProfiles: parse, resolve each chain, hash). Pure,
// no API server. A chain of 1,000 profiles took 5.3 s before MAX_INHERITANCE_DEPTH and the memo of a
// pass (each profile re-walked and re-merged its whole chain); now all but the first 16 are refused at
// the limit, and 1,000 profiles in chains at the limit show what the memo does for allowed depths. A
// re-rendering after one spec change reuses the parsing and resolution of every unchanged chain.
import { MAX_INHERITANCE_DEPTH } from "../src/api/limits.ts";
import { renderSeccompProfiles, SeccompRenderMemo } from "../src/api/profiles.ts";
import type { SeccompProfileSpec } from "../src/api/seccomp.ts";
import { quantile, type Results } from "./stats.ts";

const PROFILES = 1_000;
const RUNS = 5;

/** p0 <- p1 <- ... : profile i inherits from profile i-1 when i is not a multiple of `depth`. */
function chains(depth: number) {
  return Array.from({ length: PROFILES }, (_, i) => {
    const spec: SeccompProfileSpec =
      i % depth === 0
        ? { baseProfileName: "runtime/default" }
        : { baseProfileName: `p${i - 1}`, syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_LOG" }] };
    return { name: `p${i}`, spec };
  });
}

function medianMs(objects: ReturnType<typeof chains>): number {
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    const rendered = renderSeccompProfiles(objects);
    for (const p of rendered) if (p.ok) p.version;
    times.push(performance.now() - started);
  }
  return Math.round(quantile(times, 0.5));
}

/**
 * A re-rendering after one spec changed, as ProfileCache does it: the memo of earlier passes, and a new
 * spec object for the changed profile (the root of a chain, so its 15 descendants change too).
 */
function rerenderMs(objects: ReturnType<typeof chains>): number {
  const memo = new SeccompRenderMemo();
  renderSeccompProfiles(objects, memo);
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const changed = objects.map((o, i) =>
      i === 0 ? { ...o, spec: { ...o.spec, disabled: run % 2 === 0 } } : o,
    );
    const started = performance.now();
    renderSeccompProfiles(changed, memo);
    times.push(performance.now() - started);
  }
  return Math.round(quantile(times, 0.5) * 10) / 10;
}

export async function run(): Promise<Results> {
  return {
    [`resolve_chain_of_${PROFILES}_ms`]: { value: medianMs(chains(PROFILES)), unit: "ms" },
    [`resolve_${PROFILES}_in_chains_of_${MAX_INHERITANCE_DEPTH}_ms`]: {
      value: medianMs(chains(MAX_INHERITANCE_DEPTH)),
      unit: "ms",
    },
    [`rerender_${PROFILES}_in_chains_of_${MAX_INHERITANCE_DEPTH}_after_one_change_ms`]: {
      value: rerenderMs(chains(MAX_INHERITANCE_DEPTH)),
      unit: "ms",
    },
  };
}
