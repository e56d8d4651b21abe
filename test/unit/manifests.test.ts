// Every generated manifest (crds/, deploy/, charts/lockstep/) is what src/manifests/ makes of it now:
// `make manifests` rewrites them, and this fails when a committed one is stale or left over.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { BINDINGS_NAMESPACE_LABEL, BINDINGS_NAMESPACE_MODES } from "../../src/api/profile-binding.ts";
import { RECORDING_NAMESPACE_ENABLED, RECORDING_NAMESPACE_LABEL } from "../../src/api/profile-recording.ts";
import {
  mutatingWebhookConfiguration,
  podNodeAffinityPolicy,
  referencesLockstepExpression,
} from "../../src/manifests/admission.ts";
import { allManifestFiles, GENERATED_DIRS, installYaml, packageVersion } from "../../src/manifests/files.ts";
import { ChartValuesSchema, defaultValues } from "../../src/manifests/workloads.ts";
import {
  documents,
  HelmIf,
  HelmValue,
  joined,
  noted,
  notedKeys,
  OMIT,
  onlyIf,
} from "../../src/manifests/yaml.ts";

const root = join(import.meta.dirname, "../..");
const files = allManifestFiles(packageVersion());

describe("generated manifests", () => {
  it.each(Object.entries(files))("%s is what `make manifests` generates", (file, text) => {
    expect(readFileSync(join(root, file), "utf8")).toBe(text);
  });

  it("leaves no file in the generated folders that the source no longer makes", () => {
    const present = GENERATED_DIRS.flatMap((dir) =>
      readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
        .filter((f) => /\.(ya?ml|json|tpl)$/.test(f))
        .map((f) => `${dir}/${f}`),
    );
    expect(present.filter((f) => !(f in files))).toEqual([]);
  });

  it("writes deploy/ as plain YAML: no Helm expression and no document left empty", () => {
    for (const [file, text] of Object.entries(files).filter(([f]) => f.startsWith("deploy/"))) {
      expect(text, file).not.toContain("{{");
      for (const doc of parseAllDocuments(text)) expect(doc.toJS(), file).toBeTruthy();
    }
  });

  it("keeps the reason for every RBAC rule right above it, in deploy/ and in the chart", () => {
    const rbac = Object.keys(files).filter((f) => f.endsWith("/rbac.yaml"));
    expect(rbac).toHaveLength(6);
    for (const file of rbac) {
      const lines = (files[file] ?? "").split("\n");
      lines.forEach((line, i) => {
        if (/^ {2}- apiGroups:/.test(line)) expect(lines[i - 1], `${file}:${i + 1}`).toMatch(/^\s+# /);
      });
    }
  });

  it("gives the chart default values that its own schema accepts", () => {
    expect(ChartValuesSchema.parse(defaultValues())).toEqual(defaultValues());
  });
});

describe("a release's install.yaml", () => {
  const digest = `sha256:${"0f".repeat(32)}`;
  const docs = parseAllDocuments(installYaml("1.2.3", digest)).map(
    (d) => d.toJS() as { kind: string; spec?: { template?: { spec?: { containers: { image: string }[] } } } },
  );

  it("is deploy/ in one file: the namespace, then the CRDs, then the rest, as kubectl apply needs them", () => {
    expect(docs.slice(0, 3).map((d) => d.kind)).toEqual([
      "Namespace",
      "CustomResourceDefinition",
      "CustomResourceDefinition",
    ]);
    const deployDocs = Object.entries(files)
      .filter(([f]) => f.startsWith("deploy/") && !f.endsWith("kustomization.yaml"))
      .flatMap(([, text]) => parseAllDocuments(text));
    expect(docs).toHaveLength(deployDocs.length);
  });

  it("pins every container's image by the digest", () => {
    const images = docs.flatMap((d) => d.spec?.template?.spec?.containers.map((c) => c.image) ?? []);
    expect(images).toEqual(Array(3).fill(`ghcr.io/lockstep-dev/lockstep@${digest}`));
  });

  it("refuses a digest that is not one", () => {
    expect(() => installYaml("1.2.3", "latest")).toThrow();
  });
});

describe("the manifest writer", () => {
  const doc = (replicas: number | HelmValue, flag: boolean | HelmValue, root: string | HelmValue) =>
    noted("why", {
      spec: notedKeys({ replicas: "two" }, { replicas, args: [joined("--root=", root)] }),
      items: ["a", onlyIf(flag, "b")],
    });

  it("writes values as plain YAML, with the comments where they were noted", () => {
    expect(documents([doc(2, false, "/r")])).toBe(
      "# why\nspec:\n  # two\n  replicas: 2\n  args:\n    - --root=/r\nitems:\n  - a\n",
    );
  });

  it("writes settings as Helm expressions: quoted strings, conditional items and documents", () => {
    const helm = doc(
      new HelmValue(".Values.n", "number"),
      new HelmValue(".Values.b", "boolean"),
      new HelmValue(".Values.root", "string"),
    );
    expect(documents([helm])).toBe(
      '# why\nspec:\n  # two\n  replicas: {{ .Values.n }}\n  args:\n    - {{ print "--root=" (.Values.root) | quote }}\nitems:\n  - a\n  {{- if .Values.b }}\n  - b\n  {{- end }}\n',
    );
    expect(documents([OMIT, new HelmIf(".Values.x", { a: 1 })])).toBe(
      "{{- if .Values.x }}\n---\na: 1\n{{- end }}\n",
    );
  });
});

describe("lockstep-pod-node-affinity", () => {
  type Policy = {
    kind: string;
    spec: {
      matchConstraints: { namespaceSelector: unknown };
      matchConditions: { expression: string }[];
    };
  };
  const policy = podNodeAffinityPolicy().find(
    (d) => (d as Policy).kind === "ValidatingAdmissionPolicy",
  ) as Policy;
  type Selector = { matchExpressions: { key: string; operator: string; values: string[] }[] };
  const webhooks = (mutatingWebhookConfiguration() as { webhooks: { namespaceSelector: Selector }[] })
    .webhooks;

  it("checks exactly the pods the webhook guards: same namespaces, same references (not its in-use label clause)", () => {
    // The webhook's entries split those namespaces by the bindings label: NotIn every mode (pods that
    // name a profile), then In each mode (every pod); last, every pod of a namespace where recordings
    // run (ADR 0039). The policy checks all of them.
    const policySelector = policy.spec.matchConstraints.namespaceSelector as Selector;
    const split = webhooks.map((w) => {
      const [first, ...rest] = w.namespaceSelector.matchExpressions;
      expect({ matchExpressions: [first] }).toEqual(policySelector);
      expect(rest).toHaveLength(1);
      return rest[0];
    });
    expect(split.pop()).toEqual({
      key: RECORDING_NAMESPACE_LABEL,
      operator: "In",
      values: [RECORDING_NAMESPACE_ENABLED],
    });
    expect(split[0]).toEqual({
      key: BINDINGS_NAMESPACE_LABEL,
      operator: "NotIn",
      values: [...BINDINGS_NAMESPACE_MODES],
    });
    expect(split.slice(1)).toEqual(
      BINDINGS_NAMESPACE_MODES.map((mode) => ({
        key: BINDINGS_NAMESPACE_LABEL,
        operator: "In",
        values: [mode],
      })),
    );
    const condition = policy.spec.matchConditions[0]?.expression ?? "";
    expect(referencesLockstepExpression().startsWith(condition)).toBe(true);
    expect(condition).not.toContain("metadata.labels");
  });
});
