import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AppArmorNetworkSchema, NETWORK_FAMILIES, NETWORK_PROTOCOLS } from "../../api/apparmor.ts";
import { renderAppArmorProfile } from "../../api/render-apparmor.ts";
import { recordedAppArmor } from "./apparmor-profile.ts";
import type { FileAccess } from "./files.ts";
import { NetworkActivity, networkRules } from "./network.ts";
import { recordedSecurityContext } from "./security-context.ts";
import { callsInTrace } from "./trace-calls.ts";

const files = (entries: Record<string, FileAccess[]>) =>
  new Map(Object.entries(entries).map(([path, kinds]) => [path, new Set(kinds)]));

describe("NetworkActivity", () => {
  it("names each socket's family and protocol as the AppArmorProfile does", () => {
    const network = new NetworkActivity();
    for (const call of callsInTrace(`1 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3<socket:[1]>
1 socket(AF_INET6, SOCK_DGRAM, IPPROTO_IP) = 4<socket:[2]>
1 socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) = 5<socket:[3]>
1 socketpair(AF_UNIX, SOCK_STREAM, 0, [6<socket:[4]>, 7<socket:[5]>]) = 0
1 socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE) = 8<socket:[6]>
1 socket(AF_ALG, SOCK_SEQPACKET, 0) = 9<socket:[7]>
1 socket(AF_PACKET, SOCK_RAW, 768) = -1 EPERM (Operation not permitted)
`))
      network.add(call);
    expect([...network.families].sort()).toEqual(["inet", "inet6", "netlink", "unix"]);
    expect([...network.protocols].sort()).toEqual(["icmp", "tcp", "udp"]);
    expect([...network.unsupported]).toEqual(["AF_ALG"]);
  });

  it("networkRules always passes the schema, and allows every family that was used", () => {
    fc.assert(
      fc.property(
        fc.subarray([...NETWORK_FAMILIES]),
        fc.subarray([...NETWORK_PROTOCOLS]),
        (families, protocols) => {
          const rules = networkRules(families, protocols);
          if (families.length === 0) expect(rules).toBeUndefined();
          else {
            expect(AppArmorNetworkSchema.safeParse(rules).success).toBe(true);
            expect(rules?.families).toEqual(NETWORK_FAMILIES.filter((f) => families.includes(f)));
          }
        },
      ),
    );
  });
});

describe("recordedAppArmor", () => {
  const server = {
    files: files({
      "/usr/sbin/server": ["exec"],
      "/etc/server.conf": ["read"],
      "/proc/77/status": ["read"],
      "/var/log/server log": ["write"],
    }),
    families: ["inet" as const],
    protocols: ["tcp" as const],
    capabilities: ["net_bind_service" as const],
  };

  it("builds a structured spec that renders, and leaves out and reports what the structured form cannot hold", () => {
    const { spec, leftOut } = recordedAppArmor(server);
    expect(spec).toEqual({
      executables: ["/usr/sbin/server"],
      paths: { readOnly: ["/etc/server.conf", "/proc/*/status"] },
      network: { families: ["inet"], protocols: ["tcp"] },
      capabilities: ["net_bind_service"],
      mode: "enforce",
    });
    expect(leftOut).toEqual(["/var/log/server log"]);
    expect(renderAppArmorProfile("server", spec).ok).toBe(true);
  });

  it("merges earlier recordings: a path read in one and written in another becomes read-write", () => {
    const { spec: earlier } = recordedAppArmor({
      files: files({ "/usr/bin/migrate": ["exec"], "/etc/server.conf": ["write"] }),
      families: ["unix"],
      protocols: [],
      capabilities: ["chown"],
    });
    const { spec } = recordedAppArmor(server, [earlier]);
    expect(spec).toEqual({
      executables: ["/usr/bin/migrate", "/usr/sbin/server"],
      paths: { readOnly: ["/proc/*/status"], readWrite: ["/etc/server.conf"] },
      network: { families: ["inet", "unix"], protocols: ["tcp"] },
      capabilities: ["chown", "net_bind_service"],
      mode: "enforce",
    });
  });
});

describe("recordedSecurityContext", () => {
  it("drops all, adds the profile's capabilities, and makes the root read-only when writes stay in volumes", () => {
    const { spec } = recordedAppArmor({
      files: files({ "/data/db": ["read", "write"], "/dev/null": ["write"] }),
      families: [],
      protocols: [],
      capabilities: ["net_bind_service", "chown"],
    });
    expect(recordedSecurityContext({ name: "web", appArmor: spec, writable: ["/data"] })).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"], add: ["CHOWN", "NET_BIND_SERVICE"] },
      readOnlyRootFilesystem: true,
      seccompProfile: { type: "Localhost", localhostProfile: "lockstep/web.json" },
      appArmorProfile: { type: "Localhost", localhostProfile: "lockstep.web" },
    });
    const writesToImage = recordedSecurityContext({
      name: "web",
      appArmor: { paths: spec.paths },
      writable: [],
    });
    expect(writesToImage.readOnlyRootFilesystem).toBe(false);
    expect(writesToImage.capabilities).toEqual({ drop: ["ALL"] });
  });
});
