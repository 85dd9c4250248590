/** The Deno socket adapter against real loopback servers. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { denoConnect } from "../../src/socket/deno.ts";
import { TLS_HANDSHAKE_ERROR } from "../../src/socket/socket.ts";
import { generateTestCertificates } from "../../src/dev/test_ca.ts";
import { smtpScript, startFaultServer } from "../support/fault_server.ts";

const decoder = new TextDecoder();

async function readUntil(socket: { read(): Promise<Uint8Array | null> }, pattern: RegExp) {
  let text = "";
  while (!pattern.test(text)) {
    const chunk = await socket.read();
    if (chunk === null) break;
    text += decoder.decode(chunk);
  }
  return text;
}

describe("denoConnect", () => {
  it("writes every byte of a buffer larger than the socket buffers", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const received = (async () => {
      const conn = await listener.accept();
      let total = 0;
      for await (const chunk of conn.readable) total += chunk.length;
      return total;
    })();
    const socket = await denoConnect({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
      tls: false,
    });
    assert.equal(socket.secure, false);
    const size = 16 * 1024 * 1024 + 7;
    await socket.write(new Uint8Array(size));
    await socket.close();
    assert.equal(await received, size);
    listener.close();
  });

  it("connects with implicit TLS to a certificate from the given CA", async () => {
    const { caCert, cert, key } = await generateTestCertificates();
    const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
    const served = (async () => {
      const conn = await listener.accept();
      await conn.write(new TextEncoder().encode("220 tls ready\r\n"));
      conn.close();
    })();
    const socket = await denoConnect({
      hostname: "localhost",
      port: (listener.addr as Deno.NetAddr).port,
      tls: true,
      caCerts: [caCert],
    });
    assert.equal(socket.secure, true);
    assert.equal(await readUntil(socket, /\r\n/), "220 tls ready\r\n");
    assert.equal(await socket.read(), null);
    await socket.close();
    await served;
    listener.close();
  });

  it("rejects an untrusted certificate with a TlsHandshakeError", async () => {
    const { cert, key } = await generateTestCertificates();
    const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
    const served = listener.accept().then((conn) =>
      conn.handshake().catch(() => {}).finally(() => conn.close())
    );
    await assert.rejects(
      denoConnect({ hostname: "localhost", port: (listener.addr as Deno.NetAddr).port, tls: true }),
      { name: TLS_HANDSHAKE_ERROR, message: /TLS handshake with localhost failed/ },
    );
    await served;
    listener.close();
  });

  it("upgrades with STARTTLS, and the old socket is no longer used", async () => {
    const server = await startFaultServer(smtpScript());
    try {
      const plain = await denoConnect({ hostname: "localhost", port: server.port, tls: false });
      await readUntil(plain, /220 .*\r\n/);
      await plain.write(new TextEncoder().encode("STARTTLS\r\n"));
      assert.match(await readUntil(plain, /\r\n/), /^220 /);
      const secure = await plain.startTls({ hostname: "localhost", caCerts: [server.caCert] });
      assert.equal(secure.secure, true);
      await secure.write(new TextEncoder().encode("EHLO me\r\n"));
      assert.match(await readUntil(secure, /250 [^\r]*\r\n/), /^250-fault\.test/);
      await plain.close(); // a no-op: the plain connection was consumed by the upgrade
      await secure.close();
      await secure.close(); // idempotent
    } finally {
      await server.close();
    }
  });

  it("rejects a refused connection as a plain error, not a TLS one", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const error = await denoConnect({ hostname: "127.0.0.1", port, tls: true }).catch((e) => e);
    assert.ok(error instanceof Error);
    assert.notEqual(error.name, TLS_HANDSHAKE_ERROR);
  });
});
