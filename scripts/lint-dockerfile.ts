// Lints the Dockerfile (no container engine here to build it): any diagnostic fails the check,
// because dockerfile-utils reports warnings with exit code 0.
import { spawnSync } from "node:child_process";

const result = spawnSync("npx", ["dockerfile-utils", "lint", "Dockerfile"], { encoding: "utf8" });
const diagnostics = result.stdout.trim();
if (result.status !== 0 || diagnostics !== "") {
  process.stderr.write(`Dockerfile: ${diagnostics || result.stderr}\n`);
  process.exit(1);
}
process.stdout.write("Dockerfile: no findings\n");
