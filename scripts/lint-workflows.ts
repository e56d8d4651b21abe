// Lints the GitHub Actions workflows (.github/workflows/, and the one docs/examples/ offers users) with
// actionlint, built from the Go module proxy (tools/actionlint/build.sh). actionlint checks expressions,
// action inputs, permissions and, when shellcheck is on PATH, every `run:` script. The workflows are
// not run on these machines: this is what checks them.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const workflows = [
  ...readdirSync(join(root, ".github/workflows")).map((f) => `.github/workflows/${f}`),
  ...readdirSync(join(root, "docs/examples")).map((f) => `docs/examples/${f}`),
].filter((f) => /\.ya?ml$/.test(f));

const built = spawnSync("tools/actionlint/build.sh", [], {
  cwd: root,
  encoding: "utf8",
  stdio: ["ignore", "pipe", "inherit"],
});
if (built.status !== 0) {
  process.stderr.write("actionlint could not be built: see the message above (tools/actionlint/build.sh)\n");
  process.exit(1);
}
const result = spawnSync(built.stdout.trim(), workflows, { cwd: root, stdio: "inherit" });
if (result.status !== 0) process.exit(1);
process.stdout.write(`workflows: no findings (${workflows.join(", ")})\n`);
