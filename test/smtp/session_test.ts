/**
 * The session against a scripted fault server: faults no real server produces
 * on demand. Each test asserts what a caller sees (the typed error) and what
 * the server saw (nothing delivered, no AUTH before TLS).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  denoConnect,
  type MessageInput,
  resultOf,
  type SendResult,
  SmtpClient,
  SmtpError,
  type StatusEvent,
} from "../../src/mod.ts";
import type { Connect } from "../../src/socket/socket.ts";
import {
  type FaultConnection,
  type FaultServer,
  multiline,
  smtpScript,
  type SmtpScriptOptions,
  startFaultServer,
} from "../support/fault_server.ts";
import { guard } from "../support/guard.ts";

const message = {
  from: "ann@example.com",
  to: ["bob@example.org", "cy@example.org"],
  subject: "Fault test",
  text: "Hello\r\n.leading dot\r\n",
};

/** The connections each server started by {@linkcode startScripted} accepted. */
const accepted = new WeakMap<FaultServer, FaultConnection[]>();

/** A fault server playing `script`, whose connections {@linkcode delivered} can wait for. */
async function startScripted(script: SmtpScriptOptions): Promise<FaultServer> {
  const connections: FaultConnection[] = [];
  const handler = smtpScript(script);
  const server = await startFaultServer((conn) => {
    connections.push(conn);
    return handler(conn);
  });
  accepted.set(server, connections);
  return server;
}

async function withServer(
  script: SmtpScriptOptions,
  run: (server: FaultServer) => Promise<void>,
): Promise<void> {
  const server = await startScripted(script);
  try {
    await run(server);
  } finally {
    await server.close();
  }
}

function clientFor(server: FaultServer, options: Record<string, unknown> = {}): SmtpClient {
  return new SmtpClient({
    host: "localhost",
    port: server.port,
    caCerts: [server.caCert],
    timeoutMs: 2000,
    ...options,
  });
}

async function sendExpectingError(
  client: SmtpClient,
  msg: MessageInput = message,
): Promise<SmtpError> {
  try {
    await client.send(msg);
  } catch (error) {
    if (error instanceof SmtpError) return error;
    throw error;
  } finally {
    await client.close();
  }
  assert.fail("the send should have failed");
}

/**
 * Whether the client sent the final dot, the only thing that makes a server
 * deliver. Call it once the client is closed: it waits until the server has
 * seen each connection end, so a dot written just before the end is counted.
 */
async function delivered(server: FaultServer): Promise<boolean> {
  const connections = accepted.get(server) ?? [];
  await guard(Promise.all(connections.map((conn) => conn.waitClosed())), "the connections' end");
  return server.transcript.some((line) => line === ".");
}

