/**
 * The SMTP client against a real Postfix on loopback (STARTTLS with a test CA,
 * PIPELINING, DSN, SMTPUTF8, its own recipient restrictions and size limit,
 * `smtpd_forbid_bare_newline` and `smtpd_forbid_unauth_pipelining` on).
 * Delivery is proven by reading the files Postfix's pipe transport wrote.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import PostalMime from "postal-mime";
import {
  type Connect,
  denoConnect,
  resultOf,
  SmtpClient,
  SmtpError,
  type SmtpSocket,
  type StatusEvent,
} from "../../src/mod.ts";
import { guard } from "../support/guard.ts";
import { type PostfixServer, postfixSkipReason, startPostfix } from "../support/postfix.ts";

const skip = postfixSkipReason();
if (skip) console.log(`Skipping the Postfix suite: ${skip}`);

/** Postfix's log so far (written by postlogd, a little after the fact). */
function postfixLog(postfix: PostfixServer): Promise<string> {
  return Deno.readTextFile(postfix.logFile).catch(() => "");
}

/** The first match of `pattern` in the log after `offset`, once Postfix has logged it. */
function waitForLog(
  postfix: PostfixServer,
  offset: number,
  pattern: RegExp,
): Promise<RegExpExecArray> {
  return guard(
    (async () => {
      for (;;) {
        const match = pattern.exec((await postfixLog(postfix)).slice(offset));
        if (match) return match;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })(),
    `Postfix logging ${pattern}`,
  );
}

describe("SmtpClient against Postfix", { skip }, () => {
  let postfix: PostfixServer;
  let client: SmtpClient;

  before(async () => {
    postfix = await startPostfix();
    client = new SmtpClient({
      host: "localhost",
      port: postfix.port,
      tls: "starttls",
      caCerts: [postfix.caCert],
      timeoutMs: 10_000,
      // Long enough that the warm connection outlives any wait between tests.
      pool: { idleTimeoutMs: 60_000 },
    });
  });
  after(async () => {
    await client?.close();
  });

  it("delivers over STARTTLS, pipelined, with dots and bare line ends canonicalised", async () => {
    await postfix.clearDelivered();
    const events: StatusEvent[] = [];
    const text = "first line\n.starts with a dot\r\n..two dots\rlone CR\nlast";
    const result = await client.send({
      from: "Ann <ann@example.com>",
      to: ["bob@example.org", "cy@example.net"],
      subject: "Über STARTTLS",
      text,
      token: 7,
    }, { onStatus: (event) => events.push(event) });
    assert.equal(result.status, "sent");
    assert.equal(result.token, 7);
    assert.deepEqual(result.accepted, ["bob@example.org", "cy@example.net"]);
    assert.match(result.response ?? "", /^250 2\.0\.0 Ok: queued as /);
    const queueId = /queued as (\S+)/.exec(result.response!)![1];

    const [delivered] = await postfix.waitForDelivery(1, {
      match: (m) => m.queueId === queueId,
    });
    assert.deepEqual(delivered.recipients?.sort(), ["bob@example.org", "cy@example.net"]);
    assert.equal(delivered.sender, "ann@example.com");
    // Postfix notes TLS in its Received header: the message went over TLS.
    assert.match(delivered.raw, /with ESMTPS/);
    const parsed = await PostalMime.parse(delivered.bytes);
    assert.equal(parsed.subject, "Über STARTTLS");
    assert.equal(parsed.messageId, result.messageId);
    assert.equal(
      parsed.text?.replace(/\r?\n$/, ""),
      "first line\n.starts with a dot\n..two dots\nlone CR\nlast",
    );
    // One rcpt status event per recipient, each with its own reply.
    const rcptDone = events.filter((e) => e.phase === "rcpt" && e.state === "done");
    assert.deepEqual(rcptDone.map((e) => [e.recipient, e.reply?.code]), [
      ["bob@example.org", 250],
      ["cy@example.net", 250],
    ]);
    assert.ok(events.some((e) => e.phase === "starttls" && e.state === "done"));
  });

  it("reuses the warm connection for later sends", async () => {
    await postfix.clearDelivered();
    const events: StatusEvent[] = [];
    for (let i = 0; i < 3; i++) {
      await client.send(
        { from: "ann@example.com", to: "bob@example.org", subject: `warm ${i}`, text: "x" },
        { onStatus: (event) => events.push(event) },
      );
    }
    assert.equal(events.filter((e) => e.phase === "connect").length, 0);
    await postfix.waitForDelivery(3);
  });

  it("passes DSN parameters that Postfix records", async () => {
    await postfix.clearDelivered();
    const result = await client.send({
      from: "ann@example.com",
      to: "bob@example.org",
      subject: "DSN",
      text: "dsn",
      dsn: { notify: ["success", "failure"], return: "headers", envelopeId: "env+1 2" },
    });
    assert.deepEqual(result.dsn, { requested: true, supported: true });
    // NOTIFY=SUCCESS makes Postfix send a success notice back to the sender;
    // it carries the ENVID and ORCPT it received, and only headers (RET=HDRS).
    const delivered = await postfix.waitForDelivery(2);
    const notice = delivered.find((m) => m.sender === "");
    assert.ok(notice, "Postfix sent a delivery status notification");
    assert.deepEqual(notice.recipients, ["ann@example.com"]);
    assert.match(notice.raw, /Original-Envelope-Id: env\+1 2|Original-Envelope-Id: env\+2B1\+202/);
    assert.match(notice.raw, /Original-Recipient: rfc822;bob@example.org/);
    assert.match(notice.raw, /text\/rfc822-headers/);
  });

  it("sends SMTPUTF8 for a non-ASCII mailbox", async () => {
    await postfix.clearDelivered();
    const result = await client.send({
      from: "ann@example.com",
      to: "jörg@example.org",
      subject: "UTF-8",
      text: "grüße",
    });
    assert.deepEqual(result.accepted, ["jörg@example.org"]);
    const [delivered] = await postfix.waitForDelivery(1);
    assert.deepEqual(delivered.recipients, ["jörg@example.org"]);
  });

  it("reports the recipient Postfix's restrictions refuse, and delivers nothing", async () => {
    await postfix.clearDelivered();
    const logOffset = (await postfixLog(postfix)).length;
    let refusedMessageId: string | undefined;
    await assert.rejects(
      client.send({
        from: "ann@example.com",
        to: ["bob@example.org", postfix.rejectedRecipient],
        subject: "all or nothing",
        text: "x",
      }),
      (error: unknown) => {
        assert.ok(error instanceof SmtpError);
        refusedMessageId = resultOf(error)?.messageId;
        assert.equal(error.type, "rejected");
        assert.equal(error.phase, "rcpt");
        assert.deepEqual(error.rejected.map((r) => [r.address, r.code, r.enhancedCode]), [
          [postfix.rejectedRecipient, 550, "5.1.1"],
        ]);
        return true;
      },
    );
    const partial = await client.send({
      from: "ann@example.com",
      to: ["bob@example.org", postfix.rejectedRecipient],
      subject: "partial",
      text: "x",
      allowPartial: true,
    });
    assert.deepEqual(partial.accepted, ["bob@example.org"]);
    assert.equal(partial.rejected[0].address, postfix.rejectedRecipient);
    const delivered = await postfix.waitForDelivery(1);
    // The all-or-nothing session ended after DATA with no content: nothing of it can
    // be queued, so nothing can be delivered later. (Cleanup logs every message-id it
    // receives, queued or not.)
    const lost = await waitForLog(postfix, logOffset, /lost connection after DATA \((\d+) bytes\)/);
    assert.equal(lost[1], "0");
    assert.ok(refusedMessageId);
    assert.ok(!(await postfixLog(postfix)).includes(`message-id=${refusedMessageId}`));
    assert.equal((await postfix.delivered()).length, 1);
    assert.match(delivered[0].raw, /Subject: partial/);
  });

  it("refuses a message over Postfix's SIZE before sending it", async () => {
    await postfix.clearDelivered();
    const content = btoa("x".repeat(postfix.sizeLimit));
    const events: StatusEvent[] = [];
    await assert.rejects(
      client.send({
        from: "ann@example.com",
        to: "bob@example.org",
        subject: "too big",
        attachments: [{ filename: "big.txt", content }],
      }, { onStatus: (event) => events.push(event) }),
      (error: unknown) => {
        assert.ok(error instanceof SmtpError);
        assert.equal(error.type, "rejected");
        assert.equal(error.phase, "mail");
        assert.equal(error.code, 552);
        return true;
      },
    );
    // Refused locally: MAIL FROM was never sent.
    assert.equal(events.filter((e) => e.phase === "mail").length, 0);
  });

  it("sends 20 concurrent messages, each delivered once and intact", async () => {
    await postfix.clearDelivered();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        client.send({
          from: "ann@example.com",
          to: `user${i}@example.org`,
          subject: `parallel ${i}`,
          text: `body ${i}`,
        })),
    );
    assert.equal(results.filter((r) => r.status === "sent").length, 20);
    const delivered = await postfix.waitForDelivery(20);
    for (let i = 0; i < 20; i++) {
      const message = delivered.find((m) => m.recipients?.[0] === `user${i}@example.org`);
      assert.ok(message, `user${i} got a message`);
      assert.match(message.raw, new RegExp(`Subject: parallel ${i}\\n`));
      assert.match(message.raw, new RegExp(`body ${i}`));
    }
  });
});

