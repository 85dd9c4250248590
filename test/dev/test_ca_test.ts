/**
 * generateTestCertificates: a real Deno TLS server with the generated leaf is
 * trusted by Deno.connectTls given the generated CA (and only then), for the
 * names in the leaf; and the certificates are what they claim to be when
 * parsed with @peculiar/x509 (CA vs leaf, SANs, validity).
 */
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as x509 from "@peculiar/x509";
import { generateTestCertificates, type TestCertificates } from "../../src/dev/test_ca.ts";

const DAY_MS = 86_400_000;

/**
 * Serves one TLS connection on 127.0.0.1 with `server`'s certificate, which
 * echoes what it reads; connects to it with `client` and returns the echo.
 * Rejects when the client refuses the handshake.
 */
async function echoOverTls(
  server: Pick<TestCertificates, "cert" | "key">,
  client: { hostname: string; caCerts?: string[] },
): Promise<string> {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...server });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await conn.handshake();
      const buffer = new Uint8Array(64);
      const n = await conn.read(buffer);
      if (n !== null) await conn.write(buffer.subarray(0, n));
    } catch {
      // The client refused the certificate: the test looks at the client side.
    } finally {
      conn.close();
    }
  })();
  try {
    const conn = await Deno.connectTls({ port: listener.addr.port, ...client });
    try {
      await conn.handshake();
      await conn.write(new TextEncoder().encode("EHLO test"));
      const buffer = new Uint8Array(64);
      const n = await conn.read(buffer);
      return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
    } finally {
      conn.close();
    }
  } finally {
    await served;
    listener.close();
  }
}

describe("generateTestCertificates: TLS with Deno", () => {
  let certs: TestCertificates;
  before(async () => {
    certs = await generateTestCertificates();
  });

  it("is trusted for localhost when the CA is given", async () => {
    const echo = await echoOverTls(certs, { hostname: "localhost", caCerts: [certs.caCert] });
    assert.equal(echo, "EHLO test");
  });

  it("is trusted for 127.0.0.1 when the CA is given", async () => {
    const echo = await echoOverTls(certs, { hostname: "127.0.0.1", caCerts: [certs.caCert] });
    assert.equal(echo, "EHLO test");
  });

  it("is refused without caCerts (the CA is not in the system roots)", async () => {
    await assert.rejects(
      echoOverTls(certs, { hostname: "localhost" }),
      /invalid peer certificate: UnknownIssuer/,
    );
  });

  it("is refused with the CA of another call: every call makes a fresh CA", async () => {
    const other = await generateTestCertificates();
    assert.notEqual(other.caCert, certs.caCert);
    await assert.rejects(
      echoOverTls(certs, { hostname: "localhost", caCerts: [other.caCert] }),
      // Both CAs have the same name, so rustls finds the other one and its signature fails.
      /invalid peer certificate: (UnknownIssuer|BadSignature)/,
    );
  });

  it("is refused when the leaf itself is offered as the trust anchor", async () => {
    await assert.rejects(
      echoOverTls(certs, { hostname: "localhost", caCerts: [certs.cert] }),
      /invalid peer certificate: UnknownIssuer/,
    );
  });

  it("covers only the names asked for", async () => {
    const custom = await generateTestCertificates({
      dnsNames: ["mail.test"],
      ipAddresses: ["127.0.0.1"],
    });
    const trust = [custom.caCert];
    assert.equal(await echoOverTls(custom, { hostname: "127.0.0.1", caCerts: trust }), "EHLO test");
    await assert.rejects(
      echoOverTls(custom, { hostname: "localhost", caCerts: trust }),
      /certificate not valid for name "localhost"/,
    );
  });
});