describe("session against a fault server", () => {
  // End to end only: under load the 5 ms pauses may merge pieces. The deterministic
  // every-offset test is in test/smtp/reply_test.ts.
  it("reads replies split across reads (every 7th offset of EHLO)", async () => {
    const greeting = "220 fault.test ESMTP ready\r\n";
    const ehlo = multiline(250, ["fault.test", "PIPELINING", "ENHANCEDSTATUSCODES", ""]);
    for (let offset = 1; offset < ehlo.length; offset += 7) {
      await withServer({
        greeting: (conn) =>
          conn.sendInPieces(greeting, [offset % greeting.length], { pauseMs: 5 })
            .then(() => {}),
        EHLO: (conn) => conn.sendInPieces(ehlo, [offset], { pauseMs: 5 }).then(() => {}),
      }, async (server) => {
        const client = clientFor(server, { tls: "none" });
        const result = await client.send(message);
        await client.close();
        assert.equal(result.status, "sent");
        assert.deepEqual(result.accepted, message.to);
      });
    }
  });

  it("fails with transient at the greeting when the server answers 421", async () => {
    await withServer({ greeting: "421 4.3.2 Too busy, try later" }, async (server) => {
      const error = await sendExpectingError(clientFor(server));
      assert.equal(error.type, "transient");
      assert.equal(error.phase, "greeting");
      assert.equal(error.code, 421);
      assert.equal(error.enhancedCode, "4.3.2");
      assert.equal(server.transcript.length, 0);
    });
  });

  it("says QUIT and fails with rejected at the greeting when the server answers 554", async () => {
    await withServer({ greeting: "554 5.3.2 No SMTP service here" }, async (server) => {
      const error = await sendExpectingError(clientFor(server));
      // RFC 5321 3.1: the server refuses the session for good (422); the client says QUIT.
      assert.equal(error.type, "rejected");
      assert.equal(error.phase, "greeting");
      assert.equal(error.code, 554);
      assert.equal(error.enhancedCode, "5.3.2");
      assert.deepEqual(server.transcript, ["QUIT"]);
    });
  });

  it("keeps the code of a 421 the server ended with its FIN instead of CRLF", async () => {
    await withServer({
      MAIL: async (conn) => {
        await conn.send("421 4.7.0 fault.test closing connection");
        await conn.close();
      },
    }, async (server) => {
      const error = await sendExpectingError(clientFor(server, { tls: "none" }));
      assert.equal(error.type, "transient");
      assert.equal(error.phase, "mail");
      assert.equal(error.code, 421);
      assert.equal(error.enhancedCode, "4.7.0");
      assert.equal(await delivered(server), false);
    });
  });

  it("treats a 552 to RCPT as the 452 it should be (transient, RFC 5321 4.5.3.1.10)", async () => {
    await withServer({
      RCPT: (conn, line) =>
        conn.send(
          line.includes("cy@") ? "552 5.5.3 Too many recipients\r\n" : "250 2.1.5 Ok\r\n",
        ).then(() => {}),
    }, async (server) => {
      const error = await sendExpectingError(clientFor(server, { tls: "none" }));
      assert.equal(error.type, "transient");
      assert.equal(error.phase, "rcpt");
      assert.equal(error.code, 552);
      assert.deepEqual(error.rejected.map((r) => [r.address, r.code]), [["cy@example.org", 552]]);
      assert.equal(await delivered(server), false);
    });
  });

  it("fails with protocol when a multi-line reply changes its code", async () => {
    await withServer(
      { EHLO: "250-fault.test\r\n251-PIPELINING\r\n250 SIZE 100" },
      async (server) => {
        const error = await sendExpectingError(clientFor(server, { tls: "none" }));
        assert.equal(error.type, "protocol");
        assert.equal(error.phase, "ehlo");
        assert.match(error.message, /250 then 251/);
      },
    );
  });

  it("fails with protocol on an oversized reply line", async () => {
    await withServer({ greeting: "220 " + "x".repeat(10_000) }, async (server) => {
      const error = await sendExpectingError(clientFor(server));
      assert.equal(error.type, "protocol");
      assert.equal(error.phase, "greeting");
      assert.match(error.message, /longer than/);
    });
  });

  it("fails with protocol on a reply without a code", async () => {
    await withServer({ MAIL: "OK fine" }, async (server) => {
      const error = await sendExpectingError(clientFor(server, { tls: "none" }));
      assert.equal(error.type, "protocol");
      assert.equal(error.phase, "mail");
    });
  });

  it("gives up on a silent server with a timeout", async () => {
    await withServer({ MAIL: (conn) => conn.waitClosed() }, async (server) => {
      const started = Date.now();
      const error = await sendExpectingError(clientFor(server, { tls: "none", timeoutMs: 300 }));
      assert.equal(error.type, "timeout");
      assert.equal(error.phase, "mail");
      assert.ok(Date.now() - started < 5000);
      assert.equal(await delivered(server), false);
    });
  });

  it("sends neither AUTH nor MAIL when STARTTLS is required but not offered", async () => {
    await withServer({ capabilities: ["PIPELINING", "AUTH PLAIN LOGIN"] }, async (server) => {
      const error = await sendExpectingError(
        clientFor(server, { auth: { username: "ann", password: "s3cret-pass" } }),
      );
      assert.equal(error.type, "tls");
      assert.equal(error.phase, "starttls");
      assert.deepEqual(server.transcript.map((line) => line.split(" ")[0]), ["EHLO"]);
      assert.doesNotMatch(JSON.stringify(error), /s3cret/);
    });
  });

  it("fails with tls when the server refuses STARTTLS", async () => {
    await withServer({ STARTTLS: "454 4.7.0 TLS not available" }, async (server) => {
      const error = await sendExpectingError(clientFor(server));
      assert.equal(error.type, "tls");
      assert.equal(error.phase, "starttls");
      assert.equal(error.code, 454);
      assert.ok(!server.transcript.some((line) => line.startsWith("MAIL")));
    });
  });

  it("drops the connection when bytes are glued after the STARTTLS 220", async () => {
    await withServer({
      STARTTLS: async (conn) => {
        await conn.send("220 2.0.0 Ready\r\n250-injected\r\n250 AUTH PLAIN\r\n");
        await conn.waitClosed();
      },
    }, async (server) => {
      const error = await sendExpectingError(clientFor(server));
      assert.equal(error.type, "tls");
      assert.equal(error.phase, "starttls");
      assert.match(error.message, /injection/);
      assert.deepEqual(server.transcript, [server.transcript[0], "STARTTLS"]);
    });
  });

  it("trusts only the capabilities sent after STARTTLS", async () => {
    await withServer({
      capabilities: ["STARTTLS", "SIZE 10"],
      capabilitiesAfterTls: ["PIPELINING", "SIZE 100000"],
      // PIPELINING after TLS: MAIL, both RCPTs and DATA arrive before the first
      // reply. The server answers nothing until DATA, so a client that waited
      // for the MAIL reply would time out.
      MAIL: () => {},
      RCPT: () => {},
      DATA: async (conn) => {
        assert.match(
          conn.received,
          /\r\nMAIL FROM:<ann@example\.com>[^\r\n]*\r\nRCPT TO:<bob@example\.org>[^\r\n]*\r\nRCPT TO:<cy@example\.org>[^\r\n]*\r\nDATA\r\n$/,
        );
        await conn.send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n");
        if (await conn.readData() !== null) await conn.send("250 2.0.0 Ok: queued as TLS\r\n");
      },
    }, async (server) => {
      const client = clientFor(server);
      const result = await client.send(message);
      await client.close();
      assert.equal(result.status, "sent");
      assert.match(result.response!, /queued as TLS/);
      // SIZE 100000 after TLS, not SIZE 10 (which would have refused the message).
      const mail = server.transcript.findIndex((line) => line.startsWith("MAIL FROM"));
      assert.match(server.transcript[mail], /SIZE=\d+/);
    });
  });

  it("fails with connection (not unknown) when the server drops the connection mid-DATA", async () => {
    // Larger than the loopback socket buffers, so the drop is seen while writing.
    const big = { ...message, text: "line of text\n".repeat(2_000_000) };
    await withServer({
      capabilities: ["PIPELINING", "8BITMIME"],
      DATA: async (conn) => {
        await conn.send("354 go ahead\r\n");
        await conn.readBytes(1000);
        conn.destroy();
      },
    }, async (server) => {
      const error = await sendExpectingError(clientFor(server, { tls: "none" }), big);
      assert.equal(error.type, "connection");
      assert.equal(error.phase, "message");
      assert.equal(resultOf(error)?.status, "failed");
      assert.equal(await delivered(server), false);
    });
  });

  it("reports unknown_outcome for a garbled reply after the final dot", async () => {
    await withServer({ message: "OK, queued" }, async (server) => {
      const error = await sendExpectingError(clientFor(server, { tls: "none" }));
      assert.equal(error.type, "unknown_outcome");
      assert.match(error.message, /invalid reply/);
    });
  });

  it("reports unknown_outcome when the connection drops after the final dot", async () => {
    await withServer({ message: (conn) => conn.destroy() }, async (server) => {
      const error = await sendExpectingError(clientFor(server, { tls: "none" }));
      assert.equal(error.type, "unknown_outcome");
      assert.equal(error.phase, "message");
      const result = resultOf(error) as SendResult;
      assert.equal(result.status, "failed");
      assert.equal(result.error?.type, "unknown_outcome");
    });
  });

  it("cancels during RCPT: nothing delivered, result cancelled", async () => {
    const controller = new AbortController();
    await withServer({
      RCPT: async (conn) => {
        controller.abort();
        await new Promise((resolve) => setTimeout(resolve, 50));
        await conn.send("250 2.1.5 Ok\r\n");
      },
    }, async (server) => {
      const client = clientFor(server, { tls: "none" });
      const completed = new Promise<CustomEvent>((resolve) =>
        client.addEventListener("completed", (e) => resolve(e as CustomEvent), { once: true })
      );
      await assert.rejects(
        client.send({ ...message, token: "t-1" }, { signal: controller.signal }),
        { name: "AbortError" },
      );
      const event = await completed;
      assert.equal(event.detail.cancelled, true);
      assert.equal(event.detail.token, "t-1");
      assert.equal(event.detail.result.status, "cancelled");
      assert.equal(event.detail.result.error.type, "cancelled");
      await client.close();
      assert.equal(await delivered(server), false);
    });
  });
});

