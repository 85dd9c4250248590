/**
 * test/support/serve_process.ts: `deno serve functions/deno.ts` starts, answers
 * /health and exits on SIGTERM with its status; a server that cannot start
 * ends `startServe` with an error carrying its output.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startServe } from "./serve_process.ts";

describe("startServe", () => {
  it("starts the function, which answers /health, prints and exits on SIGTERM", async () => {
    const kvDir = await Deno.makeTempDir({ prefix: "edgemail-serve-process-" });
    try {
      const server = await startServe({
        SMTP_URL: "smtp://127.0.0.1:9?tls=none",
        API_KEYS: "serve-process-key",
        MAIL_FROM: "app@example.com",
        KV_PATH: `${kvDir}/kv.sqlite3`,
        LOG_FORMAT: "plain",
      });
      const response = await fetch(`${server.url}/health`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { status: "ok" });
      assert.ok(server.pid > 0);
      server.signal("SIGTERM");
      await server.untilOutput(/edgemail: shutting down/);
      const status = await server.exited;
      assert.equal(status.code, 0, server.output());
      // Signalling an ended process is a no-op, not an error.
      server.signal("SIGTERM");
    } finally {
      await Deno.remove(kvDir, { recursive: true });
    }
  });

  it("a server that cannot start: rejects with its output", async () => {
    // No SMTP_URL: functions/deno.ts prints the problem and exits 1 before listening.
    await assert.rejects(
      startServe({ API_KEYS: "serve-process-key" }),
      (error: Error) => {
        assert.match(error.message, /^the server did not start:/);
        assert.match(error.message, /edgemail cannot start\..*SMTP_URL/s);
        return true;
      },
    );
  });

  it("untilOutput rejects with the output when the process ends without printing the pattern", async () => {
    const server = await startServe({}, {
      // Answers /health once, then ends by itself.
      args: [
        "eval",
        `const s = Deno.serve({ hostname: "127.0.0.1", port: {port}, onListen() {} }, () => {
          queueMicrotask(() => s.shutdown());
          console.log("bye");
          return new Response("ok");
        });`,
      ],
    });
    await assert.rejects(
      server.untilOutput(/never printed/),
      /the server ended before printing \/never printed\/:\nbye/,
    );
    assert.equal((await server.exited).code, 0);
  });
});
