// apparmor_parser as the judge of what a policy declares, with the real parser: published profiles
// that follow Lockstep's rules pass unchanged, published ones that do not are refused with the reason,
// and hostile variants (written on purpose to get a second profile, an attachment, another mode or a
// foreign file past a check) are refused naming what to change.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AppArmorMode } from "../src/api/apparmor.ts";
import { appArmorKernelName } from "../src/api/labels.ts";
import { type AppArmorPaths, judgeAndCompile } from "./apparmor.ts";
import { readCompiledPolicy } from "./compiled-policy.ts";

const PARSER = "/usr/sbin/apparmor_parser";
const paths: AppArmorPaths = {
  securityfs: "/nonexistent",
  enabledParameter: "/nonexistent",
  parser: PARSER,
  bootId: "/nonexistent",
};
const corpus = join(import.meta.dirname, "../test/fixtures/apparmor-corpus");
const published = (file: string) => readFileSync(join(corpus, file), "utf8");

/** The verdict on `text` as the policy of the AppArmorProfile `name` (kernel name `lockstep.<name>`). */
async function verdict(text: string, name: string, mode: AppArmorMode = "enforce"): Promise<string> {
  const judged = await judgeAndCompile(paths, text, { name: appArmorKernelName(name), mode });
  return judged.ok ? "ok" : judged.message;
}

describe("the real apparmor_parser", () => {
  it("is installed (never skipped: apt-get install apparmor)", () => {
    expect(existsSync(PARSER)).toBe(true);
  });

  it("and Lockstep's reader of its compiled output agree on the names in a policy", () => {
    const text = published("docker-default.apparmor").replace(
      /}\n$/,
      "  ^hat {\n  }\n  profile kid {\n  }\n}\nprofile second /usr/bin/x flags=(complain) {\n}\n",
    );
    const file = join(mkdtempSync(join(tmpdir(), "lockstep-corpus-")), "policy");
    writeFileSync(file, text);
    const parse = (...args: string[]) =>
      execFileSync(PARSER, [...args, file], { stdio: ["ignore", "pipe", "ignore"] });
    const compiled = parse("-Q", "-K", "-S");
    const names = parse("-N");
    rmSync(dirname(file), { recursive: true });
    const read = readCompiledPolicy(compiled);
    expect(read.map((p) => p.name).sort()).toEqual(names.toString("utf8").trim().split("\n").sort());
    expect(read.find((p) => p.name === "second")).toMatchObject({
      mode: "complain",
      matchesExecutables: true,
    });
    expect(read.find((p) => p.name === "lockstep.docker-default//hat")).toMatchObject({ hat: true });
  });
});

describe("published profiles that follow the rules compile unchanged", () => {
  it.each([
    ["docker-default.apparmor", "docker-default"],
    ["cri-containerd.apparmor.d.apparmor", "cri-containerd.apparmor.d"],
    ["cri-containerd-no-tunables.apparmor", "cri-containerd-no-tunables"],
    ["nerdctl-default.apparmor", "nerdctl-default"],
  ])("%s", async (file, name) => {
    expect(await verdict(published(file), name)).toBe("ok");
    expect(await verdict(published(file), name, "complain")).toBe("ok");
  });
});

describe("published profiles that do not follow the rules are refused, naming why", () => {
  const onDebian12 = (text: string) => text.replace("abi <abi/5.0>,", "abi <abi/3.0>,");
  it.each([
    ["lsb_release.apparmor", "lsb_release", /line 7: Could not open 'abi\/5.0'/],
    ["bin.ping.apparmor", "ping", /line 12: Could not open 'abi\/5.0'/],
    ["unprivileged_userns.apparmor", "unprivileged_userns", /line 4: Could not open 'abi\/5.0'/],
  ])("%s as published: an ABI this parser does not ship", async (file, name, reason) => {
    expect(await verdict(published(file), name)).toMatch(reason);
  });

  it("unprivileged_userns on Debian 12's ABI: the parser names the AppArmor 4 rule it cannot read", async () => {
    expect(
      await verdict(onDebian12(published("unprivileged_userns.apparmor")), "unprivileged_userns"),
    ).toMatch(/^AppArmor parser error for spec.rawPolicy in profile spec.rawPolicy at line 18: syntax error/);
  });

  it("ping on Debian 12's ABI: its node-local include; without it, the parser names its AppArmor 4 variable", async () => {
    const text = onDebian12(published("bin.ping.apparmor"));
    expect(await verdict(text, "ping")).toMatch(/^line 30: "include if exists <local\/bin.ping>": includes/);
    const withoutLocal = text.replace(/^ {2}include if exists <local\/bin.ping>\n/m, "");
    expect(await verdict(withoutLocal, "ping")).toMatch(/Found reference to variable exec_path/);
  });

  it("lsb_release on Debian 12's ABI: the parser names the abstraction this system lacks", async () => {
    expect(await verdict(onDebian12(published("lsb_release.apparmor")), "lsb_release")).toMatch(
      /^AppArmor parser error for spec.rawPolicy in profile spec.rawPolicy at line 15: Could not open 'abstractions\/terminfo'/,
    );
  });
});

