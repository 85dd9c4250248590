/**
 * The transaction stream on an in-memory socket: which bytes go out in which
 * write, pipelined and in lock-step, and how each send is settled. The
 * faults of a real connection are in fault_matrix_test.ts and
 * pipelining_test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { QueuedSend, SendSettlement } from "../../src/smtp/transaction_flight.ts";
import { TransactionStream } from "../../src/smtp/transactions.ts";
import type { StepOptions } from "../../src/smtp/types.ts";
import { Wire } from "../../src/smtp/wire.ts";
import { type MemoryChunk, MemorySocket } from "../support/memory_socket.ts";
import { capabilities, transaction } from "../support/transaction_fixtures.ts";

const decoder = new TextDecoder();

/** Runs `count` sends (bob1@…, bob2@…) through a stream on a socket serving `replies`. */
async function run(
  replies: MemoryChunk[],
  options: {
    pipelining: boolean;
    count: number;
    step?: (i: number) => StepOptions;
    socket?: MemorySocket;
    timeoutMs?: number;
    chunking?: boolean;
  },
) {
  const socket = options.socket ?? new MemorySocket(replies);
  const settlements: SendSettlement[] = [];
  const sends: QueuedSend[] = Array.from({ length: options.count }, (_, i) => ({
    transaction: transaction({
      envelope: { from: "ann@example.com", to: [`bob${i + 1}@example.org`] },
    }),
    step: options.step?.(i) ?? {},
    settle: (settlement) => (settlements[i] = settlement),
  }));
  const stream = new TransactionStream(new Wire(socket, options.timeoutMs ?? 1000), {
    capabilities: options.chunking
      ? capabilities("PIPELINING", "CHUNKING")
      : capabilities("PIPELINING"),
    pipelining: options.pipelining,
  }, 0);
  await stream.run({ take: () => sends.shift() });
  await socket.close();
  return { writes: socket.writes.map((bytes) => decoder.decode(bytes)), settlements, stream };
}

const CONTENT = "Subject: x\r\n\r\nhi\r\n.\r\n";

describe("TransactionStream", () => {
  it("pipelined: the end of message 1 goes out with message 2's MAIL, RCPT and DATA", async () => {
    const { writes, settlements, stream } = await run([
      "250 ok\r\n250 ok\r\n354 go\r\n",
      "250 2.0.0 queued as A\r\n250 ok\r\n250 ok\r\n354 go\r\n",
      "250 2.0.0 queued as B\r\n",
    ], { pipelining: true, count: 2 });
    assert.deepEqual(writes, [
      "MAIL FROM:<ann@example.com>\r\nRCPT TO:<bob1@example.org>\r\nDATA\r\n",
      `${CONTENT}MAIL FROM:<ann@example.com>\r\nRCPT TO:<bob2@example.org>\r\nDATA\r\n`,
      CONTENT,
    ]);
    assert.deepEqual(
      settlements.map((s) => s.ok && s.outcome),
      [
        { accepted: ["bob1@example.org"], rejected: [], response: "250 2.0.0 queued as A" },
        { accepted: ["bob2@example.org"], rejected: [], response: "250 2.0.0 queued as B" },
      ],
    );
    assert.equal(stream.started, 2);
  });

  it("lock-step: every command waits for the reply to the one before", async () => {
    const { writes, settlements } = await run(
      ["250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 queued\r\n"],
      { pipelining: false, count: 1 },
    );
    assert.deepEqual(writes, [
      "MAIL FROM:<ann@example.com>\r\n",
      "RCPT TO:<bob1@example.org>\r\n",
      "DATA\r\n",
      CONTENT,
    ]);
    assert.equal(settlements[0].ok, true);
  });

  it("a refused recipient resets the transaction before the next one, which still goes", async () => {
    const { writes, settlements } = await run([
      "250 ok\r\n550 5.1.1 no such user\r\n554 no valid recipients\r\n",
      "250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n",
      "250 queued\r\n",
    ], { pipelining: true, count: 2 });
    assert.equal(
      writes[1],
      "RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<bob2@example.org>\r\nDATA\r\n",
    );
    const [first, second] = settlements;
    assert.equal(first.ok, false);
    if (!first.ok) assert.equal(first.retry, false);
    assert.equal(second.ok, true);
  });

  it("a connection lost after the end of the data: unknown outcome, told onDataWritten", async () => {
    let written = 0;
    const { settlements } = await run(
      ["250 ok\r\n250 ok\r\n354 go\r\n"],
      { pipelining: true, count: 1, step: () => ({ onDataWritten: () => written++ }) },
    );
    assert.equal(written, 1);
    const [settlement] = settlements;
    assert.equal(settlement.ok, false);
    if (!settlement.ok) {
      assert.equal((settlement.error as { type: string }).type, "unknown_outcome");
      assert.equal(settlement.retry, false);
    }
  });
});

/**
 * Resolves once every pending promise job has run: the in-memory socket
 * completes each read and write as a promise job, so by then the stream has
 * gone as far as it can without a timer or the hook (no time passes).
 */
