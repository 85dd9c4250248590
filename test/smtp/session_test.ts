/**
 * The session against a scripted fault server: what is not a fault of the
 * matrix in fault_matrix_test.ts — capabilities after STARTTLS, cancellation,
 * CHUNKING, idle pooled connections, deadlines and pool limits. Each test
 * asserts what a caller sees and what the server saw.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { StatusEvent } from "../../src/mod.ts";
import { type FaultConnection, smtpScript, startFaultServer } from "../support/fault_server.ts";
import {
  delivered,
  FAULT_MESSAGE as message,
  faultClient as clientFor,
  overriddenConnect,
  sendExpectingError,
  withServer,
} from "../support/fault_client.ts";
import { guard } from "../support/guard.ts";

describe("session against a fault server", () => {
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
      const connect = overriddenConnect((socket, index) =>
        index > 0 ? {} : {
          read: () =>
            socket.read().then((bytes) => {
              if (bytes === null) noticeHangUp();
              return bytes;
            }, (error) => {
              noticeHangUp();
              throw error;
            }),
        }
      );
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
  const connect = overriddenConnect((socket) => {
    counts.open++;
    counts.opened++;
    counts.max = Math.max(counts.max, counts.open);
    let closed = false;
    return {
      close: async () => {
        await socket.close();
        if (!closed) counts.open--;
        closed = true;
      },
    };
  });
  return { connect, counts };
}

describe("session against a fault server: deadlines and pool limits", () => {
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