describe("generateTestCertificates: the certificates", () => {
  let started: number;
  let finished: number;
  let certs: TestCertificates;
  let ca: x509.X509Certificate;
  let leaf: x509.X509Certificate;
  before(async () => {
    started = Date.now();
    certs = await generateTestCertificates();
    finished = Date.now();
    ca = new x509.X509Certificate(certs.caCert);
    leaf = new x509.X509Certificate(certs.cert);
  });

  it("returns PEM: two certificates and a PKCS#8 P-256 key", async () => {
    assert.match(certs.caCert, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----/);
    assert.match(certs.cert, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----/);
    assert.match(
      certs.key,
      /^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n$/,
    );
    const der = Uint8Array.from(
      atob(certs.key.replace(/-----[A-Z ]+-----|\n/g, "")),
      (char) => char.charCodeAt(0),
    );
    const key = await crypto.subtle.importKey(
      "pkcs8",
      der,
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["sign"],
    );
    assert.equal(key.type, "private");
  });

  it("makes a self-signed CA with BasicConstraints ca=true that may sign certificates", async () => {
    const constraints = ca.getExtension(x509.BasicConstraintsExtension);
    assert.ok(constraints, "the CA has BasicConstraints");
    assert.equal(constraints.ca, true);
    assert.equal(constraints.critical, true);
    const usage = ca.getExtension(x509.KeyUsagesExtension);
    assert.ok(usage, "the CA has KeyUsage");
    assert.ok(usage.usages & x509.KeyUsageFlags.keyCertSign, "keyCertSign is set");
    assert.equal(ca.subject, ca.issuer);
    assert.equal(await ca.isSelfSigned(), true);
  });

  it("makes a leaf that is not a CA, signed by the CA, for server authentication", async () => {
    const constraints = leaf.getExtension(x509.BasicConstraintsExtension);
    assert.ok(constraints, "the leaf has BasicConstraints");
    assert.equal(constraints.ca, false);
    const usage = leaf.getExtension(x509.KeyUsagesExtension);
    assert.ok(usage, "the leaf has KeyUsage");
    assert.equal(usage.usages & x509.KeyUsageFlags.keyCertSign, 0);
    const extended = leaf.getExtension(x509.ExtendedKeyUsageExtension);
    assert.deepEqual([...extended?.usages ?? []], [x509.ExtendedKeyUsage.serverAuth]);
    assert.equal(leaf.issuer, ca.subject);
    assert.notEqual(leaf.subject, ca.subject);
    assert.equal(await leaf.verify({ publicKey: ca.publicKey, signatureOnly: true }), true);
    assert.equal(await leaf.isSelfSigned(), false);
  });

  it("names localhost, 127.0.0.1 and ::1 in the leaf's SubjectAlternativeName", () => {
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    assert.ok(san, "the leaf has a SubjectAlternativeName");
    const names = san.names.toJSON().map(({ type, value }) => `${type}:${value}`);
    assert.deepEqual(names.sort(), ["dns:localhost", "ip:127.0.0.1", "ip:::1"]);
  });

  it("is valid now and for 7 days by default", () => {
    for (const cert of [ca, leaf]) {
      assert.ok(cert.notBefore.getTime() <= started, "valid from before the call");
      assert.ok(cert.notBefore.getTime() > started - 3_600_000, "not back-dated by an hour");
      // X.509 times have whole seconds.
      assert.ok(cert.notAfter.getTime() >= started + 7 * DAY_MS - 1000);
      assert.ok(cert.notAfter.getTime() <= finished + 7 * DAY_MS);
    }
  });

  it("takes the names and the validity from the options", async () => {
    const before = Date.now();
    const custom = await generateTestCertificates({
      dnsNames: ["mail.test", "smtp.mail.test"],
      ipAddresses: ["192.0.2.7"],
      days: 1,
    });
    const after = Date.now();
    const customLeaf = new x509.X509Certificate(custom.cert);
    const san = customLeaf.getExtension(x509.SubjectAlternativeNameExtension);
    const names = san?.names.toJSON().map(({ type, value }) => `${type}:${value}`);
    assert.deepEqual(names?.sort(), ["dns:mail.test", "dns:smtp.mail.test", "ip:192.0.2.7"]);
    assert.equal(customLeaf.subject, "CN=mail.test");
    assert.ok(customLeaf.notAfter.getTime() >= before + DAY_MS - 1000);
    assert.ok(customLeaf.notAfter.getTime() <= after + DAY_MS);
  });
});