describe("session against a fault server: pipelining", () => {
  let server: FaultServer;
  before(async () => {
    server = await startScripted({
      RCPT: (conn, line) =>
        conn.send(
          line.includes("cy@")
            ? "550 5.1.1 <cy@example.org>: Recipient address rejected\r\n"
            : "250 2.1.5 Ok\r\n",
        ).then(() => {}),
    });
  });
  after(() => server.close());

  it("abandons a pipelined transaction whose DATA got 354 without sending the final dot", async () => {
    const client = clientFor(server, { tls: "none" });
    const error = await sendExpectingError(client);
    assert.equal(error.type, "rejected");
    assert.equal(error.phase, "rcpt");
    assert.deepEqual(error.rejected.map((r) => r.address), ["cy@example.org"]);
    assert.equal(error.rejected[0].enhancedCode, "5.1.1");
    assert.equal(await delivered(server), false);
  });

  it("sends to the accepted recipients under allowPartial", async () => {
    const client = clientFor(server, { tls: "none" });
    const result = await client.send({ ...message, allowPartial: true });
    await client.close();
    assert.equal(result.status, "sent");
    assert.deepEqual(result.accepted, ["bob@example.org"]);
    assert.deepEqual(result.rejected.map((r) => [r.address, r.code]), [["cy@example.org", 550]]);
    assert.equal(await delivered(server), true);
  });
});