describe("no object reaches a kernel name that is not Lockstep's", () => {
  // The runtimes' templates rendered with their own names, as the runtime loads them: an object of that
  // name would have taken over the runtime's default profile before its lazy load (issue 23).
  const asTheRuntimeRendersIt = (file: string, name: string) =>
    published(file).replaceAll(appArmorKernelName(name), name);
  it.each([
    ["cri-containerd.apparmor.d.apparmor", "cri-containerd.apparmor.d"],
    ["docker-default.apparmor", "docker-default"],
    ["nerdctl-default.apparmor", "nerdctl-default"],
  ])("%s under the runtime's own name", async (file, name) => {
    for (const mode of ["enforce", "complain"] as const)
      expect(await verdict(asTheRuntimeRendersIt(file, name), name, mode)).toContain(
        `declares a second profile "${name}"`,
      );
  });

  it.each([
    ["crio-default", "profile crio-default flags=(complain) {\n  file,\n}\n"],
    ["unconfined", "profile unconfined {\n  file,\n}\n"],
    ["docker-default", 'profile "docker-default" flags=(attach_disconnected) {\n  file,\n}\n'],
  ])("an object named %s declaring that name", async (name, text) => {
    const message = await verdict(text, name);
    expect(message).not.toBe("ok");
    expect(message).toContain(`declares no profile named "lockstep.${name}"`);
  });

  it("its kernel name beside a runtime's name", async () => {
    const text = `profile lockstep.web {\n}\nprofile cri-containerd.apparmor.d flags=(complain) {\n  file,\n}\n`;
    expect(await verdict(text, "web")).toBe(
      'line 3: "profile cri-containerd.apparmor.d flags=(complain) {": declares a second profile "cri-containerd.apparmor.d": an AppArmorProfile loads exactly one profile, "lockstep.web" (its kernel name); make it an object of its own',
    );
  });

  it("the bare object name, as the texts said before the prefix", async () => {
    expect(await verdict("profile web {\n}\n", "web")).toContain('declares a second profile "web"');
  });

  it("a kernel name inside the prefix that is not the object's", async () => {
    expect(await verdict("profile lockstep.other {\n}\n", "web")).toContain(
      'declares a second profile "lockstep.other"',
    );
    expect(await verdict('profile "lockstep.web " {\n}\n', "web")).toContain(
      'declares a second profile "lockstep.web "',
    );
  });
});

