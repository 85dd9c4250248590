import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connectRaw, type RawClient } from "./fault_server.ts";
import { type PostfixServer, postfixSkipReason, startPostfix } from "./postfix.ts";

/** Connects, reads the greeting and says EHLO; returns the client and the EHLO reply. */
async function hello(postfix: PostfixServer): Promise<{ client: RawClient; ehlo: string }> {
  const client = await connectRaw(postfix.port);
  assert.match(await client.readReply() ?? "", /^220 /);
  await client.send("EHLO client.test\r\n");
  return { client, ehlo: await client.readReply() ?? "" };
}

/** Sends one command and returns the reply. */
async function command(client: RawClient, line: string): Promise<string> {
  await client.send(`${line}\r\n`);
  return await client.readReply() ?? "<connection closed>";
}

function queueId(reply: string): string {
  const id = /queued as ([0-9A-Za-z]+)/.exec(reply)?.[1];
  assert.ok(id, `no queue id in ${JSON.stringify(reply)}`);
  return id;
}

describe("startPostfix", { skip: postfixSkipReason() }, () => {
  let postfix: PostfixServer;
  before(async () => {
    postfix = await startPostfix();
  });

  it("shares one instance per process", async () => {
    assert.equal(await startPostfix(), postfix);
    assert.notEqual(postfix.port, 25);
    assert.notEqual(postfix.port, 587);
  });

  it("greets and offers the extensions the client relies on", async () => {
    const { client, ehlo } = await hello(postfix);
    try {
      const keywords = ehlo.split("\r\n").map((line) => line.slice(4));
      for (const keyword of ["STARTTLS", "PIPELINING", "DSN", "SMTPUTF8", "8BITMIME"]) {
        assert.ok(keywords.includes(keyword), `${keyword} missing from ${ehlo}`);
      }
      assert.ok(keywords.includes("ENHANCEDSTATUSCODES"));
      assert.ok(keywords.includes("CHUNKING"));
      assert.ok(keywords.includes(`SIZE ${postfix.sizeLimit}`));
    } finally {
      client.close();
    }
  });

  it("delivers a message sent by hand in plain SMTP into deliveredDir", async () => {
    const { client } = await hello(postfix);
    let id: string;
    try {
      assert.match(await command(client, "MAIL FROM:<ann@example.org>"), /^250 2\.1\.0/);
      assert.match(await command(client, "RCPT TO:<bob@example.com>"), /^250 2\.1\.5/);
      assert.match(await command(client, "RCPT TO:<cy@example.net>"), /^250 2\.1\.5/);
      assert.match(await command(client, "DATA"), /^354 /);
      await client.send("Subject: by hand\r\n\r\nhello\r\n..dotted\r\n.\r\n");
      const reply = await client.readReply() ?? "";
      assert.match(reply, /^250 2\.0\.0 Ok: queued as /);
      id = queueId(reply);
      assert.match(await command(client, "QUIT"), /^221 /);
    } finally {
      client.close();
    }
    const [message] = await postfix.waitForDelivery(1, { match: (m) => m.queueId === id });
    assert.equal(message.sender, "ann@example.org");
    assert.deepEqual(message.recipients, ["bob@example.com", "cy@example.net"]);
    assert.ok(message.file.startsWith(`${postfix.deliveredDir}/`));
    assert.match(message.raw, /^Received: from client\.test /);
    assert.match(message.raw, /\nSubject: by hand\n\nhello\n\.dotted\n$/);
    // Postfix adds no Date/Message-ID for clients: tests see what the client sent.
    assert.doesNotMatch(message.raw, /^(Date|Message-I[dD]):/m);
  });

  it("delivers the success DSN it generates, from the null sender", async () => {
    const { client } = await hello(postfix);
    let id: string;
    try {
      assert.match(
        await command(client, "MAIL FROM:<dsn-sender@example.org> RET=HDRS ENVID=env+2B42"),
        /^250 /,
      );
      assert.match(
        await command(
          client,
          "RCPT TO:<dsn@example.com> NOTIFY=SUCCESS ORCPT=rfc822;dsn@example.com",
        ),
        /^250 /,
      );
      assert.match(await command(client, "DATA"), /^354 /);
      await client.send("Subject: dsn please\r\n\r\nbody\r\n.\r\n");
      id = queueId(await client.readReply() ?? "");
    } finally {
      client.close();
    }
    const [report] = await postfix.waitForDelivery(1, {
      match: (m) => m.sender === "" && m.recipients?.[0] === "dsn-sender@example.org",
    });
    assert.notEqual(report.queueId, id);
    assert.match(report.raw, /^Original-Envelope-Id: env\+42$/m);
    // A pipe is not a mailbox: Postfix reports "relayed" rather than "delivered".
    assert.match(report.raw, /^Action: relayed\nStatus: 2\.0\.0$/m);
    assert.match(report.raw, /^Content-Type: text\/rfc822-headers$/m, "RET=HDRS: headers only");
    assert.doesNotMatch(report.raw, /^body$/m);
    assert.match(report.raw, /^Original-Recipient: rfc822;dsn@example.com$/m);
  });

  it("refuses the rejected and deferred recipients and the rejected sender", async () => {
    const { client } = await hello(postfix);
    try {
      assert.match(
        await command(client, `MAIL FROM:<${postfix.rejectedSender}>`),
        /^553 5\.7\.1 /,
      );
      assert.match(await command(client, "MAIL FROM:<ann@example.org>"), /^250 /);
      assert.match(
        await command(client, `RCPT TO:<${postfix.rejectedRecipient}>`),
        /^550 5\.1\.1 /,
      );
      assert.match(
        await command(client, `RCPT TO:<${postfix.deferredRecipient}>`),
        /^450 4\.2\.1 /,
      );
      assert.match(await command(client, "RCPT TO:<bob@example.com>"), /^250 /);
    } finally {
      client.close();
    }
  });

  it("speaks STARTTLS with the test CA", async () => {
    const { client } = await hello(postfix);
    try {
      assert.match(await command(client, "STARTTLS"), /^220 /);
      await client.startTls(postfix.caCert);
      const ehlo = await command(client, "EHLO client.test");
      assert.match(ehlo, /^250-/);
      assert.doesNotMatch(ehlo, /STARTTLS/);
      assert.match(await command(client, "MAIL FROM:<>"), /^250 /);
      assert.match(await command(client, "RCPT TO:<tls@example.com>"), /^250 /);
      assert.match(await command(client, "DATA"), /^354 /);
      await client.send("Subject: over TLS\r\n\r\nsecret\r\n.\r\n");
      const id = queueId(await client.readReply() ?? "");
      const [message] = await postfix.waitForDelivery(1, { match: (m) => m.queueId === id });
      assert.equal(message.sender, "", "the null sender is recorded as empty");
      assert.match(message.raw, /with ESMTPS id/);
    } finally {
      client.close();
    }
  });

  it("rejects a bare LF and illegal pipelining itself", async () => {
    const { client } = await hello(postfix);
    try {
      assert.match(await command(client, "MAIL FROM:<ann@example.org>"), /^250 /);
      assert.match(await command(client, "RCPT TO:<bob@example.com>"), /^250 /);
      assert.match(await command(client, "DATA"), /^354 /);
      await client.send("Subject: bare\r\n\r\none\ntwo\r\n.\r\n");
      assert.match(await client.readReply() ?? "", /^550 5\.5\.2 .*bare <LF>/);
    } finally {
      client.close();
    }
    const early = await connectRaw(postfix.port);
    try {
      // EHLO and MAIL in one write: EHLO is not allowed to be pipelined.
      await early.readReply();
      await early.send("EHLO client.test\r\nMAIL FROM:<ann@example.org>\r\n");
      assert.match(await early.readReply() ?? "", /^554 5\.5\.0 .*synchronization/);
      assert.equal(await early.readReply(), null, "Postfix hangs up");
    } finally {
      early.close();
    }
  });

  it("refuses a message over sizeLimit", async () => {
    const { client } = await hello(postfix);
    try {
      assert.match(
        await command(client, `MAIL FROM:<ann@example.org> SIZE=${postfix.sizeLimit + 1}`),
        /^552 5\.3\.4 /,
      );
    } finally {
      client.close();
    }
  });

  it("clearDelivered empties deliveredDir, stop() is repeatable and a new start works", async () => {
    assert.ok((await postfix.delivered()).length > 0);
    await postfix.clearDelivered();
    assert.deepEqual(await postfix.delivered(), []);
    await assert.rejects(
      postfix.waitForDelivery(1, { timeoutMs: 100 }),
      /delivered 0 matching message\(s\), expected 1/,
    );

    const oldPort = postfix.port;
    await postfix.stop();
    await postfix.stop();
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: oldPort }));
    const again = await startPostfix();
    try {
      assert.notEqual(again, postfix);
      const { client } = await hello(again);
      client.close();
    } finally {
      await again.stop();
    }
  });
});
