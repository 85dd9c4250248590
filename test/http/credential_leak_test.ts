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
  servers.push(server);
  const config = loadConfig({
    SMTP_URL: `smtp://${encodeURIComponent(USER)}:${
      encodeURIComponent(PASSWORD)
    }@127.0.0.1:${server.port}`,
    SMTP_CA_CERT: server.caCert,
    API_KEYS: API_KEY,
    MAIL_FROM: "App <app@example.com>",
  });
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
