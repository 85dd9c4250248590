/**
 * The Cloudflare socket adapter in real workerd (miniflare), against a real
 * SMTP server: a fixture Worker drives greeting, EHLO, STARTTLS, EHLO, QUIT
 * through `cloudflareConnect` and returns the transcript.
 */

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { startWorker, type TestWorker, workerdSkipReason } from "../support/workerd.ts";

interface Transcript {
  steps: { sent?: string; reply: string; secure: boolean }[];
  error?: { name: string; message: string };
}

const skip = await workerdSkipReason();
if (skip) console.warn(`skipping the workerd socket tests: ${skip}`);

describe("cloudflareConnect in workerd", { skip }, () => {
  let plain: TestSmtpServer;
  let implicit: TestSmtpServer;
  let untrustedPlain: TestSmtpServer;
  let untrustedImplicit: TestSmtpServer;
  let worker: TestWorker;

  before(async () => {
    [plain, implicit, untrustedPlain, untrustedImplicit] = await Promise.all([
      startSmtpServer(),
      startSmtpServer({ secure: true }),
      startSmtpServer(),
      startSmtpServer({ secure: true }),
    ]);
    // Only the first two servers' CAs are trusted; the others present unknown issuers.
    worker = await startWorker("test/e2e/fixtures/raw_smtp_worker.ts", {
      trustedCertificates: [plain.caCert, implicit.caCert],
    });
  });

  after(async () => {
    await worker?.close();
    await Promise.all([plain, implicit, untrustedPlain, untrustedImplicit].map((s) => s?.close()));
  });

  async function transcript(port: number, tls: "starttls" | "implicit"): Promise<Transcript> {
    const response = await worker.fetch(`/?host=localhost&port=${port}&tls=${tls}`);
    assert.equal(response.status, 200);
    return await response.json();
  }

  it("upgrades a plain connection with STARTTLS and keeps talking over TLS", async () => {
    const { steps, error } = await transcript(plain.port, "starttls");
    assert.equal(error, undefined);
    assert.deepEqual(
      steps.map((step) => [step.sent ?? "(greeting)", code(step), step.secure]),
      [
        ["(greeting)", "220", false],
        ["EHLO worker.test", "250", false],
        ["STARTTLS", "220", false],
        ["EHLO worker.test", "250", true],
        ["QUIT", "221", true],
      ],
    );
    assert.match(steps[1].reply, /STARTTLS/);
    // Over TLS the server no longer offers STARTTLS: the second EHLO really went over TLS.
    assert.doesNotMatch(steps[3].reply, /STARTTLS/);
    assert.deepEqual(plain.commands.filter((line) => /^(EHLO|STARTTLS|QUIT)/.test(line)), [
      "EHLO worker.test",
      "STARTTLS",
      "EHLO worker.test",
      "QUIT",
    ]);
  });

  it("speaks implicit TLS from the greeting on", async () => {
    const { steps, error } = await transcript(implicit.port, "implicit");
    assert.equal(error, undefined);
    assert.deepEqual(steps.map((step) => [code(step), step.secure]), [
      ["220", true],
      ["250", true],
      ["221", true],
    ]);
    assert.ok(implicit.commands.includes("QUIT"));
  });

  it("reports an untrusted certificate after STARTTLS as a TLS handshake failure", async () => {
    const { steps, error } = await transcript(untrustedPlain.port, "starttls");
    assert.equal(steps.at(-1)?.sent, "STARTTLS");
    assert.equal(error?.name, "TlsHandshakeError");
    assert.match(error?.message ?? "", /TLS handshake with localhost failed/);
    assert.match(worker.log(), /certificate is not trusted/);
    // Nothing was sent in the clear after the upgrade began.
    assert.equal(untrustedPlain.commands.at(-1), "STARTTLS");
  });

  it("reports an untrusted certificate on implicit TLS as a TLS handshake failure", async () => {
    const { steps, error } = await transcript(untrustedImplicit.port, "implicit");
    assert.deepEqual(steps, []);
    assert.equal(error?.name, "TlsHandshakeError");
    assert.match(error?.message ?? "", /TLS handshake with localhost failed/);
  });

  for (const tls of ["starttls", "implicit"] as const) {
    it(`reports a refused ${tls} connection as a connection failure, not TLS`, async () => {
      const { steps, error } = await transcript(await closedPort(), tls);
      assert.deepEqual(steps, []);
      assert.equal(error?.name, "Error");
      assert.match(error?.message ?? "", /^Could not connect to localhost:\d+/);
    });
  }
});

function code(step: { reply: string }): string {
  return step.reply.split("\r\n").at(-1)?.slice(0, 3) ?? "";
}

/** A loopback port nothing listens on (bound, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
