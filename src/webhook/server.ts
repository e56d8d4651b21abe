// The HTTPS server for AdmissionReview v1 on pod CREATE: parse, decide (review.ts), answer with a
// JSONPatch. Profiles come from watch caches, so a review costs no API call unless the pod already
// names its node (then one GET of that Node).

import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import * as z from "zod";
import {
  APPARMOR_PROFILE_PLURAL,
  GROUP,
  type ProfileKind,
  SECCOMP_PROFILE_PLURAL,
  VERSION,
} from "../api/constants.ts";
import type { KubeClient } from "../kube/client.ts";
import { isKubeError, kubeErrorMessage } from "../kube/errors.ts";
import { Informer, type KubeObject } from "../kube/informer.ts";
import type { Logger } from "../kube/logger.ts";
import type { MetricsRegistry } from "../kube/metrics.ts";
import { type ProfileView, reviewPod } from "./review.ts";
import type { CertificateSource, ServingCertificate } from "./serving-certs.ts";

const MAX_BODY_BYTES = 4 * 1024 * 1024;

const AdmissionReviewSchema = z.object({
  apiVersion: z.literal("admission.k8s.io/v1"),
  kind: z.literal("AdmissionReview"),
  request: z.object({
    uid: z.string(),
    operation: z.string(),
    namespace: z.string().optional(),
    object: z.record(z.string(), z.unknown()),
  }),
});

type ProfileObject = KubeObject & { status?: { nodes?: { installed?: number } } };

export interface WebhookServerOptions {
  client: KubeClient;
  port: number;
  host: string;
  certificates: CertificateSource;
  /** How often certificates are re-read (renewal, cert-manager rotation). */
  certificateCheckMs?: number;
  log: Logger;
  metrics: MetricsRegistry;
}

export class WebhookServer {
  private readonly opts: WebhookServerOptions;
  private readonly client: KubeClient;
  private readonly profiles: Record<ProfileKind, Informer<ProfileObject>>;
  private server: Server | undefined;
  private certificate: ServingCertificate | undefined;
  private synced = false;
  private stopping = false;
  private certTimer: NodeJS.Timeout | undefined;
  private readonly m;

  constructor(opts: WebhookServerOptions) {
    this.opts = opts;
    this.client = opts.client;
    const informer = (plural: string) =>
      new Informer<ProfileObject>(this.client, {
        path: `/apis/${GROUP}/${VERSION}/${plural}`,
        onError: (error, retryInMs) => {
          if (!this.stopping)
            opts.log.warn(
              { watch: plural, err: kubeErrorMessage(error), retryInMs },
              "watch failed; restarting",
            );
        },
      });
    this.profiles = {
      seccomp: informer(SECCOMP_PROFILE_PLURAL),
      apparmor: informer(APPARMOR_PROFILE_PLURAL),
    };
    this.m = {
      reviews: opts.metrics.counter("lockstep_webhook_reviews_total", "AdmissionReviews answered, by result"),
      latency: opts.metrics.histogram(
        "lockstep_webhook_review_duration_seconds",
        "Time from request to response",
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      ),
    };
  }

  notReadyReason(): string | undefined {
    if (this.stopping) return "shutting down";
    if (!this.certificate) return "serving certificate not loaded";
    if (!this.synced) return "profile caches not synced";
    return undefined;
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    await Promise.all(Object.values(this.profiles).map((i) => i.start()));
    this.synced = true;
    this.certificate = await this.opts.certificates.load();
    this.server = createServer(
      { cert: this.certificate.certPem, key: this.certificate.keyPem, minVersion: "TLSv1.2" },
      (req, res) => void this.handle(req, res),
    );
    await new Promise<void>((resolve, reject) => {
      this.server?.once("error", reject);
      this.server?.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.certTimer = setInterval(
      () => void this.reloadCertificate(),
      this.opts.certificateCheckMs ?? 300_000,
    );
    log.info({ port: this.opts.port }, "serving AdmissionReviews");
  }

  /** Stops accepting connections and waits (up to `graceMs`) for reviews in flight to be answered. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    clearInterval(this.certTimer);
    const server = this.server;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
    }
    await Promise.all(Object.values(this.profiles).map((i) => i.stop()));
  }

  private async reloadCertificate(): Promise<void> {
    try {
      const next = await this.opts.certificates.load();
      if (next.certPem !== this.certificate?.certPem) {
        this.server?.setSecureContext({ cert: next.certPem, key: next.keyPem, minVersion: "TLSv1.2" });
        this.certificate = next;
        this.opts.log.info("reloaded the serving certificate");
      }
    } catch (error) {
      this.opts.log.error({ err: kubeErrorMessage(error) }, "could not reload the serving certificate");
    }
  }

  private profileView(kind: ProfileKind, name: string): ProfileView | undefined {
    const obj = this.profiles[kind].get(name);
    if (!obj) return undefined;
    return {
      terminating: obj.metadata?.deletionTimestamp !== undefined,
      installedNodes: obj.status?.nodes?.installed,
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const reply = (status: number, body: unknown, result: string) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
      this.m.reviews.inc({ result });
      this.m.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    };
    if (req.method !== "POST" || req.url?.split("?")[0] !== "/mutate")
      return reply(404, { error: "not found" }, "not_found");

    let raw = "";
    let size = 0;
    try {
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES) return reply(413, { error: "request too large" }, "error");
        raw += chunk;
      }
    } catch {
      return;
    }
    let review: z.infer<typeof AdmissionReviewSchema>;
    try {
      review = AdmissionReviewSchema.parse(JSON.parse(raw));
    } catch (error) {
      return reply(400, { error: `not an AdmissionReview v1: ${kubeErrorMessage(error)}` }, "error");
    }
    const { uid, object, namespace } = review.request;
    const pod = object as V1Pod;
    const respond = (response: Record<string, unknown>, result: string) =>
      reply(
        200,
        { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid, ...response } },
        result,
      );

    try {
      const nodeName = pod.spec?.nodeName;
      const boundNodeLabels = nodeName ? await this.nodeLabels(nodeName) : undefined;
      const decision = reviewPod(pod, { profile: (k, n) => this.profileView(k, n), boundNodeLabels });
      const podRef = `${namespace ?? ""}/${pod.metadata?.name ?? pod.metadata?.generateName ?? ""}`;
      if (!decision.allowed) {
        this.opts.log.info({ pod: podRef, reason: decision.message }, "denied pod");
        return respond(
          { allowed: false, status: { code: 403, reason: "Forbidden", message: decision.message } },
          "denied",
        );
      }
      if (decision.patch.length === 0)
        return respond({ allowed: true, warnings: decision.warnings }, "allowed");
      this.opts.log.debug({ pod: podRef, profiles: decision.profiles }, "patched pod");
      return respond(
        {
          allowed: true,
          patchType: "JSONPatch",
          patch: Buffer.from(JSON.stringify(decision.patch)).toString("base64"),
          warnings: decision.warnings,
        },
        "patched",
      );
    } catch (error) {
      this.opts.log.error({ err: kubeErrorMessage(error) }, "review failed");
      return respond(
        {
          allowed: false,
          status: { code: 500, message: `Lockstep webhook error: ${kubeErrorMessage(error)}` },
        },
        "error",
      );
    }
  }

  private async nodeLabels(name: string): Promise<Record<string, string> | undefined> {
    try {
      const node = await this.client.get<V1Node>(`/api/v1/nodes/${encodeURIComponent(name)}`);
      return node.metadata?.labels ?? {};
    } catch (error) {
      if (isKubeError(error, 404)) return undefined;
      throw error;
    }
  }
}