describe("session against a fault server: stale pooled connections", () => {
  it("retries once on a fresh connection when a pooled one was dropped by the server", async () => {
    let connection = 0;
    const server = await startFaultServer(async (conn) => {
      connection++;
      if (connection === 1) {
        // Serve one message, then answer the next command with 421 and hang up: an
        // idle timeout that fires just as the client reuses the connection.
        await smtpScript({
          message: async (c) => {
            await c.send("250 2.0.0 Ok: queued as ONE\r\n");
            await c.readLine();
            await c.send("421 4.4.2 Idle timeout\r\n");
            c.destroy();
          },
        })(conn);
      } else {
        await smtpScript()(conn);
      }
    });
    try {
      const client = clientFor(server, { tls: "none" });
      const first = await client.send(message);
      const second = await client.send(message);
      await client.close();
      assert.match(first.response!, /ONE/);
      assert.equal(second.status, "sent");
      assert.match(second.response!, /FAULT1/, "the retry went to the fresh connection");
      assert.equal(server.connections, 2);
    } finally {
      await server.close();
    }
  });

  it("reports a 421 at MAIL when the server hangs up before the other replies", async () => {
    await withServer({
      MAIL: async (conn) => {
        await conn.send("421 4.3.2 Service shutting down\r\n");
        conn.destroy();
      },
    }, async (server) => {
      const error = await sendExpectingError(clientFor(server, { tls: "none" }));
      assert.equal(error.type, "transient");
      assert.equal(error.phase, "mail");
      assert.equal(error.code, 421);
    });
  });
});

