import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  allowlist,
  apiKeys,
  commandSafe,
  ehloName,
  flag,
  hostName,
  integer,
  mailbox,
  mechanism,
  origins,
  pem,
  percentDecoded,
  rateLimit,
  tlsMode,
  ValueProblem,
  variable,
} from "../../src/http/config_values.ts";

/** The problem `parse` throws for `text`. */
function problemOf(parse: (text: string) => unknown, text: string): string {
  try {
    parse(text);
  } catch (error) {
    assert.ok(error instanceof ValueProblem, `expected a ValueProblem, got ${error}`);
    return error.message;
  }
  assert.fail(`${JSON.stringify(text)} was accepted`);
}

describe("variable", () => {
  const port = v.object({ PORT: variable(integer(1, 65535)) });

  it("treats unset and blank as absent, and parses anything else", () => {
    assert.equal(v.parse(port, {}).PORT, undefined);
    assert.deepEqual(v.parse(port, { PORT: "  " }), { PORT: undefined });
    assert.deepEqual(v.parse(port, { PORT: " 25 " }), { PORT: 25 });
  });

  it("makes a ValueProblem the issue, and any other error a generic one", () => {
    const result = v.safeParse(port, { PORT: "0" });
    assert.equal(result.success, false);
    assert.equal(result.issues?.[0].message, "must be a whole number from 1 to 65535");
    const broken = v.safeParse(
      variable(() => {
        throw new Error("secret detail");
      }),
      "x",
    );
    assert.equal(broken.issues?.[0].message, "has an invalid value");
  });
});

describe("value parsers", () => {
  it("integer, flag, tlsMode and mechanism accept their forms in any case", () => {
    assert.equal(integer(1)("7"), 7);
    assert.equal(problemOf(integer(1), "1.5"), "must be a whole number of at least 1");
    assert.equal(flag(" YES "), true);
    assert.equal(flag("0"), false);
    assert.equal(tlsMode("STARTTLS"), "starttls");
    assert.equal(mechanism("CRAM-MD5"), "cram-md5");
    assert.match(problemOf(mechanism, "gssapi"), /^must be one of plain, login/);
  });

  it("hostName drops IPv6 brackets; ehloName keeps address literals", () => {
    assert.equal(hostName(" [::1] "), "::1");
    assert.equal(ehloName("[192.0.2.1]"), "[192.0.2.1]");
    assert.match(problemOf(hostName, "bad_host!"), /host name or an IP address/);
  });

  it("commandSafe refuses CR, LF and NUL, naming the part", () => {
    assert.equal(commandSafe("the password")("p w"), "p w");
    assert.equal(
      problemOf(commandSafe("the password"), "a\0b"),
      "the password must not contain CR, LF or NUL characters",
    );
  });

  it("rateLimit reads <messages>/<window> and off", () => {
    assert.deepEqual(rateLimit("20 / 60s"), { limit: 20, windowMs: 60_000 });
    assert.equal(rateLimit("Off"), "off");
    assert.match(problemOf(rateLimit, "1/400d"), /^must be off or/);
  });

  it("pem turns literal \\n into line ends; mailbox trims", () => {
    const cert = "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----";
    assert.equal(pem(cert), cert.replaceAll("\\n", "\n"));
    assert.equal(mailbox(" App <app@example.com> "), "App <app@example.com>");
    assert.match(problemOf(mailbox, "app"), /^is not a valid address: /);
  });

  it("allowlist, apiKeys and origins read comma lists, naming the bad entry", () => {
    assert.deepEqual(allowlist("Ann@Example.COM, @Example.org,"), {
      addresses: ["Ann@example.com"],
      domains: ["example.org"],
    });
    assert.match(problemOf(allowlist, "a@example.com, bob"), /^entry 2 is not an address/);
    assert.equal(problemOf(allowlist, " , "), "lists no address or @domain");
    assert.deepEqual(apiKeys("k1, k2=="), ["k1", "k2=="]);
    assert.match(problemOf(apiKeys, "k1,k 2"), /^key 2 has characters/);
    assert.deepEqual(origins("https://a.example/, *"), ["https://a.example", "*"]);
    assert.match(problemOf(origins, "https://a.example/x"), /^entry 1 is not an origin/);
  });

  it("percentDecoded names the part with a malformed encoding", () => {
    assert.equal(percentDecoded("us%40er", "user name"), "us@er");
    assert.equal(
      problemOf((text) => percentDecoded(text, "password"), "%E0%A4%A"),
      "has a malformed percent-encoding in the password",
    );
  });
});
