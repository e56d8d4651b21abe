// X.509 issuance for the parts of Lockstep that must bring their own PKI: the webhook's serving
// certificate on clusters without cert-manager, and the test control plane. ECDSA P-256 keys are
// generated in microseconds by WebCrypto and accepted by every Kubernetes component.
//
// @peculiar/x509 (and the ASN.1 and DI libraries under it) costs the webhook about 10 MiB of memory, so
// it is loaded only when a certificate is issued; reading a certificate's expiry uses node:crypto.
import { webcrypto, X509Certificate } from "node:crypto";
import * as z from "zod";
import { commonJsExports } from "./commonjs.ts";

type X509 = typeof import("@peculiar/x509");
let x509Library: Promise<X509> | undefined;

function loadX509(): Promise<X509> {
  x509Library ??= (async () => {
    await import("reflect-metadata"); // @peculiar/x509 resolves its ASN.1 providers through tsyringe, which needs it.
    const x509 = commonJsExports(await import("@peculiar/x509"));
    x509.cryptoProvider.set(webcrypto);
    return x509;
  })();
  return x509Library;
}

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export const CertificateRequestSchema = z.object({
  commonName: z.string().min(1),
  organizations: z.array(z.string()).default([]),
  dnsNames: z.array(z.string()).default([]),
  ipAddresses: z.array(z.string()).default([]),
  usage: z.enum(["server", "client", "both"]),
  validForDays: z.number().positive().default(365),
});
export type CertificateRequest = z.input<typeof CertificateRequestSchema>;

/** A certificate and its private key, both PEM encoded. */
export const KeyPairSchema = z.object({ certPem: z.string(), keyPem: z.string() });
export type KeyPair = z.infer<typeof KeyPairSchema>;

function randomSerial(): string {
  // A positive 128-bit serial: the high bit cleared so DER does not read it as negative.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString("hex");
}

function distinguishedName(commonName: string, organizations: readonly string[]): string {
  const escapeValue = (v: string) => v.replace(/([,+"\\<>;=])/g, "\\$1");
  return [`CN=${escapeValue(commonName)}`, ...organizations.map((o) => `O=${escapeValue(o)}`)].join(", ");
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const x509 = await loadX509();
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(pkcs8, "PRIVATE KEY");
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  // Back-dated by an hour so a peer whose clock runs a little behind still accepts it.
  const notBefore = new Date(Date.now() - 3600_000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * 86400_000) };
}

/** A self-signed certificate authority. */
export async function createCertificateAuthority(commonName: string, validForDays = 3650): Promise<KeyPair> {
  const x509 = await loadX509();
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: distinguishedName(commonName, []),
    ...validity(validForDays),
    signingAlgorithm: KEY_ALGORITHM,
    keys: keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await exportKeyPem(keys.privateKey) };
}

/** A leaf certificate signed by `ca`, for a server, a client, or both. */
export async function issueCertificate(ca: KeyPair, request: CertificateRequest): Promise<KeyPair> {
  const req = CertificateRequestSchema.parse(request);
  const x509 = await loadX509();
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey(
    "pkcs8",
    x509.PemConverter.decodeFirst(ca.keyPem),
    KEY_ALGORITHM,
    false,
    ["sign"],
  );
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
  const extendedUsages = {
    server: [x509.ExtendedKeyUsage.serverAuth],
    client: [x509.ExtendedKeyUsage.clientAuth],
    both: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  }[req.usage];
  const altNames = [
    ...req.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...req.ipAddresses.map((value) => ({ type: "ip" as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: distinguishedName(req.commonName, req.organizations),
    issuer: caCert.subject,
    ...validity(req.validForDays),
    signingAlgorithm: KEY_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(extendedUsages, false),
      ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames, false)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await exportKeyPem(keys.privateKey) };
}

/** When a PEM certificate stops being valid. */
export function certificateNotAfter(certPem: string): Date {
  return new X509Certificate(certPem).validToDate;
}

/** A standalone ECDSA private key and its public key, PEM encoded (for service-account token signing). */
export async function createSigningKey(): Promise<{ privateKeyPem: string; publicKeyPem: string }> {
  const x509 = await loadX509();
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
  const spki = await webcrypto.subtle.exportKey("spki", keys.publicKey);
  return {
    privateKeyPem: await exportKeyPem(keys.privateKey),
    publicKeyPem: x509.PemConverter.encode(spki, "PUBLIC KEY"),
  };
}