describe("session against a fault server: CHUNKING", () => {
  const chunking = ["PIPELINING", "8BITMIME", "CHUNKING", "SIZE 100000000"];
  const single = { ...message, to: "bob@example.org" };

  it("sends MAIL, RCPT and BDAT LAST with the message in one write", async () => {
    let content = "";
    const server = await startFaultServer(smtpScript({
      capabilities: chunking,
      message: async (conn, data) => {
        content = data;
        // Everything up to the end of the chunk arrived before the first reply was sent.
        assert.match(conn.received, /MAIL FROM:<[^>]+>.*\r\nRCPT TO:<[^>]+>\r\nBDAT \d+ LAST\r\n/s);
        await conn.send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as CHUNKED\r\n");
      },
      MAIL: () => {},
      RCPT: () => {},
    }));
    try {
      const client = clientFor(server, { tls: "none" });
      const result = await client.send(single);
      await client.close();
      assert.equal(result.status, "sent");
      assert.match(result.response!, /CHUNKED/);
      // BDAT content is not dot-stuffed, and line ends are canonical.
      assert.match(content, /\r\n\.leading dot\r\n/);
      assert.doesNotMatch(content, /(^|[^\r])\n/);
    } finally {
      await server.close();
    }
  });

  it("reports unknown_outcome when the connection drops after BDAT LAST", async () => {
    await withServer(
      { capabilities: chunking, message: (conn) => conn.destroy() },
      async (server) => {
        const error = await sendExpectingError(clientFor(server, { tls: "none" }), single);
        assert.equal(error.type, "unknown_outcome");
      },
    );
  });

  it("reports the refused recipient, not an unknown outcome, when RCPT is refused", async () => {
    await withServer({
      capabilities: chunking,
      RCPT: "550 5.1.1 No such user",
      BDAT: async (conn, line) => {
        const [, size] = line.split(" ");
        await conn.readBytes(Number(size));
        await conn.send("554 5.5.1 No valid recipients\r\n");
      },
    }, async (server) => {
      const error = await sendExpectingError(clientFor(server, { tls: "none" }), single);
      assert.equal(error.type, "rejected");
      assert.equal(error.phase, "rcpt");
      assert.equal(error.rejected[0].enhancedCode, "5.1.1");
    });
  });

  it("never sends BDAT LAST once cancelled mid-message", async () => {
    const controller = new AbortController();
    const big = { ...single, text: "line of text\n".repeat(2_000_000) };
    await withServer({
      capabilities: chunking,
      BDAT: async (conn, line) => {
        controller.abort();
        const [, size] = line.split(" ");
        await conn.readBytes(Number(size));
        await conn.send("250 2.0.0 chunk ok\r\n");
      },
    }, async (server) => {
      const client = clientFor(server, { tls: "none" });
      await assert.rejects(client.send(big, { signal: controller.signal }), { name: "AbortError" });
      await client.close();
      assert.ok(!server.transcript.some((l) => /^BDAT \d+ LAST$/.test(l)));
    });
  });

  it("keeps DATA for several recipients under the all-or-nothing policy", async () => {
    await withServer({ capabilities: chunking }, async (server) => {
      const client = clientFor(server, { tls: "none" });
      const result = await client.send(message);
      await client.close();
      assert.equal(result.status, "sent");
      assert.ok(server.transcript.includes("DATA"));
      assert.ok(!server.transcript.some((l) => l.startsWith("BDAT")));
    });
  });
});

