/**
 * No credential leaves the function in any form, even when the SMTP server
 * quotes our AUTH exchange back in its refusal (`535 5.7.8 bad response on
 * '<initial response>' for user …`, as some servers do): not in the JSON
 * body, not in SSE frames, not in log lines — neither plain, nor base64 (of
 * each part and of the SASL responses), nor percent-encoded.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createApp } from "../../src/http/app.ts";
import { loadConfig } from "../../src/http/config.ts";
import { SmtpClient } from "../../src/smtp/client.ts";
import {
  type FaultConnection,
  type FaultServer,
  smtpScript,
  startFaultServer,
} from "../support/fault_server.ts";
import { jsonPost } from "../support/requests.ts";
import { readEvents } from "../support/sse.ts";

const USER = "mailer-ann@example.com";
const PASSWORD = "pw:Sesame-42/x+y";
const API_KEY = "key-credential-leak-test";

const servers: FaultServer[] = [];
const clients: SmtpClient[] = [];
after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await Promise.all(servers.map((server) => server.close().catch(() => {})));
});

/** Every form of the credentials that must never show. */
function forbiddenForms(): string[] {
  const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  const forms = [
    USER,
    PASSWORD,
    encodeURIComponent(PASSWORD),
    encodeURIComponent(USER),
    b64(PASSWORD),
    b64(USER),
    b64(`\0${USER}\0${PASSWORD}`),
    b64(`user=${USER}\x01auth=Bearer ${PASSWORD}\x01\x01`),
  ];
  // base64 of a longer text with the password inside, at each alignment.
  for (const prefix of ["", "a", "ab"]) {
    const encoded = b64(`${prefix}${PASSWORD}`);
    forms.push(encoded.slice(prefix === "" ? 0 : 4, -4));
  }
  return forms;
}

function assertClean(text: string, where: string): void {
  for (const form of forbiddenForms()) {
    assert.ok(!text.includes(form), `${where} carries a credential form: ${form}`);
  }
}

/** A server that offers AUTH and refuses it, quoting what the client sent. */
function echoingAuth(mechanism: "PLAIN" | "LOGIN") {
  return async (conn: FaultConnection, line: string) => {
    if (mechanism === "PLAIN") {
      const initial = line.split(" ")[2] ?? "";
      await conn.send(
        `535 5.7.8 bad response on '${initial}' (${atob(initial)}) for user ${USER}\r\n`,
      );
      return;
    }
    await conn.send("334 VXNlcm5hbWU6\r\n");
    const user = await conn.readLine() ?? "";
    await conn.send("334 UGFzc3dvcmQ6\r\n");
    const pass = await conn.readLine() ?? "";
    await conn.send(
      `535-5.7.8 login ${user} (${atob(user)}) refused\r\n` +
        `535 5.7.8 password ${pass} = ${atob(pass)} = ${encodeURIComponent(atob(pass))}\r\n`,
    );
  };
}

async function appEchoing(mechanism: "PLAIN" | "LOGIN") {
  const server = await startFaultServer(smtpScript({
    capabilities: ["PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS", `AUTH ${mechanism}`],
    AUTH: echoingAuth(mechanism),
  }));
  return appFor(server, PASSWORD);
}

/** The app sending through `server` as USER with `password` (closed after the tests). */
function appFor(server: FaultServer, password: string, options?: { store: boolean }) {
  servers.push(server);
  const config = loadConfig({
    SMTP_URL: `smtp://${encodeURIComponent(USER)}:${
      encodeURIComponent(password)
    }@127.0.0.1:${server.port}`,
    SMTP_CA_CERT: server.caCert,
    API_KEYS: API_KEY,
    MAIL_FROM: "App <app@example.com>",
  }, options);
  const client = new SmtpClient({ ...config.smtp, pool: { idleTimeoutMs: 200 } });
  clients.push(client);
  return createApp(config, { client });
}

/** Runs `fn` with console.info and console.error captured. */
async function captureLogs<T>(fn: () => T | Promise<T>): Promise<{ value: T; logs: string }> {
  const lines: string[] = [];
  const { info, error, warn, log } = console;
  const capture = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  Object.assign(console, { info: capture, error: capture, warn: capture, log: capture });
  try {
    return { value: await fn(), logs: lines.join("\n") };
  } finally {
    Object.assign(console, { info, error, warn, log });
  }
}

const message = { to: "bob@example.com", subject: "Hi", text: "Hello" };

