/**
 * `POST /send` answered synchronously, one test per row of the contract's
 * status table that needs an SMTP outcome, each produced by a real peer:
 * npm:smtp-server configured to refuse, the scripted fault server, or a
 * closed port. Also cancellation and the per-request client of Workers.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import type { Hono } from "hono";
import { createApp } from "../../src/http/app.ts";
import { type Config, loadConfig } from "../../src/http/config.ts";
import {
  isValidatedMessage,
  type MessageInput,
  type ValidatedMessage,
} from "../../src/message/schema.ts";
import { type SendOptions, SmtpClient } from "../../src/smtp/client.ts";
import type { SendResult } from "../../src/smtp/types.ts";
import {
  type FaultServer,
  smtpScript,
  type SmtpScriptOptions,
  startFaultServer,
} from "../support/fault_server.ts";
import { jsonPost } from "../support/requests.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";

const API_KEY = "send-key-0a1b2c3d4e5f";
const SMTP_PASS = "smtp-pass-9f8e7d6c5b";
const SECRETS = [API_KEY, SMTP_PASS];

let server: TestSmtpServer;
const clients: SmtpClient[] = [];
const faults: FaultServer[] = [];

before(async () => {
  server = await startSmtpServer({
    users: { ann: SMTP_PASS },
    rejectSender: { "blocked@example.com": { code: 553, message: "5.7.1 Sender refused" } },
    rejectRecipients: {
      "nobody@example.com": { code: 550, message: "5.1.1 No such user" },
      "busy@example.com": { code: 451, message: "4.3.0 Try again later" },
    },
    onData: (message) =>
      message.text.includes("REFUSE-THIS-CONTENT")
        ? { code: 554, message: "5.6.0 Content refused" }
        : undefined,
  });
});

after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await Promise.all(faults.map((fault) => fault.close().catch(() => {})));
  await server.close();
});

function env(smtpUrl: string, caCert: string, extra: Record<string, string> = {}) {
  return {
    SMTP_URL: smtpUrl,
    SMTP_CA_CERT: caCert,
    API_KEYS: API_KEY,
    MAIL_FROM: "App <app@example.com>",
    ...extra,
  };
}

function serverConfig(extra: Record<string, string> = {}): Config {
  return loadConfig(env(`smtp://ann:${SMTP_PASS}@127.0.0.1:${server.port}`, server.caCert, extra));
}

function appFor(config: Config): Hono {
  const client = new SmtpClient({ ...config.smtp, pool: { idleTimeoutMs: 200 } });
  clients.push(client);
  return createApp(config, { client });
}

async function faultApp(
  script: SmtpScriptOptions,
  extra: Record<string, string> = {},
): Promise<{ app: Hono; fault: FaultServer }> {
  const fault = await startFaultServer(smtpScript(script));
  faults.push(fault);
  // The fault server offers no AUTH: no credentials.
  const app = appFor(loadConfig(env(`smtp://127.0.0.1:${fault.port}`, fault.caCert, extra)));
  return { app, fault };
}

function send(body: unknown, init: RequestInit = {}): RequestInit {
  return { ...jsonPost(body, { apiKey: API_KEY }), ...init };
}

// Parsed JSON, checked field by field by the tests.
// deno-lint-ignore no-explicit-any
async function json(response: Response, status: number): Promise<Record<string, any>> {
  const text = await response.text();
  assert.equal(response.status, status, text);
  for (const secret of SECRETS) assert.ok(!text.includes(secret), "a secret is in the body");
  return JSON.parse(text);
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const port = (listener.address() as net.AddressInfo).port;
  await new Promise((resolve) => listener.close(resolve));
  return port;
}

/** Runs `fn` with console.info and console.error captured. */
async function captureLogs<T>(fn: () => T | Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const { info, error } = console;
  console.info = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  console.error = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  try {
    return { value: await fn(), lines };
  } finally {
    console.info = info;
    console.error = error;
  }
}

const message = {
  to: ["bob@example.com", "Cy <cy@example.com>"],
  subject: "Hello",
  text: "Plain body",
  token: "order-42",
};

describe("POST /send: 200 sent", () => {
  it("answers the Result and the server received the message", async () => {
    const before = server.messages.length;
    const body = await json(await appFor(serverConfig()).request("/send", send(message)), 200);
    assert.equal(body.status, "sent");
    assert.equal(body.token, "order-42");
    assert.deepEqual(body.accepted, ["bob@example.com", "cy@example.com"]);
    assert.deepEqual(body.rejected, []);
    assert.match(body.response, /^250/);
    assert.equal(body.error, undefined);
    const [received] = server.messages.slice(before);
    assert.equal(received.from, "app@example.com");
    assert.deepEqual(received.to, ["bob@example.com", "cy@example.com"]);
    assert.equal(received.user, "ann");
    assert.ok(received.secure, "not sent over TLS");
    assert.ok(received.text.includes(`Message-ID: ${body.messageId}`));
    assert.match(received.text, /^Subject: Hello\r$/m);
  });

  it("with allowPartial, sends to the accepted recipients and lists the refused", async () => {
    const before = server.messages.length;
    const body = await json(
      await appFor(serverConfig()).request(
        "/send",
        send({ ...message, to: ["bob@example.com", "nobody@example.com"], allowPartial: true }),
      ),
      200,
    );
    assert.equal(body.status, "sent");
    assert.deepEqual(body.accepted, ["bob@example.com"]);
    assert.equal(body.rejected.length, 1);
    assert.equal(body.rejected[0].address, "nobody@example.com");
    assert.equal(body.rejected[0].code, 550);
    assert.deepEqual(server.messages.slice(before).map((m) => m.to), [["bob@example.com"]]);
  });
});

