/**
 * The fault-injection matrix (issue 11): one test per fault, in the order of
 * a session — greeting, EHLO, reply reader, AUTH, MAIL, RCPT, DATA, after the
 * final dot, a pooled connection, STARTTLS/TLS, and a pipelined run of queued
 * sends. Each test asserts what a caller sees (the outcome's type, phase and
 * SMTP code) and, where it matters, what the server saw: nothing delivered,
 * QUIT or no QUIT, no credentials, no command after a refusal.
 *
 * The peer is the scripted fault server (test/support/fault_server.ts); the
 * TLS cases run a real TLS handshake with its generated test CA, and the
 * TLS ≤ 1.1 case a real OpenSSL peer (Node's `node:tls`) that offers nothing newer.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { resultOf, type SendResult, SmtpError } from "../../src/mod.ts";
import {
  type FaultConnection,
  type FaultServer,
  multiline,
  smtpScript,
  type SmtpScriptOptions,
  startFaultServer,
} from "../support/fault_server.ts";
import {
  accept,
  connectionsOf,
  delivered,
  FAULT_MESSAGE as message,
  faultClient,
  nth,
  overriddenConnect,
  queueAll,
  realistic,
  REFUSED,
  sendExpectingError,
  subjectsOn,
  withServer,
} from "../support/fault_client.ts";
import { guard } from "../support/guard.ts";
import { legacyTlsUnavailable, startLegacyTlsServer } from "../support/legacy_tls.ts";
import { skipOutsideCi } from "../support/skip.ts";

const PLAIN = { tls: "none" } as const;
const DATA_PATH = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"];
const CHUNKING = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING"];
const USER = "mailer-ann@example.com";
const PASSWORD = "pw:Sesame-42/x+y";
const AUTH_CAPABILITIES = ["PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS", "AUTH PLAIN LOGIN"];

/** The first word of each line the server received (commands, without their arguments). */
function verbs(server: FaultServer): string[] {
  return server.transcript.map((line) => line.split(" ")[0]);
}

/** base64 of the UTF-8 bytes of `text`. */
function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** Every form of the credentials that must never show in an error or a result. */
function credentialForms(): string[] {
  return [USER, PASSWORD, b64(USER), b64(PASSWORD), b64(`\0${USER}\0${PASSWORD}`)];
}

function assertNoCredentials(error: SmtpError): void {
  const seen = JSON.stringify({
    message: error.message,
    response: error.response,
    result: error.result,
  });
  for (const form of credentialForms()) {
    assert.ok(!seen.includes(form), `the error carries a credential form: ${form}`);
  }
}

/** Asserts each field of `expected` on `error`; a field given as undefined must be absent. */
function assertFailure(
  error: SmtpError,
  expected: Partial<Pick<SmtpError, "type" | "phase" | "code" | "enhancedCode">>,
): void {
  for (const key of Object.keys(expected) as (keyof typeof expected)[]) {
    assert.equal(error[key], expected[key], `${key}: ${error.message}`);
  }
}

/**
 * A socket factory that counts the reads which returned bytes, so a server
 * script can wait until the client has read what it sent (a deterministic split).
 */
function countingReads() {
  let reads = 0;
  const chunks: string[] = [];
  let waiters: { at: number; resolve: () => void }[] = [];
  const decoder = new TextDecoder();
  const connect = overriddenConnect((socket) => ({
    read: async () => {
      const bytes = await socket.read();
      if (bytes !== null) {
        reads++;
        chunks.push(decoder.decode(bytes));
        waiters = waiters.filter((waiter) => waiter.at > reads || void waiter.resolve());
      }
      return bytes;
    },
  }));
  return {
    connect,
    chunks,
    get reads() {
      return reads;
    },
    /** Resolves once `count` reads have returned bytes. */
    until(count: number): Promise<void> {
      if (reads >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ at: count, resolve }));
    },
  };
}

/** A plain-text client with one pooled connection: queued sends go out pipelined on it. */
function onePooledConnection(server: FaultServer) {
  return faultClient(server, { ...PLAIN, pool: { maxConnections: 1 } });
}

/** `script`'s own step `name`, for a step that overrides it to call in the usual case. */
function stepOf(script: SmtpScriptOptions, name: "MAIL" | "RCPT" | "DATA" | "BDAT") {
  return script[name] as (conn: FaultConnection, line: string) => Promise<void>;
}

/** A server that refuses everything after a refused MAIL, as real servers do. */
function afterRefusedMail(reply: string): SmtpScriptOptions {
  return {
    MAIL: reply,
    RCPT: "503 5.5.1 Error: need MAIL command",
    DATA: "503 5.5.1 Error: need RCPT command",
  };
}

/** RCPT answered per recipient: `refuse` maps a local part to its refusal. */
function rcptRefusing(refuse: Record<string, string>): SmtpScriptOptions["RCPT"] {
  return async (conn, line) => {
    const local = /<([^@>]+)@/.exec(line)?.[1] ?? "";
    await conn.send(`${refuse[local] ?? "250 2.1.5 Ok"}\r\n`);
  };
}

describe("fault matrix: greeting", () => {
  const closingGreetings: { name: string; greeting: SmtpScriptOptions["greeting"] }[] = [
    {
      name: "421: transient with the code, and no QUIT (the server is closing)",
      greeting: "421 4.3.2 Too busy, try later",
    },
    {
      name: "421 ended by the server's FIN instead of CRLF: transient, the code kept",
      greeting: async (conn) => {
        await conn.send("421 4.3.2 fault.test too busy");
        await conn.close();
      },
    },
  ];
  for (const { name, greeting } of closingGreetings) {
    it(name, async () => {
      await withServer({ greeting }, async (server) => {
        const error = await sendExpectingError(faultClient(server));
        assertFailure(error, {
          type: "transient",
          phase: "greeting",
          code: 421,
          enhancedCode: "4.3.2",
        });
        assert.deepEqual(server.transcript, []);
      });
    });
  }

  it("554: QUIT, then rejected with the server's code", async () => {
    await withServer({ greeting: "554 5.3.2 No SMTP service here" }, async (server) => {
      const error = await sendExpectingError(faultClient(server));
      // RFC 5321 3.1: the server refuses the session for good (422); the client says QUIT.
      assertFailure(error, {
        type: "rejected",
        phase: "greeting",
        code: 554,
        enhancedCode: "5.3.2",
      });
      assert.deepEqual(server.transcript, ["QUIT"]);
    });
  });

  it("another code: 2xx/3xx protocol (no SMTP), 4xx transient, 5xx rejected after QUIT", async () => {
    const cases = [
      { greeting: "250 fault.test hello", type: "protocol", transcript: [] },
      { greeting: "354 fault.test go ahead", type: "protocol", transcript: [] },
      { greeting: "450 4.3.2 fault.test overloaded", type: "transient", transcript: [] },
      // RFC 7504: 521 says this host does not accept mail.
      {
        greeting: "521 5.3.2 fault.test does not accept mail",
        type: "rejected",
        transcript: ["QUIT"],
      },
    ];
    for (const { greeting, type, transcript } of cases) {
      await withServer({ greeting }, async (server) => {
        const error = await sendExpectingError(faultClient(server));
        assert.equal(error.type, type, `${greeting}: ${error.message}`);
        assert.equal(error.phase, "greeting");
        assert.equal(error.code, Number(greeting.slice(0, 3)));
        await delivered(server);
        assert.deepEqual(server.transcript, transcript, greeting);
      });
    }
  });

  it("no greeting at all: the deadline fires (timeout), nothing sent", async () => {
    await withServer({ greeting: (conn) => conn.waitClosed() }, async (server) => {
      const error = await guard(
        sendExpectingError(faultClient(server, { timeoutMs: 300 })),
        "the send to a silent server",
      );
      assertFailure(error, { type: "timeout", phase: "greeting", code: undefined });
      assert.match(error.message, /300 ms/);
      assert.deepEqual(server.transcript, []);
    });
  });
});

