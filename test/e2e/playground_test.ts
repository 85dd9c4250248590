/**
 * The playground of `deno task dev` in real Chromium (npm:playwright-core,
 * Debian's /usr/bin/chromium, headless): `deno task dev` runs as a real
 * subprocess with a private outbox and `DEV_SMTP_DELAY_MS` (the embedded
 * server waits before accepting each recipient, so a send can be cancelled
 * before its data is written). The form is filled by its labels; the test
 * sees the live timeline and `sent`, the message in the outbox list and its
 * headers, an attached file inside the stored `.eml`, a cancelled slow send
 * that delivered nothing, no console error and no request leaving loopback.
 * A screenshot is saved in the test's temp dir.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { chromiumSkipReason, launchChromium } from "../support/chromium.ts";
import { spawnDeno } from "../support/subprocess.ts";

const DELAY_MS = 1500;

const skip = chromiumSkipReason("the playground suite");

describe("playground in Chromium (deno task dev)", { skip }, () => {
  let dev: Deno.ChildProcess;
  let base = "";
  let outbox = "";
  let tmp = "";
  // deno-lint-ignore no-explicit-any
  let browser: any;
  // deno-lint-ignore no-explicit-any
  let page: any;
  const consoleErrors: string[] = [];
  const offLoopback: string[] = [];
  let stdoutDone: Promise<void>;
  let stderrText: Promise<string>;

  before(async () => {
    tmp = await Deno.makeTempDir({ prefix: "edgemail-playground-" });
    outbox = `${tmp}/outbox`;
    dev = spawnDeno(["task", "dev"], {
      PORT: "0",
      DEV_SMTP_PORT: "0",
      EDGEMAIL_OUTBOX_DIR: outbox,
      DEV_SMTP_DELAY_MS: String(DELAY_MS),
      KV_PATH: `${tmp}/kv.sqlite3`,
    });
    const listening = Promise.withResolvers<string>();
    stdoutDone = (async () => {
      let pending = "";
      for await (const chunk of dev.stdout.pipeThrough(new TextDecoderStream())) {
        pending += chunk;
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(pending);
        if (match) listening.resolve(match[1]);
      }
      listening.reject(new Error(`deno task dev ended without listening:\n${pending}`));
    })();
    stderrText = new Response(dev.stderr).text();
    base = await listening.promise;

    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("console", (message: { type(): string; text(): string }) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("pageerror", (error: Error) => consoleErrors.push(error.message));
    page.on("request", (request: { url(): string }) => {
      const url = new URL(request.url());
      if (url.protocol !== "data:" && url.hostname !== "127.0.0.1") offLoopback.push(url.href);
    });
    await page.goto(`${base}/`);
  });

  after(async () => {
    await browser?.close();
    dev?.kill("SIGTERM");
    await dev?.status;
    await stdoutDone?.catch(() => {});
    await stderrText;
    if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  });

  it("sends from the form: the timeline, then sent, then the message in the outbox", async () => {
    await page.getByLabel("To").fill("bob@example.com");
    await page.getByLabel("Subject").fill("Playground test");
    await page.getByLabel("Text").fill("Hello from Chromium");
    await page.getByLabel("HTML").fill("<p>Hello <b>from</b> Chromium</p>");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#status").filter({ hasText: "sent" }).waitFor();
    const steps = await page.locator("#timeline li").allTextContents();
    for (const phase of ["connect", "ehlo", "mail", "rcpt", "data", "message"]) {
      assert.ok(steps.some((step: string) => step.startsWith(phase)), `${phase}: ${steps}`);
    }
    assert.ok(steps.some((step: string) => /^rcptdone250\+\d+ ms/.test(step)), steps.join("|"));
    const entry = page.locator("#outbox button").filter({ hasText: "Playground test" });
    await entry.waitFor();
    await entry.click();
    await page.locator("#message pre").first().waitFor();
    const headers = await page.locator("#message pre").first().textContent();
    assert.match(headers, /^Subject: Playground test$/m);
    assert.match(headers, /^To: bob@example\.com$/m);
    await page.screenshot({ path: `${tmp}/playground.png` });
    await Deno.stat(`${tmp}/playground.png`);
  });

  it("attaches a file that ends up in the stored .eml", async () => {
    const content = "attached-by-chromium-" + crypto.randomUUID();
    await page.getByLabel("Subject").fill("With attachment");
    await page.getByLabel("Attachments").setInputFiles({
      name: "note.txt",
      mimeType: "text/plain",
      buffer: Buffer.from(content),
    });
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#outbox button").filter({ hasText: "With attachment" }).waitFor();
    const files = [...Deno.readDirSync(outbox)].map((file) => file.name);
    const emls = files.map((name) => Deno.readTextFileSync(`${outbox}/${name}`));
    const eml = emls.find((text) => /^Subject: With attachment$/m.test(text));
    assert.ok(eml, files.join());
    assert.match(eml, /filename="?note\.txt"?/);
    assert.ok(eml.includes(btoa(content).slice(0, 40)), "the attachment's content is missing");
    await page.getByLabel("Attachments").setInputFiles([]);
  });

  it("Cancel abandons a slow send before its data: cancelled, nothing delivered", async () => {
    const before = [...Deno.readDirSync(outbox)].length;
    await page.getByLabel("Subject").fill("Cancelled one");
    await page.getByRole("button", { name: "Send" }).click();
    // The embedded server holds the recipient for DEV_SMTP_DELAY_MS: cancel while it does.
    await page.locator("#timeline li").filter({ hasText: /^rcptstarted/ }).waitFor();
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.locator("#status").filter({ hasText: "cancelled" }).waitFor();
    // The outbox list is refreshed after the send ends; wait past the server's delay for it.
    await page.locator("#send:not([disabled])").waitFor();
    const listed = await page.locator("#outbox button").allTextContents();
    assert.ok(!listed.some((text: string) => text.includes("Cancelled one")), listed.join("|"));
    assert.equal([...Deno.readDirSync(outbox)].length, before);
  });

  it("logged no console error and sent no request off loopback", () => {
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(offLoopback, []);
  });
});
