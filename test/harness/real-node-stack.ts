// The whole of Lockstep on real nodes, as the end-to-end tests on real kubelets start it: a control
// plane with the scheduler, a real node (kubelet, containerd, runc) per name with an agent process on
// it, one controller and the webhook. What started is stopped again when a later step fails.
import { type AgentProcess, installAgentPrerequisites, startAgent, stopAgents } from "./agents.ts";
import { installControllerPrerequisites, startController } from "./controller.ts";
import { ControlPlane } from "./controlplane.ts";
import { addRealNode, type RealNode } from "./real-node.ts";
import { installWebhook, type WebhookProcess } from "./webhook.ts";

export interface RealNodeStack {
  cp: ControlPlane;
  nodes: RealNode[];
  /** One per node, in the order of the names. */
  agents: AgentProcess[];
  webhook: WebhookProcess;
  stop(): Promise<void>;
}

export async function startRealNodeStack(nodeNames: readonly string[]): Promise<RealNodeStack> {
  const cp = await ControlPlane.start();
  const nodes: RealNode[] = [];
  const agents: AgentProcess[] = [];
  let webhook: WebhookProcess | undefined;
  const stop = async () => {
    await webhook?.stop();
    await stopAgents(agents);
    await cp.stop();
  };
  try {
    for (const name of nodeNames) nodes.push(await addRealNode(cp, name));
    await installAgentPrerequisites(cp);
    await installControllerPrerequisites(cp);
    for (const name of nodeNames) agents.push(await startAgent(cp, name));
    await startController(cp, 1);
    webhook = await installWebhook(cp);
    return { cp, nodes, agents, webhook, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
