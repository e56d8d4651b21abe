// The largest profile specs src/api/limits.ts allows, for the tests that check the limits keep a
// profile small (src/api/limits.test.ts) and that components list many of them (kube-client test).
import { LIMITS } from "../../src/api/limits.ts";
import { KNOWN_SYSCALLS } from "../../src/api/syscalls.ts";

// The longest names and values the schemas allow, so the specs below are the largest there can be.
const longestSyscalls = [...KNOWN_SYSCALLS].sort((a, b) => b.length - a.length);
export const longestArg = {
  index: 5,
  value: Number.MAX_SAFE_INTEGER,
  valueTwo: Number.MAX_SAFE_INTEGER,
  op: "SCMP_CMP_MASKED_EQ",
};
export const nodeSelector = Object.fromEntries(
  Array.from({ length: LIMITS.nodeSelectorEntries }, (_, i) => [
    `${"k".repeat(250)}${String(i).padStart(3, "0")}/${"n".repeat(63)}`,
    "v".repeat(63),
  ]),
);

/** The largest SeccompProfile spec within LIMITS: every rule, name and argument the totals allow. */
export function largestSeccompSpec(names: number = LIMITS.syscallNamesTotal) {
  const namesPerRule = Math.ceil(names / LIMITS.syscallRules);
  const argsPerRule = Math.ceil(LIMITS.syscallArgsTotal / LIMITS.syscallRules);
  return {
    baseProfileName: "b".repeat(253),
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 4095,
    architectures: Array(LIMITS.architectures).fill("SCMP_ARCH_MIPSEL64N32"),
    nodeSelector,
    syscalls: Array.from({ length: LIMITS.syscallRules }, (_, i) => ({
      names: Array.from(
        { length: Math.min(namesPerRule, names - i * namesPerRule) || 1 },
        (_, j) => longestSyscalls[j % 20],
      ),
      action: "SCMP_ACT_ERRNO",
      errnoRet: 4095,
      args: Array(argsPerRule).fill(longestArg),
    })),
  };
}

/** The largest structured AppArmorProfile spec within LIMITS. */
export function largestAppArmorSpec(pathBytes: number = LIMITS.policyPathBytes) {
  const perList = Math.floor(pathBytes / 4 / LIMITS.pathsPerList);
  const list = () => Array(LIMITS.pathsPerList).fill(`/${"a".repeat(perList - 1)}`);
  return {
    executables: list(),
    paths: { readOnly: list(), readWrite: list(), writeOnly: list() },
    network: { families: ["inet", "inet6", "unix", "netlink", "packet"], protocols: ["tcp", "udp", "icmp"] },
    capabilities: ["checkpoint_restore"],
    mode: "complain",
    nodeSelector,
  };
}
