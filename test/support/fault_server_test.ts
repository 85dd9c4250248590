import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  connectRaw,
  type FaultConnection,
  type FaultHandler,
  type FaultServer,
  type FaultServerOptions,
  multiline,
  type RawClient,
  smtpScript,
  startFaultServer,
} from "./fault_server.ts";

/**
 * Starts a fault server running `handler`, connects a raw client (over
 * implicit TLS with the server's CA when `options.implicitTls`), runs `talk`,
 * then closes both; resolves with the server for checks after its close.
 */
async function withRawClient(
  handler: FaultHandler,
  talk: (client: RawClient, server: FaultServer) => Promise<void>,
  options: FaultServerOptions = {},
): Promise<FaultServer> {
  const server = await startFaultServer(handler, options);
  const client = await connectRaw(
    server.port,
    options.implicitTls ? { implicitTlsCaCert: server.caCert } : {},
  );
  try {
    await talk(client, server);
  } finally {
    client.close();
    await server.close();
  }
  return server;
}

describe("startFaultServer with smtpScript", () => {
  it("plays a whole plain session and records every line", async () => {
    const server = await withRawClient(smtpScript(), async (client) => {
      assert.equal(await client.readReply(), "220 fault.test ESMTP ready");
      await client.send("EHLO client.test\r\n");
      const ehlo = await client.readReply();
      assert.match(ehlo ?? "", /^250-fault\.test\r\n/);
      assert.match(ehlo ?? "", /\r\n250 STARTTLS$/);
      assert.match(ehlo ?? "", /^250-PIPELINING\r$/m);
      await client.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
      assert.equal(await client.readReply(), "250 2.1.0 Ok");
      assert.equal(await client.readReply(), "250 2.1.5 Ok");
      assert.match(await client.readReply() ?? "", /^354 /);
      await client.send("Subject: hi\r\n\r\n..dot\r\n.\r\n");
      assert.equal(await client.readReply(), "250 2.0.0 Ok: queued as FAULT1");
      await client.send("QUIT\r\n");
      assert.equal(await client.readReply(), "221 2.0.0 Bye");
      assert.equal(await client.readReply(), null, "the server closes after QUIT");
    });
    assert.equal(server.connections, 1);
    assert.deepEqual(server.transcript, [
      "EHLO client.test",
      "MAIL FROM:<a@example.com>",
      "RCPT TO:<b@example.com>",
      "DATA",
      "Subject: hi",
      "",
      "..dot",
      ".",
      "QUIT",
    ]);
  });

  it("runs an overridden step instead of the default and keeps the others", async () => {
    let content: string | undefined;
    await withRawClient(
      smtpScript({
        RCPT: (conn, line) =>
          conn.send(line.includes("bad@") ? "550 5.1.1 No such user\r\n" : "250 2.1.5 Ok\r\n")
            .then(() => {}),
        message: (conn, data) => {
          content = data;
          conn.destroy(); // the connection is lost after the whole message
        },
      }),
      async (client) => {
        await client.readReply();
        await client.send("EHLO c\r\n");
        await client.readReply();
        await client.send("MAIL FROM:<a@example.com>\r\n");
        assert.equal(await client.readReply(), "250 2.1.0 Ok");
        await client.send("RCPT TO:<bad@example.com>\r\n");
        assert.equal(await client.readReply(), "550 5.1.1 No such user");
        await client.send("RCPT TO:<good@example.com>\r\n");
        assert.equal(await client.readReply(), "250 2.1.5 Ok");
        await client.send("DATA\r\n");
        await client.readReply();
        await client.send("x\r\n.\r\n");
        assert.equal(await client.readReply(), null);
      },
    );
    assert.equal(content, "x\r\n.\r\n");
  });

  it("upgrades with STARTTLS and advertises the post-TLS capabilities", async () => {
    await withRawClient(
      smtpScript({
        capabilities: ["STARTTLS", "AUTH PLAIN"],
        capabilitiesAfterTls: ["AUTH LOGIN"],
      }),
      async (client, { caCert }) => {
        await client.readReply();
        await client.send("EHLO c\r\n");
        assert.equal(await client.readReply(), "250-fault.test\r\n250-STARTTLS\r\n250 AUTH PLAIN");
        await client.send("STARTTLS\r\n");
        assert.equal(await client.readReply(), "220 2.0.0 Ready to start TLS");
        await client.startTls(caCert);
        assert.equal(client.secure, true);
        await client.send("EHLO c\r\n");
        assert.equal(await client.readReply(), "250-fault.test\r\n250 AUTH LOGIN");
        await client.send(`AUTH PLAIN ${btoa("\0user\0secret")}\r\n`);
        assert.equal(await client.readReply(), "235 2.7.0 Authentication successful");
      },
    );
  });

  it("serves implicit TLS", async () => {
    await withRawClient(smtpScript(), async (client) => {
      assert.equal(await client.readReply(), "220 fault.test ESMTP ready");
      await client.send("EHLO c\r\n");
      const ehlo = await client.readReply();
      assert.doesNotMatch(ehlo ?? "", /STARTTLS/, "no STARTTLS on a TLS connection");
    }, { implicitTls: true });
  });

  it("answers BDAT chunks and runs the message step after LAST", async () => {
    await withRawClient(
      smtpScript({ capabilities: ["CHUNKING"] }),
      async (client) => {
        await client.readReply();
        await client.send("EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n");
        for (let i = 0; i < 3; i++) await client.readReply();
        await client.send("BDAT 5\r\nhelloBDAT 3 LAST\r\n!\r\n");
        assert.equal(await client.readReply(), "250 2.0.0 5 octets received");
        assert.equal(await client.readReply(), "250 2.0.0 Ok: queued as FAULT1");
      },
    );
  });
});

