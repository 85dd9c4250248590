import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_SMTP_POOL_MAX,
  DEFAULT_SMTP_TIMEOUT_MS,
  smtpOptions,
} from "../../src/http/smtp_config.ts";
import { smtpUrl } from "../../src/http/smtp_url.ts";

describe("smtpOptions", () => {
  it("fills in the port, TLS mode and timeout from SMTP_HOST alone", () => {
    const problems: string[] = [];
    assert.deepEqual(smtpOptions({ SMTP_HOST: "h.example", SMTP_PORT: 465 }, problems), {
      host: "h.example",
      port: 465,
      tls: "implicit",
      timeoutMs: DEFAULT_SMTP_TIMEOUT_MS,
      pool: { maxConnections: DEFAULT_SMTP_POOL_MAX },
    });
    assert.deepEqual(problems, []);
  });

  it("takes credentials from SMTP_URL, with SMTP_AUTH's mechanism", () => {
    const problems: string[] = [];
    const options = smtpOptions(
      { SMTP_URL: smtpUrl("smtp://ann:token@h.example"), SMTP_AUTH: "xoauth2" },
      problems,
    );
    assert.deepEqual(options?.auth, {
      username: "ann",
      accessToken: "token",
      mechanism: "xoauth2",
    });
    assert.deepEqual(problems, []);
  });

  it("pushes a problem for each conflict, never the secret", () => {
    const problems: string[] = [];
    smtpOptions(
      { SMTP_URL: smtpUrl("smtp://u:p@h.example"), SMTP_PASS: "s3cret", SMTP_PORT: 25 },
      problems,
    );
    assert.deepEqual(problems, [
      "SMTP_PORT only applies with SMTP_HOST: put it into SMTP_URL instead.",
      "SMTP_PASS is set and SMTP_URL has a password too: use one of them.",
    ]);
    const half: string[] = [];
    smtpOptions(
      { SMTP_HOST: "h.example", SMTP_TLS: "none", SMTP_USER: "u", SMTP_PASS: "s3cret" },
      half,
    );
    assert.match(half[0], /SMTP_INSECURE_AUTH=1/);
    assert.ok(!half.join("").includes("s3cret"));
  });
});
