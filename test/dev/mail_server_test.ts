import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import nodemailer from "nodemailer";
import { startDevMailServer } from "../../src/dev/mail_server.ts";
import type { DevMailServer } from "../../src/dev/mail_server.ts";
import { listOutbox, readOutboxMessage } from "../../src/dev/outbox.ts";
import { generateTestCertificates } from "../../src/dev/test_ca.ts";

const MAX_MESSAGE_BYTES = 256 * 1024;

interface TransportOptions {
  port: number;
  ca?: string;
  method?: string;
  ignoreTLS?: boolean;
}

/** A nodemailer transport that insists on STARTTLS, trusting `ca`, and logs in. */
function transport({ port, ca, method, ignoreTLS }: TransportOptions) {
  return nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    requireTLS: !ignoreTLS,
    ignoreTLS: ignoreTLS ?? false,
    auth: { user: `user-${crypto.randomUUID()}`, pass: crypto.randomUUID() },
    authMethod: method,
    tls: { ca: ca === undefined ? [] : [ca], servername: "localhost" },
  });
}

/** A small message with dot lines and 8-bit text, CRLF line ends, unique per call. */
function rawMessage(subject: string, body = "Hello from the test.\r\n"): string {
  return [
    "From: Ann <ann@example.com>",
    "To: Bob <bob@example.com>, cy@example.org",
    `Subject: ${subject}`,
    "Date: Sat, 21 Nov 2026 23:15:00 +0000",
    `Message-ID: <${crypto.randomUUID()}@example.com>`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    body +
    ".a line starting with a dot\r\n..two dots\r\n.\r\nünïcödé\r\n",
  ].join("\r\n");
}

async function outboxFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

describe("startDevMailServer", () => {
  let dir: string;
  let server: DevMailServer;

  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "edgemail-outbox-" });
    server = await startDevMailServer({
      port: 0,
      outboxDir: dir,
      certificates: await generateTestCertificates(),
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
  });

  after(async () => {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  });

  it("listens on loopback on a free port when asked for port 0", () => {
    assert.equal(server.hostname, "127.0.0.1");
    assert.ok(server.port > 0 && server.port < 65536);
    assert.match(server.caCert, /^-----BEGIN CERTIFICATE-----/);
  });

  for (const method of ["PLAIN", "LOGIN", "CRAM-MD5"]) {
    it(`stores a message sent over STARTTLS with AUTH ${method} byte for byte`, async () => {
      const raw = rawMessage(`${method} ${crypto.randomUUID()}`);
      const mailer = transport({ port: server.port, ca: server.caCert, method });
      const info = await mailer.sendMail({
        envelope: { from: "ann@example.com", to: ["bob@example.com", "cy@example.org"] },
        raw,
      });
      mailer.close();
      assert.deepEqual(info.accepted, ["bob@example.com", "cy@example.org"]);

      const subject = raw.match(/^Subject: (.*)$/m)![1];
      const entry = (await listOutbox(dir)).find((e) => e.subject === subject);
      assert.ok(entry, "the message is listed in the outbox");
      const stored = await readOutboxMessage(dir, entry.id);
      assert.deepEqual(stored, new TextEncoder().encode(raw));
      assert.equal(entry.size, new TextEncoder().encode(raw).length);
      assert.equal(entry.from, "Ann <ann@example.com>");
      assert.deepEqual(entry.to, ["Bob <bob@example.com>", "cy@example.org"]);
    });
  }

  it("accepts AUTH XOAUTH2 with any token", async () => {
    const subject = `XOAUTH2 ${crypto.randomUUID()}`;
    const mailer = nodemailer.createTransport({
      host: "127.0.0.1",
      port: server.port,
      requireTLS: true,
      auth: { type: "OAuth2", user: "dev@example.com", accessToken: crypto.randomUUID() },
      tls: { ca: [server.caCert], servername: "localhost" },
    });
    await mailer.sendMail({
      envelope: { from: "ann@example.com", to: "bob@example.com" },
      raw: rawMessage(subject),
    });
    mailer.close();
    assert.ok((await listOutbox(dir)).some((entry) => entry.subject === subject));
  });

  it("stores a message composed by nodemailer, listed with its decoded subject", async () => {
    const subject = `Grüße ${crypto.randomUUID()}`;
    const mailer = transport({ port: server.port, ca: server.caCert });
    const info = await mailer.sendMail({
      from: "Änne <ann@example.com>",
      to: "bob@example.com",
      subject,
      text: "Hallo",
    });
    mailer.close();

    const entry = (await listOutbox(dir)).find((e) => e.subject === subject);
    assert.ok(entry, "the message is listed with its subject decoded");
    assert.equal(entry.from, "Änne <ann@example.com>");
    assert.deepEqual(entry.to, ["bob@example.com"]);
    const stored = new TextDecoder().decode(await readOutboxMessage(dir, entry.id));
    assert.ok(stored.includes(`Message-ID: ${info.messageId}`));
  });

  it("refuses the handshake of a client that does not trust the test CA", async () => {
    const before = await outboxFiles(dir);
    const other = await generateTestCertificates();
    const mailer = transport({ port: server.port, ca: other.caCert });
    await assert.rejects(
      mailer.sendMail({ envelope: { from: "a@example.com", to: "b@example.com" }, raw: "x\r\n" }),
      // The TLS handshake failed on the certificate, not something later.
      { code: "ESOCKET", message: /certificate/ },
    );
    mailer.close();
    assert.deepEqual(await outboxFiles(dir), before);
  });

  it("refuses AUTH before STARTTLS, as a production server would", async () => {
    const mailer = transport({ port: server.port, ignoreTLS: true });
    await assert.rejects(
      mailer.sendMail({ envelope: { from: "a@example.com", to: "b@example.com" }, raw: "x\r\n" }),
      (error: { responseCode?: number }) => error.responseCode === 538,
    );
    mailer.close();
  });

  it("refuses a message over the size limit with 552 and stores nothing", async () => {
    const before = await outboxFiles(dir);
    const line = "x".repeat(76) + "\r\n";
    const body = line.repeat(Math.ceil((MAX_MESSAGE_BYTES + 1024) / line.length));
    const mailer = transport({ port: server.port, ca: server.caCert });
    await assert.rejects(
      mailer.sendMail({
        envelope: { from: "ann@example.com", to: "bob@example.com" },
        raw: rawMessage("too large", body),
      }),
      (error: { responseCode?: number }) => error.responseCode === 552,
    );
    mailer.close();
    assert.deepEqual(await outboxFiles(dir), before);
  });

  it("says which variable to change when its port is taken", async () => {
    await assert.rejects(
      startDevMailServer({ port: server.port, outboxDir: dir }),
      (error: Error) =>
        error.message.includes("DEV_SMTP_PORT") && error.message.includes(
          `127.0.0.1:${server.port}`,
        ),
    );
  });
});
