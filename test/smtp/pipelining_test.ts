/**
 * Sends queued on one connection, pipelined across messages (RFC 2920 3.1),
 * against the scripted fault server: how the client groups its writes (seen
 * as the server's reads, a count, not a timing), a drop after each message
 * in turn, the lock-step fall-back and the pool — checked against what the
 * server actually received. The single faults in the middle of a run
 * (message 3 of 5 refused or dropped) are in fault_matrix_test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SmtpClient, type SmtpError, type StatusEvent } from "../../src/mod.ts";
import {
  type FaultConnection,
  type FaultServer,
  smtpScript,
  type SmtpScriptOptions,
  startFaultServer,
} from "../support/fault_server.ts";
import { accept, nth, queueAll, realistic, REFUSED, subjectsOn } from "../support/fault_client.ts";

const DATA_PATH = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"];
const CHUNKING = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING"];

/** A fault server whose connections are kept, for their reads and what they received. */
async function startServer(
  script: (conn: FaultConnection, index: number) => SmtpScriptOptions,
): Promise<{ server: FaultServer; connections: FaultConnection[] }> {
  const connections: FaultConnection[] = [];
  const server = await startFaultServer((conn) => {
    connections.push(conn);
    return smtpScript(script(conn, connections.length - 1))(conn);
  });
  return { server, connections };
}

function clientFor(server: FaultServer, options: Record<string, unknown> = {}): SmtpClient {
  return new SmtpClient({
    host: "localhost",
    port: server.port,
    tls: "none",
    timeoutMs: 2000,
    pool: { maxConnections: 1 },
    ...options,
  });
}

describe("pipelining across messages: how writes are grouped", () => {
  it("writes message N's final dot and message N+1's MAIL, RCPT, DATA in one write", async () => {
    const { server, connections } = await startServer(() => realistic(DATA_PATH, accept));
    try {
      const outcomes = await queueAll(clientFor(server), 5);
      assert.deepEqual(outcomes, ["sent", "sent", "sent", "sent", "sent"]);
      assert.equal(server.connections, 1);
      const [conn] = connections;
      const joined = conn.reads.filter((read) => /\r\n\.\r\nMAIL FROM:/.test(read));
      assert.equal(joined.length, 4, conn.reads.join("\n---\n"));
      for (const read of joined) assert.match(read, /\r\nRCPT TO:<[^>]+>\r\nDATA\r\n$/);
      // EHLO, the first envelope, one group per message, QUIT: one write per round trip.
      assert.ok(conn.reads.length <= 8, `${conn.reads.length} reads`);
      assert.deepEqual(subjectsOn(conn), [1, 2, 3, 4, 5].map((n) => `Message ${n}`));
    } finally {
      await server.close();
    }
  });

  it("with CHUNKING writes all queued transactions, BDAT LAST and data, in one write", async () => {
    const { server, connections } = await startServer(() => realistic(CHUNKING, accept));
    try {
      const outcomes = await queueAll(clientFor(server), 5);
      assert.deepEqual(outcomes, ["sent", "sent", "sent", "sent", "sent"]);
      const [conn] = connections;
      const whole = conn.reads.filter((read) => (read.match(/^BDAT \d+ LAST\r$/gm) ?? []).length);
      assert.equal(whole.length, 1, conn.reads.join("\n---\n"));
      assert.equal(whole[0].match(/^MAIL FROM:/gm)?.length, 5);
      assert.equal(whole[0].match(/^BDAT \d+ LAST\r$/gm)?.length, 5);
      assert.ok(conn.reads.length <= 3, `${conn.reads.length} reads`); // EHLO, the batch, QUIT
      assert.deepEqual(subjectsOn(conn), [1, 2, 3, 4, 5].map((n) => `Message ${n}`));
    } finally {
      await server.close();
    }
  });

  it("reports each message's data end through onDataWritten, before the server's verdict", async () => {
    const { server } = await startServer(() => realistic(DATA_PATH, accept));
    try {
      const client = clientFor(server);
      const seen: string[] = [];
      const send = (n: number, to?: string) =>
        client.send(nth(n, to), {
          onDataWritten: () => seen.push(`${n} written`),
          onStatus: (event: StatusEvent) => {
            if (event.phase === "message") seen.push(`${n} message ${event.state}`);
          },
        }).then((r) => r.status, (e) => e.type);
      const outcomes = await Promise.all([send(1), send(2, REFUSED), send(3)]);
      await client.close();
      assert.deepEqual(outcomes, ["sent", "rejected", "sent"]);
      for (const n of [1, 3]) {
        const order = seen.filter((entry) => entry.startsWith(`${n} `));
        assert.deepEqual(order, [`${n} message started`, `${n} written`, `${n} message done`]);
      }
      assert.ok(!seen.some((entry) => entry.startsWith("2 ")), seen.join());
    } finally {
      await server.close();
    }
  });
});

