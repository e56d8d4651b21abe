// A reference webhook for the pod CREATE benchmark: what any Node webhook costs the API server before it
// decides anything. It reads the review, takes its uid and answers "allowed", with no patch or with a
// fixed JSONPatch (Lockstep's own answer for the benchmark's pod, recorded by the benchmark), so the
// benchmark can show, in one run, how much of pod CREATE's added time a webhook cannot avoid. GET /count
// answers how many reviews it has answered (the benchmark checks which server the API server calls).
// Serves HTTPS on 127.0.0.1 only. Prints "listening" once it accepts connections.
//
//   node bench/load/reference-webhook.ts PORT CERT_FILE KEY_FILE [PATCH_BASE64]
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

const [port, certFile, keyFile, patch] = process.argv.slice(2);
let answered = 0;

const server = createServer(
  { cert: readFileSync(certFile ?? ""), key: readFileSync(keyFile ?? ""), minVersion: "TLSv1.2" },
  (req, res) => {
    if (req.method === "GET") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end(String(answered));
      return;
    }
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      raw += chunk;
    });
    req.on("end", () => {
      const { request } = JSON.parse(raw) as { request: { uid: string } };
      const response = patch
        ? { uid: request.uid, allowed: true, patchType: "JSONPatch", patch }
        : { uid: request.uid, allowed: true };
      answered++;
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response }));
    });
  },
);
// As Lockstep's webhook: longer than the API server's 90 s idle connections, so the client closes them.
server.keepAliveTimeout = 100_000;
server.listen(Number(port), "127.0.0.1", () => process.stdout.write("listening\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