describe("fault matrix: EHLO", () => {
  it("502 to EHLO: HELO fall-back, sent without any extension", async () => {
    await withServer({ EHLO: "502 5.5.1 Command not implemented" }, async (server) => {
      const client = faultClient(server, PLAIN);
      const result = await client.send(message);
      await client.close();
      assert.equal(result.status, "sent");
      assert.deepEqual(result.accepted, message.to);
      assert.deepEqual(verbs(server).slice(0, 3), ["EHLO", "HELO", "MAIL"]);
      // No extensions after HELO: no SIZE, no BODY parameter, no pipelining.
      assert.ok(server.transcript.includes("MAIL FROM:<ann@example.com>"));
      assert.equal(await delivered(server), true);
    });
  });

  it("421 to EHLO: transient with the code; no HELO, no QUIT", async () => {
    await withServer({
      EHLO: async (conn) => {
        await conn.send("421 4.7.0 fault.test closing connection\r\n");
        await conn.close();
      },
    }, async (server) => {
      const error = await sendExpectingError(faultClient(server));
      assertFailure(error, { type: "transient", phase: "ehlo", code: 421, enhancedCode: "4.7.0" });
      assert.deepEqual(verbs(server), ["EHLO"]);
    });
  });
});

describe("fault matrix: reply reader", () => {
  it("every reply of a session split at every byte: read whole, sent", async () => {
    const replies = {
      greeting: "220 fault.test ESMTP ready\r\n",
      EHLO: multiline(250, ["fault.test", "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"]),
      MAIL: "250 2.1.0 Ok\r\n",
      RCPT: "250 2.1.5 Ok\r\n",
      DATA: "354 End data with <CR><LF>.<CR><LF>\r\n",
      message: "250 2.0.0 Ok: queued as SPLIT\r\n",
      QUIT: "221 2.0.0 Bye\r\n",
    };
    const longest = Math.max(...Object.values(replies).map((text) => text.length));
    const client = countingReads();
    const server = await startFaultServer((conn) => {
      // Connection n splits each reply after byte n (wrapping around for the shorter
      // ones), and sends the rest only once the client has read the first piece alone.
      const n = server.connections;
      const split = async (text: string) => {
        const start = client.reads;
        const at = ((n - 1) % (text.length - 1)) + 1;
        await conn.sendInPieces(text, [at], { between: () => client.until(start + 1) });
      };
      return smtpScript({
        greeting: () => split(replies.greeting),
        EHLO: () => split(replies.EHLO),
        MAIL: () => split(replies.MAIL),
        RCPT: () => split(replies.RCPT),
        DATA: async () => {
          await split(replies.DATA);
          if (await conn.readData() !== null) await split(replies.message);
        },
        QUIT: async () => {
          await split(replies.QUIT);
          await conn.close();
        },
      })(conn);
    });
    try {
      for (let n = 1; n < longest; n++) {
        const smtp = faultClient(server, { ...PLAIN, connect: client.connect });
        const result = await smtp.send(message);
        await smtp.close();
        assert.equal(result.status, "sent", `split after byte ${n}`);
        assert.deepEqual(result.accepted, message.to);
        assert.equal(result.response, "250 2.0.0 Ok: queued as SPLIT");
        // The client really got the first piece of the longest reply alone.
        assert.ok(client.chunks.includes(replies.EHLO.slice(0, n)), `split after byte ${n}`);
      }
      assert.equal(server.connections, longest - 1);
    } finally {
      await server.close();
    }
  });

  it("a multi-line reply whose code changes: protocol", async () => {
    await withServer(
      { EHLO: "250-fault.test\r\n251-PIPELINING\r\n250 SIZE 100" },
      async (server) => {
        const error = await sendExpectingError(faultClient(server, PLAIN));
        assertFailure(error, { type: "protocol", phase: "ehlo" });
        assert.match(error.message, /250 then 251/);
        assert.deepEqual(verbs(server), ["EHLO"]);
      },
    );
  });

  it("a reply without a numeric code: protocol, nothing delivered", async () => {
    await withServer({ MAIL: "OK fine" }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "protocol", phase: "mail" });
      assert.equal(await delivered(server), false);
    });
  });

  it("a 10 000-line reply: protocol at the 512-line cap, nothing more sent", async () => {
    // No real server sends an EHLO reply of more than a few dozen lines. Reading on
    // would let a hostile server make the client hold up to 10 000 × 4 KB; the cap
    // (512 lines of ≤ 4096 octets) bounds the memory one reply can take.
    const lines = Array.from({ length: 10_000 }, (_, i) => `X-FILLER-${i}`);
    await withServer({ EHLO: multiline(250, ["fault.test", ...lines]) }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "protocol", phase: "ehlo" });
      assert.match(error.message, /longer than 512 lines/);
      assert.deepEqual(verbs(server), ["EHLO"]);
    });
  });

  it("a 1 MB reply line: protocol at the 4096-octet cap", async () => {
    await withServer({ greeting: "220 " + "x".repeat(1024 * 1024) }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "protocol", phase: "greeting" });
      assert.match(error.message, /longer than 4096 octets/);
      assert.deepEqual(server.transcript, []);
    });
  });

  it("a greeting trickled at 1 byte/s: the deadline for the whole reply fires", async () => {
    const greeting = "220 fault.test ESMTP slow but steady\r\n";
    const offsets = Array.from({ length: greeting.length - 1 }, (_, i) => i + 1);
    let piecesSent = 0;
    await withServer({
      greeting: (conn) =>
        conn.sendInPieces(greeting, offsets, {
          between: (piece) => {
            piecesSent = piece;
            return new Promise((resolve) => setTimeout(resolve, 1000));
          },
        }).then(() => {}),
    }, async (server) => {
      // Each byte comes well within the 1500 ms: only a deadline for the whole reply
      // (not one per read) ends the wait before the 38 s the greeting takes.
      const error = await guard(
        sendExpectingError(faultClient(server, { ...PLAIN, timeoutMs: 1500 })),
        "the send against a 1 byte/s greeting",
        { ms: 8000 },
      );
      assertFailure(error, { type: "timeout", phase: "greeting" });
      assert.match(error.message, /1500 ms/);
      assert.ok(piecesSent < greeting.length - 1, `${piecesSent} pieces sent`);
      assert.deepEqual(server.transcript, []);
    });
  });
});