describe("a server that echoes the AUTH exchange in its refusal", () => {
  for (const mechanism of ["PLAIN", "LOGIN"] as const) {
    it(`AUTH ${mechanism}: the 502 body and the logs hold no credential form`, async () => {
      const app = await appEchoing(mechanism);
      const { value: response, logs } = await captureLogs(() =>
        app.request("/send", jsonPost(message, { apiKey: API_KEY }))
      );
      const text = await response.text();
      assert.equal(response.status, 502, text);
      const body = JSON.parse(text);
      assert.equal(body.error.type, "auth");
      assert.equal(body.error.phase, "auth");
      assert.equal(body.error.code, 535);
      assert.equal(body.error.enhancedCode, "5.7.8");
      assertClean(text, "the body");
      assertClean(logs, "the log");
    });

    it(`AUTH ${mechanism}: no SSE frame holds a credential form`, async () => {
      const app = await appEchoing(mechanism);
      const { value: text, logs } = await captureLogs(async () => {
        const init = jsonPost(message, { apiKey: API_KEY });
        const response = await app.request("/send", {
          ...init,
          headers: { ...init.headers as Record<string, string>, Accept: "text/event-stream" },
        });
        assert.equal(response.status, 200);
        return await response.text();
      });
      const events = await readEvents(new Response(text));
      const completed = events.find((event) => event.event === "completed");
      assert.ok(completed, text);
      assert.equal(JSON.parse(completed.data).error.type, "auth");
      assertClean(text, "the event stream");
      assertClean(logs, "the log");
    });
  }
});

/**
 * Passwords that spell a key, a value or a piece of JSON syntax of the answer
 * (`status`, `"status":"`, `rejected`) must neither break the JSON nor change
 * the outcome: the redactor works on each string value, not on the text.
 */
const TOKEN_PASSWORDS = [
  "status",
  "sent",
  "true",
  "type",
  "{",
  '"status":"',
  '","type":"',
  "rejected",
  "accepted",
  "failed",
];

/** What the server must never get passed on for `password`: each form of 6 characters or more. */
function secretForms(password: string): string[] {
  const b64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  return [
    password,
    encodeURIComponent(password),
    b64(password),
    b64(`\0${USER}\0${password}`),
  ].filter((form) => form.length >= 6);
}

/** Every string value of a parsed JSON document, with the key that holds it. */
function stringValues(value: unknown, key = ""): Array<[string, string]> {
  if (typeof value === "string") return [[key, value]];
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, item]) => stringValues(item, k));
}

/** The keys whose values are the answer's fixed vocabulary (they cannot carry a secret). */
const VOCABULARY_KEYS = new Set(["status", "type", "phase", "state"]);

function assertNoSecretValue(document: unknown, password: string, where: string): void {
  for (const [key, text] of stringValues(document)) {
    if (VOCABULARY_KEYS.has(key)) continue;
    for (const form of secretForms(password)) {
      assert.ok(!text.includes(form), `${where}: ${key} carries ${JSON.stringify(form)}: ${text}`);
    }
  }
}

/** A server that accepts AUTH and quotes the password back in its replies to RCPT and the data. */
async function appQuoting(password: string) {
  const quoted = `${password} ${btoa(`\0${USER}\0${password}`)}`;
  const server = await startFaultServer(smtpScript({
    capabilities: ["PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS", "AUTH PLAIN"],
    RCPT: async (conn, line) => {
      await conn.send(
        line.includes("nobody@") ? `550 5.1.1 no such user (${quoted})\r\n` : "250 2.1.5 Ok\r\n",
      );
    },
    message: `250 2.0.0 queued as ${quoted}\r\n`,
  }));
  return appFor(server, password, { store: true });
}

/** The frames of an SSE text, each checked to be `event`, one `data` line of JSON, `id`. */
function parseFrames(text: string): Array<{ event: string; data: unknown }> {
  const frames = text.split("\n\n").filter((frame) => frame !== "" && !frame.startsWith(":"));
  return frames.map((frame) => {
    const match = /^event: (status|completed)\ndata: (.*)\nid: \d+$/.exec(frame);
    assert.ok(match, `not a well-formed frame: ${JSON.stringify(frame)}`);
    return { event: match[1], data: JSON.parse(match[2]) };
  });
}

