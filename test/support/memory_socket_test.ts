import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MemorySocket } from "./memory_socket.ts";

const text = (bytes: Uint8Array | null) => bytes === null ? null : new TextDecoder().decode(bytes);

describe("MemorySocket", () => {
  it("serves one scripted chunk per read, then EOF", async () => {
    const socket = new MemorySocket(["220 hi\r\n", new Uint8Array([50, 53, 48])]);
    assert.equal(text(await socket.read()), "220 hi\r\n");
    assert.deepEqual(await socket.read(), new Uint8Array([50, 53, 48]));
    assert.equal(socket.unread, 0);
    assert.equal(await socket.read(), null);
    assert.equal(await socket.read(), null);
  });

  it("rejects a read with a scripted error", async () => {
    const socket = new MemorySocket([new Error("connection reset")]);
    await assert.rejects(socket.read(), /connection reset/);
  });

  it("records copies of every write, as bytes and as text", async () => {
    const socket = new MemorySocket([]);
    const buffer = new TextEncoder().encode("EHLO a\r\n");
    await socket.write(buffer);
    buffer.fill(0); // the caller reusing its buffer must not change the record
    await socket.write(new TextEncoder().encode("QUIT\r\n"));
    assert.equal(socket.writes.length, 2);
    assert.equal(socket.written, "EHLO a\r\nQUIT\r\n");
  });

  it("joins a UTF-8 character split across writes", async () => {
    const socket = new MemorySocket([]);
    const bytes = new TextEncoder().encode("é");
    await socket.write(bytes.subarray(0, 1));
    await socket.write(bytes.subarray(1));
    assert.equal(socket.written, "é");
  });

  it("startTls returns a secure socket with its own script and retires the plain one", async () => {
    const socket = new MemorySocket(["220 go\r\n"], { tlsChunks: ["250 tls\r\n"] });
    assert.equal(socket.secure, false);
    await socket.read();
    const upgraded = await socket.startTls({ hostname: "localhost", caCerts: ["PEM"] });
    assert.equal(upgraded.secure, true);
    assert.equal(socket.upgraded, upgraded);
    assert.deepEqual(socket.startTlsCalls, [{ hostname: "localhost", caCerts: ["PEM"] }]);
    assert.equal(text(await upgraded.read()), "250 tls\r\n");
    await upgraded.write(new TextEncoder().encode("EHLO b\r\n"));
    assert.equal(socket.upgraded?.written, "EHLO b\r\n");
    await assert.rejects(socket.read(), /after startTls/);
    await assert.rejects(socket.write(new Uint8Array(1)), /after startTls/);
  });

  it("can fail the TLS handshake", async () => {
    const socket = new MemorySocket([], { startTlsError: new Error("bad certificate") });
    await assert.rejects(socket.startTls({ hostname: "localhost" }), /bad certificate/);
    assert.equal(socket.upgraded, undefined);
  });

  it("records close() and refuses use afterwards", async () => {
    const socket = new MemorySocket(["220 hi\r\n"], { secure: true });
    assert.equal(socket.secure, true);
    await socket.close();
    await socket.close();
    assert.equal(socket.closeCalls, 2);
    assert.equal(socket.closed, true);
    await assert.rejects(socket.read(), /after close/);
  });
});