describe("FaultConnection", () => {
  it("sendInPieces makes the client see separate reads", async () => {
    const server = await startFaultServer(async (conn) => {
      await conn.sendInPieces("220 split greeting\r\n", [2, 9], { pauseMs: 150 });
      await conn.readLine();
    });
    const conn = await Deno.connect({ hostname: server.host, port: server.port });
    try {
      const buffer = new Uint8Array(1024);
      const chunks: string[] = [];
      while (chunks.join("").length < "220 split greeting\r\n".length) {
        const n = await conn.read(buffer);
        if (n === null) break;
        chunks.push(new TextDecoder().decode(buffer.subarray(0, n)));
      }
      assert.equal(chunks.join(""), "220 split greeting\r\n");
      // Under load two pieces may still arrive in one read, but there is more than one
      // read, and every read ends where a piece ends.
      assert.ok(chunks.length > 1, JSON.stringify(chunks));
      let cut = 0;
      for (const chunk of chunks.slice(0, -1)) {
        cut += chunk.length;
        assert.ok([2, 9].includes(cut), JSON.stringify(chunks));
      }
    } finally {
      conn.close();
      await server.close();
    }
  });

  it("sendInPieces with `between` sends the next piece only once the hook resolves", async () => {
    const client = Promise.withResolvers<void>();
    const hooks: number[] = [];
    const server = await startFaultServer(async (conn) => {
      await conn.sendInPieces("220 split greeting\r\n", [4], {
        between: (piece) => {
          hooks.push(piece);
          return client.promise;
        },
      });
      await conn.readLine();
    });
    const conn = await Deno.connect({ hostname: server.host, port: server.port });
    try {
      const buffer = new Uint8Array(1024);
      const first = await conn.read(buffer);
      assert.equal(new TextDecoder().decode(buffer.subarray(0, first!)), "220 ");
      client.resolve(); // the client read the first piece: the script may go on
      const second = await conn.read(buffer);
      assert.equal(new TextDecoder().decode(buffer.subarray(0, second!)), "split greeting\r\n");
      assert.deepEqual(hooks, [1]);
    } finally {
      conn.close();
      await server.close();
    }
  });

  it("pauseReading holds what the client sends until resumeReading", async () => {
    // The stall itself (a client's writes blocking on a full window) is what the
    // zero-window case of fault_matrix_test.ts shows; here, that reading resumes.
    const held = Promise.withResolvers<FaultConnection>();
    await withRawClient(async (conn) => {
      conn.pauseReading();
      await conn.send("220 paused\r\n");
      held.resolve(conn);
      if (await conn.readLine() === "NOOP") await conn.send("250 resumed\r\n");
    }, async (client) => {
      assert.equal(await client.readReply(), "220 paused");
      await client.send("NOOP\r\n");
      const conn = await held.promise;
      assert.equal(conn.received, "");
      conn.resumeReading();
      assert.equal(await client.readReply(), "250 resumed");
      assert.equal(conn.received, "NOOP\r\n");
    });
  });

  it("serves the certificate names it was given", async () => {
    const server = await startFaultServer(async (conn) => {
      try {
        await conn.startTls();
        await conn.send("220 secure\r\n");
        await conn.readLine();
      } catch {
        // The client that checks for another name refuses the handshake.
      }
    }, { certificate: { dnsNames: ["mail.elsewhere.test"], ipAddresses: [] } });
    const handshake = async (hostname: string) => {
      const tcp = await Deno.connect({ hostname: server.host, port: server.port });
      const tls = await Deno.startTls(tcp, { hostname, caCerts: [server.caCert] });
      try {
        await tls.handshake();
        return "ok";
      } catch (error) {
        return (error as Error).message;
      } finally {
        tls.close();
      }
    };
    try {
      assert.equal(await handshake("mail.elsewhere.test"), "ok");
      assert.match(await handshake("localhost"), /certificate|name/i);
    } finally {
      await server.close();
    }
  });

  it("discards plaintext pipelined behind STARTTLS and reads what follows over TLS", async () => {
    const lines: (string | null)[] = [];
    const server = await withRawClient(async (conn) => {
      await conn.send("220 hi\r\n");
      lines.push(await conn.readLine());
      await conn.send("220 go ahead\r\n");
      await conn.startTls();
      lines.push(await conn.readLine());
      await conn.send("250 ok\r\n");
      await conn.readLine();
    }, async (client, { caCert }) => {
      await client.readReply();
      await client.send("STARTTLS\r\nEHLO injected\r\n");
      assert.equal(await client.readReply(), "220 go ahead");
      await client.startTls(caCert);
      await client.send("EHLO real\r\n");
      assert.equal(await client.readReply(), "250 ok");
    });
    assert.deepEqual(lines, ["STARTTLS", "EHLO real"]);
    assert.deepEqual(server.transcript, ["STARTTLS", "EHLO injected", "EHLO real"]);
  });

  it("reports the client closing: readLine gives null, waitClosed resolves", async () => {
    let seen: FaultConnection | undefined;
    let last: string | null | undefined;
    const done = Promise.withResolvers<void>();
    const server = await startFaultServer(async (conn) => {
      seen = conn;
      await conn.send("220 hi\r\n");
      last = await conn.readLine();
      await conn.waitClosed();
      done.resolve();
    });
    const client = await connectRaw(server.port);
    await client.readReply();
    await client.send("partial line without end");
    client.close();
    await done.promise;
    await server.close();
    assert.equal(last, null);
    assert.equal(seen?.closed, true);
    assert.equal(seen?.received, "partial line without end");
    assert.deepEqual(server.transcript, []);
  });

  it("readData returns an empty message as just the terminator", async () => {
    let data: string | null | undefined;
    await withRawClient(async (conn) => {
      await conn.send("354 go\r\n");
      data = await conn.readData();
      await conn.send("250 ok\r\n");
    }, async (client) => {
      await client.readReply();
      await client.send(".\r\n");
      assert.equal(await client.readReply(), "250 ok");
    });
    assert.equal(data, ".\r\n");
  });

  it("rejects close() with the error a script threw", async () => {
    const server = await startFaultServer((conn) => {
      conn.destroy();
      throw new Error("script assertion failed");
    });
    const client = await connectRaw(server.port);
    assert.equal(await client.readReply(), null);
    client.close();
    await assert.rejects(server.close(), /script assertion failed/);
    assert.equal(server.errors.length, 1);
  });

  it("close() ends a script that waits for a silent client", async () => {
    const server = await startFaultServer(async (conn) => {
      await conn.send("220 hi\r\n");
      await conn.waitClosed();
    });
    const client = await connectRaw(server.port);
    try {
      await client.readReply();
      await server.close();
      assert.equal(await client.readReply(), null, "the client sees the connection end");
    } finally {
      client.close();
    }
  });
});

describe("multiline", () => {
  it("formats continuation and final lines", () => {
    assert.equal(multiline(250, ["a", "b", "c"]), "250-a\r\n250-b\r\n250 c\r\n");
    assert.equal(multiline(221, ["bye"]), "221 bye\r\n");
  });
});
