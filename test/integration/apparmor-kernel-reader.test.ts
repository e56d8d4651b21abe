// The agent's reader of compiled AppArmor policy (node-agent/compiled-policy.ts) against a real AppArmor
// kernel, the authority on what the bytes mean: every published profile of the corpus and every variant
// (modes, attachments, hats and children, namespaces, several profiles), compiled with the agent's own
// apparmor_parser arguments on this host (ABI v5) and in the guest, whose kernel has AppArmor (ABI v7,
// where --Complain is a header flag), each with and without --Complain; the guest's kernel loads each
// one, and the reader must tell every profile's name, namespace, mode, attachment and hat as the kernel
// lists it and acts on it.
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCompiledPolicy } from "../../node-agent/compiled-policy.ts";
import {
  type CompiledCase,
  compileAndObserve,
  kernelAccount,
  type PolicyCase,
  readerAccount,
  sortedAccounts,
} from "../harness/apparmor-kernel.ts";
import { AppArmorGuest } from "../harness/uml.ts";

const corpus = join(import.meta.dirname, "../fixtures/apparmor-corpus");
const published = (file: string) => readFileSync(join(corpus, file), "utf8");

let guest: AppArmorGuest;
let compiled: CompiledCase[];

function cases(dir: string): PolicyCase[] {
  const program = join(dir, "bin", "busybox");
  return [
    ...["docker-default", "cri-containerd.apparmor.d", "cri-containerd-no-tunables", "nerdctl-default"].map(
      (id) => ({ id, text: published(`${id}.apparmor`) }),
    ),
    {
      id: "names",
      text: published("docker-default.apparmor").replace(
        /}\n$/,
        "  ^hat {\n  }\n  profile kid {\n  }\n}\nprofile second /usr/bin/x flags=(complain) {\n}\n",
      ),
    },
    { id: "enforce", text: "profile web {\n  /etc/** r,\n}\n" },
    { id: "complain-flag", text: "profile web flags=(complain) {\n}\n" },
    { id: "kill", text: "profile web flags=(kill) {\n}\n" },
    { id: "unconfined", text: "profile web flags=(unconfined) {\n}\n" },
    { id: "odd-spelling", text: "profile web flags = ( attach_disconnected , complain ) {\n}\n" },
    { id: "attach-glob", text: `profile web ${dir}/bin/** {\n  file,\n}\n`, exec: program },
    { id: "attach-exact", text: "profile web /usr/bin/foo {\n}\n" },
    { id: "attach-variable", text: "@{exe}=/usr/bin/*\nprofile web @{exe} {\n}\n" },
    { id: "named-by-path", text: `${program} {\n  file,\n}\n`, exec: program },
    { id: "named-by-glob", text: `profile ${dir}/bin/* {\n  file,\n}\n`, exec: program },
    { id: "xattrs", text: "profile web xattrs=(user.lockstep=1) {\n}\n" },
    {
      id: "hats",
      text: "profile web {\n  file,\n  ^hat {\n    file,\n  }\n  profile kid {\n    file,\n  }\n  profile kid2 /bin/** {\n  }\n}\n",
    },
    {
      id: "unconfined-hat",
      text: "profile web flags=(enforce) {\n  file,\n  ^h flags=(unconfined) {\n  }\n}\n",
    },
    { id: "namespace", text: "profile :lockstep-evil:web {\n}\n" },
    { id: "namespace-quoted", text: 'profile ":lockstep-evil:web" {\n}\n' },
    { id: "namespace-then-plain", text: "profile :lockstep-evil:web {\n}\nprofile other {\n}\n" },
    { id: "plain-then-namespace", text: "profile other {\n}\nprofile :lockstep-evil:web {\n}\n" },
    { id: "colon-in-name", text: 'profile "a:b" {\n}\n' },
    { id: "two-profiles", text: "profile web {\n}\nprofile web-evil flags=(kill) {\n}\n" },
  ];
}

beforeAll(async () => {
  guest = AppArmorGuest.create();
  mkdirSync(join(guest.dir, "bin"));
  copyFileSync("/usr/bin/busybox", join(guest.dir, "bin", "busybox"));
  compiled = await compileAndObserve(guest, cases(guest.dir));
}, 300_000);

afterAll(() => {
  guest?.dispose();
});

describe("the reader of compiled policy, against the kernel", () => {
  it("saw every case in all four forms, the guest's compiles in ABI v7 and the host's in v5", () => {
    expect(compiled.length).toBe(cases("/x").length * 4);
    const abi = (bytes: Buffer) =>
      bytes.readUInt32LE(bytes.indexOf("version\0") + "version\0".length + 1) & 0x3ff;
    for (const c of compiled)
      expect([c.id, c.form, abi(c.bytes)]).toEqual([c.id, c.form, c.form.startsWith("guest") ? 7 : 5]);
  });

  it("tells every profile's name, namespace, mode, attachment and hat as the kernel has them", () => {
    for (const c of compiled) {
      expect({ case: `${c.id}.${c.form}`, loaded: c.kernel.loadStatus, error: c.kernel.loadError }).toEqual({
        case: `${c.id}.${c.form}`,
        loaded: 0,
        error: "",
      });
      expect({
        case: `${c.id}.${c.form}`,
        profiles: sortedAccounts(readerAccount(readCompiledPolicy(c.bytes))),
      }).toEqual({ case: `${c.id}.${c.form}`, profiles: sortedAccounts(kernelAccount(c.kernel)) });
      expect([`${c.id}.${c.form}`, c.kernel.leftAfterRemoval]).toEqual([`${c.id}.${c.form}`, []]);
    }
  });

  it("reads --Complain as complain in both formats, whatever mode the profile's flags set (the kernel's rule)", () => {
    for (const c of compiled.filter((c) => c.form.endsWith("complain")))
      expect([c.id, c.form, readCompiledPolicy(c.bytes).map((p) => p.mode)]).toEqual([
        c.id,
        c.form,
        readCompiledPolicy(c.bytes).map(() => "complain"),
      ]);
  });

  it("probed the hats for real: a confined process changes into a hat and not into another child", () => {
    const hats = compiled.find((c) => c.id === "hats" && c.form === "guest")?.kernel.hats;
    expect(hats).toEqual({ "web//hat": true, "web//kid": false, "web//kid2": false });
  });

  it("matches executables exactly when the kernel confines a program run from a matching path", () => {
    for (const c of compiled.filter((c) =>
      ["attach-glob", "named-by-path", "named-by-glob"].includes(c.id),
    )) {
      const [own] = readCompiledPolicy(c.bytes);
      expect(own?.matchesExecutables).toBe(true);
      expect([c.id, c.form, c.kernel.execLabel]).toEqual([c.id, c.form, `${own?.name} (${own?.mode})`]);
    }
  });
});
