import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AGENT_LABEL, APPARMOR_LABEL } from "./constants.ts";
import {
  appArmorKernelName,
  appArmorObjectName,
  cleanPath,
  isLockstepLabelKey,
  isValidLabelNamePart,
  isValidLabelValue,
  isValidProfileObjectName,
  localhostProfileFor,
  parseProfileLabelKey,
  profileLabelKey,
  profileLabelName,
  profileVersion,
  resolveSeccompLocalhost,
  seccompLocalhostPattern,
} from "./labels.ts";

// RFC 1123 subdomains up to 253 characters: what metadata.name of a profile can be.
const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
const objectName = fc
  .array(dnsLabel, { minLength: 1, maxLength: 6 })
  .map((labels) => labels.join("."))
  .filter((name) => name.length <= 253);
// Characters that matter to label validity, including ones a label can never hold.
const nameCharacter = fc.constantFrom(...Array.from("aZ09-_./ é\n😀"));
const kind = fc.constantFrom("seccomp" as const, "apparmor" as const);

describe("profileLabelName", () => {
  it("keeps a short valid name as it is", () => {
    expect(profileLabelName("web")).toBe("web");
    expect(profileLabelName("a".repeat(63))).toBe("a".repeat(63));
  });

  it("shortens a long name to a readable stem and a hash", () => {
    const long = `${"frontend.".repeat(10)}prod`;
    const label = profileLabelName(long);
    expect(label).toMatch(/^frontend\.frontend\..*_[0-9a-f]{12}$/);
    expect(label.length).toBeLessThanOrEqual(63);
    expect(profileLabelName(long)).toBe(label);
  });

  it("never keeps a name that looks shortened, so no profile can take another's label", () => {
    const long = "x".repeat(100);
    const crafted = profileLabelName(long);
    expect(profileLabelName(crafted)).not.toBe(crafted);
  });

  it("makes a valid label name from any string", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: nameCharacter }), (name) => {
        expect(isValidLabelNamePart(profileLabelName(name))).toBe(true);
      }),
    );
  });

  it("makes a valid label name of at most 63 characters from any object name", () => {
    fc.assert(
      fc.property(objectName, (name) => {
        const label = profileLabelName(name);
        expect(label.length).toBeLessThanOrEqual(63);
        expect(isValidLabelNamePart(label)).toBe(true);
      }),
    );
  });

  it("gives distinct names distinct labels", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.oneof(objectName, fc.string({ maxLength: 80 })), { maxLength: 200 }),
        (names) => {
          expect(new Set(names.map(profileLabelName)).size).toBe(names.length);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("separates names that share a long prefix", () => {
    const stem = "p".repeat(70);
    expect(profileLabelName(`${stem}a`)).not.toBe(profileLabelName(`${stem}b`));
  });
});

describe("profile label keys", () => {
  it("prefixes the label name with the kind's domain", () => {
    expect(profileLabelKey("seccomp", "web")).toBe("seccomp.lockstep.dev/web");
    expect(profileLabelKey("apparmor", "web")).toBe("apparmor.lockstep.dev/web");
  });

  it("parses back to the kind and label name", () => {
    fc.assert(
      fc.property(kind, objectName, (k, name) => {
        expect(parseProfileLabelKey(profileLabelKey(k, name))).toEqual({
          kind: k,
          labelName: profileLabelName(name),
        });
        // The pods' in-use key; no agent sets it on a Node (ADR 0024), so the agent leaves it alone.
        expect(isLockstepLabelKey(profileLabelKey(k, name))).toBe(false);
      }),
    );
  });

  it("recognises only the keys the agent sets on a Node", () => {
    for (const key of [
      AGENT_LABEL,
      APPARMOR_LABEL,
      "lockstep.dev/seccomp-revision",
      "lockstep.dev/apparmor-revision",
      "failed.seccomp.lockstep.dev/web",
      "failed.apparmor.lockstep.dev/web",
      "selector.lockstep.dev/pool",
    ])
      expect(isLockstepLabelKey(key), key).toBe(true);
    for (const key of [
      "failed.seccomp.lockstep.dev/-bad",
      "selector.lockstep.dev/",
      "seccomp.lockstep.dev/web",
    ])
      expect(isLockstepLabelKey(key), key).toBe(false);
    for (const key of [
      "kubernetes.io/arch",
      "lockstep.dev/other",
      "seccomp.lockstep.dev/",
      "seccomp.lockstep.dev/-bad",
      "xseccomp.lockstep.dev/web",
      "seccomp.lockstep.dev.evil.com/web",
    ]) {
      expect(isLockstepLabelKey(key), key).toBe(false);
      expect(parseProfileLabelKey(key), key).toBeUndefined();
    }
  });
});

