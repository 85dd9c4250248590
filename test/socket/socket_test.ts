import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { settleWithin, TLS_HANDSHAKE_ERROR, tlsHandshakeError } from "../../src/socket/socket.ts";

describe("settleWithin", () => {
  it("settles when the promise settles, resolved or rejected", async () => {
    await settleWithin(Promise.resolve(1), 1000);
    await settleWithin(Promise.reject(new Error("ignored")), 1000);
  });

  it("gives up on a promise that never settles", async () => {
    const started = performance.now();
    await settleWithin(new Promise(() => {}), 30);
    assert.ok(performance.now() - started < 1000);
  });
});

describe("tlsHandshakeError", () => {
  it("names the error so every adapter's handshake failure is recognised", () => {
    const cause = new Error("UnknownIssuer");
    const error = tlsHandshakeError("TLS handshake with mx failed", cause);
    assert.equal(error.name, TLS_HANDSHAKE_ERROR);
    assert.equal(error.cause, cause);
    assert.equal(error.message, "TLS handshake with mx failed");
  });
});
