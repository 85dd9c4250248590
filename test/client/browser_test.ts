/**
 * The prebuilt client bundle in real Chromium (npm:playwright-core, headless),
 * on a page served from another origin than the function (a second local
 * HTTP server), calling `deno serve functions/deno.ts` with CORS_ORIGINS set
 * to that page's origin and npm:smtp-server behind it: synchronous, SSE, a
 * refused recipient, a validation error, an abort, a batch. No request may
 * leave loopback. Skips where Chromium is missing, fails in CI.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { CLIENT_BUNDLE_URL } from "../../src/client/bundle_path.ts";
import { type FunctionServer, startFunction } from "../support/function_server.ts";
import { chromiumSkipReason, launchChromium } from "../support/chromium.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>client test page</title></head>
<body><p>edgemail client test page</p>
<script type="module">
  import * as client from "/edgemail_client.js";
  globalThis.edgemail = client;
</script></body></html>`;

const message = {
  from: "Ann <ann@example.com>",
  to: "bob@example.com",
  subject: "From a web page",
  text: "Hello from Chromium.",
};

/** What a call in the page ended with, as plain data. */
interface PageOutcome {
  result?: { status: string; token: unknown; accepted: string[]; messageId?: string };
  results?: { status: string; token: unknown }[];
  error?: {
    name: string;
    isEdgemailError: boolean;
    isDomException: boolean;
    type?: string;
    status?: number;
    result?: { status: string; rejected: { address: string; code: number }[] };
    issues?: { path: string; message: string }[];
  };
  events: { phase: string; state: string; index?: number; code?: number }[];
}

/** The options of a call in the page. */
interface CallOptions {
  stream?: boolean;
  batch?: boolean;
  abortOnFirstEvent?: boolean;
}

/** Calls the client inside the page, against `url`, and reports the outcome as data. */
function callInPage(
  page: Page,
  url: string,
  body: unknown,
  options: CallOptions,
): Promise<PageOutcome> {
  return page.evaluate(async ({ url, body, options }) => {
    // deno-lint-ignore no-explicit-any
    const client = (globalThis as any).edgemail;
    const events: PageOutcome["events"] = [];
    const controller = new AbortController();
    const onStatus = options.stream
      ? (event: { phase: string; state: string; index?: number; reply?: { code: number } }) => {
        events.push({ ...event, code: event.reply?.code });
        if (options.abortOnFirstEvent) controller.abort();
      }
      : undefined;
    try {
      const settings = { onStatus, signal: controller.signal };
      if (options.batch) return { ...await client.sendBatch(url, body, settings), events };
      return { result: await client.sendEmail(url, body, settings), events };
    } catch (error) {
      // deno-lint-ignore no-explicit-any
      const e = error as any;
      return {
        events,
        error: {
          name: e.name,
          isEdgemailError: e instanceof client.EdgemailError,
          isDomException: e instanceof DOMException,
          type: e.type,
          status: e.status,
          result: e.result,
          issues: e.issues,
        },
      };
    }
  }, { url, body, options });
}

