// The Helm chart, rendered by a real helm (tools/helm/build.sh): at its default values it is deploy/,
// object for object (and with cert-manager, deploy-overlays/cert-manager); its values change what they say
// and nothing else. No cluster: `helm template`, and the kubectl of tools/controlplane for kustomize.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import * as z from "zod";
import { packageChart } from "../../scripts/release.ts";
import { installYaml, packageVersion } from "../../src/manifests/files.ts";
import { kubectlBinary } from "../harness/controlplane.ts";
import { CHART, helm, helmTemplate, TEMPLATE_KUBE_VERSION } from "../harness/helm.ts";

const root = join(import.meta.dirname, "../..");
type Obj = k8s.KubernetesObject & Record<string, unknown>;
const key = (d: k8s.KubernetesObject) => `${d.kind}/${d.metadata?.namespace ?? ""}/${d.metadata?.name}`;

/** deploy/'s objects, from the files its kustomization lists. */
function deployObjects(): Obj[] {
  const { resources } = z
    .object({ resources: z.array(z.string()) })
    .parse(parse(readFileSync(join(root, "deploy/kustomization.yaml"), "utf8")));
  return resources.flatMap((file) =>
    parseAllDocuments(readFileSync(join(root, "deploy", file), "utf8")).map((d) => d.toJS() as Obj),
  );
}

/**
 * The chart's one addition: what helm leaves in place on uninstall, the CRDs and the webhook's Service
 * (docs/adr/0065-upgrade-and-removal.md).
 */
function withoutKeepPolicy(doc: Obj): Obj {
  const annotations = { ...doc.metadata?.annotations };
  if (annotations["helm.sh/resource-policy"] !== "keep") return doc;
  delete annotations["helm.sh/resource-policy"];
  const { annotations: _, ...metadata } = doc.metadata ?? {};
  return { ...doc, metadata: Object.keys(annotations).length ? { ...metadata, annotations } : metadata };
}
const KEPT = [
  "CustomResourceDefinition//apparmorprofiles.lockstep.dev",
  "CustomResourceDefinition//profilebindings.lockstep.dev",
  "CustomResourceDefinition//profilerecordings.lockstep.dev",
  "CustomResourceDefinition//seccompprofiles.lockstep.dev",
  "Service/lockstep-system/lockstep-webhook",
];

const byKey = (docs: Obj[]) => new Map(docs.map((d) => [key(d), d]));

/** `kubectl kustomize DIR` as plain objects (client-node's loader would turn them into its model classes). */
async function kustomizePlain(dir: string): Promise<Obj[]> {
  const { stdout } = await promisify(execFile)(kubectlBinary(), ["kustomize", dir], { maxBuffer: 64 << 20 });
  return parseAllDocuments(stdout).map((d) => d.toJS() as Obj);
}