describe("fault matrix: AUTH", () => {
  const auth = { username: USER, password: PASSWORD };

  it("535 without echo: auth with the code; no MAIL", async () => {
    await withServer({
      capabilities: AUTH_CAPABILITIES,
      AUTH: "535 5.7.8 Authentication credentials invalid",
    }, async (server) => {
      const error = await sendExpectingError(faultClient(server, { auth }));
      assertFailure(error, { type: "auth", phase: "auth", code: 535, enhancedCode: "5.7.8" });
      assert.match(error.message, /credentials invalid/);
      assert.deepEqual(verbs(server), ["EHLO", "STARTTLS", "EHLO", "AUTH"]);
      assertNoCredentials(error);
    });
  });

  it("535 quoting what we sent: auth with the code, the server's text withheld", async () => {
    await withServer({
      capabilities: AUTH_CAPABILITIES,
      AUTH: async (conn, line) => {
        const initial = line.split(" ")[2] ?? "";
        await conn.send(
          `535 5.7.8 bad response on '${initial}' (${atob(initial)}) for user ${USER}\r\n`,
        );
      },
    }, async (server) => {
      const error = await sendExpectingError(faultClient(server, { auth }));
      assertFailure(error, { type: "auth", phase: "auth", code: 535, enhancedCode: "5.7.8" });
      assert.match(error.message, /withheld/);
      assertNoCredentials(error);
      assert.deepEqual(verbs(server), ["EHLO", "STARTTLS", "EHLO", "AUTH"]);
    });
  });

  it("LOGIN refused after the user name, before the password challenge: no password sent", async () => {
    await withServer({
      capabilities: AUTH_CAPABILITIES,
      AUTH: async (conn) => {
        await conn.send(`334 ${b64("Username:")}\r\n`);
        if (await conn.readLine() === null) return;
        await conn.send("535 5.7.8 No such user\r\n");
      },
    }, async (server) => {
      const error = await sendExpectingError(
        faultClient(server, { auth: { ...auth, mechanism: "login" } }),
      );
      assertFailure(error, { type: "auth", phase: "auth", code: 535 });
      await delivered(server); // every connection ended: all it sent is in the transcript
      // After EHLO, STARTTLS, EHLO: the user name, then nothing but (maybe) QUIT.
      const exchange = server.transcript.slice(3).filter((line) => line !== "QUIT");
      assert.deepEqual(exchange, ["AUTH LOGIN", b64(USER)]);
      for (const conn of connectionsOf(server)) {
        assert.ok(!conn.received.includes(b64(PASSWORD)));
        assert.ok(!conn.received.includes(PASSWORD));
      }
      assertNoCredentials(error);
    });
  });
});

describe("fault matrix: MAIL", () => {
  const refusals = [
    { type: "transient", reply: "451 4.3.0 Try again later" },
    { type: "rejected", reply: "550 5.7.1 Sender refused" },
  ] as const;
  for (const { type, reply } of refusals) {
    const [code, enhancedCode] = reply.split(" ");
    it(`${code}: ${type} with the code, nothing delivered`, async () => {
      await withServer(afterRefusedMail(reply), async (server) => {
        const error = await sendExpectingError(faultClient(server, PLAIN));
        assertFailure(error, {
          type: type,
          phase: "mail",
          code: Number(code),
          enhancedCode: enhancedCode,
        });
        assert.equal(await delivered(server), false);
        assert.equal(
          server.transcript.at(-1),
          "QUIT",
          "a clean refusal: the session ends with QUIT",
        );
      });
    });
  }

  it("421 ended by the server's FIN instead of CRLF: transient, the code kept", async () => {
    await withServer({
      MAIL: async (conn) => {
        await conn.send("421 4.7.0 fault.test closing connection");
        await conn.close();
      },
    }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "transient", phase: "mail", code: 421, enhancedCode: "4.7.0" });
      assert.equal(await delivered(server), false);
    });
  });

  it("421, then a hang-up before the replies to RCPT and DATA: transient", async () => {
    await withServer({
      MAIL: async (conn) => {
        await conn.send("421 4.3.2 Service shutting down\r\n");
        conn.destroy();
      },
    }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "transient", phase: "mail", code: 421 });
      assert.equal(await delivered(server), false);
    });
  });

  it("no reply to MAIL: timeout, nothing delivered", async () => {
    await withServer({ MAIL: (conn) => conn.waitClosed() }, async (server) => {
      const error = await guard(
        sendExpectingError(faultClient(server, { ...PLAIN, timeoutMs: 1000 })),
        "the send to a server silent at MAIL",
      );
      assertFailure(error, { type: "timeout", phase: "mail", code: undefined });
      assert.equal(await delivered(server), false);
    });
  });
});

