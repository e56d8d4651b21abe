// Every example a newcomer copies must parse, resolve and render; the AppArmor ones must compile.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parseAppArmorProfile } from "../../src/api/apparmor.ts";
import { type AdmittedPod, AdmittedPodSchema, podProfileSettings } from "../../src/api/pod-profiles.ts";
import { ProfileBindingSchema } from "../../src/api/profile-binding.ts";
import { ProfileRecordingSchema } from "../../src/api/profile-recording.ts";
import { renderAppArmorProfile } from "../../src/api/render-apparmor.ts";
import {
  renderSeccompForNode,
  resolveSeccompProfile,
  serializeSeccomp,
} from "../../src/api/render-seccomp.ts";
import { parseSeccompProfile, type SeccompProfileSpec } from "../../src/api/seccomp.ts";

const examplesDir = join(import.meta.dirname, "../../examples");
const documents = readdirSync(examplesDir)
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(examplesDir, file), "utf8")).map((d) => ({
      file,
      object: d.toJS() as { kind?: string },
    })),
  );

describe("examples/", () => {
  it("has a seccomp profile, an AppArmor profile and a workload", () => {
    const kinds = documents.map((d) => d.object.kind);
    expect(kinds).toEqual(expect.arrayContaining(["SeccompProfile", "AppArmorProfile", "Deployment"]));
  });

  const seccomp = documents.filter((d) => d.object.kind === "SeccompProfile");
  const specs = new Map<string, SeccompProfileSpec>();
  for (const { object } of seccomp) {
    const parsed = parseSeccompProfile(object);
    if (parsed.ok) specs.set(parsed.value.metadata.name ?? "", parsed.value.spec);
  }

  it.each(seccomp.map((d) => [d.file, d.object] as const))(
    "%s is a valid SeccompProfile that renders",
    (_, object) => {
      const parsed = parseSeccompProfile(object);
      if (!parsed.ok) throw new Error(parsed.message);
      const name = parsed.value.metadata.name ?? "";
      const resolved = resolveSeccompProfile(name, specs);
      if (!resolved.ok) throw new Error(resolved.message);
      const json = JSON.parse(serializeSeccomp(renderSeccompForNode(resolved.spec, "amd64")));
      expect(json.syscalls.length).toBeGreaterThan(0);
      expect(json).not.toHaveProperty("archMap");
    },
  );

  it.each(
    documents.filter((d) => d.object.kind === "AppArmorProfile").map((d) => [d.file, d.object] as const),
  )("%s is a valid AppArmorProfile that apparmor_parser compiles", (_, object) => {
    const parsed = parseAppArmorProfile(object);
    if (!parsed.ok) throw new Error(parsed.message);
    const rendered = renderAppArmorProfile(parsed.value.metadata.name ?? "", parsed.value.spec);
    if (!rendered.ok) throw new Error(rendered.message);
    const dir = mkdtempSync(join(tmpdir(), "lockstep-example-"));
    try {
      const file = join(dir, "profile");
      writeFileSync(file, rendered.text);
      execFileSync("/usr/sbin/apparmor_parser", ["-Q", "-K", file], { stdio: "pipe" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names in its workloads exactly the profiles the examples define, as the webhook reads them", () => {
    const defined = new Set(
      documents
        .filter((d) => d.object.kind === "SeccompProfile" || d.object.kind === "AppArmorProfile")
        .map((d) => {
          const o = d.object as { kind: string; metadata: { name: string } };
          return `${o.kind === "SeccompProfile" ? "seccomp" : "apparmor"}/${o.metadata.name}`;
        }),
    );
    const workloads = documents.filter((d) => d.object.kind === "Deployment");
    const referenced = workloads.flatMap((d) => {
      const template = (d.object as { spec: { template: AdmittedPod } }).spec.template;
      const settings = podProfileSettings(AdmittedPodSchema.parse(template));
      expect(settings.invalid).toEqual([]);
      return settings.references.map((r) => `${r.kind}/${r.name}`);
    });
    expect(new Set(referenced)).toEqual(new Set(["seccomp/hardened-default", "apparmor/web-readonly"]));
    for (const r of referenced) expect(defined).toContain(r);
  });

  it("binds, in its ProfileBindings, only profiles the examples define", () => {
    const defined = new Set(
      documents
        .filter((d) => d.object.kind === "SeccompProfile" || d.object.kind === "AppArmorProfile")
        .map((d) => `${d.object.kind}/${(d.object as { metadata: { name: string } }).metadata.name}`),
    );
    const bindings = documents.filter((d) => d.object.kind === "ProfileBinding");
    expect(bindings.length).toBeGreaterThan(0);
    for (const { object } of bindings) {
      const { spec } = ProfileBindingSchema.parse(object);
      if (spec.seccompProfile) expect(defined).toContain(`SeccompProfile/${spec.seccompProfile}`);
      if (spec.appArmorProfile) expect(defined).toContain(`AppArmorProfile/${spec.appArmorProfile}`);
    }
  });

  it("has a ProfileRecording that parses", () => {
    const recordings = documents.filter((d) => d.object.kind === "ProfileRecording");
    expect(recordings.length).toBeGreaterThan(0);
    for (const { object } of recordings)
      expect(ProfileRecordingSchema.parse(object).spec.podSelector).toBeDefined();
  });
});
