// The raw AppArmor policies docs/security.md says the agent refuses on the node ("What the agent refuses,
// and why"), each with the part of the refusal that names what is wrong. One list for the agent process
// against the fake securityfs (agent-boundary.test.ts) and against the real kernel
// (apparmor-real-node.test.ts), so both prove the same cases.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { appArmorKernelName } from "../../src/api/labels.ts";

/** [object name, spec.rawPolicy, part of the InvalidPolicy message]. */
export const HOSTILE_RAW_POLICIES: readonly (readonly [string, string, string])[] = [
  [
    "second-profile",
    // Would replace containerd's own profile, unconfined, for every RuntimeDefault container.
    "profile lockstep.second-profile {\n}\nprofile cri-containerd.apparmor.d flags=(unconfined) {\n}\n",
    'line 3: "profile cri-containerd.apparmor.d flags=(unconfined) {": declares a second profile "cri-containerd.apparmor.d"',
  ],
  [
    "path-profile",
    "profile lockstep.path-profile {\n}\n/usr/sbin/sshd {\n}\n",
    'declares a second profile "/usr/sbin/sshd"',
  ],
  [
    "other-namespace",
    // The comment satisfies the CRD's cheap "declares profile <name>" rule; the parser is not fooled.
    "# profile lockstep.other-namespace\nprofile :lockstep-evil:lockstep.other-namespace {\n}\n",
    'loads "lockstep.other-namespace" into the AppArmor policy namespace "lockstep-evil"',
  ],
  [
    "with-hat",
    "profile lockstep.with-hat {\n  ^escape {\n  }\n}\n",
    'line 2: "^escape {": declares the hat "lockstep.with-hat//escape"',
  ],
  ["attached", "profile lockstep.attached /usr/bin/** {\n}\n", "the profile has an attachment"],
  [
    "attached-by-variable",
    "@{bins}=/usr/bin/*\nprofile lockstep.attached-by-variable @{bins} {\n}\n",
    "the profile has an attachment",
  ],
  [
    "unconfined-flag",
    "profile lockstep.unconfined-flag flags=(unconfined) {\n}\n",
    "flags set mode unconfined",
  ],
  ["kill-flag", "profile lockstep.kill-flag flags=(kill) {\n}\n", "flags set mode kill"],
  [
    "complain-flag",
    "profile lockstep.complain-flag flags = ( complain ) {\n}\n",
    "flags set mode complain, but spec.mode is enforce",
  ],
  [
    "hidden-include",
    'profile lockstep.hidden-include {\n  "/tmp/#" r, include "/etc/hostname"\n}\n',
    'line 2: "\\"/tmp/#\\" r, include \\"/etc/hostname\\"": includes "/etc/hostname"',
  ],
];

/** A policy of test/fixtures/apparmor-hostile/ (written as `profile hostile {`), declaring `name`'s kernel name. */
export function hostileFixture(file: string, name: string): string {
  return readFileSync(join(import.meta.dirname, "../fixtures/apparmor-hostile", file), "utf8").replace(
    "profile hostile {",
    `profile ${appArmorKernelName(name)} {`,
  );
}
