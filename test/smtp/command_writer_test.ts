import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CommandWriter } from "../../src/smtp/command_writer.ts";
import { SmtpError } from "../../src/smtp/errors.ts";
import { Wire } from "../../src/smtp/wire.ts";
import { MemorySocket } from "../support/memory_socket.ts";
import { flightOf } from "../support/transaction_fixtures.ts";

/** A memory socket whose writes fail with `error`. */
class FailingSocket extends MemorySocket {
  #error: Error;
  constructor(error: Error) {
    super([]);
    this.#error = error;
  }
  override write(): Promise<void> {
    return Promise.reject(this.#error);
  }
}

const bytes = (text: string) => new TextEncoder().encode(text);

describe("CommandWriter", () => {
  it("writes a group of commands as one write, each line with CRLF", async () => {
    const socket = new MemorySocket([]);
    const writer = new CommandWriter(new Wire(socket, 1000));
    writer.command("MAIL FROM:<a@example.com>");
    writer.command("RCPT TO:<b@example.org>");
    writer.command("DATA");
    const group = "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n";
    assert.equal(writer.queuedBytes, group.length);
    assert.equal(socket.writes.length, 0, "nothing goes out before the flush");
    await writer.flush();
    assert.equal(socket.writes.length, 1);
    assert.equal(
      socket.written,
      "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
    );
    assert.equal(writer.queuedBytes, 0);
    await writer.flush();
    assert.equal(socket.writes.length, 1, "an empty flush writes nothing");
  });

  it("marks the data ends in a write as written once it completed", async () => {
    const written: string[] = [];
    const { flight } = flightOf(undefined, { step: { onDataWritten: () => written.push("1") } });
    const socket = new MemorySocket([]);
    const writer = new CommandWriter(new Wire(socket, 1000));
    writer.queue(bytes("hi\r\n.\r\n"));
    writer.endQueued(flight);
    assert.equal(flight.endQueued, true);
    assert.equal(flight.endWritten, false);
    writer.command("MAIL FROM:<a@example.com>");
    await writer.flush();
    assert.equal(flight.endWritten, true);
    assert.deepEqual(written, ["1"]);
    assert.equal(socket.writes.length, 1, "the end and the next command share the write");
  });

  it("after a write lost on the connection, the end in its last bytes was not written", async () => {
    const { flight: first } = flightOf();
    const { flight: last } = flightOf();
    const writer = new CommandWriter(new Wire(new FailingSocket(new Error("reset")), 1000));
    writer.queue(bytes(".\r\n"));
    writer.endQueued(first);
    writer.queue(bytes("BDAT 3 LAST\r\nhi\n"));
    writer.endQueued(last);
    await assert.rejects(
      writer.flush(),
      (error) => error instanceof SmtpError && error.type === "connection",
    );
    assert.equal(first.endWritten, true, "an end before the last bytes may have arrived");
    assert.equal(last.endWritten, false);
  });

  it("an end followed by more bytes counts as written when the write fails", async () => {
    const { flight } = flightOf();
    const writer = new CommandWriter(new Wire(new FailingSocket(new Error("reset")), 1000));
    writer.queue(bytes(".\r\n"));
    writer.endQueued(flight);
    writer.command("MAIL FROM:<a@example.com>");
    await assert.rejects(writer.flush());
    assert.equal(flight.endWritten, true);
  });
});
