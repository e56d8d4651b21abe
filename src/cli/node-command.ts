// `lockstep node NODE`: which profiles a node holds, which failed there and why, which it is still
// waiting for, and which do not belong there. The Node's labels no longer list installed profiles one
// by one (docs/adr/0024-node-labels-that-scale.md); this reads them with the rule the scheduler applies.
import { parseArgs } from "node:util";
import {
  APPARMOR_PROFILE_PLURAL,
  GROUP,
  OBJECT_KIND,
  type ProfileKind,
  SECCOMP_PROFILE_PLURAL,
  VERSION,
} from "../api/constants.ts";
import { isDnsSubdomain } from "../api/labels.ts";
import {
  type NodeProfileLine,
  nodeProfileReport,
  type PlacementSource,
  placementsOf,
} from "../api/node-profiles.ts";
import { KubeClient } from "../kube/client.ts";
import { isKubeError, kubeErrorMessage } from "../kube/errors.ts";
import { UserError } from "./profile-files.ts";

export const NODE_HELP = `usage: lockstep node NODE [--output text|json]

Lists every SeccompProfile and AppArmorProfile with how NODE stands with it, read from the Node's labels
by the rule the scheduler applies: installed (pods that need it may run there), failed (with the reason
the agent put on the node), pending (the node's agent has not caught up with this version yet), or
elsewhere (disabled, outside its nodeSelector, or AppArmor on a node without AppArmor).
Reads the cluster as kubectl does: KUBECONFIG, ~/.kube/config, or the pod's service account.`;

const PLURALS: Record<ProfileKind, string> = {
  seccomp: SECCOMP_PROFILE_PLURAL,
  apparmor: APPARMOR_PROFILE_PLURAL,
};

export function formatNodeReport(node: string, lines: readonly NodeProfileLine[]): string {
  const rows = lines.map((l) => [OBJECT_KIND[l.kind], l.name, l.state, l.reason ?? ""]);
  const header = ["KIND", "NAME", "STATE", "REASON"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const format = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  const held = lines.filter((l) => l.state === "installed").length;
  const wanted = lines.filter((l) => l.state !== "elsewhere").length;
  return [`node ${node}: ${held}/${wanted} profiles installed`, format(header), ...rows.map(format)].join(
    "\n",
  );
}

export async function nodeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { output: { type: "string", default: "text" } },
  });
  const [node, ...extra] = positionals;
  if (node === undefined || extra.length > 0)
    throw new UserError("name exactly one node (lockstep node --help)");
  if (!isDnsSubdomain(node)) throw new UserError(`"${node}" is not a Node name`);
  if (values.output !== "text" && values.output !== "json")
    throw new UserError(`--output: "${values.output}" is neither text nor json`);
  const client = await KubeClient.fromEnvironment().catch((error: unknown) => {
    throw new UserError(error instanceof Error ? error.message : String(error));
  });
  try {
    const found = await client.get<{ metadata?: { labels?: Record<string, string> } }>(
      `/api/v1/nodes/${encodeURIComponent(node)}`,
    );
    const placements = [];
    for (const kind of ["seccomp", "apparmor"] as const) {
      const list = await client.get<{ items?: PlacementSource[] }>(
        `/apis/${GROUP}/${VERSION}/${PLURALS[kind]}`,
      );
      placements.push(...placementsOf(kind, list.items ?? []));
    }
    const lines = nodeProfileReport(found.metadata?.labels ?? {}, placements);
    process.stdout.write(
      values.output === "json" ? `${JSON.stringify(lines, null, 2)}\n` : `${formatNodeReport(node, lines)}\n`,
    );
    return 0;
  } catch (error) {
    if (isKubeError(error, 404)) throw new UserError(`node "${node}" not found`);
    throw new UserError(kubeErrorMessage(error));
  } finally {
    client.close();
  }
}
