import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AGENT_LABEL, APPARMOR_LABEL } from "./constants.ts";
import {
  isLockstepLabelKey,
  isValidLabelNamePart,
  isValidLabelValue,
  isValidProfileObjectName,
  localhostProfileFor,
  parseProfileLabelKey,
  profileLabelKey,
  profileLabelName,
  profileNameFromSeccompLocalhost,
  profileVersion,
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
        expect(isLockstepLabelKey(profileLabelKey(k, name))).toBe(true);
      }),
    );
  });

  it("recognises only Lockstep's keys", () => {
    expect(isLockstepLabelKey(AGENT_LABEL)).toBe(true);
    expect(isLockstepLabelKey(APPARMOR_LABEL)).toBe(true);
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
  it("names the file under lockstep/ for seccomp and the bare name for AppArmor", () => {
    expect(localhostProfileFor("seccomp", "web")).toBe("lockstep/web.json");
    expect(localhostProfileFor("apparmor", "web")).toBe("web");
  });

  it("maps a seccomp localhostProfile back to the profile name", () => {
    fc.assert(
      fc.property(objectName, (name) => {
        expect(profileNameFromSeccompLocalhost(localhostProfileFor("seccomp", name))).toBe(name);
      }),
    );
  });

  it("rejects paths that are not a Lockstep profile file", () => {
    for (const path of [
      "lockstep/.json",
      "lockstep/../etc.json",
      "lockstep/a/b.json",
      "lockstep//a.json",
      "lockstep/web",
      "lockstep/web.json.bak",
      "other/web.json",
      "/lockstep/web.json",
      "lockstep/Web.json",
      "lockstep/a..b.json",
      "lockstep/-a.json",
      `lockstep/${"a".repeat(254)}.json`,
      "profiles/audit.json",
    ]) {
      expect(profileNameFromSeccompLocalhost(path), path).toBeUndefined();
    }
  });

  it("accepts object names only", () => {
    expect(isValidProfileObjectName("a.b-c")).toBe(true);
    expect(isValidProfileObjectName("runtime/default")).toBe(false);
  });
});