describe("hostile raw policies are refused", () => {
  const base =
    "#include <tunables/global>\nprofile lockstep.web flags=(attach_disconnected) {\n  #include <abstractions/base>\n  /etc/** r,\n}\n";
  it.each([
    [
      "a second profile",
      `${base}profile cri-containerd.apparmor.d {\n}\n`,
      'line 6: "profile cri-containerd.apparmor.d {": declares a second profile "cri-containerd.apparmor.d"',
    ],
    [
      "a second profile named by a path, without the keyword",
      `${base}/usr/bin/sshd {\n}\n`,
      'declares a second profile "/usr/bin/sshd"',
    ],
    [
      "a second profile with a quoted name",
      `${base}profile "docker-default" {\n}\n`,
      'declares a second profile "docker-default"',
    ],
    [
      "a longer name starting with the object's",
      "profile lockstep.web-evil {\n}\n",
      'declares a second profile "lockstep.web-evil"',
    ],
    [
      "another policy namespace",
      "profile :lockstep-evil:lockstep.web {\n}\n",
      'line 1: "profile :lockstep-evil:lockstep.web {": loads "lockstep.web" into the AppArmor policy namespace "lockstep-evil"',
    ],
    [
      "a hat",
      "profile lockstep.web {\n  ^hat {\n    /** rw,\n  }\n}\n",
      'line 2: "^hat {": declares the hat "lockstep.web//hat"',
    ],
    [
      "a child profile",
      "profile lockstep.web {\n  profile kid /bin/** {\n  }\n}\n",
      'declares the child profile "lockstep.web//kid"',
    ],
    [
      "an attachment",
      "profile lockstep.web /bin/** {\n}\n",
      'line 1: "profile lockstep.web /bin/** {": the profile has an attachment',
    ],
    [
      "an attachment from a variable",
      "@{exe}=/usr/bin/*\nprofile lockstep.web @{exe} {\n}\n",
      "the profile has an attachment",
    ],
    [
      "flags=(unconfined)",
      "profile lockstep.web flags=(unconfined) {\n}\n",
      "flags set mode unconfined, but spec.mode is enforce",
    ],
    ["flags=(kill)", "profile lockstep.web flags=(kill) {\n}\n", "flags set mode kill"],
    [
      "complain in an odd spelling, with spec.mode enforce",
      "profile lockstep.web flags = ( attach_disconnected , complain ) {\n}\n",
      'line 1: "profile lockstep.web flags = ( attach_disconnected , complain ) {": the profile\'s flags set mode complain, but spec.mode is enforce',
    ],
    [
      "a mode without flags=",
      "profile lockstep.web (complain) {\n}\n",
      'line 1: "profile lockstep.web (complain) {": the profile\'s flags set mode complain',
    ],
    [
      "an attachment by extended attribute",
      "profile lockstep.web xattrs=(user.lockstep=1) {\n}\n",
      "the profile has an attachment",
    ],
    [
      "an unconfined hat under an enforcing profile",
      "profile lockstep.web flags=(enforce) {\n  ^h flags=(unconfined) {\n  }\n}\n",
      'declares the hat "lockstep.web//h"',
    ],
    [
      "an include hidden behind a quoted #",
      'profile lockstep.web {\n  "/tmp/#" r, include "/etc/hostname"\n}\n',
      'line 2: "\\"/tmp/#\\" r, include \\"/etc/hostname\\"": includes "/etc/hostname"',
    ],
    [
      "an include of the agent's own environment, hidden the same way",
      'profile lockstep.web {\n  "/x#" r, include "/proc/self/environ"\n}\n',
      'includes "/proc/self/environ"; only <tunables/...> and <abstractions/...> may be included',
    ],
    [
      "an include of an endless device, hidden the same way (refused at once, not hung)",
      'profile lockstep.web {\n  "/x#" r, include "/dev/zero"\n}\n',
      'includes "/dev/zero"',
    ],
    [
      "an include of itself",
      "profile lockstep.web {\n  include spec.rawPolicy\n}\n",
      'includes "spec.rawPolicy"',
    ],
    [
      "a relative include",
      "profile lockstep.web {\n  include tunables/global\n}\n",
      'includes "tunables/global"',
    ],
  ])("%s", async (_case, text, reason) => {
    expect(await verdict(text, "web")).toContain(reason);
  });

  it("reports nothing of a file it refused to include", async () => {
    const text = 'profile lockstep.web {\n  "/x#" r, include "/proc/self/environ"\n}\n';
    const message = await verdict(text, "web");
    expect(message).toContain('includes "/proc/self/environ"');
    expect(message).not.toContain(process.env.PATH ?? "PATH=");
  });

  it("accepts complain flags when spec.mode is complain, and compiles the mode in", async () => {
    const judged = await judgeAndCompile(paths, "profile lockstep.web flags=(complain) {\n}\n", {
      name: "lockstep.web",
      mode: "complain",
    });
    expect(judged.ok && readCompiledPolicy(judged.compiled).map((p) => p.mode)).toEqual(["complain"]);
    const forced = await judgeAndCompile(paths, "profile lockstep.web {\n}\n", {
      name: "lockstep.web",
      mode: "complain",
    });
    expect(forced.ok && readCompiledPolicy(forced.compiled).map((p) => p.mode)).toEqual(["complain"]);
  });
});
