// What `lockstep record` prints is ready for `kubectl apply`: the real kubectl sends both profiles to a
// real API server, whose CRD schema accepts them, and skips the securityContext comment.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane, kubectlBinary, waitFor } from "../harness/controlplane.ts";

const root = `${import.meta.dirname}/../..`;
const cli = join(root, "src/cli/main.ts");
const work = mkdtempSync(join(tmpdir(), "lockstep-record-apply-"));
const volume = mkdtempSync(join(tmpdir(), "lockstep-volume-"));

let cp: ControlPlane;

beforeAll(async () => {
  cp = await ControlPlane.start({ scheduler: false, controllerManager: false });
  await cp.applyFile(`${root}/crds/lockstep.dev_seccompprofiles.yaml`);
  await cp.applyFile(`${root}/crds/lockstep.dev_apparmorprofiles.yaml`);
});

afterAll(async () => {
  await cp?.stop();
  for (const dir of [work, volume]) rmSync(dir, { recursive: true, force: true });
});

const kubectl = (args: string[]) =>
  spawnSync(kubectlBinary(), ["--kubeconfig", cp.adminKubeconfigPath, ...args], { encoding: "utf8" });

describe("lockstep record | kubectl apply", () => {
  it("creates the SeccompProfile and the AppArmorProfile, with the proven capability, and nothing else", async () => {
    // coreutils' install -o: a recording with files, a socket family and proven capabilities in it.
    const recorded = spawnSync(
      process.execPath,
      [
        cli,
        "record",
        "--name",
        "owned",
        "--writable",
        volume,
        "--",
        "install",
        "-o",
        "1",
        "/etc/hostname",
        join(volume, "f"),
      ],
      { encoding: "utf8" },
    );
    expect(recorded.status, recorded.stderr).toBe(0);
    const file = join(work, "owned.yaml");
    writeFileSync(file, recorded.stdout);

    // The CRDs are served once established; until then kubectl does not know the kinds.
    await waitFor(
      "the CRDs served",
      async () => kubectl(["get", "seccompprofiles,apparmorprofiles"]).status === 0,
    );
    const applied = kubectl(["apply", "-f", file]);
    expect(applied.status, applied.stderr).toBe(0);
    expect(applied.stdout).toBe(
      "seccompprofile.lockstep.dev/owned created\napparmorprofile.lockstep.dev/owned created\n",
    );
    const appArmor = JSON.parse(kubectl(["get", "apparmorprofile", "owned", "-o", "json"]).stdout);
    expect(appArmor.spec.capabilities).toContain("chown");
    expect(appArmor.spec.executables).toEqual(["/usr/bin/install"]);
    const seccomp = JSON.parse(kubectl(["get", "seccompprofile", "owned", "-o", "json"]).stdout);
    expect(seccomp.spec.syscalls[0].names).toContain("fchownat");
  });
});