describe("a password that spells a piece of the JSON answer", () => {
  for (const password of TOKEN_PASSWORDS) {
    it(`${JSON.stringify(password)}: valid JSON bodies with the real outcome, no credential`, async () => {
      const app = await appQuoting(password);
      const { value: answers, logs } = await captureLogs(async () => {
        const sent = await app.request("/send", jsonPost(message, { apiKey: API_KEY }));
        const refused = await app.request(
          "/send",
          jsonPost({ ...message, to: "nobody@example.com" }, { apiKey: API_KEY }),
        );
        return [[sent.status, await sent.text()], [refused.status, await refused.text()]] as const;
      });
      const [[sentStatus, sentText], [refusedStatus, refusedText]] = answers;
      assert.equal(sentStatus, 200, sentText);
      const sent = JSON.parse(sentText);
      assert.equal(sent.status, "sent");
      assert.deepEqual(sent.accepted, ["bob@example.com"]);
      assert.match(sent.response, /^250 2\.0\.0 queued as /);
      assertNoSecretValue(sent, password, "the 200 body");

      assert.equal(refusedStatus, 422, refusedText);
      const refused = JSON.parse(refusedText);
      assert.equal(refused.status, "failed");
      assert.equal(refused.error.type, "rejected");
      assert.equal(refused.error.phase, "rcpt");
      assert.equal(refused.rejected[0].address, "nobody@example.com");
      assert.equal(refused.rejected[0].code, 550);
      assert.equal(refused.rejected[0].enhancedCode, "5.1.1");
      assertNoSecretValue(refused, password, "the 422 body");
      for (const form of secretForms(password).slice(3)) assert.ok(!logs.includes(form), logs);
    });

    it(`${JSON.stringify(password)}: well-formed SSE frames with the real outcome, no credential`, async () => {
      const app = await appQuoting(password);
      const { logs } = await captureLogs(async () => {
        await streamOne(app, password, { to: "bob@example.com", status: "sent" });
        await streamOne(app, password, {
          to: "nobody@example.com",
          status: "failed",
          type: "rejected",
        });
      });
      for (const form of secretForms(password).slice(3)) assert.ok(!logs.includes(form), logs);
    });

    it(`${JSON.stringify(password)}: an Idempotency-Key replay is valid JSON and SSE`, async () => {
      const app = await appQuoting(password);
      const refusal = { ...message, to: "nobody@example.com" };
      const keyed = (accept?: string) => {
        const init = jsonPost(refusal, { apiKey: API_KEY, accept });
        const headers = { ...init.headers as Record<string, string>, "Idempotency-Key": "k-1" };
        return app.request("/send", { ...init, headers });
      };
      const { logs } = await captureLogs(async () => {
        const first = await keyed();
        assert.equal(first.status, 422, await first.text());
        const again = await keyed();
        assert.equal(again.headers.get("Idempotent-Replayed"), "true");
        const body = JSON.parse(await again.text());
        assert.equal(body.status, "failed");
        assert.equal(body.error.type, "rejected");
        assert.equal(body.rejected[0].code, 550);
        assertNoSecretValue(body, password, "the replayed body");
        const stream = await keyed("text/event-stream");
        assert.equal(stream.headers.get("Idempotent-Replayed"), "true");
        const frames = parseFrames(await stream.text());
        assert.deepEqual(frames.map((frame) => frame.event), ["completed"]);
        assert.equal((frames[0].data as { status: string }).status, "failed");
        assertNoSecretValue(frames[0].data, password, "the replayed frame");
      });
      for (const form of secretForms(password).slice(3)) assert.ok(!logs.includes(form), logs);
    });
  }
});

/** Sends to `expected.to` over SSE; checks every frame and the outcome of `completed`. */
async function streamOne(
  app: Awaited<ReturnType<typeof appQuoting>>,
  password: string,
  expected: { to: string; status: string; type?: string },
): Promise<void> {
  const response = await app.request(
    "/send",
    jsonPost({ ...message, to: expected.to }, { apiKey: API_KEY, accept: "text/event-stream" }),
  );
  assert.equal(response.status, 200);
  const frames = parseFrames(await response.text());
  assert.ok(frames.some((frame) => frame.event === "status"));
  const completed = frames.filter((frame) => frame.event === "completed");
  assert.equal(completed.length, 1);
  const result = completed[0].data as { status: string; error?: { type: string } };
  assert.equal(result.status, expected.status);
  assert.equal(result.error?.type, expected.type);
  for (const frame of frames) assertNoSecretValue(frame.data, password, "an SSE frame");
}
