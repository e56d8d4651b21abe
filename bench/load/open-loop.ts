// A fixed-rate (open-loop) AdmissionReview load, run as its own process so the benchmark can pin it to
// another core than the webhook's: requests leave on schedule, not after the previous answer, so a slow
// answer shows as latency instead of lowering the rate. Prints one JSON line: latency quantiles (ms) and
// the rate achieved. Loopback only.
//
//   node bench/load/open-loop.ts PORT RATE SECONDS BODY_FILE
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { WEBHOOK_PATH } from "../../src/api/constants.ts";
import { quantile } from "../stats.ts";

const [port, rate, seconds, bodyFile] = process.argv.slice(2);
const body = readFileSync(bodyFile ?? "", "utf8");
const agent = new Agent({ keepAlive: true, maxSockets: 64, rejectUnauthorized: false });

function send(): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(
      {
        host: "127.0.0.1",
        port: Number(port),
        path: WEBHOOK_PATH,
        method: "POST",
        agent,
        headers: { "Content-Type": "application/json" },
      },
      (res) => {
        res.resume();
        res.on("end", () =>
          res.statusCode === 200
            ? resolve(performance.now() - started)
            : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

for (let i = 0; i < 200; i++) await send(); // warm-up: TLS sessions, the webhook's JIT
const perSecond = Number(rate);
const total = perSecond * Number(seconds);
const latencies: Promise<number>[] = [];
const start = performance.now();
for (let i = 0; i < total; i++) {
  const wait = start + (i * 1000) / perSecond - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  latencies.push(send());
}
const done = await Promise.all(latencies);
const at = (q: number) => quantile(done, q);
process.stdout.write(
  `${JSON.stringify({ p50: at(0.5), p99: at(0.99), achieved: done.length / ((performance.now() - start) / 1000) })}\n`,
);
agent.destroy();