describe("fault matrix: RCPT", () => {
  it("one of two refused (550), DATA answered 354: rejected, the dot never sent", async () => {
    await withServer({
      RCPT: rcptRefusing({ cy: "550 5.1.1 <cy@example.org>: Recipient address rejected" }),
    }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "rejected", phase: "rcpt", code: 550 });
      assert.deepEqual(error.rejected.map((r) => [r.address, r.code, r.enhancedCode]), [
        ["cy@example.org", 550, "5.1.1"],
      ]);
      assert.equal(await delivered(server), false);
      // After a 354 anything would be message content: nothing more was written.
      assert.equal(server.transcript.at(-1), "DATA");
    });
  });

  it("one of two refused under allowPartial: sent to the other, the refusal listed", async () => {
    await withServer({
      RCPT: rcptRefusing({ cy: "550 5.1.1 <cy@example.org>: Recipient address rejected" }),
    }, async (server) => {
      const client = faultClient(server, PLAIN);
      const result = await client.send({ ...message, allowPartial: true });
      await client.close();
      assert.equal(result.status, "sent");
      assert.deepEqual(result.accepted, ["bob@example.org"]);
      assert.deepEqual(result.rejected.map((r) => [r.address, r.code]), [["cy@example.org", 550]]);
      assert.equal(await delivered(server), true);
    });
  });

  it("all refused, DATA refused (554): rejected, every refusal listed", async () => {
    await withServer({
      RCPT: "550 5.1.1 Recipient address rejected",
      DATA: "554 5.5.1 Error: no valid recipients",
    }, async (server) => {
      const error = await sendExpectingError(faultClient(server, { ...PLAIN }), {
        ...message,
        allowPartial: true,
      });
      assertFailure(error, { type: "rejected", phase: "rcpt", code: 550 });
      assert.deepEqual(error.rejected.map((r) => r.address), message.to);
      assert.match(error.message, /every recipient/);
      assert.equal(await delivered(server), false);
      assert.equal(server.transcript.at(-1), "QUIT", "a clean refusal: the session ends with QUIT");
    });
  });

  it("all refused with PIPELINING but DATA answered 354: rejected, nothing delivered", async () => {
    await withServer({ RCPT: "550 5.1.1 Recipient address rejected" }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "rejected", phase: "rcpt", code: 550 });
      assert.deepEqual(error.rejected.map((r) => r.address), message.to);
      // The server said 354 to the DATA pipelined behind the refusals: only dropping
      // the connection, never the final dot, gets out of it without a delivery.
      assert.ok(server.transcript.includes("DATA"));
      assert.equal(await delivered(server), false);
      // After a 354 anything would be message content: nothing more was written.
      assert.equal(server.transcript.at(-1), "DATA");
    });
  });

  const tooManyRecipients = [
    { name: "452 (too many recipients, try later): transient with the code", code: 452 },
    { name: "552 to RCPT: transient, the 452 it should be (RFC 5321 4.5.3.1.10)", code: 552 },
  ];
  for (const { name, code } of tooManyRecipients) {
    it(name, async () => {
      await withServer({
        RCPT: rcptRefusing({ cy: `${code} ${code / 100 | 0}.5.3 Too many recipients` }),
      }, async (server) => {
        const error = await sendExpectingError(faultClient(server, PLAIN));
        assertFailure(error, { type: "transient", phase: "rcpt", code: code });
        assert.deepEqual(error.rejected.map((r) => [r.address, r.code]), [[
          "cy@example.org",
          code,
        ]]);
        assert.equal(await delivered(server), false);
        // After a 354 anything would be message content: nothing more was written.
        assert.equal(server.transcript.at(-1), "DATA");
      });
    });
  }
});

describe("fault matrix: DATA", () => {
  it("554 to DATA: rejected in phase data, nothing delivered", async () => {
    await withServer({ DATA: "554 5.3.0 Message refused" }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "rejected", phase: "data", code: 554, enhancedCode: "5.3.0" });
      assert.equal(await delivered(server), false);
      assert.equal(server.transcript.at(-1), "QUIT", "a clean refusal: the session ends with QUIT");
    });
  });

  it("a drop mid-DATA: connection (not unknown_outcome), nothing delivered", async () => {
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
      const error = await sendExpectingError(faultClient(server, PLAIN), big);
      assertFailure(error, { type: "connection", phase: "message" });
      assert.equal(resultOf(error)?.status, "failed");
      assert.equal(await delivered(server), false);
    });
  });

  it("a zero-window server during DATA: the deadline fires before the dot (timeout)", async () => {
    // Far more than the kernel buffers on both ends hold: the writes must stall.
    const big = { ...message, text: "line of text\n".repeat(1_500_000) };
    let stalled: FaultConnection | undefined;
    await withServer({
      capabilities: ["PIPELINING", "8BITMIME"],
      DATA: async (conn) => {
        stalled = conn;
        conn.pauseReading();
        await conn.send("354 go ahead\r\n");
        await conn.waitClosed();
      },
    }, async (server) => {
      const error = await guard(
        sendExpectingError(faultClient(server, { ...PLAIN, timeoutMs: 1000 }), big),
        "the send to a server that stopped reading",
      );
      assertFailure(error, { type: "timeout", phase: "message" });
      assert.equal(resultOf(error)?.status, "failed");
      // Reading again, the server gets what the client had written, then the end of the
      // connection — and no final dot.
      stalled!.resumeReading();
      assert.equal(await guard(stalled!.readData(), "the rest of the data"), null);
      assert.equal(await delivered(server), false);
    });
  });

  it("stalls (zero window) until the deadline: timeout, not unknown_outcome — the dot never left", async () => {
    // The write that carries the final dot stalls: the socket accepts everything but
    // the write that ends the data, as a kernel whose buffers a stalled server filled
    // would, so that write never completes.
    const decoder = new TextDecoder();
    const connect = overriddenConnect((socket) => ({
      write: (bytes) =>
        decoder.decode(bytes).endsWith("\r\n.\r\n")
          ? new Promise<void>(() => {})
          : socket.write(bytes),
    }));
    await withServer({}, async (server) => {
      const error = await guard(
        sendExpectingError(faultClient(server, { ...PLAIN, connect, timeoutMs: 1000 })),
        "the send whose last write stalls",
      );
      assertFailure(error, { type: "timeout", phase: "message" });
      assert.equal(resultOf(error)?.status, "failed");
      assert.equal(server.connections, 1);
      assert.equal(await delivered(server), false);
    });
  });
});

