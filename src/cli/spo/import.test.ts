import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { importSpoDocuments, lockstepLocalhostProfile, spoLocalhostProfile } from "./import.ts";

// SPO's published examples, stored with their sources (test/fixtures/spo/README.md).
const fixture = (name: string): unknown[] =>
  parseAllDocuments(readFileSync(join(import.meta.dirname, "../../../test/fixtures/spo", name), "utf8"))
    .map((d) => d.toJS())
    .filter((d) => d !== null);
const spo = (kind: string, spec: object, metadata: object = { name: "p" }) => ({
  apiVersion: "security-profiles-operator.x-k8s.io/v1",
  kind,
  metadata,
  spec,
});

describe("importSpoDocuments", () => {
  it("carries SPO's v1beta1 example SeccompProfiles over rule for rule", () => {
    const results = importSpoDocuments(fixture("seccompprofile.yaml"));
    expect(results.map((r) => r.error)).toEqual([undefined, undefined, undefined, undefined]);
    expect(
      results.map((r) => (r.object?.spec as { defaultAction: string } | undefined)?.defaultAction),
    ).toEqual(["SCMP_ACT_ERRNO", "SCMP_ACT_LOG", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG"]);
    expect(results[3]?.object).toMatchObject({
      apiVersion: "lockstep.dev/v1alpha1",
      kind: "SeccompProfile",
      metadata: { name: "profile-complain-block-high-risk" },
      spec: {
        architectures: ["SCMP_ARCH_X86_64"],
        syscalls: [{ action: "SCMP_ACT_ALLOW" }, { action: "SCMP_ACT_ERRNO" }],
      },
    });
    expect(
      (results[3]?.object?.spec as { syscalls: { names: string[] }[] } | undefined)?.syscalls[1]?.names,
    ).toHaveLength(50);
  });

  it("keeps a baseProfileName, says how SPO's union differs, and whether the base came along", () => {
    const results = importSpoDocuments([
      ...fixture("profile-with-base.yaml"),
      ...fixture("baseprofile-runc.yaml"),
    ]);
    expect(
      results.map((r) => (r.object?.spec as { baseProfileName?: string } | undefined)?.baseProfileName),
    ).toEqual(["runc-v1.5.1", "runc-v1.2.3", undefined]);
    expect(results[0]?.notes).toContainEqual(expect.stringMatching(/runc-v1\.5\.1: not in the input/));
    expect(results[1]?.notes).not.toContainEqual(expect.stringMatching(/not in the input/));
    expect(results[1]?.notes).toContainEqual(
      expect.stringMatching(
        /namespace my-namespace: .* lockstep\/profile2\.json instead of operator\/my-namespace\/profile2\.json/,
      ),
    );
  });

  it("carries AppArmor's raw policy, abstract form and complain mode over, and says what it left out", () => {
    const [raw] = importSpoDocuments(fixture("apparmorprofile.yaml"));
    expect(raw?.object?.spec).toMatchObject({
      rawPolicy: expect.stringMatching(
        /^ {0}profile lockstep\.test-profile flags=\(attach_disconnected\) \{$/m,
      ),
      mode: "enforce",
    });
    expect(raw?.notes.join("\n")).toMatch(/its profile test-profile declared as lockstep\.test-profile/);
    const [complain] = importSpoDocuments(fixture("apparmorprofile-sleep-complain-mode.yaml"));
    expect(complain?.object).toEqual({
      apiVersion: "lockstep.dev/v1alpha1",
      kind: "AppArmorProfile",
      metadata: { name: "test-recording-test-pod" },
      spec: { mode: "complain" },
    });
    const [v1] = importSpoDocuments(fixture("apparmorprofile-v1.yaml"));
    expect(v1?.object?.spec).toEqual({
      executables: ["/bin/busybox"],
      paths: { readOnly: ["/etc/", "/lib/ld-musl-x86_64.so.1"], readWrite: ["/dev/null"] },
      network: { families: ["inet", "inet6"], protocols: ["tcp"] },
      capabilities: ["dac_override", "setgid", "setuid"],
      mode: "complain",
    });
    expect(v1?.notes.join("\n")).toMatch(
      /allowRaw: not carried over[\s\S]*ptrace: not carried over[\s\S]*left out \/proc\/@\{pid\}\/maps/,
    );
  });

  it("refuses what Lockstep cannot enforce, and names that clash once namespaces are gone", () => {
    const results = importSpoDocuments([
      spo("SeccompProfile", {
        defaultAction: "SCMP_ACT_ERRNO",
        listenerPath: "/var/run/security-profiles-operator/a.sock",
      }),
      spo("SeccompProfile", {
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [{ names: ["read"], action: "SCMP_ACT_NOTIFY" }],
      }),
      spo("SeccompProfile", { defaultAction: "SCMP_ACT_ERRNO", baseProfileName: "oci://ghcr.io/x/y:1" }),
      spo("SeccompProfile", { defaultAction: "SCMP_ACT_ERRNO" }, { name: "web", namespace: "a" }),
      spo("SeccompProfile", { defaultAction: "SCMP_ACT_ERRNO" }, { name: "web", namespace: "b" }),
      spo("ProfileBinding", {}),
      { apiVersion: "v1", kind: "ConfigMap" },
    ]);
    expect(results.map((r) => r.error?.split(":")[0])).toEqual([
      "listenerPath",
      "SCMP_ACT_NOTIFY needs a seccomp notify listener, which Lockstep does not run",
      "baseProfileName oci",
      undefined,
      'SeccompProfile web is also SeccompProfile "web" in namespace a',
      "Lockstep has no ProfileBinding",
      "not a security-profiles-operator object (a ConfigMap); import reads SPO's SeccompProfiles and AppArmorProfiles",
    ]);
    expect(results[4]?.object).toBeUndefined();
  });

  it("reads v1beta1's string errnoRet and omitted values, v1's state, and drops names no kernel has", () => {
    const [result] = importSpoDocuments([
      spo(
        "SeccompProfile",
        {
          state: "Disabled",
          defaultAction: "SCMP_ACT_ERRNO",
          targetWorkload: "old-field",
          syscalls: [
            {
              names: ["mkdir", "foo"],
              action: "SCMP_ACT_ERRNO",
              errnoRet: "13",
              args: [{ index: 1, op: "SCMP_CMP_EQ" }],
            },
            { names: ["bar"], action: "SCMP_ACT_ALLOW" },
          ],
        },
        { name: "web.json" },
      ),
    ]);
    expect(result?.error).toBeUndefined();
    expect(result?.object).toMatchObject({
      metadata: { name: "web" },
      spec: {
        disabled: true,
        syscalls: [
          {
            names: ["mkdir"],
            action: "SCMP_ACT_ERRNO",
            errnoRet: 13,
            args: [{ index: 1, value: 0, op: "SCMP_CMP_EQ" }],
          },
        ],
      },
    });
    expect(result?.notes.join("\n")).toMatch(
      /web\.json becomes web[\s\S]*spec\.targetWorkload: not carried over[\s\S]*left out foo[\s\S]*left out bar/,
    );
  });

  it("names where each operator writes the seccomp file pods reference", () => {
    expect(spoLocalhostProfile("ns", "web")).toBe("operator/ns/web.json");
    expect(spoLocalhostProfile(undefined, "web.json")).toBe("operator/web.json");
    expect(lockstepLocalhostProfile("web")).toBe("lockstep/web.json");
  });
});
