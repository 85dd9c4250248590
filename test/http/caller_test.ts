/**
 * Who is calling: public vs server callers, the client address per platform
 * (remote address, CF-Connecting-IP, X-Forwarded-For's last hop only behind a
 * trusted proxy), and what public callers may see of an SMTP failure.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  type AddressSource,
  type Caller,
  cloudflareConnectingIp,
  identifyCaller,
  normalizeAddress,
  publicError,
  publicReply,
  publicResult,
  sha256Hex,
} from "../../src/http/caller.ts";
import type { HttpResult } from "../../src/http/problems.ts";
import type { ResultError } from "../../src/smtp/result.ts";

const KEY = "server-key-123";

async function callerOf(
  headers: Record<string, string>,
  options: { apiKeys?: boolean; trustProxy?: boolean; address?: AddressSource; remote?: string } =
    {},
): Promise<Caller> {
  const app = new Hono();
  app.get("/", async (c) =>
    c.json(
      await identifyCaller(c, {
        apiKeys: options.apiKeys ?? true,
        trustProxy: options.trustProxy ?? false,
        address: options.address,
      }),
    ));
  // Deno.serve hands the connection info to the handler as Hono's env.
  const env = options.remote === undefined
    ? undefined
    : { remoteAddr: { transport: "tcp", hostname: options.remote, port: 40000 } };
  const response = await app.request("/", { headers }, env);
  return await response.json();
}

describe("identifyCaller", () => {
  it("an API key without Origin is a server caller, scoped and counted by the key's hash", async () => {
    const caller = await callerOf({ Authorization: `Bearer ${KEY}` }, { remote: "192.0.2.1" });
    const hash = await sha256Hex(`key:${KEY}`);
    assert.deepEqual(caller, { kind: "server", scope: hash, subject: `key:${hash}` });
    assert.ok(!JSON.stringify(caller).includes(KEY), "the API key is kept in clear");
  });

  it("a request with Origin is public even with an API key, scoped by the Origin", async () => {
    const caller = await callerOf(
      { Authorization: `Bearer ${KEY}`, Origin: "https://site.example" },
      { remote: "192.0.2.1" },
    );
    assert.deepEqual(caller, {
      kind: "public",
      scope: await sha256Hex("origin:https://site.example"),
      subject: "address:192.0.2.1",
    });
  });

  it("without API_KEYS everyone is public; another origin is another scope", async () => {
    const a = await callerOf({ Origin: "https://a.example" }, { apiKeys: false, remote: "::1" });
    const b = await callerOf({ Origin: "https://b.example" }, { apiKeys: false, remote: "::1" });
    assert.equal(a.kind, "public");
    assert.notEqual(a.scope, b.scope);
    const serverSide = await callerOf({ Authorization: `Bearer ${KEY}` }, { apiKeys: false });
    assert.equal(serverSide.kind, "public");
  });

  it("X-Forwarded-For counts only with TRUST_PROXY, and only its last hop", async () => {
    const headers = { "X-Forwarded-For": "10.9.9.9, 203.0.113.5" };
    assert.equal(
      (await callerOf(headers, { apiKeys: false, remote: "127.0.0.1" })).subject,
      "address:127.0.0.1",
    );
    assert.equal(
      (await callerOf(headers, { apiKeys: false, remote: "127.0.0.1", trustProxy: true })).subject,
      "address:203.0.113.5",
    );
    // A last hop that is no address falls back to the connection's.
    assert.equal(
      (await callerOf({ "X-Forwarded-For": "1.2.3.4, nonsense" }, {
        apiKeys: false,
        remote: "127.0.0.1",
        trustProxy: true,
      })).subject,
      "address:127.0.0.1",
    );
  });

  it("on Workers the address is CF-Connecting-IP; on Deno that header means nothing", async () => {
    const headers = { "CF-Connecting-IP": "198.51.100.7" };
    assert.equal(
      (await callerOf(headers, { apiKeys: false, address: cloudflareConnectingIp })).subject,
      "address:198.51.100.7",
    );
    assert.equal(
      (await callerOf(headers, { apiKeys: false, remote: "192.0.2.9" })).subject,
      "address:192.0.2.9",
    );
    assert.equal((await callerOf({}, { apiKeys: false })).subject, "address:unknown");
  });
});

describe("normalizeAddress", () => {
  it("keeps IPv4, unwraps IPv4-mapped IPv6, counts IPv6 per /64, refuses the rest", () => {
    assert.equal(normalizeAddress(" 203.0.113.5 "), "203.0.113.5");
    assert.equal(normalizeAddress("::ffff:203.0.113.5"), "203.0.113.5");
    assert.equal(normalizeAddress("2001:db8:0:12::1"), "2001:db8:0:12::/64");
    assert.equal(normalizeAddress("[2001:0DB8:0000:0012:ffff::9]"), "2001:db8:0:12::/64");
    assert.equal(normalizeAddress("::1"), "0:0:0:0::/64");
    for (const bad of ["", "300.1.1.1", "1.2.3", "example.com", "1:2:3:4:5:6:7:8:9", "1::2::3"]) {
      assert.equal(normalizeAddress(bad), undefined, bad);
    }
  });
});

describe("what public callers see", () => {
  const failed: HttpResult = {
    status: "failed",
    token: 5,
    messageId: "<x@example.com>",
    accepted: ["a@example.com"],
    rejected: [{
      address: "b@example.org",
      code: 550,
      enhancedCode: "5.1.1",
      message: "mx.internal.example: user b unknown",
    }],
    response: "554 5.7.1 Rejected by relay.internal.example[10.0.0.5]",
    error: {
      type: "rejected",
      phase: "rcpt",
      code: 550,
      enhancedCode: "5.1.1",
      message: "smtp.internal.example:587 (user mailer) refused b@example.org: user unknown",
    },
  };

  it("type, phase, codes and a generic message; no server text, host, port or user", () => {
    const view = publicResult(failed);
    const text = JSON.stringify(view);
    for (const secret of ["internal.example", "587", "mailer", "10.0.0.5", "user unknown"]) {
      assert.ok(!text.includes(secret), `public view shows ${secret}: ${text}`);
    }
    assert.deepEqual(view.error, {
      type: "rejected",
      phase: "rcpt",
      code: 550,
      enhancedCode: "5.1.1",
      message: "The mail server refused a recipient.",
    });
    assert.equal(view.response, "554 5.7.1");
    assert.deepEqual(view.rejected[0], {
      address: "b@example.org",
      code: 550,
      enhancedCode: "5.1.1",
      message: "Refused by the mail server.",
    });
    assert.equal(view.token, 5);
    assert.deepEqual(view.accepted, ["a@example.com"]);
  });

  it("every SMTP error type gets a generic message; our own errors pass unchanged", () => {
    for (
      const type of ["connection", "tls", "auth", "timeout", "protocol", "unknown_outcome"] as const
    ) {
      const error = publicError({
        type,
        phase: "connect",
        message: "smtp.internal.example:465 down",
      });
      assert.ok(!error.message.includes("internal.example"), type);
      assert.equal(error.type, type);
      assert.equal(error.phase, "connect");
    }
    const own = { type: "internal", message: "An internal error occurred." } as ResultError;
    assert.deepEqual(publicError(own), own);
  });

  it("status event replies keep only their codes", () => {
    assert.deepEqual(
      publicReply({ code: 250, enhancedCode: "2.1.0", message: "Ok from mx.internal.example" }),
      { code: 250, enhancedCode: "2.1.0", message: "" },
    );
  });
});
