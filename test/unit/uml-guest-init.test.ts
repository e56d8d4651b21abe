// The AppArmor guest's PID 1 script (test/harness/uml.ts): what it runs and with which environment,
// without booting a kernel.
import { describe, expect, it } from "vitest";
import { guestInit, hiddenHostFolders, shellQuote } from "../harness/uml.ts";

describe("guestInit", () => {
  const script = guestInit("/tmp/lockstep-uml-x", ["node", "it's.ts", "$HOME"], {
    env: { PATH: "/opt/node/bin" },
    cwd: "/work/repo",
  });

  it("keeps init's own PATH whatever PATH the command gets, so it can always power off", () => {
    const lines = script.split("\n");
    expect(lines[2]).toBe("export PATH='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'");
    expect(script).toContain("'PATH=/opt/node/bin'");
    expect(lines.findIndex((l) => l.startsWith("poweroff"))).toBeGreaterThan(0);
  });

  it("passes every argument as one word, whatever it holds", () => {
    expect(script).toContain(`'node' 'it'\\''s.ts' '$HOME'`);
    expect(shellQuote("a'b c")).toBe(`'a'\\''b c'`);
  });

  it("shares the folder read-write at its own path after the tmpfs mounts that could hide it", () => {
    const tmpfs = script.indexOf("mount -t tmpfs tmpfs /tmp");
    const share = script.indexOf("mount -t hostfs none '/tmp/lockstep-uml-x' -o '/tmp/lockstep-uml-x'");
    expect(tmpfs).toBeGreaterThan(0);
    expect(share).toBeGreaterThan(tmpfs);
    expect(script).toContain("cd '/work/repo'");
  });

  it("waits rather than exits when no power-off comes (an exiting init panics the kernel), without spinning", () => {
    expect(script.trimEnd().split("\n").at(-1)).toBe("while sleep 3600; do :; done");
  });

  it("configures the network only when asked", () => {
    expect(script).not.toContain("eth0");
    expect(guestInit("/d", ["true"], { network: true })).toContain("ip addr add 10.0.2.15/24 dev eth0");
  });
});

describe("hiddenHostFolders", () => {
  it("mounts back a checkout or a Node under the guest's tmpfs folders, once, and nothing else", () => {
    expect(hiddenHostFolders(["/work/main", "/usr/local"])).toEqual([]);
    expect(hiddenHostFolders(["/tmp/ci-clone", "/tmp/ci-clone/.tools/node-v24"])).toEqual(["/tmp/ci-clone"]);
    expect(hiddenHostFolders(["/tmp/a", "/run/b", "/tmp/a"])).toEqual(["/run/b", "/tmp/a"]);
    expect(hiddenHostFolders(["/tmp", "/tmpx/y"])).toEqual([]);
  });

  it("has init mount them read-only after its tmpfs, before the shared folder", () => {
    const init = guestInit("/tmp/lockstep-uml-x", ["true"]);
    const lines = init.split("\n");
    const tmpfs = lines.indexOf("mount -t tmpfs tmpfs /tmp");
    const shared = lines.findIndex((l) => l.startsWith("mount -t hostfs none '/tmp/lockstep-uml-x'"));
    expect(tmpfs).toBeGreaterThan(0);
    expect(shared).toBeGreaterThan(tmpfs);
    for (const line of lines.filter((l) => l.startsWith("mount -r -t hostfs"))) {
      expect(lines.indexOf(line)).toBeGreaterThan(tmpfs);
      expect(lines.indexOf(line)).toBeLessThan(shared);
    }
  });
});
