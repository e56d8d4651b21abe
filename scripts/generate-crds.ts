// `make crds`: writes crds/*.yaml and its copy deploy/crds/*.yaml from src/api/crd.ts. The YAML is committed so `kubectl apply -f crds/`
// works from a checkout; test/unit/crds.test.ts fails when it is stale.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { crdFiles } from "../src/api/crd-files.ts";

const root = join(import.meta.dirname, "..");
for (const [file, text] of Object.entries(crdFiles())) {
  mkdirSync(dirname(join(root, file)), { recursive: true });
  writeFileSync(join(root, file), text);
  process.stdout.write(`wrote ${file}\n`);
}
