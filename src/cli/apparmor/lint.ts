// Findings about an AppArmorProfile's structured form. Its policy text (rendered from the structured
// fields, or rawPolicy) is judged by apparmor_parser on each node (docs/adr/0022-apparmor-parser-is-the-judge.md):
// lint does not second-guess the parser, it flags choices a reviewer should see. Pure.
import type { AppArmorProfileSpec } from "../../api/apparmor.ts";
import type { Finding } from "../findings.ts";

/** Capabilities that reach past the container: the host's kernel, its clock, its security modules, other processes. */
const HOST_CAPABILITIES: Readonly<Record<string, string>> = {
  sys_admin: "does most of what root does (mounts, namespaces, many device ioctls)",
  sys_module: "loads kernel modules",
  sys_rawio: "reads and writes raw I/O ports and devices",
  sys_boot: "reboots the host",
  sys_time: "sets the host's clock",
  sys_ptrace: "inspects and controls other processes",
  mac_admin: "changes the host's security-module policy",
  mac_override: "overrides the host's security-module policy",
  bpf: "loads programs into the kernel",
  perfmon: "reads kernel performance data",
  syslog: "reads and clears the kernel log",
  dac_read_search: "reads any file by handle (open_by_handle_at), past the container's mounts",
};

export function lintAppArmor(spec: AppArmorProfileSpec): Finding[] {
  const findings: Finding[] = [];
  if (spec.mode === "complain")
    findings.push({
      rule: "apparmor-complain-mode",
      severity: "warning",
      path: "mode",
      message: "complain mode logs what the policy would deny and denies nothing",
      fix: {
        action: "enforce-mode",
        description: "set mode to enforce once the logs show nothing the program needs is denied",
        patch: [{ op: "replace", path: "/mode", value: "enforce" }],
      },
    });
  spec.capabilities?.forEach((capability, i) => {
    const reach = HOST_CAPABILITIES[capability];
    if (reach === undefined) return;
    findings.push({
      rule: "apparmor-host-capability",
      severity: "warning",
      path: `capabilities[${i}]`,
      message: `allows capability ${capability}, which ${reach}, whenever the container has it`,
      fix: {
        action: "remove-capability",
        description: `remove ${capability}, and drop CAP_${capability.toUpperCase()} from the container's securityContext`,
        patch: [{ op: "remove", path: `/capabilities/${i}` }],
      },
    });
  });
  return findings;
}
