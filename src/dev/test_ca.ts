/**
 * Generates a throw-away certificate authority and a `localhost` server
 * certificate signed by it, with WebCrypto only (no openssl on the machine
 * needed). Used by the development mail server and by the tests: rustls
 * refuses a self-signed leaf used as its own CA, so a CA plus a leaf it is.
 *
 * @module
 */

import * as x509 from "@peculiar/x509";

/** PEM material of a generated test CA and its server certificate. */
export interface TestCertificates {
  /** The CA certificate (trust this one). */
  caCert: string;
  /** The server certificate for `localhost`, `127.0.0.1` and `::1`. */
  cert: string;
  /** The server certificate's private key (PKCS#8). */
  key: string;
}

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** Options for {@linkcode generateTestCertificates}. */
export interface TestCertificateOptions {
  /** DNS names in the server certificate. Default `["localhost"]`. */
  dnsNames?: string[];
  /** IP addresses in the server certificate. Default `["127.0.0.1", "::1"]`. */
  ipAddresses?: string[];
  /** Validity in days. Default 7. */
  days?: number;
}

/** Creates a fresh CA and a server certificate signed by it. */
export async function generateTestCertificates(
  options: TestCertificateOptions = {},
): Promise<TestCertificates> {
  x509.cryptoProvider.set(crypto);
  const dnsNames = options.dnsNames ?? ["localhost"];
  const ipAddresses = options.ipAddresses ?? ["127.0.0.1", "::1"];
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + (options.days ?? 7) * 86_400_000);

  const caKeys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: "CN=edgemail test CA",
    notBefore,
    notAfter,
    signingAlgorithm: algorithm,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const leafKeys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${dnsNames[0] ?? "localhost"}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    signingAlgorithm: algorithm,
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...ipAddresses.map((value) => ({ type: "ip" as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const pkcs8 = await crypto.subtle.exportKey("pkcs8", leafKeys.privateKey);
  return {
    caCert: ca.toString("pem"),
    cert: leaf.toString("pem"),
    key: toPem("PRIVATE KEY", new Uint8Array(pkcs8)),
  };
}

function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f; // a positive serial number
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function toPem(label: string, der: Uint8Array): string {
  let binary = "";
  for (const byte of der) binary += String.fromCharCode(byte);
  const body = btoa(binary).replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}
