/**
 * SmtpClient against npm:smtp-server in the test process: AUTH mechanisms,
 * partial rejection, DSN parameters as the server received them, concurrency,
 * option validation, the completed event and closing; and the
 * `beforeDataEnd` hook against the scripted fault server.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  type CompletedDetail,
  resultOf,
  sendSettled,
  SmtpClient,
  type SmtpClientOptions,
  SmtpError,
} from "../../src/mod.ts";
import type { ConnectOptions } from "../../src/socket/socket.ts";
import { delivered, faultClient, withServer } from "../support/fault_client.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { freePort } from "../support/subprocess.ts";

const PASSWORD = "correct horse battery staple";
const base = { from: "ann@example.com", to: "bob@example.org", subject: "Hi", text: "Hello" };

function clientFor(server: TestSmtpServer, options: Partial<SmtpClientOptions> = {}) {
  return faultClient(server, { timeoutMs: 5000, ...options });
}

describe("SmtpClient: AUTH against smtp-server", () => {
  let server: TestSmtpServer;
  before(async () => {
    server = await startSmtpServer({
      authMethods: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
      users: { ann: PASSWORD, "jörg": "pässwörd" },
    });
  });
  after(() => server.close());

  for (const mechanism of ["plain", "login", "cram-md5", "xoauth2"]) {
    it(`authenticates with ${mechanism} after STARTTLS`, async () => {
      const auth = mechanism === "xoauth2"
        ? { username: "ann", accessToken: PASSWORD, mechanism }
        : { username: "ann", password: PASSWORD, mechanism };
      const client = clientFor(server, { auth });
      const result = await client.send({ ...base, subject: mechanism });
      await client.close();
      assert.equal(result.status, "sent");
      const received = server.messages.find((m) => m.text.includes(`Subject: ${mechanism}`));
      assert.equal(received?.user, "ann");
      assert.equal(received?.secure, true);
      assert.deepEqual(server.authAttempts.at(-1), {
        method: mechanism.toUpperCase(),
        username: "ann",
        ok: true,
      });
    });
  }

  it("authenticates non-ASCII credentials", async () => {
    const client = clientFor(server, { auth: { username: "jörg", password: "pässwörd" } });
    await client.send(base);
    await client.close();
    assert.equal(server.authAttempts.at(-1)?.ok, true);
  });

  it("fails with an auth error on a wrong password, without leaking it", async () => {
    const secret = "wrong-password-12345";
    const client = clientFor(server, { auth: { username: "ann", password: secret } });
    const error = await client.send(base).catch((e) => e);
    await client.close();
    assert.ok(error instanceof SmtpError);
    assert.equal(error.type, "auth");
    assert.equal(error.phase, "auth");
    assert.equal(error.code, 535);
    const everything = JSON.stringify({ error, result: resultOf(error), message: error.message });
    assert.doesNotMatch(everything, new RegExp(secret));
    assert.doesNotMatch(everything, new RegExp(btoa(`\0ann\0${secret}`)));
  });

  it("verifies a configuration without sending", async () => {
    const good = clientFor(server, { auth: { username: "ann", password: PASSWORD } });
    await good.verify();
    await good.close();
    const bad = clientFor(server, { auth: { username: "ann", password: "nope" } });
    await assert.rejects(bad.verify(), { type: "auth" });
    await bad.close();
  });
});

describe("SmtpClient: partial rejection", () => {
  let server: TestSmtpServer;
  before(async () => {
    server = await startSmtpServer({
      rejectRecipients: { "cy@example.org": { code: 550, message: "5.1.1 No such user" } },
      enhancedStatusCodes: true,
    });
  });
  after(() => server.close());
  const message = { ...base, to: ["bob@example.org", "cy@example.org", "dee@example.org"] };

  it("sends nothing when one recipient is refused (default policy)", async () => {
    const before = server.messages.length;
    const connections = server.connections;
    const replies = server.replies.length;
    const client = clientFor(server);
    const error = await client.send(message).catch((e) => e);
    assert.ok(error instanceof SmtpError);
    assert.equal(error.type, "rejected");
    assert.equal(error.phase, "rcpt");
    assert.equal(error.rejected.length, 1);
    assert.equal(error.rejected[0].address, "cy@example.org");
    assert.equal(error.rejected[0].code, 550);
    assert.equal(error.rejected[0].enhancedCode, "5.1.1");
    assert.match(error.rejected[0].message, /No such user$/);
    const result = resultOf(error)!;
    assert.equal(result.status, "failed");
    assert.deepEqual(result.accepted, []);
    assert.equal(result.rejected.length, 1);
    // The pipelined DATA was accepted (354): ending the data would deliver to the
    // accepted recipients, so the client must drop that connection instead. The
    // next send therefore needs a fresh connection, and it is the only delivery.
    assert.ok(
      server.replies.slice(replies).some((reply) => reply.startsWith("354")),
      "DATA was not pipelined",
    );
    const marker = await client.send({ ...base, subject: "marker" });
    await client.close();
    assert.equal(marker.status, "sent");
    assert.equal(server.connections, connections + 2);
    assert.equal(server.messages.length, before + 1);
    assert.match(server.messages[before].text, /^Subject: marker\r$/m);
  });

  it("sends to the others under allowPartial and lists the refusal", async () => {
    const client = clientFor(server);
    const result = await client.send({ ...message, allowPartial: true });
    await client.close();
    assert.equal(result.status, "sent");
    assert.deepEqual(result.accepted, ["bob@example.org", "dee@example.org"]);
    assert.deepEqual(result.rejected.map((r) => r.address), ["cy@example.org"]);
    const received = await server.waitForMessages(1);
    assert.deepEqual(received.at(-1)!.to, ["bob@example.org", "dee@example.org"]);
  });

  it("fails when every recipient is refused, even under allowPartial", async () => {
    const client = clientFor(server);
    const error = await client.send({ ...base, to: "cy@example.org", allowPartial: true }).catch((
      e,
    ) => e);
    await client.close();
    assert.equal(error.type, "rejected");
    assert.equal(error.rejected.length, 1);
  });

  it("without PIPELINING, still refuses the whole message under the default policy", async () => {
    const lockstep = await startSmtpServer({
      hidePipelining: true,
      rejectRecipients: { "cy@example.org": { code: 550, message: "No such user" } },
    });
    try {
      const client = clientFor(lockstep);
      const error = await client.send(message).catch((e) => e);
      const ok = await client.send(base);
      await client.close();
      assert.equal(error.type, "rejected");
      assert.equal(ok.status, "sent");
      // The refused transaction was reset and the connection reused for the next one.
      assert.equal(lockstep.messages.length, 1);
      assert.ok(lockstep.commands.includes("RSET"));
      assert.equal(lockstep.connections, 1);
    } finally {
      await lockstep.close();
    }
  });
});

describe("SmtpClient: DSN", () => {
  it("sends RET, ENVID, NOTIFY and ORCPT when the server offers DSN", async () => {
    const server = await startSmtpServer();
    try {
      const client = clientFor(server);
      const result = await client.send({
        ...base,
        to: ["bob@example.org", "cy+tag@example.org"],
        dsn: { notify: ["failure", "delay"], return: "full", envelopeId: "batch 42=x" },
      });
      await client.close();
      assert.deepEqual(result.dsn, { requested: true, supported: true });
      const [received] = await server.waitForMessages(1);
      assert.equal(received.dsn?.ret, "FULL");
      assert.equal(received.dsn?.envid, "batch 42=x");
      assert.deepEqual(received.dsn?.recipients, [
        {
          address: "bob@example.org",
          notify: ["FAILURE", "DELAY"],
          orcpt: "rfc822;bob@example.org",
        },
        {
          address: "cy+tag@example.org",
          notify: ["FAILURE", "DELAY"],
          orcpt: "rfc822;cy+tag@example.org",
        },
      ]);
    } finally {
      await server.close();
    }
  });

  it("sends without DSN and says so when the server does not offer it", async () => {
    const server = await startSmtpServer({ hideDsn: true });
    try {
      const client = clientFor(server);
      const result = await client.send({ ...base, dsn: { notify: ["never"] } });
      await client.close();
      assert.equal(result.status, "sent");
      assert.deepEqual(result.dsn, { requested: true, supported: false });
      const [received] = await server.waitForMessages(1);
      assert.equal(received.rcptArgs[0].NOTIFY, undefined);
      assert.ok(!server.commands.some((c) => /NOTIFY=|RET=|ENVID=/.test(c)));
    } finally {
      await server.close();
    }
  });

  it("leaves dsn out of the result when it was not asked for", async () => {
    const server = await startSmtpServer();
    try {
      const client = clientFor(server);
      const result = await client.send(base);
      await client.close();
      assert.equal(result.dsn, undefined);
      assert.ok(!server.commands.some((c) => /NOTIFY=/.test(c)));
    } finally {
      await server.close();
    }
  });
});

describe("SmtpClient: concurrency and lifecycle", () => {
  let server: TestSmtpServer;
  before(async () => {
    server = await startSmtpServer();
  });
  after(() => server.close());

  it("runs 20 parallel sends on one client without mixing them up", async () => {
    const start = server.messages.length;
    const client = clientFor(server, { pool: { maxConnections: 3 } });
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          client.send({ ...base, to: `r${i}@example.org`, subject: `n${i}`, text: `body ${i}` }, {
            token: i,
          }),
      ),
    );
    await client.close();
    assert.deepEqual(results.map((r) => r.token), Array.from({ length: 20 }, (_, i) => i));
    const received = server.messages.slice(start);
    assert.equal(received.length, 20);
    for (const message of received) {
      const n = /Subject: n(\d+)/.exec(message.text)![1];
      assert.deepEqual(message.to, [`r${n}@example.org`]);
      assert.match(message.text, new RegExp(`\\r\\n\\r\\nbody ${n}\\D`));
    }
    // Pooled: at most three connections served the twenty messages.
    assert.ok(new Set(received.map((m) => m.sessionId)).size <= 3);
  });

  it("reports every completion once as a completed event with the token", async () => {
    const client = clientFor(server);
    const details: CompletedDetail[] = [];
    client.addEventListener("completed", (e) => details.push((e as CustomEvent).detail));
    await client.send({ ...base, token: "from-message" });
    await client.send(base, { token: { id: 1 } });
    await client.send({ ...base, to: "x@example.org" }, { signal: AbortSignal.abort() }).catch(
      () => {},
    );
    await client.close();
    assert.deepEqual(details.map((d) => [d.result.status, d.cancelled, d.token]), [
      ["sent", false, "from-message"],
      ["sent", false, { id: 1 }],
      ["cancelled", true, null],
    ]);
  });

  it("settles with a result whatever the outcome", async () => {
    const client = clientFor(server);
    const sent = await sendSettled(client, base);
    const cancelled = await sendSettled(client, base, { signal: AbortSignal.abort() });
    await client.close();
    assert.equal(sent.status, "sent");
    assert.equal(cancelled.status, "cancelled");
    assert.equal(cancelled.error?.type, "cancelled");
    const refused = new SmtpClient({
      host: "127.0.0.1",
      port: freePort(),
      tls: "none",
      timeoutMs: 2000,
    });
    const failed = await sendSettled(refused, base);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error?.type, "connection");
    assert.equal(failed.error?.phase, "connect");
  });

  it("snapshots the message when send is called", async () => {
    const client = clientFor(server);
    const message = { ...base, subject: "original", to: ["snap@example.org"] };
    const sending = client.send(message);
    message.subject = "changed";
    message.to.push("late@example.org");
    const result = await sending;
    await client.close();
    assert.deepEqual(result.accepted, ["snap@example.org"]);
    assert.match(server.messages.at(-1)!.text, /Subject: original/);
  });

  it("rejects new sends once closed, and supports await using", async () => {
    let kept: SmtpClient;
    {
      await using client = clientFor(server);
      kept = client;
      await client.send(base);
    }
    await assert.rejects(kept.send(base), { name: "InvalidStateError" });
  });
});

describe("SmtpClient: options and arguments", () => {
  it("throws before any I/O on bad options, naming the field", () => {
    const cases: [Record<string, unknown>, RegExp, string][] = [
      [{ host: "" }, /^host /, "TypeError"],
      [{ host: "bad host\r\nRSET" }, /^host /, "TypeError"],
      [{ host: "mx.example.com", port: 0 }, /^port /, "RangeError"],
      [{ host: "mx.example.com", port: 70000 }, /^port /, "RangeError"],
      [{ host: "mx.example.com", port: 25.5 }, /^port /, "RangeError"],
      [{ host: "mx.example.com", tls: "maybe" }, /^tls /, "TypeError"],
      [{ host: "mx.example.com", auth: { username: "a" } }, /^auth /, "TypeError"],
      [
        { host: "mx.example.com", auth: { username: "", password: "x" } },
        /^auth\.username/,
        "TypeError",
      ],
      [
        { host: "mx.example.com", auth: { username: "a", password: "p", mechanism: "gssapi" } },
        /^auth\.mechanism/,
        "TypeError",
      ],
      [{ host: "mx.example.com", name: "a\nb" }, /^name /, "TypeError"],
      [{ host: "mx.example.com", timeoutMs: -1 }, /^timeoutMs /, "RangeError"],
      [{ host: "mx.example.com", timeoutMs: 3_000_000_000 }, /^timeoutMs /, "RangeError"],
      [
        { host: "mx.example.com", pool: { idleTimeoutMs: 2 ** 31 } },
        /^pool\.idleTimeoutMs/,
        "RangeError",
      ],
      [
        { host: "mx.example.com", pool: { maxConnections: 0 } },
        /^pool\.maxConnections/,
        "RangeError",
      ],
      [{ host: "mx.example.com", allowInsecureAuth: true }, /^allowInsecureAuth/, "TypeError"],
    ];
    for (const [options, message, name] of cases) {
      assert.throws(
        () => new SmtpClient(options as never),
        { name, message },
        JSON.stringify(options),
      );
    }
  });

  it("defaults to implicit TLS on 465 and STARTTLS on 587", async () => {
    const host = "mx.example.com";
    type Target = Pick<ConnectOptions, "hostname" | "port" | "tls">;
    const cases: [Partial<SmtpClientOptions>, Target][] = [
      [{ host, port: 465 }, { hostname: host, port: 465, tls: true }],
      [{ host }, { hostname: host, port: 587, tls: false }],
      [{ host, tls: "implicit" }, { hostname: host, port: 465, tls: true }],
      [{ host, tls: "starttls" }, { hostname: host, port: 587, tls: false }],
      [{ host, port: 2525 }, { hostname: host, port: 2525, tls: false }],
      // An IPv6 literal in brackets connects to the bare address.
      [{ host: "[::1]" }, { hostname: "::1", port: 587, tls: false }],
    ];
    for (const [options, expected] of cases) {
      const seen: ConnectOptions[] = [];
      const client = new SmtpClient({
        host,
        ...options,
        connect: (connectOptions) => {
          seen.push(connectOptions);
          return Promise.reject(new Error("no network in this test"));
        },
      });
      const error = await client.verify().catch((e) => e);
      await client.close();
      assert.ok(error instanceof SmtpError, JSON.stringify(options));
      assert.ok(seen.length > 0, JSON.stringify(options));
      for (const { hostname, port, tls } of seen) {
        assert.deepEqual({ hostname, port, tls }, expected, JSON.stringify(options));
      }
    }
  });

  it("rejects an invalid message before any I/O, naming the field", async () => {
    let connects = 0;
    const client = new SmtpClient({
      host: "mx.example.com",
      connect: () => {
        connects++;
        return Promise.reject(new Error("should not connect"));
      },
    });
    await assert.rejects(client.send({ ...base, to: [] }), TypeError);
    await assert.rejects(client.send({ ...base, from: undefined } as never), /from/);
    await assert.rejects(
      client.send({ ...base, to: ["ok@example.org", "not an address"] }),
      /to\[1\]/,
    );
    assert.equal(connects, 0);
  });
});

describe("SmtpClient: TLS modes", () => {
  it("sends over implicit TLS", async () => {
    const server = await startSmtpServer({ secure: true });
    try {
      const client = clientFor(server, { tls: "implicit" });
      const result = await client.send(base);
      await client.close();
      assert.equal(result.status, "sent");
      assert.equal(server.messages[0].secure, true);
    } finally {
      await server.close();
    }
  });

  it("fails with tls when the certificate is not trusted, implicit or STARTTLS", async () => {
    for (const secure of [true, false]) {
      const server = await startSmtpServer({ secure });
      try {
        const client = new SmtpClient({
          host: "localhost",
          port: server.port,
          tls: secure ? "implicit" : "starttls",
          timeoutMs: 5000,
        });
        const error = await client.send(base).catch((e) => e);
        await client.close();
        assert.ok(error instanceof SmtpError, String(error));
        assert.equal(error.type, "tls", `secure=${secure}: ${error.message}`);
        assert.equal(error.phase, secure ? "connect" : "starttls");
        assert.equal(server.messages.length, 0);
      } finally {
        await server.close();
      }
    }
  });

  it("fails with tls when the certificate does not match the host name", async () => {
    const server = await startSmtpServer();
    try {
      // The test certificate names localhost, 127.0.0.1 and ::1, not this alias.
      const client = new SmtpClient({
        host: "localhost.localdomain.invalid",
        port: server.port,
        caCerts: [server.caCert],
        timeoutMs: 5000,
        connect: (options) =>
          import("../../src/socket/deno.ts").then(({ denoConnect }) =>
            denoConnect({ ...options, hostname: "127.0.0.1" }).then((socket) => ({
              secure: socket.secure,
              read: () => socket.read(),
              write: (bytes) => socket.write(bytes),
              close: () => socket.close(),
              startTls: (tls) => socket.startTls({ ...tls, hostname: options.hostname }),
            }))
          ),
      });
      const error = await client.send(base).catch((e) => e);
      await client.close();
      assert.equal(error.type, "tls");
    } finally {
      await server.close();
    }
  });

  it("falls back to HELO when EHLO is refused (plaintext mode)", async () => {
    const server = await startSmtpServer({ disableEhlo: true, starttls: false });
    try {
      const client = clientFor(server, { tls: "none" });
      const result = await client.send(base);
      await client.close();
      assert.equal(result.status, "sent");
      assert.ok(server.commands.some((c) => c.startsWith("HELO")));
      // No extensions after HELO: no SIZE, no BODY parameter.
      assert.ok(server.commands.some((c) => c === "MAIL FROM:<ann@example.com>"));
    } finally {
      await server.close();
    }
  });

  it("opportunistic: plaintext without STARTTLS, but never AUTH over it", async () => {
    const server = await startSmtpServer({ starttls: false, allowInsecureAuth: true });
    try {
      const plain = clientFor(server, { tls: "opportunistic" });
      assert.equal((await plain.send(base)).status, "sent");
      await plain.close();
      const withAuth = clientFor(server, {
        tls: "opportunistic",
        auth: { username: "ann", password: PASSWORD },
      });
      const error = await withAuth.send(base).catch((e) => e);
      await withAuth.close();
      assert.equal(error.type, "tls");
      assert.ok(!server.commands.some((c) => c.startsWith("AUTH")));
    } finally {
      await server.close();
    }
  });

  it("none: AUTH only with allowInsecureAuth", async () => {
    const server = await startSmtpServer({ starttls: false, allowInsecureAuth: true });
    try {
      const refused = clientFor(server, { tls: "none", auth: { username: "ann", password: "p" } });
      const error = await refused.send(base).catch((e) => e);
      await refused.close();
      assert.equal(error.type, "auth");
      assert.ok(!server.commands.some((c) => c.startsWith("AUTH")));
      const allowed = clientFor(server, {
        tls: "none",
        allowInsecureAuth: true,
        auth: { username: "ann", password: "p" },
      });
      assert.equal((await allowed.send(base)).status, "sent");
      await allowed.close();
      assert.equal(server.messages.at(-1)?.user, "ann");
    } finally {
      await server.close();
    }
  });
});

describe("SmtpClient: beforeDataEnd", () => {
  it("the server gets the final dot only after the hook resolved", async () => {
    const hook = Promise.withResolvers<void>();
    let resolved = false;
    let calls = 0;
    const seenAtDot: boolean[] = [];
    await withServer({
      DATA: async (conn) => {
        await conn.send("354 go ahead\r\n");
        // The first 64 KiB chunk of the message is on its way; its end is held by the hook.
        await conn.readBytes(65_536);
        assert.equal(conn.received.includes("\r\n.\r\n"), false, "no dot before the hook");
        resolved = true;
        hook.resolve();
        if (await conn.readData() === null) return;
        seenAtDot.push(resolved);
        await conn.send("250 2.0.0 Ok: queued as HOOK\r\n");
      },
    }, async (server) => {
      const client = faultClient(server, { tls: "none" });
      const result = await client.send({
        from: "ann@example.com",
        to: "bob@example.org",
        subject: "held",
        text: "line of a long message\r\n".repeat(10_000),
      }, {
        beforeDataEnd: () => {
          calls++;
          return hook.promise;
        },
      });
      await client.close();
      assert.equal(result.status, "sent");
      assert.deepEqual(seenAtDot, [true]);
      assert.equal(calls, 1);
    });
  });

  it("a rejecting hook: internal failure before the dot, nothing delivered", async () => {
    await withServer({}, async (server) => {
      const client = faultClient(server, { tls: "none" });
      let dataWritten = false;
      const error = await client.send(base, {
        beforeDataEnd: () => Promise.reject(new Error("the store is down")),
        onDataWritten: () => (dataWritten = true),
      }).then(() => assert.fail("the send should fail"), (error) => error);
      await client.close();
      assert.ok(error instanceof SmtpError);
      assert.equal(error.type, "internal");
      assert.equal(error.phase, "message");
      assert.match(error.message, /the store is down.*Nothing was delivered/);
      assert.equal(resultOf(error)?.status, "failed");
      assert.equal(dataWritten, false);
      assert.equal(await delivered(server), false);
    });
  });

  it("a hook that returns nothing lets the send go, next to a send without one", async () => {
    await withServer({}, async (server) => {
      const client = faultClient(server, { tls: "none" });
      const results = await Promise.all([
        client.send(base, { beforeDataEnd: () => {} }),
        client.send(base),
      ]);
      await client.close();
      assert.deepEqual(results.map((result) => result.status), ["sent", "sent"]);
      assert.equal(await delivered(server), true);
    });
  });
});