describe("profileVersion", () => {
  it("is a 12-digit hex label value that follows the content", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        expect(profileVersion(a)).toMatch(/^[0-9a-f]{12}$/);
        expect(isValidLabelValue(profileVersion(a))).toBe(true);
        if (a !== b) expect(profileVersion(a)).not.toBe(profileVersion(b));
      }),
    );
  });
});

describe("localhost profiles", () => {
  it("names the file under lockstep/ for seccomp and the prefixed kernel name for AppArmor", () => {
    expect(localhostProfileFor("seccomp", "web")).toBe("lockstep/web.json");
    expect(localhostProfileFor("apparmor", "web")).toBe("lockstep.web");
  });

  it("maps an AppArmor kernel name back to its object, and only Lockstep's names", () => {
    fc.assert(
      fc.property(objectName, (name) => {
        expect(appArmorKernelName(name)).toBe(`lockstep.${name}`);
        expect(appArmorObjectName(appArmorKernelName(name))).toBe(name);
        expect(localhostProfileFor("apparmor", name)).toBe(appArmorKernelName(name));
      }),
    );
    // What runtimes and hosts load, and names inside the prefix that no object can have.
    for (const foreign of [
      "cri-containerd.apparmor.d",
      "docker-default",
      "crio-default",
      "unconfined",
      "lockstep",
      "lockstep.",
      "lockstep.Web",
      "lockstep.web//hat",
      "lockstep.-web",
      ":lockstep:web",
      "Lockstep.web",
      ` lockstep.web`,
      `lockstep.${"a".repeat(254)}`,
    ])
      expect(appArmorObjectName(foreign), foreign).toBeUndefined();
    expect(appArmorObjectName("lockstep.lockstep.web")).toBe("lockstep.web");
  });

  it("maps a seccomp localhostProfile back to the profile name", () => {
    fc.assert(
      fc.property(objectName, (name) => {
        expect(resolveSeccompLocalhost(localhostProfileFor("seccomp", name))).toEqual({
          kind: "profile",
          name,
        });
      }),
    );
  });
});

// What Go says (go1.26 filepath.Join and the API server's validateLocalDescendingPath, run on each path):
// [localhostProfile, the file the kubelet opens with --root-dir=/var/lib/kubelet, refused by the API server].
const KUBELET_SECCOMP_ROOT = "/var/lib/kubelet/seccomp";

