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
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** A memory socket that keeps each written array as it is and completes a write when told. */
class HoldingSocket extends MemorySocket {
  held: Uint8Array[] = [];
  #complete: (() => void)[] = [];
  constructor() {
    super([]);
  }
  override write(data: Uint8Array): Promise<void> {
    this.held.push(data);
    return new Promise((resolve) => this.#complete.push(resolve));
  }
  completeWrites(): void {
    for (const complete of this.#complete.splice(0)) complete();
  }
}

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

  it("never changes bytes a write still holds, nor takes the caller's bytes by reference", async () => {
    const socket = new HoldingSocket();
    const writer = new CommandWriter(new Wire(socket, 1000));
    writer.command("MAIL FROM:<a@example.com>");
    const first = writer.flush();
    const content = bytes("hi\r\n.\r\n");
    writer.queue(content);
    content.fill(0x58); // the caller reuses its buffer at once
    writer.command("RCPT TO:<b@example.org>");
    const second = writer.flush();
    assert.equal(text(socket.held[0]), "MAIL FROM:<a@example.com>\r\n");
    assert.equal(text(socket.held[1]), "hi\r\n.\r\nRCPT TO:<b@example.org>\r\n");
    socket.completeWrites();
    await Promise.all([first, second]);
    writer.command("DATA");
    const third = writer.flush();
    assert.equal(text(socket.held[2]), "DATA\r\n");
    socket.completeWrites();
    await third;
  });

  it("encodes a non-ASCII command as UTF-8 and grows for a group of any size", async () => {
    const socket = new MemorySocket([]);
    const writer = new CommandWriter(new Wire(socket, 1000));
    const content = "x".repeat(10_000) + "\r\n.\r\n";
    writer.queue(bytes(content));
    writer.command("MAIL FROM:<jörg@bücher.example> SMTPUTF8");
    writer.command("RCPT TO:<😀@example.org>");
    const group = content +
      "MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\nRCPT TO:<😀@example.org>\r\n";
    assert.equal(writer.queuedBytes, bytes(group).length);
    await writer.flush();
    assert.equal(socket.writes.length, 1);
    assert.equal(socket.written, group);
  });
});