describe("charts/lockstep", () => {
  it("passes helm lint", async () => {
    expect(await helm(["lint", CHART, "--strict", "--kube-version", TEMPLATE_KUBE_VERSION])).toContain(
      "0 chart(s) failed",
    );
  });

  it("renders exactly deploy/ at its default values (but what helm keeps on uninstall)", async () => {
    const chart = (await helmTemplate()) as Obj[];
    const kept = chart.filter((d) => d.metadata?.annotations?.["helm.sh/resource-policy"] === "keep");
    expect(kept.map(key).sort()).toEqual(KEPT);
    const rendered = byKey(chart.map(withoutKeepPolicy));
    const deploy = byKey(deployObjects());
    expect([...rendered.keys()].sort()).toEqual([...deploy.keys()].sort());
    for (const [k, doc] of deploy) expect(rendered.get(k), k).toEqual(doc);
  });

  it("pins the image by digest, moves placement and replicas, and changes nothing else", async () => {
    const digest = `sha256:${"ab".repeat(32)}`;
    const [defaults, changed] = await Promise.all([
      helmTemplate(),
      helmTemplate({
        "image.digest": digest,
        "controller.replicas": 3,
        "webhook.nodeSelector": { pool: "system" },
        "agent.tolerations": [{ key: "dedicated", operator: "Exists" }],
        kubeletRoot: "/data/kubelet",
        logLevel: "debug",
        "metrics.service": false,
      }),
    ]);
    const spec = (docs: k8s.KubernetesObject[], kind: string, name: string) =>
      (docs.find((d) => d.kind === kind && d.metadata?.name === name) as k8s.V1Deployment | undefined)?.spec;
    for (const [kind, name] of [
      ["DaemonSet", "lockstep-agent"],
      ["Deployment", "lockstep-controller"],
      ["Deployment", "lockstep-webhook"],
    ] as const) {
      const container = spec(changed, kind, name)?.template.spec?.containers[0];
      expect(container?.image).toBe(`ghcr.io/lockstep-dev/lockstep@${digest}`);
      expect(container?.env?.find((e) => e.name === "LOG_LEVEL")?.value).toBe("debug");
    }
    expect(spec(changed, "Deployment", "lockstep-controller")?.replicas).toBe(3);
    expect(spec(changed, "Deployment", "lockstep-webhook")?.template.spec?.nodeSelector).toEqual({
      pool: "system",
    });
    const agent = spec(changed, "DaemonSet", "lockstep-agent")?.template.spec;
    expect(agent?.tolerations).toEqual([{ key: "dedicated", operator: "Exists" }]);
    expect(agent?.containers[0]?.args).toContain("--kubelet-root=/data/kubelet");
    expect(agent?.volumes?.[0]?.hostPath?.path).toBe("/data/kubelet/seccomp/lockstep");
    expect(agent?.containers[0]?.volumeMounts?.[0]?.mountPath).toBe("/data/kubelet/seccomp/lockstep");
    // No metrics Services; every other object is there.
    const metrics = (d: k8s.KubernetesObject) =>
      d.kind === "Service" && d.metadata?.name?.endsWith("-metrics");
    expect(defaults.filter(metrics)).toHaveLength(3);
    expect(changed.filter(metrics)).toEqual([]);
    expect(changed.map(key).sort()).toEqual(
      defaults
        .filter((d) => !metrics(d))
        .map(key)
        .sort(),
    );
  });

  it("with cert-manager: its Issuer and Certificate, the CA injector's annotation, and no certificate grants for the webhook", async () => {
    const docs = (await helmTemplate({
      certificates: "cert-manager",
      "metrics.serviceMonitor": true,
    })) as Obj[];
    const find = (kind: string, name: string) =>
      docs.find((d) => d.kind === kind && d.metadata?.name === name);
    expect(find("Certificate", "lockstep-webhook")).toBeDefined();
    expect(find("Issuer", "lockstep-selfsigned")).toBeDefined();
    expect(find("ServiceMonitor", "lockstep")).toBeDefined();
    expect(find("MutatingWebhookConfiguration", "lockstep-webhook")?.metadata?.annotations).toEqual({
      "cert-manager.io/inject-ca-from": "lockstep-system/lockstep-webhook",
    });
    expect(find("Role", "lockstep-webhook-certificate")).toBeUndefined();
    const rules = (find("ClusterRole", "lockstep-webhook") as k8s.V1ClusterRole | undefined)?.rules ?? [];
    expect(rules.flatMap((r) => r.resources ?? [])).not.toContain("mutatingwebhookconfigurations");
    const webhook = (find("Deployment", "lockstep-webhook") as k8s.V1Deployment | undefined)?.spec?.template
      .spec;
    expect(webhook?.containers[0]?.args).toContain("--cert-mode=files");
    expect(webhook?.volumes?.[0]?.secret?.secretName).toBe(
      (find("Certificate", "lockstep-webhook") as { spec?: { secretName?: string } }).spec?.secretName,
    );
  });

  it("with cert-manager, renders exactly what the deploy-overlays/cert-manager kustomization does", async () => {
    const [chart, overlay] = await Promise.all([
      helmTemplate({ certificates: "cert-manager" }),
      kustomizePlain(join(root, "deploy-overlays/cert-manager")),
    ]);
    const rendered = byKey((chart as Obj[]).map(withoutKeepPolicy));
    expect([...rendered.keys()].sort()).toEqual(overlay.map(key).sort());
    for (const doc of overlay) expect(rendered.get(key(doc)), key(doc)).toEqual(doc);
  });

  it("refuses values its schema does not allow, naming the field", async () => {
    await expect(helmTemplate({ logLevel: "loud" })).rejects.toThrow(/logLevel/);
    await expect(helmTemplate({ "image.digest": "latest" })).rejects.toThrow(/digest/);
  });

  it("packaged for a release, installs what the release's install.yaml installs: the same objects, the image by digest", async () => {
    const out = mkdtempSync(join(tmpdir(), "lockstep-chart-test-"));
    try {
      const version = packageVersion();
      const digest = `sha256:${"cd".repeat(32)}`;
      const file = packageChart(out, version, digest);
      const docs = (await helmTemplate({}, join(out, file))) as Obj[];
      const install = parseAllDocuments(installYaml(version, digest)).map((d) => d.toJS() as Obj);
      const rendered = byKey(docs.map(withoutKeepPolicy));
      expect([...rendered.keys()].sort()).toEqual(install.map(key).sort());
      for (const doc of install) expect(rendered.get(key(doc)), key(doc)).toEqual(doc);
      const images = docs.flatMap(
        (d) => (d as k8s.V1Deployment).spec?.template?.spec?.containers.map((c) => c.image) ?? [],
      );
      expect(new Set(images)).toEqual(new Set([`ghcr.io/lockstep-dev/lockstep@${digest}`]));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