/** Go's filepath.Join, which the kubelet calls: the non-empty elements joined with "/", then cleaned. */
function joinPath(...elements: string[]): string {
  const joined = elements.filter((e) => e !== "").join("/");
  return joined === "" ? "" : cleanPath(joined);
}
const KUBELET_BEHAVIOUR: [string, string, boolean][] = [
  ["lockstep/web.json", "/var/lib/kubelet/seccomp/lockstep/web.json", false],
  ["./lockstep/web.json", "/var/lib/kubelet/seccomp/lockstep/web.json", false],
  ["lockstep//web.json", "/var/lib/kubelet/seccomp/lockstep/web.json", false],
  ["foo/../lockstep/web.json", "/var/lib/kubelet/seccomp/lockstep/web.json", true],
  ["lockstep/./web.json", "/var/lib/kubelet/seccomp/lockstep/web.json", false],
  ["/lockstep/web.json", "/var/lib/kubelet/seccomp/lockstep/web.json", true],
  ["../seccomp/lockstep/web.json", "/var/lib/kubelet/seccomp/lockstep/web.json", true],
  ["lockstep/web.json/", "/var/lib/kubelet/seccomp/lockstep/web.json", false],
  ["lockstep/web.json/.", "/var/lib/kubelet/seccomp/lockstep/web.json", false],
  [".//./lockstep///./web.json", "/var/lib/kubelet/seccomp/lockstep/web.json", false],
  ["lockstep", "/var/lib/kubelet/seccomp/lockstep", false],
  ["lockstep/", "/var/lib/kubelet/seccomp/lockstep", false],
  ["./lockstep/.", "/var/lib/kubelet/seccomp/lockstep", false],
  ["lockstep/sub/web.json", "/var/lib/kubelet/seccomp/lockstep/sub/web.json", false],
  ["lockstep/Web.json", "/var/lib/kubelet/seccomp/lockstep/Web.json", false],
  ["lockstep/.json", "/var/lib/kubelet/seccomp/lockstep/.json", false],
  ["lockstepx/web.json", "/var/lib/kubelet/seccomp/lockstepx/web.json", false],
  ["other/web.json", "/var/lib/kubelet/seccomp/other/web.json", false],
  ["lockstep/web", "/var/lib/kubelet/seccomp/lockstep/web", false],
  ["lockstep/../lockstep/web.json", "/var/lib/kubelet/seccomp/lockstep/web.json", true],
  ["..", "/var/lib/kubelet", true],
  [".", "/var/lib/kubelet/seccomp", false],
  ["", "/var/lib/kubelet/seccomp", false],
  ["profiles/audit.json", "/var/lib/kubelet/seccomp/profiles/audit.json", false],
  ["lockstep/a..b.json", "/var/lib/kubelet/seccomp/lockstep/a..b.json", false],
  ["lockstep/...json", "/var/lib/kubelet/seccomp/lockstep/...json", false],
  ["lockstep/web.json/..", "/var/lib/kubelet/seccomp/lockstep", true],
  ["./.lockstep/web.json", "/var/lib/kubelet/seccomp/.lockstep/web.json", false],
];

describe("resolveSeccompLocalhost, as the kubelet resolves localhostProfile", () => {
  it.each(KUBELET_BEHAVIOUR)("%j opens %s (refused by the API server: %s)", (path, opened, refused) => {
    expect(joinPath(KUBELET_SECCOMP_ROOT, path)).toBe(opened);
    const target = resolveSeccompLocalhost(path);
    if (refused) {
      expect(target.kind).toBe("refused");
      return;
    }
    const lockstepDir = `${KUBELET_SECCOMP_ROOT}/lockstep`;
    const name = opened.startsWith(`${lockstepDir}/`)
      ? opened.slice(lockstepDir.length + 1, -".json".length)
      : "";
    if (opened.startsWith(`${lockstepDir}/`) && opened.endsWith(".json") && isValidProfileObjectName(name))
      expect(target).toEqual({ kind: "profile", name });
    else if (opened === lockstepDir || opened.startsWith(`${lockstepDir}/`))
      expect(target.kind).toBe("not-a-profile-file");
    else expect(target).toEqual({ kind: "elsewhere" });
  });

  it("cleans like Go's path.Clean", () => {
    // From Go's path/path_test.go cleantests.
    for (const [input, cleaned] of [
      ["", "."],
      ["abc//def//ghi", "abc/def/ghi"],
      ["abc/./def", "abc/def"],
      ["/./abc/def", "/abc/def"],
      ["abc/../../../def", "../../def"],
      ["/../abc", "/abc"],
      ["abc/def/../../..", ".."],
      ["/abc/def/../../..", "/"],
      ["./", "."],
      ["abc/./../def", "def"],
    ] as const)
      expect(cleanPath(input), input).toBe(cleaned);
  });

  it("the matchConditions' pattern matches exactly the paths that are not someone else's", () => {
    const pattern = new RegExp(seccompLocalhostPattern());
    const element = fc.constantFrom(
      "lockstep",
      ".",
      "..",
      "",
      "web.json",
      "lockstepx",
      "other",
      ".lockstep",
      "Web.json",
    );
    fc.assert(
      fc.property(fc.array(element, { maxLength: 6 }), (elements) => {
        const path = elements.join("/");
        expect(pattern.test(path), path).toBe(resolveSeccompLocalhost(path).kind !== "elsewhere");
      }),
      { numRuns: 5000 },
    );
    for (const [path] of KUBELET_BEHAVIOUR)
      expect(pattern.test(path), path).toBe(resolveSeccompLocalhost(path).kind !== "elsewhere");
  });

  it("accepts object names only", () => {
    expect(isValidProfileObjectName("a.b-c")).toBe(true);
    expect(isValidProfileObjectName("runtime/default")).toBe(false);
  });
});
