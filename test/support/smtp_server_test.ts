import { describe, it } from "node:test";
import assert from "node:assert/strict";
import nodemailer from "nodemailer";
import { connectRaw } from "./fault_server.ts";
import { startSmtpServer, type TestSmtpServer } from "./smtp_server.ts";

/** A nodemailer transport that trusts the server's test CA. */
function transport(server: TestSmtpServer, extra: Record<string, unknown> = {}) {
  return nodemailer.createTransport({
    host: server.host,
    port: server.port,
    tls: { ca: [server.caCert], servername: "localhost" },
    ...extra,
  });
}

const message = {
  from: "ann@example.com",
  to: "bob@example.com",
  subject: "Hello",
  text: "Hi Bob",
};

describe("startSmtpServer", () => {
  it("receives a message over STARTTLS with AUTH PLAIN", async () => {
    const server = await startSmtpServer({ users: { ann: "secret" }, authMethods: ["PLAIN"] });
    try {
      const info = await transport(server, {
        requireTLS: true,
        auth: { user: "ann", pass: "secret" },
      }).sendMail(message);
      assert.deepEqual(info.accepted, ["bob@example.com"]);
      const [received] = await server.waitForMessages(1);
      assert.equal(received.from, "ann@example.com");
      assert.deepEqual(received.to, ["bob@example.com"]);
      assert.equal(received.user, "ann");
      assert.equal(received.secure, true);
      assert.match(received.text, /^Subject: Hello\r$/m);
      assert.match(received.text, /\r\n\r\nHi Bob/);
      assert.equal(new TextDecoder().decode(received.raw), received.text);
      assert.deepEqual(server.authAttempts, [{ method: "PLAIN", username: "ann", ok: true }]);
      assert.ok(server.commands.includes("STARTTLS"));
      assert.ok(server.commands.includes("AUTH PLAIN /* secured */"), "credentials not logged");
      assert.ok(!server.commands.join("\n").includes(btoa("\0ann\0secret")));
      assert.ok(server.replies.some((reply) => reply.startsWith("235")));
      assert.equal(server.connections, 1);
    } finally {
      await server.close();
    }
  });

  it("refuses wrong credentials and records the failed attempt", async () => {
    const server = await startSmtpServer({ users: { ann: "secret" } });
    try {
      await assert.rejects(
        transport(server, { auth: { user: "ann", pass: "wrong" } }).sendMail(message),
        (error: { responseCode?: number }) => error.responseCode === 535,
      );
      assert.deepEqual(server.authAttempts, [{ method: "PLAIN", username: "ann", ok: false }]);
      assert.equal(server.messages.length, 0);
    } finally {
      await server.close();
    }
  });

  it("verifies CRAM-MD5 and XOAUTH2", async () => {
    const server = await startSmtpServer({
      users: { ann: "secret", oauth: "token-1" },
      authMethods: ["CRAM-MD5", "XOAUTH2"],
    });
    try {
      await transport(server, { auth: { user: "ann", pass: "secret" }, authMethod: "CRAM-MD5" })
        .sendMail(message);
      await transport(server, {
        auth: { type: "OAuth2", user: "oauth", accessToken: "token-1" },
      }).sendMail(message);
      await assert.rejects(
        transport(server, { auth: { type: "OAuth2", user: "oauth", accessToken: "bad" } })
          .sendMail(message),
      );
      // nodemailer tries a refused XOAUTH2 token twice: compare the first attempts only.
      assert.deepEqual(server.authAttempts.slice(0, 3), [
        { method: "CRAM-MD5", username: "ann", ok: true },
        { method: "XOAUTH2", username: "oauth", ok: true },
        { method: "XOAUTH2", username: "oauth", ok: false },
      ]);
      assert.deepEqual(server.messages.map((m) => m.user), ["ann", "oauth"]);
    } finally {
      await server.close();
    }
  });

  it("collects DSN parameters from MAIL FROM and RCPT TO", async () => {
    const server = await startSmtpServer();
    try {
      await transport(server).sendMail({
        ...message,
        dsn: {
          id: "env+id",
          return: "headers",
          notify: ["success", "failure"],
          recipient: "orig@example.com",
        },
      });
      const [received] = await server.waitForMessages(1);
      assert.equal(received.fromArgs.RET, "HDRS");
      assert.equal(received.fromArgs.ENVID, "env+id", "xtext-decoded");
      assert.equal(received.rcptArgs[0].NOTIFY, "SUCCESS,FAILURE");
      assert.deepEqual(received.dsn, {
        ret: "HDRS",
        envid: "env+id",
        recipients: [{
          address: "bob@example.com",
          notify: ["SUCCESS", "FAILURE"],
          orcpt: "rfc822;orig@example.com",
        }],
      });
      assert.ok(server.commands.some((line) => /ENVID=env\+2Bid/.test(line)), "xtext on the wire");
    } finally {
      await server.close();
    }
  });

  it("refuses configured senders, recipients and content", async () => {
    const server = await startSmtpServer({
      rejectSender: { "Spammer@Example.com": { code: 553, message: "5.7.1 Go away" } },
      rejectRecipients: { "nobody@example.com": { code: 550, message: "5.1.1 No such user" } },
      onData: (m) => m.text.includes("forbidden") ? { code: 554, message: "5.6.0 No" } : undefined,
    });
    try {
      const info = await transport(server).sendMail({
        ...message,
        to: ["bob@example.com", "nobody@example.com"],
      });
      assert.deepEqual(info.rejected, ["nobody@example.com"]);
      assert.deepEqual(server.messages[0].to, ["bob@example.com"]);
      await assert.rejects(
        transport(server).sendMail({ ...message, from: "spammer@example.com" }),
        (error: { responseCode?: number }) => error.responseCode === 553,
      );
      await assert.rejects(
        transport(server).sendMail({ ...message, text: "forbidden words" }),
        (error: { responseCode?: number }) => error.responseCode === 554,
      );
      assert.equal(server.messages.length, 1, "refused messages are not recorded");
    } finally {
      await server.close();
    }
  });

  it("serves implicit TLS", async () => {
    const server = await startSmtpServer({ secure: true });
    try {
      await transport(server, { secure: true }).sendMail(message);
      const [received] = await server.waitForMessages(1);
      assert.equal(received.secure, true);
    } finally {
      await server.close();
    }
  });

  it("hides extensions on request and can refuse EHLO", async () => {
    const server = await startSmtpServer({
      hidePipelining: true,
      hideDsn: true,
      hideSmtputf8: true,
      hide8bitmime: true,
      starttls: false,
      size: 1000,
    });
    const client = await connectRaw(server.port);
    try {
      await client.readReply();
      await client.send("EHLO client.test\r\n");
      const ehlo = await client.readReply() ?? "";
      assert.match(ehlo, /SIZE 1000/);
      for (const hidden of ["PIPELINING", "DSN", "SMTPUTF8", "8BITMIME", "STARTTLS"]) {
        assert.doesNotMatch(ehlo, new RegExp(`^250[- ]${hidden}`, "m"));
      }
      await client.send("MAIL FROM:<ann@example.com> SIZE=1001\r\n");
      assert.match(await client.readReply() ?? "", /^552 /);
      await client.send("MAIL FROM:<ann@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n");
      for (let i = 0; i < 3; i++) await client.readReply();
      await client.send(`Subject: big\r\n\r\n${"x".repeat(1200)}\r\n.\r\n`);
      assert.match(await client.readReply() ?? "", /^552 /, "actual size enforced too");
      assert.equal(server.messages.length, 0);
    } finally {
      client.close();
      await server.close();
    }

    const noEhlo = await startSmtpServer({ disableEhlo: true });
    const old = await connectRaw(noEhlo.port);
    try {
      await old.readReply();
      await old.send("EHLO client.test\r\n");
      assert.match(await old.readReply() ?? "", /^500 /);
      await old.send("HELO client.test\r\n");
      assert.match(await old.readReply() ?? "", /^250 /);
    } finally {
      old.close();
      await noEhlo.close();
    }
  });

  it("requireTls refuses MAIL before STARTTLS", async () => {
    const server = await startSmtpServer({ requireTls: true });
    const client = await connectRaw(server.port);
    try {
      await client.readReply();
      await client.send("EHLO client.test\r\n");
      await client.readReply();
      await client.send("MAIL FROM:<ann@example.com>\r\n");
      assert.match(await client.readReply() ?? "", /^530 5\.7\.0 /);
    } finally {
      client.close();
      await server.close();
    }
  });

  it("close() drops idle clients and can be called twice", async () => {
    const server = await startSmtpServer();
    const client = await connectRaw(server.port);
    try {
      await client.readReply();
      await server.close();
      await server.close();
      assert.equal(await client.readReply(), null);
      await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: server.port }));
    } finally {
      client.close();
    }
  });
});
