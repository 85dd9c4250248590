import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { legacyTlsUnavailable, startLegacyTlsServer } from "./legacy_tls.ts";
import { skipOutsideCi } from "./skip.ts";

/** A Node client that allows TLS 1.0/1.1: prints the version it agreed on. */
const LEGACY_CLIENT = `
const tls = require("node:tls");
const socket = tls.connect({
  host: "127.0.0.1", port: Number(process.env.PORT), servername: "localhost",
  ca: process.env.CA, minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0",
}, () => { console.log(socket.getProtocol()); socket.destroy(); });
socket.on("error", (error) => { console.error(error.message); process.exit(1); });
`;

describe("legacy TLS peer", { skip: skipOutsideCi(legacyTlsUnavailable()) }, () => {
  it("really speaks TLS 1.1 to a client that allows it (so a refusal is about the version)", async () => {
    const server = await startLegacyTlsServer({ implicit: true });
    try {
      const output = await new Deno.Command("node", {
        args: ["-e", LEGACY_CLIENT],
        env: { PORT: String(server.port), CA: server.caCert },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.ok(output.success, stderr);
      assert.equal(new TextDecoder().decode(output.stdout).trim(), "TLSv1.1");
      assert.equal((await server.events()).secure, "TLSv1.1");
    } finally {
      await server.close();
    }
  });

  it("answers EHLO with STARTTLS in STARTTLS mode", async () => {
    const server = await startLegacyTlsServer({ implicit: false });
    try {
      const conn = await Deno.connect({ hostname: server.host, port: server.port });
      const buffer = new Uint8Array(1024);
      const read = async () =>
        new TextDecoder().decode(buffer.subarray(0, await conn.read(buffer) ?? 0));
      try {
        assert.match(await read(), /^220 /);
        await conn.write(new TextEncoder().encode("EHLO test\r\n"));
        assert.match(await read(), /250 STARTTLS\r\n$/);
        await conn.write(new TextEncoder().encode("QUIT\r\n"));
        assert.match(await read(), /^221 /);
      } finally {
        conn.close();
      }
    } finally {
      await server.close();
    }
  });
});
