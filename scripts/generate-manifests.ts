// `make manifests`: writes every generated manifest from src/manifests/ (files.ts): crds/, deploy/ and
// the Helm chart charts/lockstep/. The files are committed so `kubectl apply -k deploy/`, `kubectl apply
// -f crds/` and `helm install ... charts/lockstep` work from a checkout; test/unit/manifests.test.ts
// fails when one is stale, and this removes a generated file that the source no longer makes.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { allManifestFiles, GENERATED_DIRS, packageVersion } from "../src/manifests/files.ts";

const root = join(import.meta.dirname, "..");
const files = allManifestFiles(packageVersion());
for (const dir of GENERATED_DIRS)
  for (const file of readdirSync(join(root, dir), { recursive: true, encoding: "utf8" }))
    if (/\.(ya?ml|json|tpl)$/.test(file) && !(`${dir}/${file}` in files)) {
      rmSync(join(root, dir, file));
      process.stdout.write(`removed ${dir}/${file}\n`);
    }
for (const [file, text] of Object.entries(files)) {
  mkdirSync(dirname(join(root, file)), { recursive: true });
  writeFileSync(join(root, file), text);
  process.stdout.write(`wrote ${file}\n`);
}
