/**
 * The client's option checks and the enumerations the HTTP configuration
 * shares with them (one source each): TLS modes, SASL mechanisms, host syntax.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  AUTH_MECHANISMS,
  COMMAND_UNSAFE,
  isHost,
  resolvePoolOptions,
  resolveSessionOptions,
  TLS_MODES,
} from "../../src/smtp/options.ts";
import { SASL_MECHANISMS } from "../../src/smtp/sasl.ts";

describe("options: shared enumerations", () => {
  it("names every SASL mechanism the client speaks, lower-case", () => {
    assert.deepEqual(AUTH_MECHANISMS, SASL_MECHANISMS.map((m) => m.toLowerCase()));
    assert.deepEqual([...AUTH_MECHANISMS], ["plain", "login", "cram-md5", "xoauth2"]);
  });

  it("lists the four TLS modes of the contract", () => {
    assert.deepEqual([...TLS_MODES], ["starttls", "implicit", "opportunistic", "none"]);
  });

  it("accepts host names and IP literals, and nothing that could carry a command", () => {
    for (const host of ["smtp.example.com", "localhost", "127.0.0.1", "::1", "[::1]", "a-b.c."]) {
      assert.ok(isHost(host), host);
    }
    for (const host of ["bad host", "a\r\nRSET", "-a.example", "a..b", "", "a_b.example"]) {
      assert.ok(!isHost(host), JSON.stringify(host));
    }
    for (const text of ["a\rb", "a\nb", "a\0b"]) assert.ok(COMMAND_UNSAFE.test(text));
    assert.ok(!COMMAND_UNSAFE.test("a b\tc"));
  });
});

describe("options: resolveSessionOptions", () => {
  it("fills in the defaults", () => {
    const options = resolveSessionOptions({ host: "smtp.example.com" });
    assert.equal(options.port, 587);
    assert.equal(options.tls, "starttls");
    assert.equal(options.name, "localhost");
    assert.equal(options.timeoutMs, 30_000);
    assert.equal(resolveSessionOptions({ host: "h.example", port: 465 }).tls, "implicit");
    assert.equal(resolveSessionOptions({ host: "[::1]", tls: "none" }).host, "::1");
  });

  it("accepts an auth mechanism in any case, and names the field it refuses", () => {
    const auth = { username: "ann", password: "pw", mechanism: "CRAM-MD5" };
    assert.equal(resolveSessionOptions({ host: "h.example", auth }).auth?.mechanism, "CRAM-MD5");
    assert.throws(
      () => resolveSessionOptions({ host: "h.example", auth: { ...auth, mechanism: "gssapi" } }),
      /^TypeError: auth\.mechanism must be one of plain, login, cram-md5, xoauth2\.$/,
    );
    assert.throws(
      () => resolveSessionOptions({ host: "h.example", tls: "tls" as never }),
      /tls must be one of starttls, implicit, opportunistic, none/,
    );
  });
});

describe("options: resolvePoolOptions", () => {
  it("defaults to 5 connections, 100 messages each, 5 s idle", () => {
    assert.deepEqual(resolvePoolOptions(), {
      maxConnections: 5,
      maxMessagesPerConnection: 100,
      idleTimeoutMs: 5000,
    });
  });

  it("refuses non-positive or fractional limits, naming the field", () => {
    assert.throws(() => resolvePoolOptions({ maxConnections: 0 }), /pool\.maxConnections/);
    assert.throws(() => resolvePoolOptions({ idleTimeoutMs: 1.5 }), /pool\.idleTimeoutMs/);
  });
});
