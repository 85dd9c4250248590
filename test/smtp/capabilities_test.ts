import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Capabilities } from "../../src/smtp/capabilities.ts";
import type { SmtpReply } from "../../src/smtp/reply.ts";

function ehlo(...lines: string[]): SmtpReply {
  return { code: 250, lines, message: lines.join(" "), raw: lines.join("\n") };
}

describe("Capabilities", () => {
  it("matches whole keywords, case-insensitively", () => {
    const caps = Capabilities.fromEhloReply(
      ehlo("mx.example.com Hello", "PIPELINING", "8bitmime", "STARTTLSX", "DSN"),
    );
    assert.equal(caps.has("pipelining"), true);
    assert.equal(caps.has("8BITMIME"), true);
    assert.equal(caps.has("DSN"), true);
    // A keyword that merely starts with STARTTLS is not STARTTLS.
    assert.equal(caps.has("STARTTLS"), false);
    // The greeting line is not a capability.
    assert.equal(caps.has("mx.example.com"), false);
  });

  it("reads SIZE, treating 0 and a missing value as unlimited", () => {
    assert.equal(Capabilities.fromEhloReply(ehlo("x", "SIZE 10240000")).sizeLimit, 10240000);
    assert.equal(Capabilities.fromEhloReply(ehlo("x", "SIZE 0")).sizeLimit, undefined);
    assert.equal(Capabilities.fromEhloReply(ehlo("x", "SIZE")).sizeLimit, undefined);
    assert.equal(Capabilities.fromEhloReply(ehlo("x")).sizeLimit, undefined);
  });

  it("merges AUTH and the legacy AUTH= spelling, without duplicates", () => {
    const caps = Capabilities.fromEhloReply(
      ehlo("x", "AUTH PLAIN login CRAM-MD5", "AUTH=PLAIN LOGIN", "XOAUTH2"),
    );
    assert.deepEqual(caps.authMechanisms, ["PLAIN", "LOGIN", "CRAM-MD5"]);
    assert.equal(caps.has("XOAUTH2"), true);
  });

  it("tolerates the empty last line some servers send", () => {
    const caps = Capabilities.fromEhloReply(ehlo("x", "PIPELINING", ""));
    assert.deepEqual(caps.keywords, ["PIPELINING"]);
  });
});