describe("fault matrix: after the final dot", () => {
  it("a drop after the dot: unknown_outcome, never retried", async () => {
    await withServer({ message: (conn) => conn.destroy() }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "unknown_outcome", phase: "message", code: undefined });
      const result = resultOf(error) as SendResult;
      assert.equal(result.status, "failed");
      assert.equal(result.error?.type, "unknown_outcome");
      assert.equal(server.connections, 1);
      assert.equal(server.transcript.filter((line) => line === ".").length, 1);
    });
  });

  for (const [path, capabilities] of [["DATA", DATA_PATH], ["BDAT LAST", CHUNKING]] as const) {
    it(`no reply after ${path}'s end of data: unknown_outcome at the deadline, never retried`, async () => {
      await withServer({ capabilities, message: (conn) => conn.waitClosed() }, async (server) => {
        const error = await guard(
          sendExpectingError(faultClient(server, { ...PLAIN, timeoutMs: 800 })),
          "the send to a server silent after the data",
        );
        assertFailure(error, { type: "unknown_outcome", phase: "message", code: undefined });
        assert.match(error.message, /no reply came within the deadline/);
        assert.equal(server.connections, 1, "a message that may be delivered was sent again");
      });
    });
  }

  it("a garbled reply after the dot: unknown_outcome, never retried", async () => {
    await withServer({ message: "OK, queued" }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "unknown_outcome", phase: "message" });
      assert.match(error.message, /invalid reply/);
      assert.equal(server.connections, 1);
      assert.equal(server.transcript.filter((line) => line === ".").length, 1);
    });
  });

  it("554 after the dot: rejected in phase message", async () => {
    await withServer({ message: "554 5.7.1 Message refused as spam" }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, {
        type: "rejected",
        phase: "message",
        code: 554,
        enhancedCode: "5.7.1",
      });
      assert.equal(server.connections, 1);
      await delivered(server);
      assert.equal(server.transcript.at(-1), "QUIT", "a clean refusal: the session ends with QUIT");
    });
  });

  it("451 after the dot: transient in phase message, not retried", async () => {
    await withServer({ message: "451 4.3.0 Queue write error" }, async (server) => {
      const error = await sendExpectingError(faultClient(server, PLAIN));
      assertFailure(error, { type: "transient", phase: "message", code: 451 });
      assert.equal(server.connections, 1);
      await delivered(server);
      assert.equal(server.transcript.at(-1), "QUIT", "a clean refusal: the session ends with QUIT");
      assert.equal(server.transcript.filter((line) => line === ".").length, 1);
    });
  });

  const failedQuits: { name: string; QUIT: SmtpScriptOptions["QUIT"]; closing: string }[] = [
    {
      name: "250, then QUIT fails (the connection drops): still sent",
      QUIT: (conn) => conn.destroy(),
      closing: "close() after a failed QUIT",
    },
    {
      name: "250, then QUIT never answered: still sent, close() bounded by the deadline",
      QUIT: (conn) => conn.waitClosed(),
      closing: "close() while the server ignores QUIT",
    },
  ];
  for (const { name, QUIT, closing } of failedQuits) {
    it(name, async () => {
      await withServer({ QUIT }, async (server) => {
        const client = faultClient(server, { ...PLAIN, timeoutMs: 1000 });
        const result = await client.send(message);
        await guard(client.close(), closing);
        assert.equal(result.status, "sent");
        assert.match(result.response!, /queued as FAULT1/);
        assert.ok(server.transcript.includes("QUIT"));
      });
    });
  }

  it("250, then the connection drops before QUIT: still sent", async () => {
    await withServer({
      message: async (conn) => {
        await conn.send("250 2.0.0 Ok: queued as LAST\r\n");
        conn.destroy();
      },
    }, async (server) => {
      const client = faultClient(server, PLAIN);
      const result = await client.send(message);
      await guard(client.close(), "close() after the server hung up");
      assert.equal(result.status, "sent");
      assert.match(result.response!, /queued as LAST/);
      assert.equal(server.connections, 1);
    });
  });
});

describe("fault matrix: pooled connection", () => {
  it("421 to the next MAIL on a pooled connection: retried once on a new one, sent", async () => {
    await withServer((index) =>
      index === 0
        ? {
          // Serve one message, then answer the next command with 421 and hang up: an
          // idle timeout that fires just as the client reuses the connection.
          message: async (conn) => {
            await conn.send("250 2.0.0 Ok: queued as ONE\r\n");
            await conn.readLine();
            await conn.send("421 4.4.2 Idle timeout\r\n");
            conn.destroy();
          },
        }
        : {}, async (server) => {
      const client = faultClient(server, PLAIN);
      const first = await client.send(message);
      const second = await client.send(message);
      await client.close();
      assert.match(first.response!, /ONE/);
      assert.equal(second.status, "sent");
      assert.match(second.response!, /FAULT1/, "the retry went to the fresh connection");
      assert.equal(server.connections, 2);
      assert.equal(server.transcript.filter((line) => line === ".").length, 2);
    });
  });

  it("an unsolicited 421 between transactions: the next send reconnects, nothing lost", async () => {
    await withServer((index) =>
      index === 0
        ? {
          message: async (conn) => {
            await conn.send("250 2.0.0 Ok: queued as ONE\r\n");
            await conn.send("421 4.4.2 fault.test idle too long, closing\r\n");
            await conn.close();
          },
        }
        : {}, async (server) => {
      const client = faultClient(server, PLAIN);
      const first = await client.send(nth(1));
      const second = await client.send(nth(2));
      await client.close();
      assert.equal(first.status, "sent");
      assert.match(first.response!, /ONE/);
      assert.equal(second.status, "sent");
      assert.match(second.response!, /FAULT1/, "sent on the new connection");
      assert.equal(server.connections, 2);
      const [old, fresh] = connectionsOf(server);
      assert.deepEqual(subjectsOn(old), ["Message 1"]);
      assert.deepEqual(subjectsOn(fresh), ["Message 2"]);
    });
  });
});

