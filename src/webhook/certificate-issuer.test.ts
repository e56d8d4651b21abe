import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { issueInProcess } from "./certificate-issuer.ts";

const serving = {
  commonName: "lockstep-webhook",
  dnsNames: ["lockstep-webhook.lockstep-system.svc"],
  usage: "server" as const,
};

describe("issueInProcess (what the webhook's issuer child runs)", () => {
  it("creates a CA when none is given and signs the serving certificate with it", async () => {
    const { ca, serving: pair } = await issueInProcess({ caCommonName: "lockstep-webhook-ca", serving });
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(pair.certPem);
    expect(caCert.subject).toContain("CN=lockstep-webhook-ca");
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.subjectAltName).toContain("DNS:lockstep-webhook.lockstep-system.svc");
  });

  it("signs with the CA it is given, which it returns unchanged", async () => {
    const first = await issueInProcess({ caCommonName: "lockstep-webhook-ca", serving });
    const again = await issueInProcess({ ca: first.ca, caCommonName: "unused", serving });
    expect(again.ca).toEqual(first.ca);
    expect(
      new X509Certificate(again.serving.certPem).verify(new X509Certificate(first.ca.certPem).publicKey),
    ).toBe(true);
    expect(again.serving.certPem).not.toEqual(first.serving.certPem);
  });

  it("refuses a request that is not one (the child reads it from a pipe)", async () => {
    await expect(issueInProcess({ caCommonName: "", serving } as never)).rejects.toThrow();
  });
});
