import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  assertCommandSafe,
  greetCommand,
  mailFromCommand,
  needsSmtputf8,
  rcptToCommand,
  xtext,
} from "../../src/smtp/commands.ts";

describe("xtext", () => {
  it("keeps printable ASCII and escapes +, =, space, controls and UTF-8 bytes", () => {
    assert.equal(xtext("abc-123"), "abc-123");
    assert.equal(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
    assert.equal(xtext("é"), "+C3+A9");
    assert.equal(xtext("\t"), "+09");
  });
});

describe("command lines", () => {
  it("builds MAIL FROM with every parameter", () => {
    assert.equal(
      mailFromCommand("a@example.com", {
        size: 1234,
        eightBitMime: true,
        smtputf8: true,
        ret: "headers",
        envelopeId: "id=1 2",
      }),
      "MAIL FROM:<a@example.com> SIZE=1234 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+3D1+202",
    );
    assert.equal(mailFromCommand("", {}), "MAIL FROM:<>");
    assert.equal(mailFromCommand("a@b.c", { ret: "full" }), "MAIL FROM:<a@b.c> RET=FULL");
  });

  it("builds RCPT TO with NOTIFY and ORCPT", () => {
    assert.equal(
      rcptToCommand("b+tag@example.org", {
        notify: ["success", "failure"],
        originalRecipient: "b+tag@example.org",
      }),
      "RCPT TO:<b+tag@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Btag@example.org",
    );
    assert.equal(rcptToCommand("b@example.org"), "RCPT TO:<b@example.org>");
  });

  it("refuses CR, LF and NUL from any input, naming the field", () => {
    for (const bad of ["a\r\nRSET", "a\nb", "a\0b", "a\rb"]) {
      assert.throws(() => mailFromCommand(bad), { name: "TypeError", message: /^from / });
      assert.throws(() => rcptToCommand(bad), { name: "TypeError", message: /^recipient / });
      assert.throws(() => greetCommand("EHLO", bad), { name: "TypeError", message: /^name / });
      assert.throws(
        () => mailFromCommand("a@b.c", { envelopeId: bad }),
        { message: /^dsn\.envelopeId / },
      );
    }
    assert.doesNotThrow(() => assertCommandSafe("ok value", "field"));
  });

  it("detects addresses that need SMTPUTF8", () => {
    assert.equal(needsSmtputf8(["a@example.com", "b@xn--bcher-kva.example"]), false);
    assert.equal(needsSmtputf8(["a@example.com", "jörg@example.com"]), true);
  });
});
