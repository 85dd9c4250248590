/**
 * `deno task dev` as a new user runs it: no configuration at all, then one
 * POST /send, and the message is in the outbox. Each run uses its own outbox
 * folder and free ports (`PORT=0`, `DEV_SMTP_PORT=0`, read back from the
 * start-up line), so it never collides with a developer's running dev server.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnDeno } from "../support/subprocess.ts";

const MAIN = new URL("../../src/dev/main.ts", import.meta.url);
// Long enough for a first compile on a slow machine; only a guard against hanging.
const START_DEADLINE_MS = 120_000;

const EMBEDDED_LINE =
  /^edgemail dev: listening on (http:\/\/127\.0\.0\.1:(\d+)) — no SMTP configured, mail goes to the embedded server 127\.0\.0\.1:(\d+) and is saved in (.+)\/ \(GET \/dev\/outbox\); pages on http:\/\/localhost:\* and http:\/\/127\.0\.0\.1:\* may call it \(CORS_ORIGINS overrides\)$/;

interface DevProcess {
  child: Deno.ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first stdout line matching `pattern`; rejects if the process ends first. */
  waitForLine(pattern: RegExp): Promise<RegExpExecArray>;
  /** Resolves when the process has ended, with its exit code and stderr. */
  ended: Promise<{ code: number; stderr: string }>;
}

/** Runs `src/dev/main.ts` with only `env` (plus what Deno itself needs) in its environment. */
function spawnDev(env: Record<string, string>): DevProcess {
  const child = spawnDeno(["run", "-A", "--unstable-no-legacy-abort", MAIN.pathname], env);

  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  const stdoutDone = (async () => {
    let pending = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf("\n")) !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        lines.push(line);
        for (const waiter of [...waiters]) {
          const match = waiter.pattern.exec(line);
          if (match) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(match);
          }
        }
      }
    }
  })();
  const stderrText = new Response(child.stderr).text();
  const ended = (async () => {
    const [{ code }, stderr] = await Promise.all([child.status, stderrText, stdoutDone]);
    return { code, stderr };
  })();

  return {
    child,
    lines,
    ended,
    waitForLine(pattern) {
      const seen = lines.map((line) => pattern.exec(line)).find((match) => match !== null);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`no line matching ${pattern} within ${START_DEADLINE_MS} ms`));
        }, START_DEADLINE_MS);
        waiters.push({
          pattern,
          resolve: (match) => {
            clearTimeout(timer);
            resolve(match);
          },
        });
        ended.then(({ code, stderr }) => {
          clearTimeout(timer);
          reject(
            new Error(`dev server ended (exit ${code}) before printing ${pattern}:\n${stderr}`),
          );
        });
      });
    },
  };
}

async function stop(dev: DevProcess): Promise<{ code: number; stderr: string }> {
  try {
    dev.child.kill("SIGTERM");
  } catch {
    // Already ended.
  }
  return await dev.ended;
}

async function emlFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".eml") && !entry.name.startsWith(".")) names.push(entry.name);
  }
  return names;
}

describe("deno task dev with no SMTP configuration", () => {
  let outbox: string;
  let dev: DevProcess;
  let base: string;
  let smtpPort: number;

  before(async () => {
    outbox = await Deno.makeTempDir({ prefix: "edgemail-dev-outbox-" });
    dev = spawnDev({ PORT: "0", DEV_SMTP_PORT: "0", EDGEMAIL_OUTBOX_DIR: outbox });
    const match = await dev.waitForLine(EMBEDDED_LINE);
    base = match[1];
    smtpPort = Number(match[3]);
    assert.equal(match[4], outbox);
  });

  after(async () => {
    await stop(dev);
    await Deno.remove(outbox, { recursive: true });
  });

  it("prints one start-up line naming the mode, the embedded server and the outbox", () => {
    assert.equal(dev.lines.filter((line) => line.startsWith("edgemail dev: listening")).length, 1);
    assert.ok(smtpPort > 0 && smtpPort !== Number(new URL(base).port));
  });

  it("delivers a POST /send to the outbox, listed and readable at /dev/outbox", async () => {
    const subject = `Hello ${crypto.randomUUID()}`;
    const response = await fetch(`${base}/send`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ to: "bob@example.com", subject, text: "It works." }),
    });
    const result = await response.json();
    assert.equal(response.status, 200, JSON.stringify(result));
    assert.equal(result.status, "sent");
    assert.deepEqual(result.accepted, ["bob@example.com"]);

    const files = await emlFiles(outbox);
    assert.equal(files.length, 1);
    const stored = await Deno.readFile(`${outbox}/${files[0]}`);

    const listing = await fetch(`${base}/dev/outbox`);
    assert.equal(listing.status, 200);
    const entries = await listing.json();
    assert.equal(entries.length, 1);
    assert.equal(entries[0].subject, subject);
    assert.equal(entries[0].from, "edgemail dev <dev@localhost>");
    assert.deepEqual(entries[0].to, ["bob@example.com"]);
    assert.equal(entries[0].size, stored.length);
    assert.ok(files[0].endsWith(`-${entries[0].id}.eml`));

    const raw = await fetch(`${base}/dev/outbox/${entries[0].id}`);
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get("content-type"), "message/rfc822");
    const bytes = new Uint8Array(await raw.arrayBuffer());
    assert.deepEqual(bytes, stored);
    assert.ok(new TextDecoder().decode(bytes).includes(result.messageId));
  });

  it("answers 404 JSON for an unknown outbox id and for unknown routes", async () => {
    const unknown = await fetch(`${base}/dev/outbox/0000000000`);
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.type, "not_found");
    const route = await fetch(`${base}/no-such-route`);
    assert.equal(route.status, 404);
    assert.match(route.headers.get("content-type") ?? "", /^application\/json/);
    await route.body?.cancel();
  });
});

