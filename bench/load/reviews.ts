// Timing the webhook's reviews as a client sees them: AdmissionReviews sent straight to it, one at a time.
import { Agent, request as httpsRequest } from "node:https";

/**
 * One request straight to a server on loopback (a POST of `body`, or a GET without one), its answer as
 * text. The certificate is not checked: the benchmarks only read the answer.
 */
export function httpsText(port: number, path: string, body?: string, agent?: Agent): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const method = body === undefined ? "GET" : "POST";
    const req = httpsRequest(
      { host: "127.0.0.1", port, path, method, agent, rejectUnauthorized: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => resolve(text));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** One review at a time over one keep-alive connection; the milliseconds of each. */
export async function timeReviews(
  port: number,
  path: string,
  body: string,
  count: number,
): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const first = JSON.parse(await httpsText(port, path, body, agent)) as {
    response?: { allowed?: boolean; status?: unknown };
  };
  if (!first.response?.allowed) throw new Error(`the review was refused: ${JSON.stringify(first)}`);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = process.hrtime.bigint();
    await httpsText(port, path, body, agent);
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  agent.destroy();
  return times;
}
