// `make crds`: writes crds/*.yaml from src/api/crd.ts. The YAML is committed so `kubectl apply -f crds/`
// works from a checkout; test/unit/crds.test.ts fails when it is stale.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { crdFiles } from "../src/api/crd-files.ts";

const root = join(import.meta.dirname, "..");
for (const [file, text] of Object.entries(crdFiles())) {
  writeFileSync(join(root, file), text);
  process.stdout.write(`wrote ${file}\n`);
}