describe("deno task dev with SMTP settings", () => {
  it("says where mail goes without the password and starts no embedded server", async () => {
    const password = `pw-${crypto.randomUUID()}`;
    const dev = spawnDev({
      PORT: "0",
      SMTP_URL: `smtps://ann:${password}@127.0.0.1:4650`,
      ALLOWED_TO: "@example.com",
    });
    try {
      const match = await dev.waitForLine(
        /^edgemail dev: listening on (http:\/\/127\.0\.0\.1:\d+) — (.*)$/,
      );
      assert.match(match[2], /127\.0\.0\.1:4650/);
      assert.match(match[2], /implicit/);
      assert.doesNotMatch(match[2], /embedded server 127|\.outbox/);
      const outbox = await fetch(`${match[1]}/dev/outbox`);
      assert.equal(outbox.status, 404);
      await outbox.body?.cancel();
      // ALLOWED_TO bounds where a page can send, so pages on this machine may call.
      assert.match(
        match[2],
        /pages on http:\/\/localhost:\* and http:\/\/127\.0\.0\.1:\* may call/,
      );
      assert.equal(
        await preflightOrigin(match[1], "http://localhost:5173"),
        "http://localhost:5173",
      );
    } finally {
      const { stderr } = await stop(dev);
      assert.ok(!dev.lines.join("\n").includes(password) && !stderr.includes(password));
    }
  });

  it("lets no page call without ALLOWED_TO, and says which variable to set", async () => {
    const dev = spawnDev({
      PORT: "0",
      SMTP_URL: "smtp://127.0.0.1:2599",
      API_KEYS: "dev-key-0123456789abcdef",
    });
    try {
      const match = await dev.waitForLine(
        /^edgemail dev: listening on (http:\/\/127\.0\.0\.1:\d+) — (.*)$/,
      );
      assert.match(match[2], /no browser page may call it: set ALLOWED_TO/);
      assert.equal(await preflightOrigin(match[1], "http://localhost:5173"), null);
    } finally {
      await stop(dev);
    }
  });
});

/** The Access-Control-Allow-Origin a preflight from `origin` gets (null: refused). */
async function preflightOrigin(base: string, origin: string): Promise<string | null> {
  const response = await fetch(`${base}/send`, {
    method: "OPTIONS",
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "content-type",
    },
  });
  await response.body?.cancel();
  return response.headers.get("access-control-allow-origin");
}

describe("deno task dev with a bad configuration", () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ["PORT", { PORT: "eighty" }, /PORT/],
    ["SMTP_PORT without SMTP_HOST", { SMTP_PORT: "587" }, /SMTP_PORT.*SMTP_HOST/],
    ["a bad SMTP_URL", { SMTP_URL: "ftp://secret-host-name" }, /SMTP_URL/],
    // Only the embedded server may relay for anyone; a real one needs keys or ALLOWED_TO.
    ["a real SMTP server left open", { SMTP_URL: "smtp://relay-host.example:2599" }, /open relay/i],
  ];
  for (const [name, env, expected] of cases) {
    it(`stops with exit code 1 and names the problem: ${name}`, async () => {
      const dev = spawnDev({ DEV_SMTP_PORT: "0", PORT: "0", ...env });
      const { code, stderr } = await dev.ended;
      assert.equal(code, 1);
      assert.match(stderr, expected);
      for (const value of Object.values(env)) assert.ok(!stderr.includes(value), "no value echoed");
      assert.equal(dev.lines.filter((line) => line.includes("listening")).length, 0);
    });
  }
});

describe("deno task dev shutdown", () => {
  it("exits 0 on SIGTERM and frees its ports", async () => {
    const outbox = await Deno.makeTempDir({ prefix: "edgemail-dev-outbox-" });
    try {
      const dev = spawnDev({ PORT: "0", DEV_SMTP_PORT: "0", EDGEMAIL_OUTBOX_DIR: outbox });
      const match = await dev.waitForLine(EMBEDDED_LINE);
      const { code } = await stop(dev);
      assert.equal(code, 0);
      for (const port of [Number(new URL(match[1]).port), Number(match[3])]) {
        await assert.rejects(
          Deno.connect({ hostname: "127.0.0.1", port }),
          Deno.errors.ConnectionRefused,
        );
      }
    } finally {
      await Deno.remove(outbox, { recursive: true });
    }
  });
});