describe("session against a fault server: idle pooled connections", () => {
  for (const capabilities of [["PIPELINING"], ["PIPELINING", "CHUNKING"]]) {
    it(`notices a hang-up while idle and uses a fresh connection (${capabilities})`, async () => {
      const connections: FaultConnection[] = [];
      const server = await startFaultServer(async (conn) => {
        connections.push(conn);
        const number = connections.length;
        await smtpScript({
          capabilities,
          message: async (c) => {
            await c.send(`250 2.0.0 Ok: queued on connection ${number}\r\n`);
            if (number === 1) c.destroy();
          },
        })(conn);
      });
      // Sees, on the client side, the read of the first connection end with the
      // hang-up: only the idle watch reads between the two sends.
      let noticeHangUp!: () => void;
      const hungUp = new Promise<void>((resolve) => (noticeHangUp = resolve));
      let opened = 0;
      const connect: Connect = async (options) => {
        const socket = await denoConnect(options);
        if (++opened > 1) return socket;
        return {
          get secure() {
            return socket.secure;
          },
          read: () =>
            socket.read().then((bytes) => {
              if (bytes === null) noticeHangUp();
              return bytes;
            }, (error) => {
              noticeHangUp();
              throw error;
            }),
          write: (bytes) => socket.write(bytes),
          startTls: (tlsOptions) => socket.startTls(tlsOptions),
          close: () => socket.close(),
        };
      };
      try {
        // A pool timeout far beyond the guard: only the idle watch can notice the hang-up.
        const client = clientFor(server, { tls: "none", connect, pool: { idleTimeoutMs: 60_000 } });
        const first = await client.send({ ...message, to: "bob@example.org" });
        await guard(hungUp, "the idle watch on the first connection");
        // Let the session's own handler of that read run (queued right after ours).
        await new Promise((resolve) => setTimeout(resolve, 0));
        const statuses: StatusEvent[] = [];
        const second = await client.send({ ...message, to: "bob@example.org" }, {
          onStatus: (event) => statuses.push(event),
        });
        await client.close();
        assert.match(first.response!, /connection 1/);
        assert.match(second.response!, /connection 2/);
        // The fresh connection was chosen up front, not after a failed MAIL and a retry.
        const started = statuses.filter((event) => event.state === "started").map((e) => e.phase);
        assert.equal(started[0], "connect", started.join());
        assert.equal(started.filter((phase) => phase === "mail").length, 1, started.join());
        assert.equal(connections[0].received.match(/^MAIL FROM:/gm)?.length, 1);
        assert.equal(server.connections, 2);
      } finally {
        await server.close();
      }
    });
  }
});

/** A socket factory over `denoConnect` that tracks how many sockets are open at once. */
function countingConnect() {
  const counts = { open: 0, max: 0, opened: 0 };
  const connect: Connect = async (options) => {
    const socket = await denoConnect(options);
    counts.open++;
    counts.opened++;
    counts.max = Math.max(counts.max, counts.open);
    let closed = false;
    const close = async () => {
      await socket.close();
      if (!closed) counts.open--;
      closed = true;
    };
    return {
      get secure() {
        return socket.secure;
      },
      read: () => socket.read(),
      write: (bytes) => socket.write(bytes),
      startTls: (tls) => socket.startTls(tls),
      close,
    };
  };
  return { connect, counts };
}

