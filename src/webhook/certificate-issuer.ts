// Where the webhook's certificates are issued: in a short-lived child process, the webhook's own bundle
// started again with ISSUER_ENV set, which reads one request on stdin, writes the key pairs on stdout
// and exits. The X.509 library (@peculiar/x509 with its ASN.1 and DI libraries) stays resident in any
// process that loaded it: about 10 MiB of a webhook that issues once at start and then every 60 days
// (measured: docs/adr/0013-thin-kube-client.md). The keys travel only through the pipes between the two
// processes, never through arguments, files or logs.
import { spawn } from "node:child_process";
import * as z from "zod";
import {
  CertificateRequestSchema,
  createCertificateAuthority,
  issueCertificate,
  KeyPairSchema,
} from "../kube/certificates.ts";

/** Set in the child's environment: this process only issues. */
export const ISSUER_ENV = "LOCKSTEP_WEBHOOK_CERTIFICATE_ISSUER";
/** A child that has not answered by then is killed: issuing takes milliseconds. */
const ISSUE_TIMEOUT_MS = 30_000;

export const IssueRequestSchema = z.object({
  /** The CA to sign with; a new one is created when absent. */
  ca: KeyPairSchema.optional(),
  caCommonName: z.string().min(1),
  serving: CertificateRequestSchema,
});
export type IssueRequest = z.input<typeof IssueRequestSchema>;

export const IssueResultSchema = z.object({ ca: KeyPairSchema, serving: KeyPairSchema });
export type IssueResult = z.infer<typeof IssueResultSchema>;

export type Issue = (request: IssueRequest) => Promise<IssueResult>;

/** Issues in this process (what the child runs; tests that issue without a bundle). */
export const issueInProcess: Issue = async (input) => {
  const request = IssueRequestSchema.parse(input);
  const ca = request.ca ?? (await createCertificateAuthority(request.caCommonName));
  return { ca, serving: await issueCertificate(ca, request.serving) };
};

/**
 * Issues in a child process running this process's own entry point with its Node flags. Only for a
 * process started from the webhook's entry point (src/webhook/main.ts answers ISSUER_ENV).
 */
export const issueInChildProcess: Issue = (request) =>
  new Promise((resolve, reject) => {
    const entry = process.argv[1];
    if (!entry) return reject(new Error("cannot issue certificates in a child process: no entry point"));
    const child = spawn(process.execPath, [...process.execArgv, entry], {
      env: { ...process.env, [ISSUER_ENV]: "1" },
      stdio: ["pipe", "pipe", "pipe"],
      timeout: ISSUE_TIMEOUT_MS,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code !== 0) {
        const why = Buffer.concat(err).toString().trim().split("\n").slice(-3).join(" | ");
        return reject(new Error(`the certificate issuer exited (${code ?? signal}): ${why}`));
      }
      try {
        resolve(IssueResultSchema.parse(JSON.parse(Buffer.concat(out).toString())));
      } catch (error) {
        reject(new Error(`the certificate issuer's answer is unreadable: ${(error as Error).message}`));
      }
    });
    child.stdin.end(JSON.stringify(request));
  });

/** The child's side: one request from stdin, the key pairs to stdout. */
export async function answerOneIssue(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const result = await issueInProcess(JSON.parse(Buffer.concat(chunks).toString()));
  await new Promise<void>((resolve, reject) =>
    process.stdout.write(JSON.stringify(result), (error) => (error ? reject(error) : resolve())),
  );
}
