// A process that runs many agent cores (issue 30): for each node in the list file it is given, a NodeAgent
// from node-agent/agent.ts with that node's name, kubelet root, client holding that node's pod-bound
// token, and watches, as the DaemonSet's pod would run it. bench/agent-cores.bench.ts starts one or more
// of these, so the cores' syncs run on more than one event loop. It prints "ready <n>" once every core has
// started, and stops them all on SIGTERM.
//
//   node bench/load/agent-cores-host.ts <list.json>   (list: [{ nodeName, kubeconfig, dir }])
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as z from "zod";
import { NodeAgent } from "../../node-agent/agent.ts";
import { configFromKubeconfigFiles, KubeClient } from "../../src/kube/client.ts";
import { createLogger } from "../../src/kube/logger.ts";
import { MetricsRegistry } from "../../src/kube/metrics.ts";

export const CoreListSchema = z.array(
  z.object({ nodeName: z.string(), kubeconfig: z.string(), dir: z.string() }),
);
export type CoreList = z.infer<typeof CoreListSchema>;

/** How many cores start at once: each lists and watches its Node, its pods and the profiles. */
const START_BATCH = 50;

/** One agent core for `nodeName`, as the DaemonSet's pod would run it, but in this process. */
async function agentCore({ nodeName, kubeconfig, dir }: CoreList[number]): Promise<{
  agent: NodeAgent;
  client: KubeClient;
}> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "apparmor-enabled"), "N\n");
  await writeFile(join(dir, "boot_id"), `${randomUUID()}\n`);
  const client = new KubeClient(await configFromKubeconfigFiles([kubeconfig]));
  const agent = new NodeAgent({
    client,
    nodeName,
    kubeletRoot: join(dir, "kubelet"),
    appArmor: {
      securityfs: join(dir, "no-securityfs"),
      enabledParameter: join(dir, "apparmor-enabled"),
      parser: "apparmor_parser",
      bootId: join(dir, "boot_id"),
    },
    version: "0.0.0-bench",
    log: createLogger("agent", "warn").child({ node: nodeName }),
    metrics: new MetricsRegistry(),
  });
  return { agent, client };
}

async function main(listFile: string): Promise<void> {
  const list = CoreListSchema.parse(JSON.parse(readFileSync(listFile, "utf8")));
  const cores: { agent: NodeAgent; client: KubeClient }[] = [];
  const stop = async () => {
    for (let i = 0; i < cores.length; i += START_BATCH)
      await Promise.all(cores.slice(i, i + START_BATCH).map((c) => c.agent.stop()));
    for (const c of cores) c.client.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  for (let i = 0; i < list.length; i += START_BATCH) {
    const batch = await Promise.all(list.slice(i, i + START_BATCH).map(agentCore));
    cores.push(...batch);
    await Promise.all(batch.map((c) => c.agent.start()));
  }
  process.stdout.write(`ready ${cores.length}\n`);
}

const [listFile] = process.argv.slice(2);
if (!listFile) {
  process.stderr.write("usage: agent-cores-host.ts <list.json>\n");
  process.exit(2);
}
await main(listFile);