describe("session against a fault server: deadlines and pool limits", () => {
  it("bounds a whole reply by one deadline, however slowly the bytes trickle in", async () => {
    const greeting = "220 fault.test ESMTP slow but steady\r\n";
    const offsets = Array.from({ length: greeting.length - 1 }, (_, i) => i + 1);
    await withServer({
      greeting: (conn) => conn.sendInPieces(greeting, offsets, { pauseMs: 60 }).then(() => {}),
    }, async (server) => {
      const started = Date.now();
      const error = await sendExpectingError(clientFor(server, { tls: "none", timeoutMs: 500 }));
      assert.equal(error.type, "timeout");
      assert.equal(error.phase, "greeting");
      assert.match(error.message, /500 ms/);
      // Each byte came within the 500 ms; only a deadline for the whole reply ends it early.
      assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
    });
  });

  it("cancels promptly during a TLS handshake that never completes", async () => {
    const controller = new AbortController();
    await withServer({
      STARTTLS: async (conn) => {
        await conn.send("220 2.0.0 Ready, but no handshake will follow\r\n");
        setTimeout(() => controller.abort(), 100);
        await conn.waitClosed();
      },
    }, async (server) => {
      const client = clientFor(server, { timeoutMs: 5000 });
      const started = Date.now();
      await assert.rejects(client.send(message, { signal: controller.signal }), {
        name: "AbortError",
      });
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      await client.close();
    });
  });

  it("never has more connections open than maxConnections, even while QUIT is slow", async () => {
    const { connect, counts } = countingConnect();
    await withServer({
      QUIT: async (conn) => {
        await new Promise((resolve) => setTimeout(resolve, 200));
        await conn.send("221 2.0.0 Bye\r\n");
        await conn.close();
      },
    }, async (server) => {
      const client = clientFor(server, {
        tls: "none",
        connect,
        pool: { maxConnections: 1, maxMessagesPerConnection: 1 },
      });
      const results = await Promise.all([1, 2, 3].map(() => client.send(message)));
      assert.deepEqual(results.map((r) => r.status), ["sent", "sent", "sent"]);
      await client.close();
      assert.equal(counts.opened, 3);
      assert.equal(counts.max, 1);
      // close() resolved only after every connection, the retiring ones included, was closed.
      assert.equal(counts.open, 0);
    });
  });

  it("serves sends queued before close() on the connection it already has", async () => {
    const { connect, counts } = countingConnect();
    await withServer({}, async (server) => {
      const client = clientFor(server, { tls: "none", connect, pool: { maxConnections: 1 } });
      const sends = Array.from({ length: 5 }, () => client.send(message));
      const closed = client.close();
      const results = await Promise.all(sends);
      await closed;
      assert.equal(results.filter((r) => r.status === "sent").length, 5);
      assert.equal(counts.opened, 1);
      assert.equal(counts.open, 0);
    });
  });

  it("hands a wake-up on when the woken send was cancelled meanwhile", async () => {
    // maxConnections 1: A sends, B and C wait; B is cancelled just as A frees the slot.
    await withServer({}, async (server) => {
      for (let microtasks = 0; microtasks <= 8; microtasks += 2) {
        const client = clientFor(server, {
          tls: "none",
          pool: { maxConnections: 1, maxMessagesPerConnection: 1 },
        });
        const cancelB = new AbortController();
        const later = (n: number, fn: () => void): void =>
          n === 0 ? fn() : queueMicrotask(() => later(n - 1, fn));
        const a = client.send(message, {
          onStatus: (event) => {
            if (event.phase === "message" && event.state === "done") {
              later(microtasks, () => cancelB.abort());
            }
          },
        });
        const b = client.send(message, { signal: cancelB.signal }).catch((e) => e.name);
        const c = client.send(message);
        assert.equal((await a).status, "sent");
        assert.equal(await b, "AbortError");
        assert.equal((await guard(c, `C after ${microtasks} microtasks`)).status, "sent");
        await client.close();
      }
    });
  });
});

describe("session against a fault server: CHUNKING refusals", () => {
  it("reports a refused chunk as rejected, even when the server then hangs up", async () => {
    const big = { ...message, to: "bob@example.org", text: "line of text\n".repeat(20_000) };
    let chunk = 0;
    await withServer({
      capabilities: ["PIPELINING", "CHUNKING", "8BITMIME"],
      BDAT: async (conn, line) => {
        const [, size] = line.split(" ");
        await conn.readBytes(Number(size));
        if (++chunk === 1) {
          await conn.send("552 5.3.4 Message too big for this mailbox\r\n");
          conn.destroy();
        } else {
          await conn.send("250 2.0.0 chunk ok\r\n");
        }
      },
    }, async (server) => {
      const error = await sendExpectingError(clientFor(server, { tls: "none" }), big);
      assert.equal(error.type, "rejected");
      assert.equal(error.phase, "message");
      assert.equal(error.code, 552);
    });
  });

  it("does not reuse a connection on which the server sent bytes nobody asked for", async () => {
    let connection = 0;
    const server = await startFaultServer(async (conn) => {
      connection++;
      const current = connection;
      await smtpScript({
        message: (c) =>
          c.send(`250 2.0.0 Ok: queued on ${current}\r\n250 2.0.0 and an extra reply\r\n`).then(
            () => {},
          ),
      })(conn);
    });
    try {
      const client = clientFor(server, { tls: "none" });
      const first = await client.send(message);
      const second = await client.send(message);
      await client.close();
      assert.match(first.response!, /queued on 1/);
      // The stray reply must not be taken as the answer to the next transaction.
      assert.match(second.response!, /queued on 2/);
    } finally {
      await server.close();
    }
  });
});
