// `make admission`: writes the generated admission files in deploy/ (the webhook configuration and the
// ValidatingAdmissionPolicies) from src/api/admission-manifests.ts. The YAML is committed so
// `kubectl apply -k deploy/` works from a checkout; test/unit/admission-manifests.test.ts fails when it is stale.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { admissionFiles } from "../src/api/admission-manifests.ts";

const root = join(import.meta.dirname, "..");
for (const [file, text] of Object.entries(admissionFiles())) {
  writeFileSync(join(root, file), text);
  process.stdout.write(`wrote ${file}\n`);
}