describe("POST /send: 422 rejected", () => {
  it("a refused recipient (all-or-nothing): nothing delivered, the full rejected list", async () => {
    const before = server.messages.length;
    const body = await json(
      await appFor(serverConfig()).request(
        "/send",
        send({ ...message, to: ["bob@example.com", "nobody@example.com"] }),
      ),
      422,
    );
    assert.equal(body.status, "failed");
    assert.equal(body.token, "order-42");
    assert.equal(body.error.type, "rejected");
    assert.equal(body.error.phase, "rcpt");
    assert.deepEqual(body.rejected.map((r: { address: string }) => r.address), [
      "nobody@example.com",
    ]);
    assert.equal(server.messages.length, before);
  });

  it("a refused sender", async () => {
    const body = await json(
      await appFor(serverConfig({ ALLOWED_FROM: "@example.com" })).request(
        "/send",
        send({ ...message, from: "blocked@example.com" }),
      ),
      422,
    );
    assert.equal(body.error.type, "rejected");
    assert.equal(body.error.phase, "mail");
    assert.equal(body.error.code, 553);
  });

  it("refused content", async () => {
    const body = await json(
      await appFor(serverConfig()).request(
        "/send",
        send({ ...message, text: "REFUSE-THIS-CONTENT" }),
      ),
      422,
    );
    assert.equal(body.error.type, "rejected");
    assert.equal(body.error.phase, "message");
    assert.equal(body.error.code, 554);
  });
});

describe("POST /send: 503 transient", () => {
  it("answers 503 with Retry-After", async () => {
    const response = await appFor(serverConfig()).request(
      "/send",
      send({ ...message, to: "busy@example.com" }),
    );
    assert.ok(Number(response.headers.get("Retry-After")) > 0);
    const body = await json(response, 503);
    assert.equal(body.error.type, "transient");
    assert.equal(body.error.code, 451);
  });
});

describe("POST /send: 502", () => {
  it("connection: nothing listens", async () => {
    const port = await closedPort();
    const app = appFor(loadConfig(env(`smtp://127.0.0.1:${port}`, server.caCert)));
    const body = await json(await app.request("/send", send(message)), 502);
    assert.equal(body.error.type, "connection");
    assert.equal(body.error.phase, "connect");
  });

  it("tls: STARTTLS required but not offered", async () => {
    const plain = await startSmtpServer({ starttls: false });
    try {
      const app = appFor(loadConfig(env(`smtp://127.0.0.1:${plain.port}`, plain.caCert)));
      const body = await json(await app.request("/send", send(message)), 502);
      assert.equal(body.error.type, "tls");
      assert.equal(plain.messages.length, 0);
    } finally {
      await plain.close();
    }
  });

  it("tls: a certificate from an untrusted CA", async () => {
    const other = await startFaultServer(smtpScript());
    faults.push(other);
    // The CA of another server: the handshake must fail.
    const app = appFor(loadConfig(env(`smtp://127.0.0.1:${server.port}`, other.caCert)));
    const body = await json(await app.request("/send", send(message)), 502);
    assert.equal(body.error.type, "tls");
    assert.equal(body.error.phase, "starttls");
  });

  it("auth: wrong password, which never shows", async () => {
    const wrong = "wrong-pass-3c4d5e6f7a";
    const app = appFor(
      loadConfig(env(`smtp://ann:${wrong}@127.0.0.1:${server.port}`, server.caCert)),
    );
    const { value: response, lines } = await captureLogs(() => app.request("/send", send(message)));
    const text = await response.clone().text();
    const body = await json(response, 502);
    assert.equal(body.error.type, "auth");
    assert.equal(body.error.phase, "auth");
    assert.ok(!text.includes(wrong) && !lines.join("\n").includes(wrong));
  });

  it("protocol: a greeting that is not SMTP", async () => {
    const { app } = await faultApp({ greeting: "HTTP/1.1 400 Bad Request" });
    const body = await json(await app.request("/send", send(message)), 502);
    assert.equal(body.error.type, "protocol");
    assert.equal(body.error.phase, "greeting");
  });

  it("unknown_outcome: the connection drops after the whole message was sent", async () => {
    const { app } = await faultApp({ message: (conn) => conn.destroy() });
    const body = await json(await app.request("/send", send(message)), 502);
    assert.equal(body.error.type, "unknown_outcome");
    assert.equal(body.error.phase, "message");
  });
});

