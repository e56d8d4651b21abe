// The webhook's serving certificate. Two sources:
// - self: on clusters without cert-manager, the webhook keeps its own CA and serving certificate in a
//   Secret (one for all replicas: whoever creates it first wins, the others read it), renews the
//   serving certificate well before it expires, and writes the CA into the
//   MutatingWebhookConfiguration's caBundle so the API server trusts it;
// - files: cert-manager (or anything else) mounts tls.crt/tls.key; cert-manager's CA injector fills
//   caBundle. The files are re-read when they change.
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { V1MutatingWebhookConfiguration, V1Secret } from "@kubernetes/client-node";
import { certificateNotAfter, type KeyPair } from "../kube/certificates.ts";
import type { KubeClient } from "../kube/client.ts";
import { isKubeError, kubeErrorMessage } from "../kube/errors.ts";
import type { Logger } from "../kube/logger.ts";
import { type Issue, issueInProcess } from "./certificate-issuer.ts";

export interface ServingCertificate {
  certPem: string;
  keyPem: string;
}

export interface CertificateSource {
  /** Loads (creating if needed) the certificate; resolves with the current one. */
  load(): Promise<ServingCertificate>;
}

const SERVING_VALIDITY_DAYS = 90;
/** Renew when less than a third of the serving certificate's life is left. */
const RENEW_BEFORE_MS = (SERVING_VALIDITY_DAYS / 3) * 86400_000;

export function needsRenewal(certPem: string, now = Date.now()): boolean {
  try {
    return certificateNotAfter(certPem).getTime() - now < RENEW_BEFORE_MS;
  } catch {
    return true;
  }
}

export interface SelfManagedOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  webhookConfigurationName: string;
  dnsNames: string[];
  ipAddresses: string[];
  log: Logger;
  /** Where certificates are issued (default: in this process; the webhook uses a child process). */
  issue?: Issue;
}

const b64 = (s: string) => Buffer.from(s).toString("base64");
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, "base64").toString() : "");

export class SelfManagedCertificates implements CertificateSource {
  private readonly client: KubeClient;
  private readonly opts: SelfManagedOptions;

  constructor(opts: SelfManagedOptions) {
    this.opts = opts;
    this.client = opts.client;
  }

  async load(): Promise<ServingCertificate> {
    const { namespace, secretName: name, log } = this.opts;
    const secrets = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
    let secret: V1Secret | undefined;
    try {
      secret = await this.client.get<V1Secret>(`${secrets}/${encodeURIComponent(name)}`);
    } catch (error) {
      if (!isKubeError(error, 404)) throw error;
    }
    const data = secret?.data ?? {};
    let ca: KeyPair | undefined =
      data["ca.crt"] && data["ca.key"]
        ? { certPem: unb64(data["ca.crt"]), keyPem: unb64(data["ca.key"]) }
        : undefined;
    let serving: KeyPair | undefined =
      data["tls.crt"] && data["tls.key"]
        ? { certPem: unb64(data["tls.crt"]), keyPem: unb64(data["tls.key"]) }
        : undefined;

    if (ca && needsRenewal(ca.certPem)) {
      ca = undefined;
      serving = undefined;
    }
    if (!ca || !serving || needsRenewal(serving.certPem)) {
      ({ ca, serving } = await (this.opts.issue ?? issueInProcess)({
        ca,
        caCommonName: "lockstep-webhook-ca",
        serving: {
          commonName: this.opts.dnsNames[0] ?? "lockstep-webhook",
          dnsNames: this.opts.dnsNames,
          ipAddresses: this.opts.ipAddresses,
          usage: "server",
          validForDays: SERVING_VALIDITY_DAYS,
        },
      }));
      const body: V1Secret = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name,
          namespace,
          ...(secret?.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
        },
        type: "kubernetes.io/tls",
        data: {
          "ca.crt": b64(ca.certPem),
          "ca.key": b64(ca.keyPem),
          "tls.crt": b64(serving.certPem),
          "tls.key": b64(serving.keyPem),
        },
      };
      try {
        if (secret) await this.client.replace(`${secrets}/${encodeURIComponent(name)}`, body);
        else await this.client.create(secrets, body);
        log.info({ secret: `${namespace}/${name}` }, "issued a new serving certificate");
      } catch (error) {
        // Another replica wrote first (409 on create or update): use what it wrote, so all agree on one CA.
        if (isKubeError(error, 409)) return this.load();
        throw error;
      }
    }
    await this.publishCaBundle(ca.certPem);
    return { certPem: serving.certPem, keyPem: serving.keyPem };
  }

  private async publishCaBundle(caPem: string): Promise<void> {
    const name = this.opts.webhookConfigurationName;
    const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(name)}`;
    let config: V1MutatingWebhookConfiguration;
    try {
      config = await this.client.get<V1MutatingWebhookConfiguration>(path);
    } catch (error) {
      this.opts.log.warn(
        { webhookConfiguration: name, err: kubeErrorMessage(error) },
        "cannot publish caBundle",
      );
      return;
    }
    const bundle = b64(caPem);
    const ops = (config.webhooks ?? [])
      .map((w, i) => ({ w, i }))
      .filter(({ w }) => w.clientConfig.caBundle !== bundle)
      .map(({ i }) => ({ op: "add", path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle }));
    if (ops.length === 0) return;
    await this.client.patch(path, "json", ops);
    this.opts.log.info({ webhookConfiguration: name }, "published caBundle");
  }
}

export class FileCertificates implements CertificateSource {
  private readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  async load(): Promise<ServingCertificate> {
    const [certPem, keyPem] = await Promise.all([
      readFile(join(this.dir, "tls.crt"), "utf8"),
      readFile(join(this.dir, "tls.key"), "utf8"),
    ]);
    return { certPem, keyPem };
  }
  /** For change detection: cert-manager's kubelet-projected Secret updates swap the files. */
  async version(): Promise<number> {
    return (await stat(join(this.dir, "tls.crt"))).mtimeMs;
  }
}
