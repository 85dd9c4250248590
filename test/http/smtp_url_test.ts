import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ValueProblem } from "../../src/http/config_values.ts";
import { smtpUrl } from "../../src/http/smtp_url.ts";

describe("smtpUrl", () => {
  it("reads the scheme's TLS mode and default port, and decodes credentials", () => {
    assert.deepEqual(smtpUrl("smtp://h.example"), {
      host: "h.example",
      port: 587,
      tls: "starttls",
      user: undefined,
      pass: undefined,
      insecureAuth: false,
    });
    assert.deepEqual(smtpUrl("smtps://u%40x:p%3Fw@[::1]"), {
      host: "::1",
      port: 465,
      tls: "implicit",
      user: "u@x",
      pass: "p?w",
      insecureAuth: false,
    });
    const plain = smtpUrl("smtp://u:p@127.0.0.1:25?tls=none&insecure_auth=1");
    assert.equal(plain.tls, "none");
    assert.equal(plain.insecureAuth, true);
  });

  it("throws a ValueProblem that never repeats the URL", () => {
    for (const url of ["https://h.example", "smtp://h.example/x", "smtp://u:pa?ss@h.example"]) {
      assert.throws(() => smtpUrl(url), (error: unknown) => {
        assert.ok(error instanceof ValueProblem);
        assert.ok(!error.message.includes("h.example"), error.message);
        return true;
      });
    }
  });
});