describe("browser client in Chromium, from a page on another origin", {
  skip: chromiumSkipReason("the browser client suite"),
}, () => {
  let smtp: TestSmtpServer;
  let fn: FunctionServer;
  let pageServer: Deno.HttpServer<Deno.NetAddr>;
  let browser: Browser;
  let page: Page;
  let kvDir: string;
  const requested: string[] = [];

  before(async () => {
    smtp = await startSmtpServer({
      rejectRecipients: { "nobody@example.com": { code: 550, message: "5.1.1 No such user" } },
    });
    const bundle = await Deno.readTextFile(CLIENT_BUNDLE_URL);
    pageServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      const { pathname } = new URL(request.url);
      if (pathname === "/") {
        return new Response(PAGE, { headers: { "Content-Type": "text/html; charset=utf-8" } });
      }
      if (pathname === "/edgemail_client.js") {
        return new Response(bundle, { headers: { "Content-Type": "text/javascript" } });
      }
      return new Response("not found", { status: 404 });
    });
    const pageOrigin = `http://127.0.0.1:${pageServer.addr.port}`;
    kvDir = await Deno.makeTempDir();
    fn = await startFunction({
      SMTP_URL: `smtp://localhost:${smtp.port}`,
      SMTP_CA_CERT: smtp.caCert,
      MAIL_FROM: "app@example.com",
      ALLOWED_FROM: "@example.com",
      ALLOWED_TO: "@example.com",
      CORS_ORIGINS: pageOrigin,
      RATE_LIMIT: "off",
      KV_PATH: `${kvDir}/kv.sqlite3`,
    });
    browser = await launchChromium();
    page = await browser.newPage();
    page.on("request", (request) => requested.push(request.url()));
    await page.goto(`${pageOrigin}/`);
    await page.waitForFunction(() => "edgemail" in globalThis);
  });

  after(async () => {
    await browser?.close();
    await pageServer?.shutdown();
    await fn?.stop();
    await smtp?.close();
    if (kvDir) await Deno.remove(kvDir, { recursive: true });
  });

  it("sends synchronously across origins", async () => {
    const before = smtp.messages.length;
    const outcome = await callInPage(page, fn.url, { ...message, token: "page-1" }, {});
    assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
    assert.equal(outcome.result?.status, "sent");
    assert.equal(outcome.result?.token, "page-1");
    const received = (await smtp.waitForMessages(before + 1))[before];
    assert.ok(received.text.includes(`Message-ID: ${outcome.result?.messageId}`));
    assert.ok(requested.some((url) => url === `${fn.url}/send`), "the page did not call /send");
  });

  it("streams status events over SSE, then resolves with the Result", async () => {
    const outcome = await callInPage(page, fn.url, message, { stream: true });
    assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
    assert.equal(outcome.result?.status, "sent");
    const steps = outcome.events.map((event) => `${event.phase} ${event.state} ${event.code}`);
    assert.ok(steps.includes("rcpt done 250"), steps.join(", "));
    assert.ok(steps.includes("message done 250"), steps.join(", "));
  });

  it("rejects a refused recipient with EdgemailError rejected, 422 and the Result", async () => {
    for (const stream of [false, true]) {
      const outcome = await callInPage(page, fn.url, { ...message, to: "nobody@example.com" }, {
        stream,
      });
      assert.equal(outcome.error?.isEdgemailError, true, JSON.stringify(outcome));
      assert.equal(outcome.error?.type, "rejected");
      assert.equal(outcome.error?.status, 422);
      assert.equal(outcome.error?.result?.status, "failed");
      assert.deepEqual(
        outcome.error?.result?.rejected.map(({ address, code }) => ({ address, code })),
        [{ address: "nobody@example.com", code: 550 }],
      );
    }
  });

  it("rejects an invalid message with validation, 400 and the issues", async () => {
    const outcome = await callInPage(page, fn.url, { ...message, to: "not an address" }, {
      stream: true,
    });
    assert.equal(outcome.error?.type, "validation");
    assert.equal(outcome.error?.status, 400);
    assert.ok(outcome.error?.issues?.some((issue) => issue.path.startsWith("to")));
  });

  it("aborts with an AbortError DOMException", async () => {
    const outcome = await callInPage(page, fn.url, message, {
      stream: true,
      abortOnFirstEvent: true,
    });
    assert.equal(outcome.error?.name, "AbortError", JSON.stringify(outcome));
    assert.equal(outcome.error?.isDomException, true);
    assert.equal(outcome.events.length, 1, "events arrived after the abort");
  });

  it("sends a batch with indexed status events", async () => {
    const messages = [
      { ...message, token: "p0" },
      { ...message, to: "nobody@example.com", token: "p1" },
    ];
    const outcome = await callInPage(page, fn.url, messages, { stream: true, batch: true });
    assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
    assert.deepEqual(outcome.results?.map((result) => [result.token, result.status]), [
      ["p0", "sent"],
      ["p1", "failed"],
    ]);
    assert.ok(outcome.events.some((event) => event.index === 0));
    assert.ok(outcome.events.some((event) => event.index === 1));
  });

  it("made no request that left loopback", () => {
    assert.ok(requested.length >= 2, "no requests were recorded");
    for (const url of requested) {
      assert.match(new URL(url).hostname, /^(127\.0\.0\.1|localhost|\[::1\])$/, url);
    }
  });
});
