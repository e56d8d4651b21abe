// `lockstep node NODE`: which profiles a node holds, which failed there and why, which it is still
// waiting for, and which do not belong there. The Node's labels no longer list installed profiles one
// by one (docs/adr/0024-node-labels-that-scale.md); this reads them with the rule the scheduler applies.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
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
import { isKubeError, kubeErrorMessage } from "../kube/errors.ts";
import { UserError } from "./profile-files.ts";

export const NODE_HELP = `usage: lockstep node NODE [--output text|json] [--kubeconfig FILE] [--context NAME]

Lists every SeccompProfile and AppArmorProfile with how NODE stands with it, read from the Node's labels
by the rule the scheduler applies: installed (pods that need it may run there), failed (with the reason
the agent put on the node), pending (the node's agent has not caught up with this version yet), or
elsewhere (disabled, outside its nodeSelector, or AppArmor on a node without AppArmor).
Reads the cluster as kubectl does: --kubeconfig FILE, else KUBECONFIG, ~/.kube/config, or the pod's
service account; --context NAME picks a context other than the current one. Credentials as kubectl
has them, exec credential plugins (aws eks get-token, gke-gcloud-auth-plugin, kubelogin) included.`;

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
    options: {
      output: { type: "string", default: "text" },
      kubeconfig: { type: "string" },
      context: { type: "string" },
    },
  });
  const [node, ...extra] = positionals;
  if (node === undefined || extra.length > 0)
    throw new UserError("name exactly one node (lockstep node --help)");
  if (!isDnsSubdomain(node)) throw new UserError(`"${node}" is not a Node name`);
  if (values.output !== "text" && values.output !== "json")
    throw new UserError(`--output: "${values.output}" is neither text nor json`);
  const client = await clusterClient(values.kubeconfig, values.context);
  try {
    const found = await client.core.readNode({ name: node });
    const placements = [];
    for (const kind of ["seccomp", "apparmor"] as const) {
      const list = (await client.objects.listClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURALS[kind],
      })) as { items?: PlacementSource[] };
      placements.push(...placementsOf(kind, list.items ?? []));
    }
    const lines = nodeProfileReport(found.metadata?.labels ?? {}, placements);
    process.stdout.write(
      values.output === "json" ? `${JSON.stringify(lines, null, 2)}\n` : `${formatNodeReport(node, lines)}\n`,
    );
    return 0;
  } catch (error) {
    if (isKubeError(error, 404)) throw new UserError(`node "${node}" not found`);
    throw new UserError(unreachableMessage(error, client.server, client.context) ?? kubeErrorMessage(error));
  }
}

/**
 * The message for a request that got no answer at all (fetch's "fetch failed", whose cause says why: a
 * refused connection, a name that does not resolve, a certificate the CA does not sign), naming the
 * server and the context, which "fetch failed" alone leaves the user to guess. Undefined for an answer.
 */
export function unreachableMessage(error: unknown, server: string, context: string): string | undefined {
  if (!(error instanceof TypeError) || error.message !== "fetch failed") return undefined;
  const cause = (error as TypeError & { cause?: { message?: unknown; code?: unknown } }).cause;
  const reason = [cause?.message, cause?.code].find((r) => typeof r === "string" && r !== "");
  return `cannot reach the API server ${server} of the context "${context}"${reason ? `: ${reason}` : ""}`;
}

/**
 * The cluster as kubectl finds it, through client-node (docs/adr/0013-thin-kube-client.md keeps it in the
 * CLI): its KubeConfig runs exec credential plugins and auth providers as kubectl does, which the
 * components' thin client refuses. Loaded only here: `lockstep lint` never pays for it.
 */
export async function clusterClient(kubeconfig: string | undefined, context: string | undefined) {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  const env = process.env;
  try {
    if (kubeconfig !== undefined) {
      if (!existsSync(kubeconfig)) throw new UserError(`--kubeconfig ${kubeconfig}: no such file`);
      kc.loadFromFile(kubeconfig);
    } else if (
      (env.KUBECONFIG ?? "") === "" &&
      !existsSync(join(env.HOME ?? homedir(), ".kube", "config")) &&
      !(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT)
    )
      // client-node would fall back to http://localhost:8080, which is nobody's cluster.
      throw new UserError(
        "no Kubernetes configuration: give --kubeconfig FILE, set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account",
      );
    else kc.loadFromDefault();
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(`kubeconfig: ${(error as Error).message}`);
  }
  if (context !== undefined) {
    if (kc.getContextObject(context) === null)
      throw new UserError(
        `--context ${context}: no such context in the kubeconfig (it has: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(", ") || "none"
        })`,
      );
    kc.setCurrentContext(context);
  }
  if (kc.getCurrentCluster() === null)
    throw new UserError(`kubeconfig: the context "${kc.getCurrentContext()}" names no cluster`);
  return {
    core: kc.makeApiClient(k8s.CoreV1Api),
    objects: kc.makeApiClient(k8s.CustomObjectsApi),
    server: kc.getCurrentCluster()?.server ?? "",
    context: kc.getCurrentContext(),
  };
}
