/**
 * `deno task send` as a user runs it: the task's own command (with its
 * permissions) as a subprocess, configured only through its environment,
 * sending to npm:smtp-server over STARTTLS, or through the real function
 * with `--endpoint`; Ctrl-C against the scripted fault server, which holds
 * its RCPT reply.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type FunctionServer, startFunction } from "../support/function_server.ts";
import { guard } from "../support/guard.ts";
import { type HeldRcptServer, startHeldRcptServer } from "../support/held_rcpt.ts";
import { startSmtpServer, type TestSmtpServer } from "../support/smtp_server.ts";
import { spawnDeno } from "../support/subprocess.ts";

const API_KEY = "cli-key-0a1b2c3d4e";
const HANG_GUARD_MS = 30_000;
const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
/** `deno task send` without `deno` itself: the task's flags and entry point. */
const SEND_TASK: string[] = config.tasks.send.split(/\s+/).slice(1);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the send task's command with `args` and exactly `env`. */
async function send(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawnDeno([...SEND_TASK, ...args], env);
  const { code, stdout, stderr } = await guard(child.output(), "deno task send", {
    ms: HANG_GUARD_MS,
  });
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

describe("deno task send", () => {
  let smtp: TestSmtpServer;
  let fn: FunctionServer;
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    smtp = await startSmtpServer({
      requireTls: true,
      rejectRecipients: { "nobody@example.com": { code: 550, message: "5.1.1 No such user" } },
    });
    env = {
      SMTP_URL: `smtp://localhost:${smtp.port}`,
      SMTP_CA_CERT: smtp.caCert,
      MAIL_FROM: "App <app@example.com>",
    };
    fn = await startFunction({ ...env, API_KEYS: API_KEY });
    dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/body.txt`, "Text from a file, Grüße.\n");
    await Deno.writeTextFile(`${dir}/body.html`, "<p>HTML from a file</p>\n");
    await Deno.writeFile(`${dir}/report.pdf`, new Uint8Array([0x25, 0x50, 0x44, 0x46, 0, 255]));
  });

  after(async () => {
    await fn?.stop();
    await smtp?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  it("--help lists every flag and exits 0", async () => {
    const run = await send(["--help"]);
    assert.equal(run.code, 0, run.stderr);
    for (
      const flag of [
        "--to",
        "--cc",
        "--bcc",
        "--from",
        "--subject",
        "--text",
        "--text-file",
        "--html-file",
        "--attach",
        "--header",
        "--stream",
        "--json",
        "--endpoint",
        "--api-key",
        "--help",
      ]
    ) {
      assert.match(run.stdout, new RegExp(`^\\s+(-h, )?${flag} `, "m"), `${flag} is not listed`);
    }
  });

  it("sends over SMTP with files, attachment, headers and --stream; exit 0", async () => {
    const before = smtp.messages.length;
    const run = await send([
      "--to",
      "bob@example.com",
      "--cc",
      "Cy <cy@example.com>",
      "--bcc",
      "dee@example.com",
      "--subject",
      "CLI test",
      "--text-file",
      `${dir}/body.txt`,
      "--html-file",
      `${dir}/body.html`,
      "--attach",
      `${dir}/report.pdf`,
      "--header",
      "X-Campaign: cli-42",
      "--stream",
    ], env);
    assert.equal(run.code, 0, run.stderr);
    const [received] = (await smtp.waitForMessages(before + 1)).slice(before);
    assert.equal(received.from, "app@example.com");
    assert.deepEqual(received.to, ["bob@example.com", "cy@example.com", "dee@example.com"]);
    assert.ok(received.secure, "not sent over STARTTLS");
    assert.match(received.text, /^Subject: CLI test\r$/m);
    assert.match(received.text, /^X-Campaign: cli-42\r$/m);
    assert.doesNotMatch(received.text, /^Bcc:/im);
    assert.match(received.text, /Content-Type: application\/pdf; name="?report\.pdf"?/);
    assert.ok(received.text.includes("JVBERgD/"), "the attachment's base64 is missing");
    assert.ok(received.text.includes("HTML from a file"));
    const messageId = received.text.match(/^Message-ID: (<[^>]+>)\r$/m)![1];
    assert.ok(run.stdout.includes(`sent ${messageId}`), run.stdout);
    // --stream: one line per protocol step, with the reply code.
    assert.match(run.stdout, /^\s+\d+ ms\s+rcpt\s+done\s+250\s+bob@example\.com/m);
    assert.match(run.stdout, /^\s+\d+ ms\s+starttls\s+done\s+220/m);
    assert.match(run.stdout, /^\s+\d+ ms\s+message\s+done\s+250/m);
  });

  it("--json prints the Result as JSON on stdout", async () => {
    const run = await send(
      ["--to", "bob@example.com", "--subject", "JSON", "--text", "Hi", "--json", "--stream"],
      env,
    );
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.status, "sent");
    assert.deepEqual(result.accepted, ["bob@example.com"]);
    assert.match(result.messageId, /^<.+@.+>$/);
    // With --json the steps go to stderr, so stdout stays one JSON document.
    assert.match(run.stderr, /rcpt\s+done\s+250/);
  });

  it("a refused recipient exits 1 with the error type and message on stderr", async () => {
    const before = smtp.messages.length;
    const run = await send(
      ["--to", "nobody@example.com", "--subject", "No", "--text", "Hi", "--json"],
      env,
    );
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^failed: rejected \(rcpt 550\): /m);
    assert.match(run.stderr, /nobody@example\.com: 550/);
    const result = JSON.parse(run.stdout);
    assert.equal(result.status, "failed");
    assert.equal(result.error.type, "rejected");
    assert.equal(smtp.messages.length, before);
  });

  it("a missing --to exits 2 naming the flag", async () => {
    const run = await send(["--subject", "Hi", "--text", "Hi"], env);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--to/);
    assert.equal(run.stdout, "");
  });

  it("an unknown flag, a missing value or a bad address exits 2 naming the flag", async () => {
    const base = ["--to", "bob@example.com", "--subject", "Hi"];
    const unknown = await send([...base, "--text", "Hi", "--colour", "red"], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown flag --colour/);
    const missing = await send([...base, "--text"], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--text needs a value/);
    const bad = await send(["--to", "not an address", "--subject", "Hi", "--text", "Hi"], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--to \(to(\[0\])?\): /);
    const file = await send([...base, "--attach", `${dir}/missing.pdf`], env);
    assert.equal(file.code, 2);
    assert.match(file.stderr, /--attach: cannot read/);
  });

  it("bad or missing configuration exits 2 naming the variable", async () => {
    const args = ["--to", "bob@example.com", "--subject", "Hi", "--text", "Hi"];
    const none = await send(args, {});
    assert.equal(none.code, 2);
    assert.match(none.stderr, /SMTP_URL/);
    const bad = await send(args, { ...env, SMTP_URL: "http://example.com" });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /SMTP_URL must start with smtp:\/\//);
    const noSender = await send(args, { SMTP_URL: env.SMTP_URL, SMTP_CA_CERT: env.SMTP_CA_CERT });
    assert.equal(noSender.code, 2);
    assert.match(noSender.stderr, /--from or set MAIL_FROM/);
  });

  it("--endpoint sends through the running function, with --api-key", async () => {
    const before = smtp.messages.length;
    const run = await send([
      "--endpoint",
      fn.url,
      "--api-key",
      API_KEY,
      "--to",
      "bob@example.com",
      "--subject",
      "Through the function",
      "--text",
      "Hi",
      "--stream",
      "--json",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.status, "sent");
    const [received] = (await smtp.waitForMessages(before + 1)).slice(before);
    assert.ok(received.text.includes(`Message-ID: ${result.messageId}`));
    assert.match(run.stderr, /rcpt\s+done\s+250/);
  });

  it("--endpoint: a refused recipient exits 1, a wrong key exits 1 naming unauthorized", async () => {
    const args = ["--endpoint", fn.url, "--subject", "Hi", "--text", "Hi"];
    const refused = await send([...args, "--api-key", API_KEY, "--to", "nobody@example.com"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /failed: rejected/);
    const wrongKey = await send([...args, "--api-key", "wrong", "--to", "bob@example.com"]);
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /unauthorized/);
  });
});

describe("deno task send: Ctrl-C", () => {
  let held: HeldRcptServer;

  before(async () => {
    held = await startHeldRcptServer();
  });

  after(async () => {
    await held?.close().catch(() => {});
  });

  it("cancels the send: exit 1, cancelled on stderr, nothing delivered", async () => {
    const rcpt = held.nextRcpt();
    const child = spawnDeno(
      [...SEND_TASK, "--to", "bob@example.com", "--subject", "Hi", "--text", "never"],
      held.env,
    );
    const output = child.output();
    await guard(rcpt.reached, "the RCPT command", { ms: HANG_GUARD_MS });
    child.kill("SIGINT");
    const { code, stderr } = await guard(output, "the cancelled send", { ms: HANG_GUARD_MS });
    const text = new TextDecoder().decode(stderr);
    assert.equal(code, 1, text);
    assert.match(text, /^cancelled: cancelled/m);
    assert.equal(held.delivered, 0);
    assert.ok(!held.transcript.includes("never"), "the message content was sent");
  });
});