describe("queued sends pipelined across messages, to a Postfix that refuses illegal pipelining", {
  skip,
}, () => {
  let postfix: PostfixServer;
  before(async () => {
    postfix = await startPostfix();
  });

  /** A socket factory over the Deno adapter that counts the client's writes. */
  function countingWrites() {
    const counts = { writes: 0 };
    const connect: Connect = async (options) => {
      const socket = await denoConnect(options);
      const wrap = (inner: SmtpSocket): SmtpSocket => ({
        get secure() {
          return inner.secure;
        },
        read: () => inner.read(),
        write: (bytes) => {
          counts.writes++;
          return inner.write(bytes);
        },
        startTls: async (tls) => wrap(await inner.startTls(tls)),
        close: () => inner.close(),
      });
      return wrap(socket);
    };
    return { connect, counts };
  }

  for (
    const [name, recipients] of [
      ["DATA (two recipients, all or nothing)", 2],
      ["CHUNKING (one recipient, BDAT LAST)", 1],
    ] as const
  ) {
    it(`${name}: accepted as legitimate, one connection, far fewer writes than lock-step`, async () => {
      await postfix.clearDelivered();
      const logOffset = (await postfixLog(postfix)).length;
      const { connect, counts } = countingWrites();
      const queued = new SmtpClient({
        host: "localhost",
        port: postfix.port,
        tls: "starttls",
        caCerts: [postfix.caCert],
        timeoutMs: 10_000,
        connect,
        pool: { maxConnections: 1 },
      });
      const to = (i: number) =>
        Array.from({ length: recipients }, (_, r) => `queued${i}-${r}@example.org`);
      const sends = Array.from({ length: 10 }, (_, i) =>
        queued.send({
          from: "ann@example.com",
          // Postfix refuses every recipient of message 5: it fails alone, the stream goes on
          // (RSET pipelined before the next MAIL). One accepted recipient would get a 354
          // that only dropping the connection can leave without delivering.
          to: i === 4
            ? [postfix.rejectedRecipient, postfix.deferredRecipient].slice(0, recipients)
            : to(i),
          subject: `queued ${i}`,
          text: `queued body ${i}\n.line with a dot\n`,
        }).then((r) => r.status, (e) => (e as SmtpError).type));
      const outcomes = await Promise.all(sends);
      await queued.close();
      assert.deepEqual(outcomes, [...Array(4).fill("sent"), "rejected", ...Array(5).fill("sent")]);
      const delivered = await postfix.waitForDelivery(9);
      for (const i of [0, 1, 2, 3, 5, 6, 7, 8, 9]) {
        const copies = delivered.filter((m) => m.raw.includes(`Subject: queued ${i}\n`));
        assert.equal(copies.length, 1, `message ${i} delivered once`);
        assert.deepEqual(copies[0].recipients, to(i));
        assert.match(copies[0].raw, /\n\.line with a dot\n/);
      }
      assert.ok(!delivered.some((m) => m.raw.includes("Subject: queued 4\n")));
      const log = (await postfixLog(postfix)).slice(logOffset);
      assert.doesNotMatch(log, /improper command pipelining|protocol synchronization/i);
      assert.equal(log.match(/ connect from /g)?.length ?? 1, 1);
      // Lock-step would be at least one write per command: 10 x (MAIL, RCPT…, DATA or BDAT).
      assert.ok(counts.writes <= 3 + 11 + 2, `${counts.writes} writes`);
    });
  }
});
