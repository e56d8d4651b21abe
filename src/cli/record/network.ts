// The network families and protocols a recorded program opened sockets for, in the terms of the
// AppArmorProfile's structured `network` field. Pure.
import {
  type AppArmorNetwork,
  AppArmorNetworkSchema,
  NETWORK_FAMILIES,
  NETWORK_PROTOCOLS,
  type NetworkFamily,
  type NetworkProtocol,
} from "../../api/apparmor.ts";
import type { TracedCall } from "./trace-calls.ts";

const FAMILIES: Readonly<Record<string, NetworkFamily>> = {
  AF_INET: "inet",
  AF_INET6: "inet6",
  AF_UNIX: "unix",
  AF_LOCAL: "unix",
  AF_NETLINK: "netlink",
  AF_PACKET: "packet",
};

// `socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP)`: family, type, protocol.
const SOCKET = /^(AF_[A-Z0-9]+|\d+),\s*([A-Z_|0-9]+),\s*([A-Z_0-9]+)/;

export class NetworkActivity {
  readonly families = new Set<NetworkFamily>();
  readonly protocols = new Set<NetworkProtocol>();
  /** Families the structured form cannot name (AF_ALG, AF_VSOCK, ...): reported, for rawPolicy. */
  readonly unsupported = new Set<string>();

  add(call: TracedCall): void {
    if (
      (call.name !== "socket" && call.name !== "socketpair") ||
      call.result === undefined ||
      call.result < 0
    )
      return;
    const match = SOCKET.exec(call.args);
    if (!match) return;
    const [, familyName = "", type = "", protocol = ""] = match;
    const family = FAMILIES[familyName];
    if (!family) {
      this.unsupported.add(familyName);
      return;
    }
    this.families.add(family);
    if (family !== "inet" && family !== "inet6") return;
    if (protocol.includes("ICMP")) this.protocols.add("icmp");
    else if (type.includes("SOCK_STREAM")) this.protocols.add("tcp");
    else if (type.includes("SOCK_DGRAM")) this.protocols.add("udp");
  }
}

/**
 * The `network` field for these families and protocols, undefined when none was used (no rule: AppArmor
 * then denies every socket). The schema's form is families crossed with protocols, so a program that
 * used inet tcp and inet6 udp is allowed inet udp and inet6 tcp as well.
 */
export function networkRules(
  families: Iterable<NetworkFamily>,
  protocols: Iterable<NetworkProtocol>,
): AppArmorNetwork | undefined {
  const familyList = NETWORK_FAMILIES.filter((f) => new Set(families).has(f));
  const protocolList = NETWORK_PROTOCOLS.filter((p) => new Set(protocols).has(p));
  if (familyList.length === 0) return undefined;
  const narrowed = { families: familyList, protocols: protocolList };
  // inet6 used only for ICMPv6, which the schema has no name for: allow the families whole instead.
  return protocolList.length > 0 && AppArmorNetworkSchema.safeParse(narrowed).success
    ? narrowed
    : { families: familyList };
}
