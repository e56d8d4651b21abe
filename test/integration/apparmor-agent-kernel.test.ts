// The agent's AppArmor path against a real AppArmor kernel (the User-Mode Linux guest, test/harness/uml.ts):
// the agent's own code (node-agent/apparmor.ts) detects AppArmor in securityfs, has apparmor_parser judge
// and compile a Lockstep profile for that kernel, loads it, reads the kernel's list back, replaces it in
// complain mode and removes it; a process run under the profile is refused what it denies (enforce), or
// allowed and audited (complain). DESIGN invariant 9 (the kernel gets the mode spec.mode says, one profile
// named as the object, hostile policies refused) and invariant 1's read-back (what the kernel lists is what
// the agent reports) on the real kernel, and a reboot (a new boot of the guest) leaves no policy loaded.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_APPARMOR_PATHS, detectAppArmor } from "../../node-agent/apparmor.ts";
import { AppArmorGuest, type GuestRun } from "../harness/uml.ts";

/** The kernel profile's name: the object's name, which is what the agent loads (DESIGN invariant 9). */
const name = "lockstep-guest-web";
const text = [
  "#include <tunables/global>",
  `profile ${name} flags=(attach_disconnected) {`,
  "  #include <abstractions/base>",
  "  /usr/bin/cat mr,",
  "  /etc/passwd r,",
  "  deny /etc/shadow r,",
  "}",
  "",
].join("\n");
const hostile: Record<string, string> = {
  kill: `profile ${name} flags=(kill) {\n}\n`,
  attachment: `profile ${name} /usr/bin/** {\n}\n`,
  "second profile": `profile ${name} {\n}\nprofile docker-default {\n}\n`,
  namespace: `profile :lockstep-evil:${name} {\n}\n`,
  hat: `profile ${name} {\n  ^hat {\n  }\n}\n`,
  "foreign include": `profile ${name} {\n  "/x#" r, include "/etc/shadow"\n}\n`,
};

let guest: AppArmorGuest;
let run: GuestRun;
interface Confined {
  refused?: string;
  listing: string[];
  readBack: string[];
  allowed: number;
  denyRule: number;
  unlisted: number;
  audit: string[];
}
/** What guest-agent-apparmor.ts saw. */
let seen: {
  detected: boolean;
  loadedAtBoot: string[];
  enforce: Confined;
  complain: Confined;
  removed: { listing: string[]; readBack: string[]; exec: number };
  removeAgain: string;
  hostile: Record<string, string>;
  emptyLoad: unknown;
  finalListing: string[];
};

beforeAll(async () => {
  guest = AppArmorGuest.create();
  const scenario = join(guest.dir, "scenario.json");
  writeFileSync(scenario, JSON.stringify({ name, text, hostile }));
  run = await guest.run(
    [process.execPath, join(import.meta.dirname, "../harness/guest-agent-apparmor.ts"), scenario],
    {
      env: { PATH: `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin` },
    },
  );
  if (run.status !== 0) throw new Error(`the guest's agent code failed (${run.status}):\n${run.stderr}`);
  seen = JSON.parse(run.stdout);
}, 300_000);

afterAll(() => {
  guest?.dispose();
});

describe("the agent's AppArmor code on a real AppArmor kernel", () => {
  it("detects AppArmor in the guest, and none on this host", async () => {
    expect(seen.detected).toBe(true);
    expect(await detectAppArmor(DEFAULT_APPARMOR_PATHS)).toBe(false);
  });

  it("finds no profile at boot", () => {
    expect(seen.loadedAtBoot).toEqual([]);
  });

  it("loads the judged profile in enforce mode: the kernel lists it, the agent reads it back", () => {
    expect(seen.enforce.listing).toEqual([`${name} (enforce)`]);
    expect(seen.enforce.readBack).toEqual([name]);
  });

  it("confines in enforce mode: allowed reads pass, an unlisted file gets EACCES and an audit line, a deny rule EACCES quietly", () => {
    expect(seen.enforce).toMatchObject({ allowed: 0, denyRule: 1, unlisted: 1 });
    // An explicit deny rule is not audited unless it says `audit deny`: the kernel's rule, not ours.
    expect(seen.enforce.audit).toEqual(["DENIED open /etc/hostname"]);
  });

  it("replaces it in complain mode (the ABI v7 header flag the agent now reads): listed complain", () => {
    expect(seen.complain.refused).toBeUndefined();
    expect(seen.complain.listing).toEqual([`${name} (complain)`]);
    expect(seen.complain.readBack).toEqual([name]);
  });

  it("in complain mode an unlisted file is allowed and audited, a deny rule still refused", () => {
    expect(seen.complain).toMatchObject({ allowed: 0, denyRule: 1, unlisted: 0 });
    expect(seen.complain.audit).toEqual(["ALLOWED open /etc/hostname"]);
  });

  it("removes it: gone from the kernel's list and from the read-back, and no process can run under it", () => {
    expect(seen.removed.listing).toEqual([]);
    expect(seen.removed.readBack).toEqual([]);
    expect(seen.removed.exec).not.toBe(0);
  });

  it("reports removing a profile that is not loaded as an error (the parser's 'doesn't exist')", () => {
    expect(seen.removeAgain).toMatch(/Profile doesn't exist/);
  });

  it("refuses hostile policies on this kernel's ABI as on the host's, before anything is loaded", () => {
    expect(seen.hostile).toEqual({
      kill: expect.stringContaining("flags set mode kill"),
      attachment: expect.stringContaining("the profile has an attachment"),
      "second profile": expect.stringContaining('declares a second profile "docker-default"'),
      namespace: expect.stringContaining('into the AppArmor policy namespace "lockstep-evil"'),
      hat: expect.stringContaining(`declares the hat "${name}//hat"`),
      "foreign include": expect.stringContaining('includes "/etc/shadow"'),
    });
    expect(seen.finalListing).toEqual([]);
  });

  it("an empty compiled policy 'loads' without error and loads nothing: only the read-back tells", () => {
    expect(seen.emptyLoad).toEqual({ ok: true, readBack: [] });
  });

  it("a reboot leaves no policy: the next boot's kernel lists nothing", async () => {
    const next = await guest.run(["cat", "/sys/kernel/security/apparmor/profiles"]);
    expect(next).toMatchObject({ status: 0, stdout: "" });
  });
});
