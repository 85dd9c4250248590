/**
 * The redactor, the last line of defence for secrets: which configured values
 * count as secrets, and that every occurrence is replaced in plain text, in
 * JSON bodies and in SSE frames, including the escaped form a secret takes
 * inside a JSON string (a password with a quote, a backslash or a tab); and
 * that JSON answers are redacted value by value, so a secret that spells a key
 * or a piece of JSON syntax leaves the document and its outcome intact.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "../../src/http/config.ts";
import { createRedactor, secretsOf, stringifyRedacted } from "../../src/http/redact.ts";

const PASSWORD = "s3cr3t-smtp-pass";
const KEY_1 = "key-1a2b3c4d5e";
const KEY_2 = "key-9z8y7x6w5v";

describe("secretsOf", () => {
  it("lists the SMTP password and every API key, not the user name", () => {
    const config = loadConfig({
      SMTP_URL: `smtp://ann:${PASSWORD}@smtp.example.com`,
      API_KEYS: `${KEY_1}, ${KEY_2}`,
    });
    const secrets = secretsOf(config);
    for (const secret of [KEY_1, KEY_2, PASSWORD]) assert.ok(secrets.includes(secret), secret);
    assert.ok(!secrets.includes("ann"));
  });

  it("lists the base64 AUTH responses the credentials make", () => {
    const config = loadConfig({
      SMTP_URL: `smtp://ann:${PASSWORD}@smtp.example.com`,
      API_KEYS: KEY_1,
    });
    const secrets = secretsOf(config);
    assert.ok(secrets.includes(btoa(`\0ann\0${PASSWORD}`)), "the PLAIN initial response");
    assert.ok(secrets.includes(btoa(PASSWORD)), "the LOGIN password response");
  });

  it("lists the percent-decoded password of SMTP_URL", () => {
    const config = loadConfig({
      SMTP_URL: "smtp://ann:p%40ss%22w%5Cord@smtp.example.com",
      API_KEYS: KEY_1,
    });
    assert.ok(secretsOf(config).includes('p@ss"w\\ord'));
  });

  it("lists the XOAUTH2 access token", () => {
    const config = loadConfig({
      SMTP_HOST: "smtp.example.com",
      SMTP_USER: "ann@example.com",
      SMTP_PASS: "ya29.access-token-value",
      SMTP_AUTH: "xoauth2",
      ALLOWED_TO: "@example.com",
    });
    const secrets = secretsOf(config);
    assert.ok(secrets.includes("ya29.access-token-value"));
    assert.ok(
      secrets.includes(btoa("user=ann@example.com\x01auth=Bearer ya29.access-token-value\x01\x01")),
    );
    assert.ok(!secrets.includes("ann@example.com"), "the user name alone is no secret");
  });

  it("is empty without credentials and API keys", () => {
    const config = loadConfig({ SMTP_HOST: "smtp.example.com", ALLOWED_TO: "@example.com" });
    assert.deepEqual(secretsOf(config), []);
  });
});

describe("createRedactor", () => {
  const redact = createRedactor([PASSWORD, KEY_1]);

  it("replaces the secret percent-encoded and in base64 at any alignment", () => {
    const secret = "pa ss/w+rd?42";
    const redactOne = createRedactor([secret]);
    assert.ok(!redactOne(`url ${encodeURIComponent(secret)}`).includes(encodeURIComponent(secret)));
    for (const prefix of ["", "a", "ab", "\0ann\0"]) {
      const encoded = btoa(prefix + secret + "tail");
      const out = redactOne(`535 bad response '${encoded}'`);
      assert.ok(out.includes("[redacted]"), `${prefix}: ${out}`);
      // What is left of the base64 no longer decodes to anything holding the secret.
      const left = out.replace(/^535 bad response '|'$/g, "").split("[redacted]");
      for (const part of left) assert.ok(part.length <= 8, `${prefix}: ${out}`);
    }
  });

  it("replaces every occurrence of every secret", () => {
    assert.equal(
      redact(`auth ${PASSWORD} failed; retried with ${PASSWORD} and key ${KEY_1}.`),
      "auth [redacted] failed; retried with [redacted] and key [redacted].",
    );
  });

  it("replaces a secret inside a word and at the ends of the text", () => {
    assert.equal(redact(`${PASSWORD}x${KEY_1}${PASSWORD}`), "[redacted]x[redacted][redacted]");
  });

  it("leaves texts without secrets unchanged", () => {
    const text = "535 5.7.8 Authentication credentials invalid";
    assert.equal(redact(text), text);
  });

  it("removes a password with a quote, a backslash and a tab from JSON.stringify output", () => {
    const password = 'pa"ss\\wo\trd';
    const body = JSON.stringify({
      status: "failed",
      error: { type: "auth", message: `Authentication failed: 535 bad password ${password}` },
    });
    // The escaped form differs from the raw one: it is the one that must go.
    assert.ok(body.includes('pa\\"ss\\\\wo\\trd'));
    const out = createRedactor([password])(body);
    assert.deepEqual(JSON.parse(out), {
      status: "failed",
      error: { type: "auth", message: "Authentication failed: 535 bad password [redacted]" },
    });
  });

  it("removes the escaped and the raw form from the same text", () => {
    const password = 'quote"secret';
    const text = `raw ${password} json ${JSON.stringify(password)}`;
    assert.equal(createRedactor([password])(text), 'raw [redacted] json "[redacted]"');
  });

  it("removes secrets from an SSE frame and keeps the frame intact", () => {
    const password = "back\\slash-pass";
    const data = { phase: "auth", state: "done", token: null, reply: { message: password } };
    const frame = `event: status\ndata: ${JSON.stringify(data)}\nid: 3\n\n`;
    const out = createRedactor([password])(frame);
    const lines = out.split("\n");
    assert.deepEqual([lines[0], lines[2], lines[3], lines[4]], ["event: status", "id: 3", "", ""]);
    assert.deepEqual(JSON.parse(lines[1].slice("data: ".length)), {
      ...data,
      reply: { message: "[redacted]" },
    });
  });

  it("replaces the longest secret first, so a longer one is not left half visible", () => {
    const redactBoth = createRedactor(["hunter22", "hunter22-and-more"]);
    assert.equal(redactBoth("pw=hunter22-and-more"), "pw=[redacted]");
    assert.equal(redactBoth("pw=hunter22"), "pw=[redacted]");
  });

  it("ignores secrets shorter than 6 characters, which would match ordinary words", () => {
    const short = createRedactor(["", "ok", "sent1"]);
    const text = '{"status":"sent","response":"250 ok sent1"}';
    assert.equal(short(text), text);
  });

  it("searches for secrets of exactly 6 characters", () => {
    assert.equal(createRedactor(["abc123"])("key abc123 here"), "key [redacted] here");
  });

  it("replaces nothing when there are no secrets", () => {
    const text = `${PASSWORD} ${KEY_1}`;
    assert.equal(createRedactor([])(text), text);
  });

  it("redacts the secrets of a loaded configuration in an error body", () => {
    const config = loadConfig({
      SMTP_URL: `smtp://ann:${encodeURIComponent('p"w\\d-42')}@smtp.example.com`,
      API_KEYS: KEY_2,
    });
    const redactConfig = createRedactor(secretsOf(config));
    const body = JSON.stringify({
      error: { message: `535 ${'p"w\\d-42'} is wrong; ${KEY_2} is not an SMTP password` },
    });
    assert.deepEqual(JSON.parse(redactConfig(body)), {
      error: { message: "535 [redacted] is wrong; [redacted] is not an SMTP password" },
    });
  });
});

describe("stringifyRedacted", () => {
  const result = {
    status: "failed",
    token: null,
    accepted: [],
    rejected: [{ address: "bob@example.com", code: 550, message: "no such user" }],
    error: { type: "rejected", phase: "rcpt", message: "Every recipient was refused." },
  };

  for (const secret of ["status", '"status":"', '","type":"', "accepted", "rejected", "failed"]) {
    it(`keeps the document and its outcome when the secret is ${JSON.stringify(secret)}`, () => {
      const redact = createRedactor([secret]);
      const echoed = { ...result, response: `550 ${secret} refused` };
      const parsed = JSON.parse(stringifyRedacted(echoed, redact));
      assert.deepEqual(parsed, { ...result, response: "550 [redacted] refused" });
    });
  }

  it("redacts a vocabulary word where it is no vocabulary (a reply text, a token)", () => {
    const redact = createRedactor(["rejected"]);
    const text = stringifyRedacted({ response: "rejected", token: { type: "rejected!" } }, redact);
    assert.deepEqual(JSON.parse(text), { response: "[redacted]", token: { type: "[redacted]!" } });
  });

  it("redacts every string, nested in objects and arrays, in every form", () => {
    const secret = 'pa ss"wo/rd';
    const redact = createRedactor([secret]);
    const text = stringifyRedacted({
      list: [secret, { deep: `x${encodeURIComponent(secret)}y` }],
      b64: btoa(`\0ann\0${secret}`),
    }, redact);
    assert.ok(!text.includes("pa ss"), text);
    const parsed = JSON.parse(text);
    assert.equal(parsed.list[0], "[redacted]");
    assert.equal(parsed.list[1].deep, "x[redacted]y");
    assert.ok(parsed.b64.includes("[redacted]"), parsed.b64);
  });

  it("keeps numbers, booleans and null", () => {
    const redact = createRedactor(["550-true-null"]);
    assert.equal(
      stringifyRedacted({ code: 550, ok: true, none: null }, redact),
      '{"code":550,"ok":true,"none":null}',
    );
  });
});