describe("pipelining across messages: a drop after each message in turn", () => {
  for (const [name, capabilities] of [["DATA", DATA_PATH], ["CHUNKING", CHUNKING]] as const) {
    it(`${name}: every message ends once; none written is resent; the others are sent once`, async () => {
      for (let drop = 1; drop <= 5; drop++) {
        const { server, connections } = await startServer((_conn, index) =>
          realistic(capabilities, async (conn, count) => {
            if (index === 0 && count === drop) conn.destroy();
            else await accept(conn, count);
          })
        );
        try {
          const outcomes = await queueAll(clientFor(server), 5);
          const seen = connections.flatMap(subjectsOn);
          for (let n = 1; n <= 5; n++) {
            const outcome = outcomes[n - 1];
            const copies = seen.filter((s) => s === `Message ${n}`).length;
            if (outcome === "sent") {
              assert.equal(copies, 1, `drop after ${drop}: message ${n} sent once`);
            } else {
              // Only a message whose data reached the server may be unknown, and it stays so.
              assert.equal((outcome as SmtpError).type, "unknown_outcome", `drop ${drop}, ${n}`);
              assert.equal(copies, 1, `drop after ${drop}: message ${n} not resent`);
              assert.ok(n >= drop, `drop after ${drop}: message ${n}`);
            }
          }
          assert.equal((outcomes[drop - 1] as SmtpError).type, "unknown_outcome");
        } finally {
          await server.close();
        }
      }
    });
  }
});

describe("pipelining across messages: lock-step fallback", () => {
  it("sends in lock-step on a new connection when the server refuses our pipelining", async () => {
    // Advertises PIPELINING but, like a strict Postfix, refuses commands sent ahead.
    const { server, connections } = await startServer(() => ({
      ...realistic(DATA_PATH, accept),
      MAIL: async (conn) => {
        if (conn.buffered > 0) {
          await conn.send("554 5.5.0 Error: SMTP protocol synchronization\r\n");
          await conn.close();
          return;
        }
        await conn.send("250 2.1.0 Ok\r\n");
      },
    }));
    try {
      const outcomes = await queueAll(clientFor(server), 3);
      assert.deepEqual(outcomes, ["sent", "sent", "sent"]);
      assert.equal(server.connections, 2);
      // Nothing was delivered on the connection that refused the pipelining.
      assert.deepEqual(subjectsOn(connections[0]), []);
      assert.deepEqual(subjectsOn(connections[1]), ["Message 1", "Message 2", "Message 3"]);
      // In lock-step every command is its own write.
      for (const read of connections[1].reads) {
        if (read.startsWith("MAIL") || read.startsWith("RCPT") || read === "DATA\r\n") {
          assert.equal(read.match(/\r\n/g)?.length, 1, read);
        }
      }
    } finally {
      await server.close();
    }
  });
});

describe("pipelining across messages: the pool", () => {
  it("spreads a batch over maxConnections pipelined connections, each message sent once", async () => {
    const { server, connections } = await startServer(() => realistic(CHUNKING, accept));
    try {
      const client = clientFor(server, { pool: { maxConnections: 3 } });
      const outcomes = await queueAll(client, 30);
      assert.deepEqual(outcomes, Array(30).fill("sent"));
      assert.equal(server.connections, 3);
      const perConnection = connections.map((conn) => subjectsOn(conn).length);
      assert.equal(perConnection.reduce((a, b) => a + b), 30);
      // Every connection served part of the batch (each opened for a queued send).
      for (const [i, count] of perConnection.entries()) {
        assert.ok(count >= 1, `connection ${i}: ${perConnection}`);
      }
      const subjects = connections.flatMap(subjectsOn).sort();
      assert.deepEqual(subjects, Array.from({ length: 30 }, (_, i) => `Message ${i + 1}`).sort());
    } finally {
      await server.close();
    }
  });
});
