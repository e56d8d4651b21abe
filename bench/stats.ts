// What the benchmarks report about a set of measurements, one definition for all of them.

/** Results as bench/run.ts collects them: {"<name>": {"value": N, "unit": "ms"}}. */
export type Results = Record<string, { value: number; unit: string }>;

/** The q-quantile (nearest rank) of the values; NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}
