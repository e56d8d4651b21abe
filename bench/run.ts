// `make bench`: runs every bench/*.bench.ts in turn, prints one table, and writes bench/results.json as
// {"<name>": {"value": N, "unit": "ms"}}. Each benchmark starts (and stops) the real parts it measures.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import * as z from "zod";

const ResultsSchema = z.record(z.string(), z.object({ value: z.number(), unit: z.string() }));
type Results = z.infer<typeof ResultsSchema>;

const dir = import.meta.dirname;
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

const results: Results = {};
const failed: string[] = [];
for (const file of files) {
  const suite = basename(file, ".bench.ts");
  process.stderr.write(`running ${suite} ...\n`);
  const started = Date.now();
  try {
    const mod = (await import(join(dir, file))) as { run?: () => Promise<unknown> };
    if (typeof mod.run !== "function") throw new Error(`${file} exports no run()`);
    const suiteResults = ResultsSchema.parse(await mod.run());
    for (const [name, result] of Object.entries(suiteResults)) results[`${suite}.${name}`] = result;
  } catch (error) {
    failed.push(suite);
    process.stderr.write(
      `${suite} failed: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`,
    );
  }
  process.stderr.write(`${suite} took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

const width = Math.max(10, ...Object.keys(results).map((k) => k.length));
const lines = [`${"benchmark".padEnd(width)}  ${"value".padStart(12)}  unit`, "-".repeat(width + 22)];
for (const [name, { value, unit }] of Object.entries(results)) {
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(3);
  lines.push(`${name.padEnd(width)}  ${shown.padStart(12)}  ${unit}`);
}
process.stdout.write(`${lines.join("\n")}\n`);
// A run of some suites (`node bench/run.ts uml`) replaces only their rows: the other figures stay those
// of the last run that measured them.
const resultsFile = join(dir, "results.json");
const kept: Results =
  only.length > 0 && existsSync(resultsFile)
    ? Object.fromEntries(
        Object.entries(ResultsSchema.parse(JSON.parse(readFileSync(resultsFile, "utf8")))).filter(
          ([name]) => !files.some((f) => name.startsWith(`${basename(f, ".bench.ts")}.`)),
        ),
      )
    : {};
writeFileSync(resultsFile, `${JSON.stringify({ ...kept, ...results }, null, 2)}\n`);
process.stdout.write(`wrote ${resultsFile}\n`);
if (failed.length > 0) {
  process.stderr.write(`failed: ${failed.join(", ")}\n`);
  process.exit(1);
}
