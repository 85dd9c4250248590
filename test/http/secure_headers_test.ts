/**
 * The security headers: every response carries exactly the set Hono's
 * `secureHeaders()` sets by default (compared against the real middleware),
 * they replace a value a handler set, and `X-Powered-By` is removed.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { secureHeaders as honoSecureHeaders } from "hono/secure-headers";
import { SECURE_HEADERS, secureHeaders } from "../../src/http/secure_headers.ts";

async function headersOf(app: Hono, path = "/"): Promise<Headers> {
  const response = await app.request(path);
  await response.body?.cancel();
  return response.headers;
}

describe("secureHeaders", () => {
  it("sets the same headers and values as Hono's secureHeaders() defaults", async () => {
    const ours = new Hono().use(secureHeaders()).get("/", (c) => c.text("ok"));
    const hono = new Hono().use(honoSecureHeaders()).get("/", (c) => c.text("ok"));
    const expected = [...(await headersOf(hono)).entries()].sort();
    assert.deepEqual([...(await headersOf(ours)).entries()].sort(), expected);
    assert.equal(Object.keys(SECURE_HEADERS).length, expected.length - 1, "all but Content-Type");
  });

  it("applies to errors and 404s, replaces a handler's value and drops X-Powered-By", async () => {
    const app = new Hono().use(secureHeaders()).get(
      "/",
      (c) => c.text("ok", 200, { "X-Frame-Options": "ALLOWALL", "X-Powered-By": "x" }),
    );
    const headers = await headersOf(app);
    assert.equal(headers.get("X-Frame-Options"), "SAMEORIGIN");
    assert.equal(headers.get("X-Powered-By"), null);
    assert.equal((await headersOf(app, "/missing")).get("X-Content-Type-Options"), "nosniff");
  });
});