describe("fault matrix: STARTTLS and TLS", () => {
  it("STARTTLS required but not offered: tls; neither AUTH nor MAIL sent", async () => {
    await withServer({ capabilities: ["PIPELINING", "AUTH PLAIN LOGIN"] }, async (server) => {
      const error = await sendExpectingError(
        faultClient(server, { auth: { username: USER, password: PASSWORD } }),
      );
      assertFailure(error, { type: "tls", phase: "starttls", code: undefined });
      assert.deepEqual(verbs(server), ["EHLO"]);
      assertNoCredentials(error);
    });
  });

  it("STARTTLS refused (454): tls with the code; no MAIL", async () => {
    await withServer({ STARTTLS: "454 4.7.0 TLS not available" }, async (server) => {
      const error = await sendExpectingError(faultClient(server));
      assertFailure(error, { type: "tls", phase: "starttls", code: 454 });
      assert.deepEqual(verbs(server), ["EHLO", "STARTTLS"]);
    });
  });

  it("STARTTLS re-advertised after TLS: not sent again, the message goes over TLS", async () => {
    let secureAtData = false;
    await withServer({
      capabilitiesAfterTls: ["PIPELINING", "STARTTLS", "SIZE 100000"],
      DATA: async (conn) => {
        secureAtData = conn.secure;
        await conn.send("354 go ahead\r\n");
        if (await conn.readData() !== null) await conn.send("250 2.0.0 Ok: queued over TLS\r\n");
      },
    }, async (server) => {
      const client = faultClient(server);
      const result = await client.send(message);
      await client.close();
      assert.equal(result.status, "sent");
      assert.match(result.response!, /over TLS/);
      assert.equal(secureAtData, true);
      assert.deepEqual(verbs(server).filter((verb) => verb === "STARTTLS"), ["STARTTLS"]);
    });
  });

  it("bytes injected after the STARTTLS 220: discarded unread, the session goes on over TLS", async () => {
    await withServer({
      // The injected plaintext would stand in for the post-TLS EHLO reply if it were read.
      capabilitiesAfterTls: ["PIPELINING", "SIZE 100000"],
      STARTTLS: async (conn) => {
        await conn.send("220 2.0.0 Ready\r\n250-injected\r\n250 AUTH PLAIN\r\n");
        await conn.startTls();
      },
    }, async (server) => {
      const client = faultClient(server);
      const result = await client.send(message);
      await client.close();
      assert.equal(result.status, "sent");
      const sent = verbs(server);
      assert.deepEqual(sent.slice(0, 3), ["EHLO", "STARTTLS", "EHLO"], "EHLO again over TLS");
      // The capabilities used are the post-TLS EHLO's (SIZE), not the injected lines.
      const mail = server.transcript.find((line) => line.startsWith("MAIL FROM:"));
      assert.match(mail ?? "", /SIZE=\d+/, "the injected capabilities were believed");
      assert.ok(!result.response?.includes("injected"));
    });
  });

  it("bytes injected after the STARTTLS 220 in a later segment: tls (they break the handshake)", async () => {
    const client = countingReads();
    await withServer({
      STARTTLS: async (conn) => {
        const start = client.reads;
        // The 220 alone, then, once the client has read it, the injected reply.
        await conn.sendInPieces("220 2.0.0 Ready\r\n250-injected\r\n250 AUTH PLAIN\r\n", [17], {
          between: () => client.until(start + 1),
        });
        await conn.waitClosed();
      },
    }, async (server) => {
      const error = await sendExpectingError(faultClient(server, { connect: client.connect }));
      assertFailure(error, { type: "tls", phase: "starttls" });
      assert.ok(client.chunks.includes("220 2.0.0 Ready\r\n"), "the 220 came alone");
      assert.deepEqual(verbs(server), ["EHLO", "STARTTLS"]);
    });
  });

  it("no ServerHello at all after STARTTLS: timeout in phase starttls, no hang", async () => {
    await withServer({
      STARTTLS: async (conn) => {
        await conn.send("220 2.0.0 Ready, but no handshake will follow\r\n");
        await conn.waitClosed();
      },
    }, async (server) => {
      const error = await guard(
        sendExpectingError(faultClient(server, { timeoutMs: 1000 })),
        "the send over a handshake that never completes",
      );
      assertFailure(error, { type: "timeout", phase: "starttls" });
      assert.deepEqual(verbs(server), ["EHLO", "STARTTLS"]);
    });
  });

  /** Runs the server's side of a TLS handshake; resolves whether it completed. */
  async function serverHandshake(conn: FaultConnection): Promise<boolean> {
    try {
      await conn.startTls();
      return true;
    } catch {
      return false;
    }
  }

  /** A STARTTLS step whose handshake `completed` says, once over, whether it completed. */
  function handshakeWatch() {
    let report!: (secure: boolean) => void;
    const completed = new Promise<boolean>((resolve) => (report = resolve));
    const STARTTLS = async (conn: FaultConnection) => {
      await conn.send("220 2.0.0 Ready to start TLS\r\n");
      report(await serverHandshake(conn));
    };
    return { completed, STARTTLS };
  }

  it("a certificate from an untrusted CA: tls, nothing sent over the connection", async () => {
    const { completed, STARTTLS } = handshakeWatch();
    await withServer({ STARTTLS }, async (server) => {
      const error = await sendExpectingError(faultClient(server, { caCerts: [] }));
      assertFailure(error, { type: "tls", phase: "starttls" });
      assert.equal(await guard(completed, "the server's handshake"), false);
      assert.deepEqual(verbs(server), ["EHLO", "STARTTLS"]);
    });
  });

  it("a certificate for another host name: tls, nothing sent over the connection", async () => {
    const { completed, STARTTLS } = handshakeWatch();
    await withServer({ STARTTLS }, async (server) => {
      const error = await sendExpectingError(faultClient(server));
      assertFailure(error, { type: "tls", phase: "starttls" });
      assert.equal(await guard(completed, "the server's handshake"), false);
      assert.deepEqual(verbs(server), ["EHLO", "STARTTLS"]);
    }, { certificate: { dnsNames: ["mail.elsewhere.test"], ipAddresses: [] } });
  });

  it("implicit TLS with an untrusted or misnamed certificate: tls in phase connect", async () => {
    for (const certificate of [undefined, { dnsNames: ["mail.elsewhere.test"], ipAddresses: [] }]) {
      let report!: (secure: boolean) => void;
      const completed = new Promise<boolean>((resolve) => (report = resolve));
      const server = await startFaultServer(async (conn) => {
        const secure = await serverHandshake(conn);
        report(secure);
        if (secure) await smtpScript()(conn);
      }, { certificate });
      try {
        const caCerts = certificate ? [server.caCert] : [];
        const error = await sendExpectingError(faultClient(server, { tls: "implicit", caCerts }));
        assertFailure(error, { type: "tls", phase: "connect" });
        assert.equal(await guard(completed, "the server's handshake"), false);
        assert.deepEqual(server.transcript, []);
      } finally {
        await server.close();
      }
    }
  });

  it("garbage instead of a ServerHello after STARTTLS: tls, no hang", async () => {
    await withServer({
      STARTTLS: async (conn) => {
        await conn.send("220 2.0.0 Ready to start TLS\r\n");
        if (await conn.readBytes(5) === null) return; // the ClientHello's record header
        await conn.send("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        await conn.waitClosed();
      },
    }, async (server) => {
      const error = await guard(
        sendExpectingError(faultClient(server)),
        "the send over a broken handshake",
      );
      assertFailure(error, { type: "tls", phase: "starttls" });
      assert.deepEqual(verbs(server), ["EHLO", "STARTTLS"]);
    });
  });

  it("garbage instead of a ServerHello with implicit TLS: tls in phase connect", async () => {
    const server = await startFaultServer(async (conn) => {
      if (await conn.readBytes(5) === null) return;
      await conn.send("220 fault.test ESMTP, but no TLS here\r\n");
      await conn.waitClosed();
    });
    try {
      const error = await guard(
        sendExpectingError(faultClient(server, { tls: "implicit" })),
        "the send over a broken handshake",
      );
      assertFailure(error, { type: "tls", phase: "connect" });
    } finally {
      await server.close();
    }
  });

  describe("a server that offers only TLS 1.0/1.1", {
    skip: skipOutsideCi(legacyTlsUnavailable()),
  }, () => {
    for (const mode of ["starttls", "implicit"] as const) {
      it(`${mode}: refused with tls, before any command over TLS`, async () => {
        const server = await startLegacyTlsServer({ implicit: mode === "implicit" });
        try {
          const error = await sendExpectingError(
            faultClient(server, { tls: mode, timeoutMs: 5000 }),
          );
          assertFailure(error, {
            type: "tls",
            phase: mode === "implicit" ? "connect" : "starttls",
          });
          const events = await server.events();
          assert.equal(events.secure, undefined, "no TLS session was established");
          assert.match(events.tlsError ?? "", /protocol|version/i);
          assert.deepEqual(events.lines, mode === "implicit" ? [] : ["EHLO", "STARTTLS"]);
        } finally {
          await server.close();
        }
      });
    }
  });
});

describe("fault matrix: a pipelined run of five queued sends", () => {
  for (const [name, capabilities] of [["DATA", DATA_PATH], ["CHUNKING", CHUNKING]] as const) {
    it(`${name}: message 3's recipient refused: 3 rejected, the others sent once`, async () => {
      await withServer(() => realistic(capabilities, accept), async (server) => {
        const outcomes = await queueAll(
          onePooledConnection(server),
          5,
          (n) => n === 3 ? REFUSED : "bob@example.org",
        );
        const third = outcomes[2] as SmtpError;
        assert.deepEqual([0, 1, 3, 4].map((i) => outcomes[i]), ["sent", "sent", "sent", "sent"]);
        assertFailure(third, { type: "rejected", phase: "rcpt", code: 550 });
        assert.equal(server.connections, 1);
        // The refused transaction was reset before the next one, on the same connection.
        assert.ok(server.transcript.includes("RSET"));
        const [conn] = connectionsOf(server);
        assert.deepEqual(subjectsOn(conn).filter((s) => s !== "Message 3"), [
          "Message 1",
          "Message 2",
          "Message 4",
          "Message 5",
        ]);
        if (name === "DATA") assert.ok(!subjectsOn(conn).includes("Message 3"));
      });
    });

    for (const [code, type] of [[451, "transient"], [554, "rejected"]] as const) {
      it(`${name}: message 3 refused after its data (${code}): 3 ${type}, the others sent`, async () => {
        await withServer(
          () =>
            realistic(capabilities, async (conn, count) => {
              if (count === 3) await conn.send(`${code} ${code / 100 | 0}.7.1 Refused\r\n`);
              else await accept(conn, count);
            }),
          async (server) => {
            const outcomes = await queueAll(
              onePooledConnection(server),
              5,
            );
            const third = outcomes[2] as SmtpError;
            assert.deepEqual([0, 1, 3, 4].map((i) => outcomes[i]), [
              "sent",
              "sent",
              "sent",
              "sent",
            ]);
            assertFailure(third, { type: type, phase: "message", code: code });
            assert.equal(server.connections, 1);
            const [conn] = connectionsOf(server);
            assert.deepEqual(subjectsOn(conn), [1, 2, 3, 4, 5].map((n) => `Message ${n}`));
          },
        );
      });
    }

    for (const [code, type] of [[451, "transient"], [550, "rejected"]] as const) {
      it(`${name}: message 3's MAIL refused (${code}): 3 ${type}, the others sent once`, async () => {
        await withServer(() => {
          const script = realistic(capabilities, accept);
          let mails = 0;
          let refusedMail = false;
          return {
            ...script,
            MAIL: async (conn, line) => {
              refusedMail = ++mails === 3;
              if (refusedMail) await conn.send(`${code} ${code / 100 | 0}.7.1 Sender refused\r\n`);
              else await stepOf(script, "MAIL")(conn, line);
            },
            // As a real server: no transaction after a refused MAIL.
            RCPT: async (conn, line) => {
              if (refusedMail) await conn.send("503 5.5.1 Error: need MAIL command\r\n");
              else await stepOf(script, "RCPT")(conn, line);
            },
            DATA: async (conn, line) => {
              if (refusedMail) await conn.send("503 5.5.1 Error: need RCPT command\r\n");
              else await stepOf(script, "DATA")(conn, line);
            },
            BDAT: async (conn, line) => {
              if (!refusedMail) return await stepOf(script, "BDAT")(conn, line);
              if (await conn.readBytes(Number(line.split(" ")[1])) === null) return;
              await conn.send("503 5.5.1 Error: need RCPT command\r\n");
            },
          };
        }, async (server) => {
          const outcomes = await queueAll(
            onePooledConnection(server),
            5,
          );
          const third = outcomes[2] as SmtpError;
          assert.deepEqual([0, 1, 3, 4].map((i) => outcomes[i]), ["sent", "sent", "sent", "sent"]);
          assertFailure(third, { type: type, phase: "mail", code: code });
          assert.equal(server.connections, 1);
          const subjects = subjectsOn(connectionsOf(server)[0]);
          assert.deepEqual(subjects.filter((s) => s !== "Message 3"), [
            "Message 1",
            "Message 2",
            "Message 4",
            "Message 5",
          ]);
          if (name === "DATA") assert.ok(!subjects.includes("Message 3"));
        });
      });
    }

    it(`${name}: a garbled reply after message 3's data: 3 unknown_outcome, none resent`, async () => {
      await withServer(
        (index) =>
          realistic(capabilities, async (conn, count) => {
            if (index === 0 && count === 3) await conn.send("OK, queued\r\n");
            else await accept(conn, count);
          }),
        async (server) => {
          const outcomes = await queueAll(
            onePooledConnection(server),
            5,
          );
          assert.deepEqual(outcomes.slice(0, 2), ["sent", "sent"]);
          const third = outcomes[2] as SmtpError;
          assertFailure(third, { type: "unknown_outcome", phase: "message" });
          // Every message whose data reached the server is there once; the others were
          // sent once, on a new connection.
          const seen = connectionsOf(server).flatMap(subjectsOn);
          for (let n = 1; n <= 5; n++) {
            const copies = seen.filter((s) => s === `Message ${n}`).length;
            const outcome = outcomes[n - 1];
            if (outcome === "sent") assert.equal(copies, 1, `message ${n}`);
            else {
              assert.equal((outcome as SmtpError).type, "unknown_outcome", `message ${n}`);
              assert.equal(copies, 1, `message ${n} not resent`);
            }
          }
          if (name === "DATA") assert.deepEqual(outcomes.slice(3), ["sent", "sent"]);
        },
      );
    });
  }

  it("DATA: message 3's DATA refused (554): 3 rejected in phase data, the others sent once", async () => {
    let datas = 0;
    await withServer(() => {
      const script = realistic(DATA_PATH, accept);
      return {
        ...script,
        DATA: async (conn, line) => {
          if (++datas === 3) await conn.send("554 5.3.0 Message refused\r\n");
          else await stepOf(script, "DATA")(conn, line);
        },
      };
    }, async (server) => {
      const outcomes = await queueAll(
        onePooledConnection(server),
        5,
      );
      const third = outcomes[2] as SmtpError;
      assert.deepEqual([0, 1, 3, 4].map((i) => outcomes[i]), ["sent", "sent", "sent", "sent"]);
      assertFailure(third, { type: "rejected", phase: "data", code: 554 });
      assert.equal(server.connections, 1);
      assert.deepEqual(subjectsOn(connectionsOf(server)[0]), [
        "Message 1",
        "Message 2",
        "Message 4",
        "Message 5",
      ]);
    });
  });

  it("DATA: a zero window during message 3's data: 3 times out before its dot and goes, with 4-5, once to a new connection", async () => {
    let stalled: FaultConnection | undefined;
    await withServer((index) => {
      const script = realistic(DATA_PATH, accept);
      let datas = 0;
      return {
        ...script,
        DATA: async (conn, line) => {
          // Message 0 opens the connection; message 3 is its fourth DATA.
          if (index > 0 || ++datas !== 4) {
            return await stepOf(script, "DATA")(conn, line);
          }
          stalled = conn;
          conn.pauseReading();
          await conn.send("354 go ahead\r\n");
          await conn.waitClosed();
        },
      };
    }, async (server) => {
      const client = faultClient(server, {
        ...PLAIN,
        timeoutMs: 1500,
        pool: { maxConnections: 1 },
      });
      // The connection is open before the run: composing message 3 (8 MB, twice what the
      // kernel buffers on both ends hold here) takes a while and must not count against it.
      assert.equal((await client.send(nth(0))).status, "sent");
      const sends = [1, 2, 3, 4, 5].map((n) =>
        client.send({ ...nth(n), text: "line of text\n".repeat(n === 3 ? 600_000 : 1) })
      );
      const outcomes = await guard(Promise.allSettled(sends), "the run with a stalled message 3");
      stalled?.resumeReading();
      await client.close();
      assert.deepEqual(outcomes.map((o) => o.status === "fulfilled" ? o.value.status : o.reason), [
        "sent",
        "sent",
        "sent",
        "sent",
        "sent",
      ]);
      assert.ok(stalled, "message 3 met the zero window");
      assert.equal(server.connections, 2);
      const [first, second] = connectionsOf(server);
      await delivered(server);
      // On the stalled connection only messages 0, 1 and 2 ended; 3 never got its dot there.
      assert.equal(first.received.split("\r\n.\r\n").length - 1, 3);
      assert.deepEqual(subjectsOn(first), ["Message 0", "Message 1", "Message 2", "Message 3"]);
      assert.deepEqual(subjectsOn(second), ["Message 3", "Message 4", "Message 5"]);
    });
  });

  it("DATA: a drop right after message 3's data: 1-2 sent, 3 unknown, 4-5 sent once on a new connection", async () => {
    await withServer(
      (index) =>
        realistic(DATA_PATH, async (conn, count) => {
          if (index === 0 && count === 3) conn.destroy();
          else await accept(conn, count);
        }),
      async (server) => {
        const outcomes = await queueAll(
          onePooledConnection(server),
          5,
        );
        assert.deepEqual([outcomes[0], outcomes[1], outcomes[3], outcomes[4]], [
          "sent",
          "sent",
          "sent",
          "sent",
        ]);
        assert.equal((outcomes[2] as SmtpError).type, "unknown_outcome");
        assert.equal((outcomes[2] as SmtpError).phase, "message");
        assert.equal(server.connections, 2);
        const [first, second] = connectionsOf(server);
        // Message 4's envelope went out with message 3's dot, but never its data.
        assert.deepEqual(subjectsOn(first), ["Message 1", "Message 2", "Message 3"]);
        assert.match(first.received, /\r\n\.\r\nMAIL FROM:<ann@example\.com>/);
        assert.deepEqual(subjectsOn(second), ["Message 4", "Message 5"]);
      },
    );
  });

  it("CHUNKING: a drop right after message 3's data: 1-2 sent, 3-5 (all written) unknown, none resent", async () => {
    await withServer(
      (index) =>
        realistic(CHUNKING, async (conn, count) => {
          if (index === 0 && count === 3) conn.destroy();
          else await accept(conn, count);
        }),
      async (server) => {
        const outcomes = await queueAll(
          onePooledConnection(server),
          5,
        );
        assert.deepEqual(outcomes.slice(0, 2), ["sent", "sent"]);
        // All five went out in one write: 3, 4 and 5 may have been delivered.
        for (const outcome of outcomes.slice(2)) {
          assert.equal((outcome as SmtpError).type, "unknown_outcome");
          assert.equal((outcome as SmtpError).phase, "message");
        }
        assert.equal(server.connections, 1);
        assert.deepEqual(subjectsOn(connectionsOf(server)[0]).slice(0, 3), [
          "Message 1",
          "Message 2",
          "Message 3",
        ]);
      },
    );
  });

  it("DATA: a 421 instead of message 3's MAIL reply: 1-2 sent, 3-5 sent once on a new connection", async () => {
    await withServer((index) => {
      const script = realistic(DATA_PATH, accept);
      let mails = 0;
      return {
        ...script,
        MAIL: async (conn, line) => {
          if (index === 0 && ++mails === 3) {
            await conn.send("421 4.3.2 Service shutting down\r\n");
            await conn.close();
            return;
          }
          await stepOf(script, "MAIL")(conn, line);
        },
      };
    }, async (server) => {
      const outcomes = await queueAll(
        onePooledConnection(server),
        5,
      );
      assert.deepEqual(outcomes, ["sent", "sent", "sent", "sent", "sent"]);
      assert.equal(server.connections, 2);
      const [first, second] = connectionsOf(server);
      assert.deepEqual(subjectsOn(first), ["Message 1", "Message 2"]);
      assert.deepEqual(subjectsOn(second), ["Message 3", "Message 4", "Message 5"]);
    });
  });
});
