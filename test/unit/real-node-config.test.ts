// The configurations a real test node runs with keep it to its own folder and to loopback: every
// absolute path either containerd or the kubelet is told to write lies under the node's folder (or is
// a read-only system path), and every address it serves on is the node's own loopback address.
import { describe, expect, it } from "vitest";
import type { NodeRecord } from "../harness/node-cleanup.ts";
import { CNI_PLUGIN_DIR, containerdConfig, kubeletConfig, nodeAddress, RUNC } from "../harness/real-node.ts";

const dir = "/tmp/lockstep-cp-abc/nodes/real-1";
const record: NodeRecord = {
  name: "real-1",
  dir,
  containerdAddress: `${dir}/containerd.sock`,
  cgroupRoot: "/lockstep-real-1-0a0b0c",
  ownerPid: 1,
};
const address = nodeAddress();
/** Read-only inputs from the machine: the runc binary and the CNI plugins. */
const READ_ONLY = [RUNC, CNI_PLUGIN_DIR];

describe("a real node's containerd configuration", () => {
  const toml = containerdConfig(dir, record.containerdAddress, address);
  const paths = [...toml.matchAll(/'(\/[^']*)'/g)].map((m) => m[1] ?? "");

  it("writes only below the node's folder", () => {
    expect(paths.length).toBeGreaterThan(5);
    for (const path of paths.filter((p) => !READ_ONLY.includes(p)))
      expect(path.startsWith(`${dir}/`)).toBe(true);
    // Without these, containerd falls back to /var/lib/containerd, /run/containerd and /var/run/netns.
    for (const key of ["root", "state", "address", "Root", "conf_dir"])
      expect(toml).toMatch(new RegExp(`\\b${key} = '${dir}/`));
    expect(toml).toMatch(/netns_mounts_under_state_dir = true/);
  });

  it("streams only on the node's loopback address", () => {
    expect(toml).toContain(`stream_server_address = '${address}'`);
  });
});

describe("a real node's loopback address", () => {
  it("is in 127.0.0.0/8, outside 127.0.0.0/12 where fixed addresses live, and differs between nodes", () => {
    const drawn = Array.from({ length: 200 }, nodeAddress);
    for (const a of drawn) {
      const [first, second, , last] = a.split(".").map(Number);
      expect(first).toBe(127);
      expect(second).toBeGreaterThanOrEqual(16);
      expect(second).toBeLessThanOrEqual(254);
      expect(last).toBeGreaterThanOrEqual(1);
      expect(last).toBeLessThanOrEqual(254);
    }
    expect(new Set(drawn).size).toBeGreaterThan(190);
  });
});

describe("a real node's kubelet configuration", () => {
  const config = JSON.parse(
    kubeletConfig(dir, record, { address, port: 10250, healthzPort: 10248 }),
  ) as Record<string, unknown>;

  it("serves only on the node's loopback address, with no unauthenticated port", () => {
    expect(config).toMatchObject({ address, healthzBindAddress: address, readOnlyPort: 0 });
    expect(config).toMatchObject({
      authentication: { anonymous: { enabled: false } },
      authorization: { mode: "Webhook" },
    });
  });

  it("keeps its files, logs and cgroups to the node's own", () => {
    for (const key of ["podLogsDir", "volumePluginDir", "tlsCertFile", "tlsPrivateKeyFile"])
      expect(String(config[key]).startsWith(`${dir}/`)).toBe(true);
    expect(config.cgroupRoot).toBe(record.cgroupRoot);
    expect(config.containerRuntimeEndpoint).toBe(`unix://${record.containerdAddress}`);
  });
});
