// The AppArmor guest itself (test/harness/uml.ts): a real kernel with AppArmor, the host's tools and this
// repository inside it, results out through the shared folder, and nothing left on the host afterwards,
// also when the command hangs or the test process dies.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppArmorGuest, runningGuestKernels, sweepAbandonedGuests } from "../harness/uml.ts";

let guest: AppArmorGuest;
beforeAll(() => {
  guest = AppArmorGuest.create();
});
afterAll(() => {
  guest?.dispose();
});

const guestPath = `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`;

describe("the AppArmor guest", () => {
  it("boots a kernel with AppArmor enabled and runs the host's node on this repository", async () => {
    const result = await guest.run(
      [
        "sh",
        "-c",
        "cat /sys/module/apparmor/parameters/enabled /sys/kernel/security/lsm; echo; node -p \"require('./package.json').name\"; echo to-stderr >&2; exit 7",
      ],
      { env: { PATH: guestPath }, cwd: join(import.meta.dirname, "../..") },
    );
    expect(result.stdout.split("\n")).toEqual(["Y", expect.stringContaining("apparmor"), "lockstep", ""]);
    expect(result.stderr).toBe("to-stderr\n");
    expect(result.status).toBe(7);
    expect(result.initUptimeSeconds).toBeGreaterThan(0);
  });

  it("shares its folder both ways, and sees the host read-only elsewhere", async () => {
    writeFileSync(join(guest.dir, "from-host"), "hello");
    const result = await guest.run([
      "sh",
      "-c",
      `cat from-host > from-guest; echo x > ${join(import.meta.dirname, "guest-was-here")} || echo refused`,
    ]);
    expect(readFileSync(join(guest.dir, "from-guest"), "utf8")).toBe("hello");
    expect(result.stdout).toBe("refused\n");
    expect(result.stderr).toMatch(/Read-only file system/);
    expect(existsSync(join(import.meta.dirname, "guest-was-here"))).toBe(false);
  });

  it("stops a command that hangs at the timeout, leaving no process", async () => {
    await expect(guest.run(["sleep", "600"], { timeoutMs: 8_000 })).rejects.toThrow(
      /did not finish \["sleep","600"\] within 8000 ms/,
    );
    expect(runningGuestKernels()).toEqual([]);
  });

  it("leaves no process when the test process dies mid-run, and the next guest removes its folder", async () => {
    // A stand-in test process: starts a guest that hangs, and is killed with SIGKILL (no clean-up runs).
    const script = join(guest.dir, "dies.ts");
    writeFileSync(
      script,
      `import { AppArmorGuest } from ${JSON.stringify(join(import.meta.dirname, "../harness/uml.ts"))};\n` +
        "const g = AppArmorGuest.create();\nconsole.log(g.dir);\nawait g.run(['sleep', '600']);\n",
    );
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    const dir = await new Promise<string>((resolve) =>
      child.stdout.once("data", (d) => resolve(String(d).trim())),
    );
    const kernels = () => runningGuestKernels(child.pid);
    for (let i = 0; i < 100 && kernels().length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(kernels().length).toBeGreaterThan(0);
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    for (let i = 0; i < 50 && kernels().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(kernels()).toEqual([]);
    expect(existsSync(dir)).toBe(true);
    sweepAbandonedGuests();
    expect(existsSync(dir)).toBe(false);
  });

  it("dispose() removes its folder", () => {
    const other = AppArmorGuest.create();
    mkdirSync(join(other.dir, "sub"));
    other.dispose();
    expect(existsSync(other.dir)).toBe(false);
  });
});
