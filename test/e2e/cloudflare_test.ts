/**
 * End to end on Cloudflare Workers' runtime: `functions/cloudflare.ts`
 * bundled as wrangler would and run in real workerd (miniflare), sending
 * through `cloudflare:sockets` to npm:smtp-server on loopback — implicit TLS
 * with AUTH, STARTTLS, the SSE stream, a client that goes away mid-send, a
 * missing configuration, and certificates workerd must refuse.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import PostalMime from "postal-mime";
import { type FaultServer, smtpScript, startFaultServer } from "../support/fault_server.ts";
import { guard } from "../support/guard.ts";
import { jsonPost } from "../support/requests.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { readEvents } from "../support/sse.ts";
import {
  bundleWorker,
  serveScript,
  type TestWorker,
  workerdSkipReason,
} from "../support/workerd.ts";

const API_KEY = "test-key-for-workerd";
const FROM = "sender@example.com";
const TO = "rcpt@example.org";

const skip = await workerdSkipReason();
if (skip) console.warn(`skipping the Cloudflare Workers end-to-end tests: ${skip}`);

describe("functions/cloudflare.ts in workerd", { skip }, () => {
  let script: string;
  const servers: (TestSmtpServer | FaultServer)[] = [];
  const workers: TestWorker[] = [];

  before(async () => {
    script = await bundleWorker("functions/cloudflare.ts");
  });

  after(async () => {
    await Promise.all(workers.map((worker) => worker.close()));
    await Promise.all(servers.map((server) => server.close()));
  });

  /** Starts an SMTP server and a Worker configured to send through it. */
  async function setUp(
    options: { secure: boolean; trusted?: boolean; user?: string; password?: string },
  ): Promise<{ server: TestSmtpServer; worker: TestWorker }> {
    const users = options.user === undefined ? undefined : { [options.user]: options.password! };
    const server = await startSmtpServer({ secure: options.secure, users });
    servers.push(server);
    const credentials = options.user === undefined
      ? ""
      : `${encodeURIComponent(options.user)}:${encodeURIComponent(options.password!)}@`;
    const scheme = options.secure ? "smtps" : "smtp";
    const worker = await serveScript(script, {
      bindings: {
        SMTP_URL: `${scheme}://${credentials}localhost:${server.port}`,
        MAIL_FROM: `Sender <${FROM}>`,
        API_KEYS: API_KEY,
        SMTP_TIMEOUT_MS: "10000",
      },
      // An untrusted server's CA is simply not handed to workerd.
      trustedCertificates: options.trusted === false ? [] : [server.caCert],
    });
    workers.push(worker);
    return { server, worker };
  }

  /** A Worker sending through `server` (implicit TLS, its CA trusted). */
  async function workerFor(server: FaultServer): Promise<TestWorker> {
    servers.push(server);
    const worker = await serveScript(script, {
      bindings: {
        SMTP_URL: `smtps://localhost:${server.port}`,
        MAIL_FROM: FROM,
        API_KEYS: API_KEY,
      },
      trustedCertificates: [server.caCert],
    });
    workers.push(worker);
    return worker;
  }

  /**
   * POSTs `body` to /send asking for SSE over a raw HTTP/1.1 connection: closing
   * it closes the TCP connection at once (fetch's cancel would close it some time
   * later, possibly after the Worker's next write).
   */
  async function postRawSse(worker: TestWorker, body: unknown): Promise<Deno.Conn> {
    const client = await Deno.connect({
      hostname: worker.url.hostname,
      port: Number(worker.url.port),
    });
    const json = JSON.stringify(body);
    await client.write(new TextEncoder().encode(
      `POST /send HTTP/1.1\r\nHost: ${worker.url.host}\r\nAuthorization: Bearer ${API_KEY}\r\n` +
        "Content-Type: application/json\r\nAccept: text/event-stream\r\n" +
        `Content-Length: ${new TextEncoder().encode(json).length}\r\n\r\n${json}`,
    ));
    return client;
  }

  function send(worker: TestWorker, body: unknown, accept?: string) {
    return worker.fetch("/send", jsonPost(body, { apiKey: API_KEY, accept }));
  }

  it("delivers over implicit TLS (smtps://) with AUTH", async () => {
    const { server, worker } = await setUp({ secure: true, user: "ann", password: "p@ss:word" });
    const response = await send(worker, {
      to: TO,
      subject: "Implicit TLS from workerd",
      text: "Sent through cloudflare:sockets.",
      token: "implicit-1",
    });
    const result = await response.json();
    assert.equal(response.status, 200, JSON.stringify(result));
    assert.equal(result.status, "sent");
    assert.equal(result.token, "implicit-1");
    assert.deepEqual(result.accepted, [TO]);

    const [message] = await server.waitForMessages(1);
    assert.equal(message.secure, true);
    assert.equal(message.user, "ann");
    assert.equal(message.from, FROM);
    assert.deepEqual(message.to, [TO]);
    const parsed = await PostalMime.parse(message.raw);
    assert.equal(parsed.subject, "Implicit TLS from workerd");
    assert.equal(parsed.text?.trim(), "Sent through cloudflare:sockets.");
    assert.equal(parsed.messageId, result.messageId);
  });

  it("delivers over STARTTLS (smtp://)", async () => {
    const { server, worker } = await setUp({ secure: false });
    const response = await send(worker, {
      to: TO,
      subject: "STARTTLS from workerd",
      html: "<p>Upgraded <b>in place</b>.</p>",
    });
    const result = await response.json();
    assert.equal(response.status, 200, JSON.stringify(result));
    assert.equal(result.status, "sent");

    const [message] = await server.waitForMessages(1);
    // smtp-server marks the session secure only after a completed STARTTLS.
    assert.equal(message.secure, true);
    assert.ok(server.commands.includes("STARTTLS"));
    assert.deepEqual(message.to, [TO]);
    const parsed = await PostalMime.parse(message.raw);
    assert.equal(parsed.subject, "STARTTLS from workerd");
    assert.equal(parsed.html?.trim(), "<p>Upgraded <b>in place</b>.</p>");
  });

  it("streams progress as SSE and ends with the completed result", async () => {
    const { server, worker } = await setUp({ secure: true });
    const response = await send(worker, {
      to: TO,
      subject: "SSE from workerd",
      text: "streamed",
      token: 42,
    }, "text/event-stream");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal(response.headers.get("x-accel-buffering"), "no");

    const events = await readEvents(response);
    const ids = events.map((event) => Number(event.id));
    assert.deepEqual(ids, ids.toSorted((a, b) => a - b));
    assert.equal(new Set(ids).size, ids.length);

    const last = events.at(-1)!;
    assert.equal(last.event, "completed");
    const result = JSON.parse(last.data);
    assert.equal(result.status, "sent");
    assert.equal(result.token, 42);
    assert.deepEqual(result.accepted, [TO]);

    const statuses = events.slice(0, -1).map((event) => {
      assert.equal(event.event, "status");
      return JSON.parse(event.data);
    });
    for (const status of statuses) assert.equal(status.token, 42);
    const done = statuses.filter((status) => status.state === "done").map((status) => status.phase);
    for (const phase of ["connect", "greeting", "ehlo", "mail", "rcpt", "data"]) {
      assert.ok(done.includes(phase), `no "done" status for ${phase}: ${done.join(", ")}`);
    }
    const rcpt = statuses.find((status) => status.phase === "rcpt" && status.state === "done");
    assert.equal(rcpt.recipient, TO);
    assert.equal(rcpt.reply.code, 250);

    const [message] = await server.waitForMessages(1);
    assert.equal((await PostalMime.parse(message.raw)).subject, "SSE from workerd");
  });

  it("answers 500 without details when the Worker is not configured, and logs what to fix", async () => {
    const worker = await serveScript(script, { bindings: { API_KEYS: API_KEY } });
    workers.push(worker);
    const response = await send(worker, { to: TO, text: "never" });
    const body = await response.json();
    assert.equal(response.status, 500);
    assert.equal(body.error.type, "internal");
    assert.doesNotMatch(JSON.stringify(body), /SMTP_URL|API_KEYS/);
    assert.match(worker.log(), /SMTP_URL/);
  });

  it("abandons the transaction when the SSE client goes away before the data", async () => {
    // Local workerd notices a disconnect only when it next writes to the client (the
    // synchronous path cannot be tried here). So the server holds MAIL until the client
    // has gone, then answers it: the Worker's "mail done" event finds the client gone. RCPT
    // is held until the Worker closes the connection, or for 5 s: a Worker that did not
    // notice would then carry on with the message.
    let reachedMail!: () => void;
    const atMail = new Promise<void>((resolve) => reachedMail = resolve);
    let clientGone!: () => void;
    const gone = new Promise<void>((resolve) => clientGone = resolve);
    let rcptDone!: (closedByWorker: boolean) => void;
    const closedAtRcpt = new Promise<boolean>((resolve) => rcptDone = resolve);
    const server = await startFaultServer(
      smtpScript({
        MAIL: async (conn) => {
          reachedMail();
          await gone;
          await conn.send("250 2.1.0 Ok\r\n");
        },
        RCPT: async (conn) => {
          const timeout = new Promise<void>((resolve) => setTimeout(resolve, 5000));
          await Promise.race([conn.waitClosed(), timeout]);
          rcptDone(conn.closed);
          if (!conn.closed) await conn.send("250 2.1.5 Ok\r\n");
        },
      }),
      { implicitTls: true },
    );
    const worker = await workerFor(server);

    const client = await postRawSse(worker, { to: TO, text: "never" });
    await atMail;
    client.close();
    clientGone();
    const closedByWorker = await closedAtRcpt;
    // (DATA itself may have been pipelined behind RCPT; the content only follows a 354.)
    assert.equal(closedByWorker, true, "the Worker kept the SMTP session after the client left");
  });

  it("completes a send whose data was written when the client goes away (waitUntil)", async () => {
    let dataIn!: () => void;
    const atData = new Promise<void>((resolve) => dataIn = resolve);
    let closedBeforeReply: boolean | undefined;
    let replyWritten: boolean | undefined;
    let verdictDone!: () => void;
    const handled = new Promise<void>((resolve) => verdictDone = resolve);
    const server = await startFaultServer(
      smtpScript({
        message: async (conn) => {
          try {
            dataIn();
            // Hold the verdict after the client has gone: a Worker whose invocation was
            // cancelled would drop the SMTP connection meanwhile.
            await new Promise((resolve) => setTimeout(resolve, 1500));
            closedBeforeReply = conn.closed;
            replyWritten = await conn.send("250 2.0.0 Ok: queued as LATE1\r\n");
          } finally {
            verdictDone();
          }
        },
      }),
      { implicitTls: true },
    );
    const worker = await workerFor(server);
    const client = await postRawSse(worker, { to: TO, text: "late verdict" });
    await atData;
    client.close();
    await guard(handled, "the fault server's verdict", { ms: 15_000 });
    assert.equal(closedBeforeReply, false, "the Worker dropped the SMTP session after the data");
    assert.equal(replyWritten, true);
  });

  for (const secure of [true, false]) {
    const mode = secure ? "implicit TLS" : "STARTTLS";
    it(`answers 502 tls when the server's certificate is not trusted (${mode})`, async () => {
      const { server, worker } = await setUp({ secure, trusted: false });
      const response = await send(worker, { to: TO, subject: "never", text: "never" });
      const result = await response.json();
      assert.equal(response.status, 502, JSON.stringify(result));
      assert.equal(result.status, "failed");
      assert.equal(result.error.type, "tls");
      assert.equal(result.error.phase, secure ? "connect" : "starttls");
      assert.match(worker.log(), /certificate is not trusted/);
      assert.equal(server.messages.length, 0);
      // Nothing but the plain EHLO and STARTTLS went out before the failed handshake.
      assert.ok(!server.commands.some((line) => /^(MAIL|RCPT|DATA|AUTH)/i.test(line)));
    });
  }
});
