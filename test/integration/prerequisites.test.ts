// A newcomer's first `make test` or `make demo` on a machine lacking Debian packages: not root, it stops
// at once with the exact line to run (as root it installs them: what CI does, .ci/run).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const script = join(import.meta.dirname, "../../tools/prerequisites.sh");

describe("tools/prerequisites.sh", () => {
  it("stops a user who is not root within seconds, with the apt-get line for what is missing", () => {
    const started = Date.now();
    // No PATH but bash's folder: every command-named prerequisite is missing outside /usr/sbin.
    const result = spawnSync(
      "/usr/bin/setpriv",
      ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/bash", script],
      {
        encoding: "utf8",
        env: { PATH: "/nonexistent" },
      },
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /^ {2}sudo apt-get update && sudo apt-get install -y .*\bbusybox-static\b.*\bstrace\b/m,
    );
    expect(result.stdout).toBe("");
  });

  it("adds the benchmarks' load generator and core pinning for `make bench`, and only then", () => {
    const missingFor = (...args: string[]) =>
      spawnSync(
        "/usr/bin/setpriv",
        ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/bash", script, ...args],
        {
          encoding: "utf8",
          env: { PATH: "/nonexistent" },
        },
      ).stderr;
    expect(missingFor("bench")).toMatch(/install -y .*\bwrk\b/);
    expect(missingFor()).not.toMatch(/\bwrk\b/);
  });

  it("says nothing and succeeds when everything is there (this machine ran it through .ci/run)", () => {
    const result = spawnSync("/bin/bash", [script], { encoding: "utf8" });
    expect(result.status).toBe(0);
    expect(result.stdout + result.stderr).toBe("");
  });
});
