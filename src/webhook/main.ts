#!/usr/bin/env node
// The Lockstep mutating admission webhook (a Deployment, 2+ replicas).
//
//   KUBECONFIG                 (env) a kubeconfig; in a pod, the in-cluster service-account token is used
//   --port N                   HTTPS port for AdmissionReviews (default 8443)
//   --host ADDR                address to listen on (default 0.0.0.0)
//   --health-port N            plain HTTP /healthz, /readyz, /metrics (default 8081)
//   --health-host ADDR         the address they listen on (default 0.0.0.0; a pod's own IP on a shared host network)
//   --cert-mode self|files     self: keep a CA and serving certificate in a Secret and publish caBundle;
//                              files: read tls.crt/tls.key from --cert-dir (cert-manager)  (default self)
//   --cert-dir DIR             for --cert-mode=files (default /etc/lockstep/tls)
//   --namespace NS             where the Secret lives (default: POD_NAMESPACE, else lockstep-system)
//   --secret NAME              the certificate Secret (default lockstep-webhook-tls)
//   --webhook-configuration N  the MutatingWebhookConfiguration whose caBundle is kept (default lockstep-webhook)
//   --service NAME             Service name for the certificate's DNS names (default lockstep-webhook)
//   --extra-san ADDR           an extra IP address in the certificate (repeatable; for local runs)
//   LOG_LEVEL                  (env) pino level, default info
import { parseArgs } from "node:util";
import * as z from "zod";
import { LOCKSTEP_NAMESPACE, WEBHOOK_CONFIGURATION_NAME, WEBHOOK_TLS_SECRET } from "../api/constants.ts";
import {
  configOrExit,
  connectOrExit,
  HEALTH_FLAGS,
  HealthAddressSchema,
  healthAddressInput,
  runComponent,
} from "../kube/component.ts";
import { createLogger } from "../kube/logger.ts";
import { answerOneIssue, ISSUER_ENV, issueInChildProcess } from "./certificate-issuer.ts";
import { WebhookServer } from "./server.ts";
import { FileCertificates, SelfManagedCertificates } from "./serving-certs.ts";

const log = createLogger("webhook");

const ConfigSchema = z.object({
  port: z.coerce.number().int().min(1).max(65535),
  host: z.string(),
  health: HealthAddressSchema,
  certMode: z.enum(["self", "files"], { error: "--cert-mode must be self or files" }),
  certDir: z.string(),
  namespace: z.string().min(1),
  secret: z.string().min(1),
  webhookConfiguration: z.string().min(1),
  service: z.string().min(1),
  extraSans: z.array(z.ipv4().or(z.ipv6())),
});

/** The webhook: flags, the API server, its certificates, then serving until a signal. */
async function runWebhook(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "8443" },
      host: { type: "string", default: "0.0.0.0" },
      ...HEALTH_FLAGS,
      "cert-mode": { type: "string", default: "self" },
      "cert-dir": { type: "string", default: "/etc/lockstep/tls" },
      namespace: { type: "string", default: process.env.POD_NAMESPACE ?? LOCKSTEP_NAMESPACE },
      secret: { type: "string", default: WEBHOOK_TLS_SECRET },
      "webhook-configuration": { type: "string", default: WEBHOOK_CONFIGURATION_NAME },
      service: { type: "string", default: "lockstep-webhook" },
      "extra-san": { type: "string", multiple: true, default: [] },
    },
  });
  const config = configOrExit(log, ConfigSchema, {
    port: values.port,
    host: values.host,
    health: healthAddressInput(values),
    certMode: values["cert-mode"],
    certDir: values["cert-dir"],
    namespace: values.namespace,
    secret: values.secret,
    webhookConfiguration: values["webhook-configuration"],
    service: values.service,
    extraSans: values["extra-san"],
  });

  const connection = await connectOrExit(log);
  const { client, metrics } = connection;
  const svc = `${config.service}.${config.namespace}.svc`;
  const certificates =
    config.certMode === "files"
      ? new FileCertificates(config.certDir)
      : new SelfManagedCertificates({
          client,
          namespace: config.namespace,
          secretName: config.secret,
          webhookConfigurationName: config.webhookConfiguration,
          dnsNames: [svc, `${config.service}.${config.namespace}`, config.service, `${svc}.cluster.local`],
          ipAddresses: config.extraSans,
          log,
          issue: issueInChildProcess,
        });
  const server = new WebhookServer({
    client,
    port: config.port,
    host: config.host,
    certificates,
    log,
    metrics,
  });
  await runComponent(log, connection, config.health, server);
}

// The same bundle, started by issueInChildProcess, issues one certificate and exits.
if (process.env[ISSUER_ENV] === "1") await answerOneIssue();
else await runWebhook();
