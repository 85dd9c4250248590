/**
 * The playground of `deno task dev` (`GET /`): one HTML page with inline CSS
 * and script, no build step and nothing loaded from outside. It sends through
 * the browser client (the prebuilt module at `GET /dev/client.js`), shows each
 * `status` event as a timeline (phase, state, reply code, time since start),
 * then the Result, and lists the outbox (`GET /dev/outbox`); choosing an entry
 * shows that message's headers and text.
 *
 * @module
 */

import { Hono } from "hono";
import { CLIENT_BUNDLE_URL } from "../client/bundle_path.ts";

/** Where the page loads the browser client from. */
export const PLAYGROUND_CLIENT_PATH = "/dev/client.js";

/** The routes of the playground: the page and the client module. */
export function createPlaygroundRoutes(): Hono {
  const routes = new Hono();
  routes.get("/", (c) =>
    c.html(PAGE, 200, {
      // Inline script and style only, same-origin fetches only: nothing leaves this machine.
      "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; " +
        "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'none'",
    }));
  routes.get(
    PLAYGROUND_CLIENT_PATH,
    async (c) =>
      c.body(await Deno.readTextFile(CLIENT_BUNDLE_URL), 200, {
        "Content-Type": "text/javascript; charset=utf-8",
      }),
  );
  return routes;
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgemail playground</title>
<link rel="icon" href="data:,">
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e3e6ec; --bg: #f6f7f9; --accent: #2f5bea;
          --ok: #1a7f37; --bad: #c62828; --warn: #9a6700; font: 15px/1.45 system-ui, sans-serif; }
  * { box-sizing: border-box; }
  body { margin: 0; color: var(--fg); background: var(--bg); }
  header { padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line);
           display: flex; align-items: baseline; gap: 12px; }
  header h1 { font-size: 18px; margin: 0; }
  header p { margin: 0; color: var(--muted); font-size: 13px; }
  main { display: grid; grid-template-columns: minmax(340px, 1fr) minmax(340px, 1fr); gap: 20px;
         padding: 20px 24px; max-width: 1280px; margin: 0 auto; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px; }
  h2 { font-size: 14px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
       margin: 0 0 12px; }
  label { display: block; font-size: 13px; font-weight: 600; margin: 10px 0 4px; }
  input, textarea { width: 100%; padding: 7px 9px; border: 1px solid #cfd4dc; border-radius: 6px;
                    font: inherit; background: #fff; }
  textarea { min-height: 70px; resize: vertical; }
  .row { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
  .buttons { display: flex; gap: 10px; margin-top: 14px; }
  button { font: inherit; font-weight: 600; padding: 8px 18px; border-radius: 6px; cursor: pointer;
           border: 1px solid var(--accent); background: var(--accent); color: #fff; }
  button.secondary { background: #fff; color: var(--fg); border-color: #cfd4dc; }
  button:disabled { opacity: .45; cursor: default; }
  ol#timeline { list-style: none; margin: 0; padding: 0; font: 13px/1.5 ui-monospace, monospace; }
  ol#timeline li { display: grid; grid-template-columns: 70px 80px 60px 1fr; gap: 8px;
                   padding: 3px 0; border-bottom: 1px dashed var(--line); }
  .empty { color: var(--muted); font-size: 13px; }
  ol#timeline li.empty { display: block; border: 0; font: 13px/1.45 system-ui, sans-serif; }
  #result { margin-top: 12px; }
  .status { display: inline-block; font-weight: 700; padding: 2px 10px; border-radius: 99px;
            background: #eef1f6; }
  .status.sent { background: #dcf5e3; color: var(--ok); }
  .status.failed { background: #fde2e2; color: var(--bad); }
  .status.cancelled { background: #fff4d6; color: var(--warn); }
  pre { white-space: pre-wrap; word-break: break-word; font: 12px/1.45 ui-monospace, monospace;
        background: var(--bg); padding: 10px; border-radius: 6px; margin: 8px 0 0;
        max-height: 280px; overflow: auto; }
  ul#outbox { list-style: none; margin: 0; padding: 0; }
  ul#outbox button { width: 100%; text-align: left; background: #fff; color: var(--fg);
                     border: 1px solid var(--line); font-weight: 400; margin-bottom: 6px; }
  ul#outbox button[aria-current="true"] { border-color: var(--accent); }
  ul#outbox small { color: var(--muted); display: block; }
  .full { grid-column: 1 / -1; }
</style>
</head>
<body>
<header><h1>edgemail playground</h1>
<p>deno task dev · mail stays on this machine (embedded server, ./.outbox/)</p></header>
<main>
<section>
  <h2>Message</h2>
  <form id="form">
    <div class="row">
      <div><label for="from">From</label>
        <input id="from" name="from" placeholder="default: MAIL_FROM"></div>
      <div><label for="to">To</label>
        <input id="to" name="to" value="someone@example.com" required></div>
    </div>
    <label for="subject">Subject</label>
    <input id="subject" name="subject" value="Hello from edgemail">
    <label for="text">Text</label>
    <textarea id="text" name="text">It works.</textarea>
    <label for="html">HTML</label>
    <textarea id="html" name="html" placeholder="<p>optional</p>"></textarea>
    <label for="attachments">Attachments</label>
    <input id="attachments" name="attachments" type="file" multiple>
    <div class="buttons">
      <button id="send" type="submit">Send</button>
      <button id="cancel" type="button" class="secondary" disabled>Cancel</button>
    </div>
  </form>
</section>
<section aria-live="polite">
  <h2>Progress</h2>
  <ol id="timeline"><li class="empty">Press Send: each protocol step appears here.</li></ol>
  <div id="result"></div>
</section>
<section class="full">
  <h2>Outbox</h2>
  <div class="row">
    <ul id="outbox"><li class="empty">No messages yet.</li></ul>
    <div id="message"><p class="empty">Choose a message to see it.</p></div>
  </div>
</section>
</main>
<script type="module">
import { sendEmail } from "${PLAYGROUND_CLIENT_PATH}";

const $ = (id) => document.getElementById(id);
const form = $("form"), timeline = $("timeline"), result = $("result");
let controller;

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

async function base64(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

async function message() {
  const value = (name) => form.elements[name].value.trim();
  const out = { to: value("to") };
  for (const name of ["from", "subject", "text", "html"]) if (value(name)) out[name] = value(name);
  const files = [...$("attachments").files];
  if (files.length > 0) {
    out.attachments = await Promise.all(files.map(async (file) => ({
      filename: file.name, content: await base64(file),
      ...(file.type ? { contentType: file.type } : {}),
    })));
  }
  return out;
}

function showResult(data) {
  result.replaceChildren();
  const badge = element("span", data.status, "status " + data.status);
  badge.id = "status";
  result.append(element("strong", "Result "), badge);
  result.append(element("pre", JSON.stringify(data, null, 2)));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  controller = new AbortController();
  $("send").disabled = true;
  $("cancel").disabled = false;
  timeline.replaceChildren();
  result.replaceChildren(element("span", "sending…", "empty"));
  const started = performance.now();
  try {
    const sent = await sendEmail(location.origin, await message(), {
      signal: controller.signal,
      onStatus: (status) => {
        const li = document.createElement("li");
        li.append(
          element("span", status.phase), element("span", status.state),
          element("span", status.reply ? String(status.reply.code) : "—"),
          element("span", "+" + Math.round(performance.now() - started) + " ms"
            + (status.recipient ? " " + status.recipient : "")),
        );
        timeline.append(li);
      },
    });
    showResult(sent);
  } catch (error) {
    if (error.name === "AbortError") {
      showResult({ status: "cancelled", error: { type: "cancelled",
        message: "Cancelled in the browser before the message was sent." } });
    } else if (error.result) {
      showResult(error.result);
    } else {
      showResult({ status: "failed", error: { type: error.type ?? "error",
        message: error.message, ...(error.issues ? { issues: error.issues } : {}) } });
    }
  } finally {
    $("send").disabled = false;
    $("cancel").disabled = true;
    refreshOutbox();
  }
});

$("cancel").addEventListener("click", () => controller?.abort());

async function refreshOutbox() {
  const response = await fetch("/dev/outbox");
  if (!response.ok) return;
  const entries = await response.json();
  const list = $("outbox");
  list.replaceChildren();
  if (entries.length === 0) list.append(element("li", "No messages yet.", "empty"));
  for (const entry of entries) {
    const button = element("button");
    button.type = "button";
    button.dataset.id = entry.id;
    button.append(element("strong", entry.subject ?? "(no subject)"),
      element("small", (entry.to.join(", ") || "—") + " · " +
        new Date(entry.date).toLocaleTimeString() + " · " + entry.size + " bytes"));
    button.addEventListener("click", () => showMessage(entry.id, button));
    const li = document.createElement("li");
    li.append(button);
    list.append(li);
  }
}

async function showMessage(id, button) {
  for (const other of document.querySelectorAll("#outbox button")) other.removeAttribute("aria-current");
  button.setAttribute("aria-current", "true");
  const text = await (await fetch("/dev/outbox/" + id)).text();
  const split = text.search(/\\r?\\n\\r?\\n/);
  const box = $("message");
  box.replaceChildren(element("strong", "Headers"), element("pre", text.slice(0, split)),
    element("strong", "Text"), element("pre", text.slice(split).trim()));
}

refreshOutbox();
</script>
</body>
</html>
`;