function ioSettled(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

describe("TransactionStream: beforeDataEnd", () => {
  it("holds the final dot, and only it, until the hook resolves", async () => {
    const socket = new MemorySocket([
      "250 ok\r\n250 ok\r\n354 go\r\n",
      "250 2.0.0 queued as A\r\n250 ok\r\n250 ok\r\n354 go\r\n",
      "250 2.0.0 queued as B\r\n",
    ]);
    const hook = Promise.withResolvers<void>();
    let calls = 0;
    const running = run([], {
      socket,
      pipelining: true,
      count: 2,
      step: (i) =>
        i === 0
          ? {
            beforeDataEnd: () => {
              calls++;
              return hook.promise;
            },
          }
          : {},
    });
    await ioSettled();
    assert.equal(calls, 1);
    const written = () => socket.writes.map((bytes) => decoder.decode(bytes));
    assert.deepEqual(written(), [
      "MAIL FROM:<ann@example.com>\r\nRCPT TO:<bob1@example.org>\r\nDATA\r\n",
    ], "after the 354, the message and its dot wait for the hook");
    hook.resolve();
    const { writes, settlements } = await running;
    assert.deepEqual(writes.slice(1), [
      `${CONTENT}MAIL FROM:<ann@example.com>\r\nRCPT TO:<bob2@example.org>\r\nDATA\r\n`,
      CONTENT,
    ], "the pipelined run is unchanged: message 2 has no hook and does not wait");
    assert.deepEqual(settlements.map((s) => s.ok), [true, true]);
    assert.equal(calls, 1);
  });

  it("with BDAT: the envelope goes out while the hook runs, BDAT LAST waits for it", async () => {
    const socket = new MemorySocket(["250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n"]);
    const hook = Promise.withResolvers<void>();
    const running = run([], {
      socket,
      pipelining: true,
      chunking: true,
      count: 1,
      step: () => ({ beforeDataEnd: () => hook.promise }),
    });
    await ioSettled();
    assert.deepEqual(socket.writes.map((bytes) => decoder.decode(bytes)), [
      "MAIL FROM:<ann@example.com>\r\nRCPT TO:<bob1@example.org>\r\n",
    ]);
    hook.resolve();
    const { writes, settlements } = await running;
    assert.match(writes[1], /^BDAT \d+ LAST\r\nSubject: x/);
    assert.equal(settlements[0].ok, true);
  });

  it("a rejecting hook fails the send before its dot (internal, not retried)", async () => {
    let dataWritten = 0;
    const { writes, settlements } = await run([
      "250 ok\r\n250 ok\r\n354 go\r\n",
    ], {
      pipelining: true,
      count: 1,
      step: () => ({
        beforeDataEnd: () => Promise.reject(new Error("store down")),
        onDataWritten: () => dataWritten++,
      }),
    });
    assert.ok(writes.every((text) => !text.includes("\r\n.\r\n")), "no final dot");
    assert.equal(dataWritten, 0);
    const [settlement] = settlements;
    assert.equal(settlement.ok, false);
    if (!settlement.ok) {
      const error = settlement.error as { type: string; phase: string; message: string };
      assert.equal(error.type, "internal");
      assert.equal(error.phase, "message");
      assert.match(
        error.message,
        /beforeDataEnd hook failed \(store down\)\. Nothing was delivered/,
      );
      assert.equal(settlement.retry, false);
    }
  });

  it("a rejecting hook with BDAT resets the transaction and keeps the connection", async () => {
    const { writes, settlements } = await run([
      "250 ok\r\n250 ok\r\n250 reset\r\n",
      "250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n",
    ], {
      pipelining: true,
      chunking: true,
      count: 2,
      step: (i) => (i === 0 ? { beforeDataEnd: () => Promise.reject(new Error("no")) } : {}),
    });
    const all = writes.join("");
    assert.equal(all.match(/ LAST\r\n/g)?.length, 1, "only message 2 ends its data");
    assert.match(all, /RSET\r\nMAIL FROM:<ann@example\.com>\r\nRCPT TO:<bob2@example\.org>/);
    assert.deepEqual(settlements.map((s) => s.ok), [false, true]);
  });

  it("a hook that never settles: timeout within the step deadline, no dot", async () => {
    const { writes, settlements } = await run(["250 ok\r\n250 ok\r\n354 go\r\n"], {
      pipelining: true,
      count: 1,
      timeoutMs: 50,
      step: () => ({ beforeDataEnd: () => new Promise<void>(() => {}) }),
    });
    assert.ok(writes.every((text) => !text.includes("\r\n.\r\n")));
    const [settlement] = settlements;
    assert.equal(settlement.ok, false);
    if (!settlement.ok) {
      const error = settlement.error as { type: string; phase: string; message: string };
      assert.equal(error.type, "timeout");
      assert.equal(error.phase, "message");
      assert.match(error.message, /did not finish within 50 ms.*nothing was delivered/);
    }
  });
});
