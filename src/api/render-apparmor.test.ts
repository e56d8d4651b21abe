import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
  type AppArmorProfileSpecInput,
  AppArmorProfileSpecSchema,
  parseAppArmorProfileSpec,
} from "./apparmor.ts";
import { appArmorProfileVersion, renderAppArmorProfile } from "./render-apparmor.ts";

const PARSER = "/usr/sbin/apparmor_parser";
const workDir = mkdtempSync(join(tmpdir(), "lockstep-apparmor-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/**
 * Compile with the real parser without loading (-Q: skip the kernel, -K: no cache), with the system's
 * tunables and abstractions, as the agent does. Returns the parser's error text, or "" when it compiled.
 */
function compile(name: string, text: string): string {
  const file = join(workDir, name);
  writeFileSync(file, text);
  try {
    execFileSync(PARSER, ["-Q", "-K", file], { stdio: ["ignore", "pipe", "pipe"] });
    return "";
  } catch (error) {
    return String((error as { stderr?: Buffer }).stderr ?? error);
  }
}

function render(name: string, input: AppArmorProfileSpecInput): string {
  const result = renderAppArmorProfile(name, AppArmorProfileSpecSchema.parse(input));
  if (!result.ok) throw new Error(result.message);
  return result.text;
}

function rejection(name: string, input: AppArmorProfileSpecInput): string {
  const result = renderAppArmorProfile(name, AppArmorProfileSpecSchema.parse(input));
  return result.ok ? "" : result.message;
}

const structuredSpecs: [string, AppArmorProfileSpecInput][] = [
  ["empty", {}],
  [
    "web",
    {
      executables: ["/usr/bin/curl", "/bin/*"],
      paths: {
        readOnly: ["/etc/**", "/usr/share/nginx/**"],
        readWrite: ["/var/cache/nginx/**"],
        writeOnly: ["/var/log/x.log"],
      },
      network: {
        families: ["inet", "inet6", "unix", "netlink", "packet"],
        protocols: ["tcp", "udp", "icmp"],
      },
      capabilities: ["net_bind_service", "setuid", "setgid", "checkpoint_restore"],
    },
  ],
  ["audit.complain", { mode: "complain", paths: { readOnly: ["/a/@b/~c%d:e=f+g/?/**"] } }],
  ["net-only-protocols", { network: { protocols: ["tcp"] } }],
  ["net-only-families", { network: { families: ["unix"] } }],
];

describe("renderAppArmorProfile with the real apparmor_parser", () => {
  // Never skipped: a machine without the parser fails here and says how to get it.
  it("has the parser installed", () => {
    expect(existsSync(PARSER), `${PARSER} is missing: apt-get install apparmor`).toBe(true);
  });

  it("is a real check: the parser rejects broken policy", () => {
    expect(compile("broken", "profile broken {\n  capability no_such_cap,\n}\n")).toContain(
      "Invalid capability",
    );
  });

  it.each(structuredSpecs)("compiles the structured profile %s, under its kernel name", (name, spec) => {
    expect(compile(name, render(name, spec))).toBe("");
    const names = execFileSync(PARSER, ["-N", join(workDir, name)], { stdio: ["ignore", "pipe", "ignore"] });
    expect(names.toString("utf8")).toBe(`lockstep.${name}\n`);
  });

  it("compiles any structured profile the schema accepts", () => {
    const path = fc.stringMatching(/^\/[a-z0-9._\-/*?+=:@~%]{0,30}$/);
    const spec = fc.record(
      {
        executables: fc.array(path, { maxLength: 3 }),
        paths: fc.record({
          readOnly: fc.array(path, { maxLength: 3 }),
          writeOnly: fc.array(path, { maxLength: 2 }),
        }),
        capabilities: fc.subarray(["chown", "kill", "net_raw", "sys_nice"] as const),
        mode: fc.constantFrom("enforce" as const, "complain" as const),
      },
      { requiredKeys: [] },
    );
    // Each run starts a parser process; a few runs cover the grammar without slowing the suite.
    fc.assert(
      fc.property(spec, (input) => {
        expect(compile("generated", render("generated", input))).toBe("");
      }),
      { numRuns: 8 },
    );
  });

  it("hands raw policy over unchanged, whatever the mode (the agent loads complain with --Complain)", () => {
    const raw = `abi <abi/3.0>,
#include <tunables/global>

profile lockstep.raw-web flags=(attach_disconnected) {
  #include <abstractions/base>
  include if exists <abstractions/nameservice>
  @{PROC}/@{pid}/stat r,
  /etc/{passwd,group} r,
  "/srv/with space/**" r,  # a comment with { and }, that says include <local/x>
  deny /etc/shadow rw,
}
`;
    expect(render("raw-web", { rawPolicy: raw })).toBe(raw);
    expect(render("raw-web", { rawPolicy: raw, mode: "complain" })).toBe(raw);
    expect(compile("raw-web", raw)).toBe("");
  });
});

describe("renderAppArmorProfile", () => {
  it("renders the exact structured profile", () => {
    expect(
      render("web", {
        executables: ["/usr/bin/curl"],
        paths: { readOnly: ["/etc/**"], readWrite: ["/data/**"], writeOnly: ["/log"] },
        network: { families: ["inet", "unix"], protocols: ["tcp"] },
        capabilities: ["chown"],
        mode: "complain",
      }),
    ).toBe(`#include <tunables/global>

profile lockstep.web flags=(attach_disconnected,mediate_deleted,complain) {
  #include <abstractions/base>
  /usr/bin/curl rix,
  /etc/** r,
  /data/** rw,
  /log w,
  network inet tcp,
  network unix,
  capability chown,
}
`);
  });

  it("gives a version of the rendered text and the mode", () => {
    const text = render("web", {});
    expect(appArmorProfileVersion(text, "enforce")).toMatch(/^[0-9a-f]{12}$/);
    expect(appArmorProfileVersion(text, "complain")).not.toBe(appArmorProfileVersion(text, "enforce"));
  });

  it.each([
    [
      "quoted name (Docker's and containerd's templates)",
      'profile "lockstep.web" flags=(attach_disconnected) {\n}\n',
    ],
    [
      "a comment that mentions include",
      "# include <local/web> is not used here\nprofile lockstep.web {\n}\n",
    ],
    [
      "a variable in the header",
      "@{exec}=/usr/bin/web\nprofile lockstep.web flags=(complain) {\n  @{exec} r,\n}\n",
    ],
    [
      "includes of tunables and abstractions",
      "include <tunables/global>\nprofile lockstep.web {\n  #include <abstractions/base>\n  include if exists <abstractions/nameservice>\n}\n",
    ],
  ])("accepts raw policy with %s, unchanged", (_case, rawPolicy) => {
    expect(render("web", { rawPolicy })).toBe(rawPolicy);
  });

  it.each([
    ["another profile name", "profile other {\n}\n", 'must declare "profile lockstep.web {"'],
    ["the bare object name", "profile web {\n}\n", 'must declare "profile lockstep.web {"'],
    ["a runtime's name", "profile cri-containerd.apparmor.d {\n}\n", 'must declare "profile lockstep.web {"'],
    ["no profile", "#include <tunables/global>\n", 'must declare "profile lockstep.web {"'],
    [
      "file include",
      'profile lockstep.web {\n  #include "/etc/shadow"\n}\n',
      'line 2: "#include \\"/etc/shadow\\"": may include only',
    ],
    ["absolute include", "profile lockstep.web {\n  include </etc/shadow>\n}\n", "line 2: "],
    [
      "escaping include",
      "profile lockstep.web {\n  #include <abstractions/../../../etc/shadow>\n}\n",
      "may include only",
    ],
    [
      "local include",
      "profile lockstep.web {\n  include if exists <local/web>\n}\n",
      'line 2: "include if exists <local/web>"',
    ],
    ["mid-line include", 'profile lockstep.web { #include "/tmp/evil"\n}\n', "line 1: "],
    ["include after a rule", 'profile lockstep.web {\n  /a r, include "/tmp/evil"\n}\n', "line 2: "],
    ["relative include", "profile lockstep.web {\n  include ../../etc/shadow\n}\n", "line 2: "],
    ["nul", "profile lockstep.web {\n}\0", "NUL"],
  ])("rejects raw policy with %s", (_case, rawPolicy, message) => {
    expect(rejection("web", { rawPolicy })).toContain(message);
  });

  it("names the object in raw policy errors", () => {
    expect(rejection("web", { rawPolicy: "include <local/x>\nprofile lockstep.web {\n}\n" })).toMatch(
      /^AppArmorProfile "web": spec\.rawPolicy: /,
    );
  });
});

describe("AppArmorProfileSpec", () => {
  function messageFor(input: unknown): string {
    const parsed = parseAppArmorProfileSpec("web", input);
    return parsed.ok ? "" : parsed.message;
  }

  it("defaults to enforce mode", () => {
    expect(AppArmorProfileSpecSchema.parse({}).mode).toBe("enforce");
  });

  // Each would end the rule, open a block, start a comment, pull in a file or add a permission.
  it.each([
    "/etc/passwd r,\n  /** rwx",
    "/etc/x,",
    "/etc/{shadow,passwd}",
    "/tmp/x }\nprofile evil {",
    "/tmp/# comment",
    '/tmp/"quoted"',
    "/tmp/x rwx",
    "/tmp/\tx",
    "relative/path",
    "@{HOME}/x",
    "/tmp/\\x",
    "/tmp/[a-z]",
    "/tmp/x\u2028y",
    "",
  ])("rejects the hostile path %j", (path) => {
    expect(messageFor({ paths: { readOnly: [path] } })).toContain("spec.paths.readOnly[0]: invalid path");
    expect(messageFor({ executables: [path] })).toContain("spec.executables[0]: invalid path");
  });

  it("rejects hostile paths whatever their content", () => {
    const hostile = fc.constantFrom(..." \n\t,{}#\"'\\[]^!$()<>;&|`\r");
    fc.assert(
      fc.property(
        fc.string({ maxLength: 10 }),
        hostile,
        fc.string({ maxLength: 10 }),
        (before, bad, after) => {
          expect(messageFor({ paths: { readWrite: [`/${before}${bad}${after}`] } })).toContain(
            "invalid path",
          );
        },
      ),
    );
  });

  it.each([
    [{ capabilities: ["CAP_SYS_ADMIN"] }, 'spec.capabilities[0]: unknown capability "CAP_SYS_ADMIN"'],
    [{ capabilities: ["sys_admin, /** rwx"] }, "spec.capabilities[0]: unknown capability"],
    [{ network: { families: ["inet\n"] } }, "spec.network.families[0]: unknown network family"],
    [{ network: { protocols: ["sctp"] } }, 'spec.network.protocols[0]: unknown network protocol "sctp"'],
    [
      { network: { families: ["inet6"], protocols: ["icmp"] } },
      "spec.network.families[0]: none of the protocols (icmp) applies to inet6",
    ],
    [
      { rawPolicy: "profile web {\n}\n", capabilities: ["chown"] },
      "spec.capabilities: cannot be combined with rawPolicy",
    ],
    [{ mode: "kill" }, 'spec.mode: unknown mode "kill"'],
    [{ paths: { execute: ["/x"] } }, 'spec.paths: Unrecognized key: "execute"'],
  ])("rejects %j", (input, message) => {
    expect(messageFor(input)).toContain(message);
  });
});