describe("POST /send: 504 timeout", () => {
  it("a server that never greets", async () => {
    const { app } = await faultApp(
      { greeting: (conn) => conn.waitClosed() },
      { SMTP_TIMEOUT_MS: "300" },
    );
    const body = await json(await app.request("/send", send(message)), 504);
    assert.equal(body.error.type, "timeout");
    assert.equal(body.error.phase, "greeting");
  });
});

describe("cancellation", () => {
  it("a client that goes away before the end of the data: nothing delivered", async () => {
    const rcpt = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    let delivered = 0;
    const { app } = await faultApp({
      RCPT: async (conn) => {
        rcpt.resolve();
        await release.promise;
        await conn.send("250 2.1.5 Ok\r\n");
      },
      message: async (conn) => {
        delivered++;
        await conn.send("250 2.0.0 Ok: queued\r\n");
      },
    });
    const abort = new AbortController();
    const answer = app.request("/send", send(message, { signal: abort.signal }));
    await rcpt.promise;
    abort.abort();
    const body = await json(await answer, 499);
    release.resolve();
    assert.equal(body.status, "cancelled");
    assert.equal(body.error.type, "cancelled");
    assert.equal(delivered, 0);
  });

  it("a client that goes away after the data: the send completes and is logged", async () => {
    const data = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    let delivered = 0;
    const { app } = await faultApp({
      message: async (conn) => {
        data.resolve();
        await release.promise;
        delivered++;
        await conn.send("250 2.0.0 Ok: queued as LATE1\r\n");
      },
    });
    const abort = new AbortController();
    const { value: body, lines } = await captureLogs(async () => {
      const answer = app.request("/send", send(message, { signal: abort.signal }));
      await data.promise;
      abort.abort();
      release.resolve();
      return await json(await answer, 200);
    });
    assert.equal(body.status, "sent");
    assert.equal(delivered, 1);
    const log = lines.find((line) => line.includes("went away"));
    assert.ok(log, `no log line: ${lines.join("\n")}`);
    assert.ok(log.includes(body.messageId) && log.includes("LATE1"), log);
    for (const secret of SECRETS) assert.ok(!lines.join("\n").includes(secret));
  });
});

/** An SmtpClient that notes, for each message it is handed, whether it is a ValidatedMessage. */
class WatchedClient extends SmtpClient {
  validated: boolean[] = [];

  override send(
    message: MessageInput | ValidatedMessage,
    options?: SendOptions,
  ): Promise<SendResult> {
    this.validated.push(isValidatedMessage(message));
    return super.send(message, options);
  }
}

describe("POST /send: validated once", () => {
  it("hands the client the message it validated, which is sent without parsing it again", async () => {
    const config = serverConfig();
    const client = new WatchedClient({ ...config.smtp, pool: { idleTimeoutMs: 200 } });
    clients.push(client);
    const app = createApp(config, { client });
    // MAIL_FROM applied (a new message, a ValidatedMessage all the same), then its own from.
    for (const body of [message, { ...message, from: "app@example.com" }]) {
      assert.equal((await json(await app.request("/send", send(body)), 200)).status, "sent");
    }
    assert.deepEqual(client.validated, [true, true]);
  });
});

describe("POST /send: a bug in the send", () => {
  /** A client that fails like a bug would, after the end of the data or before anything. */
  class BrokenClient extends SmtpClient {
    constructor(config: Config, readonly afterData: boolean) {
      super(config.smtp);
    }
    override send(_message: unknown, options?: SendOptions): Promise<SendResult> {
      if (this.afterData) options?.onDataWritten?.();
      return Promise.reject(new TypeError(`kaboom with ${SMTP_PASS}`));
    }
  }

  for (
    const [afterData, status, type] of [[false, 500, "internal"], [
      true,
      502,
      "unknown_outcome",
    ]] as const
  ) {
    it(`${afterData ? "after" : "before"} the end of the data was written: ${status} ${type}`, async () => {
      const config = serverConfig();
      const app = createApp(config, { client: new BrokenClient(config, afterData) });
      const original = console.error;
      console.error = () => {};
      try {
        const body = await json(await app.request("/send", send(message)), status);
        assert.equal(body.status, "failed");
        assert.equal(body.error.type, type);
        assert.ok(!JSON.stringify(body).includes("kaboom"), "the raw exception reached the caller");
      } finally {
        console.error = original;
      }
    });
  }
});

describe("per-request client (Workers)", () => {
  it("sends with a client of its own and closes it afterwards", async () => {
    const config = serverConfig();
    const app = createApp(config, { perRequestClient: true });
    const before = server.messages.length;
    const commands = server.commands.length;
    const body = await json(await app.request("/send", send(message)), 200);
    assert.equal(body.status, "sent");
    assert.equal(server.messages.length, before + 1);
    const deadline = Date.now() + 5000;
    while (!server.commands.slice(commands).includes("QUIT") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(server.commands.slice(commands).includes("QUIT"), "the connection was not closed");
  });
});
