/**
 * Graceful shutdown (src/http/shutdown.ts): requests count as in flight until
 * their body is read; the drain waits for them within SHUTDOWN_TIMEOUT_MS and,
 * past it, closes the SMTP connections so that a message whose data was
 * written ends as unknown_outcome; no new connection opens afterwards.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  drainExitCode,
  GracefulShutdown,
  ShutdownConfigError,
  shutdownTimeoutMs,
} from "../../src/http/shutdown.ts";
import { SmtpError } from "../../src/smtp/errors.ts";
import type { SmtpSocket } from "../../src/socket/socket.ts";

describe("shutdownTimeoutMs", () => {
  it("defaults to 30 s and reads whole milliseconds", () => {
    assert.equal(shutdownTimeoutMs({}), DEFAULT_SHUTDOWN_TIMEOUT_MS);
    assert.equal(DEFAULT_SHUTDOWN_TIMEOUT_MS, 30_000);
    assert.equal(shutdownTimeoutMs({ SHUTDOWN_TIMEOUT_MS: "" }), 30_000);
    assert.equal(shutdownTimeoutMs({ SHUTDOWN_TIMEOUT_MS: "0" }), 0);
    assert.equal(shutdownTimeoutMs({ SHUTDOWN_TIMEOUT_MS: " 1500 " }), 1500);
  });

  for (const value of ["-1", "1.5", "30s", "abc", "2147483648", "99999999999"]) {
    it(`refuses ${JSON.stringify(value)}, naming the variable`, () => {
      assert.throws(() => shutdownTimeoutMs({ SHUTDOWN_TIMEOUT_MS: value }), (error) => {
        assert.ok(error instanceof ShutdownConfigError);
        assert.match(error.message, /^SHUTDOWN_TIMEOUT_MS must be a whole number of milliseconds/);
        return true;
      });
    });
  }
});

/** A socket whose pending read ends (null) when it is closed, like a real one. */
function closableSocket(): SmtpSocket & { closed: boolean } {
  let wake: ((value: null) => void) | undefined;
  const socket = {
    secure: false,
    closed: false,
    read: () => new Promise<Uint8Array | null>((resolve) => wake = resolve),
    write: () => Promise.resolve(),
    startTls: () => Promise.resolve(closableSocket()),
    close: () => {
      socket.closed = true;
      wake?.(null);
      return Promise.resolve();
    },
  };
  return socket;
}

describe("GracefulShutdown", () => {
  const quiet = { log: () => {} };

  it("counts a request until its response body has been read to its end", async () => {
    const shutdown = new GracefulShutdown(quiet);
    let push: ((text: string | null) => void) | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (text) => {
          if (text === null) controller.close();
          else controller.enqueue(new TextEncoder().encode(text));
        };
      },
    });
    const handler = shutdown.wrapFetch(() => new Response(body, { status: 201 }));
    const response = await handler(new Request("http://x/"));
    assert.equal(response.status, 201);
    assert.equal(shutdown.inFlight, 1);
    push!("event: a\n\n");
    push!(null);
    assert.equal(await response.text(), "event: a\n\n");
    assert.equal(shutdown.inFlight, 0);
  });

  it("counts a cancelled body, a bodiless response and a failed handler as ended", async () => {
    const shutdown = new GracefulShutdown(quiet);
    const streaming = shutdown.wrapFetch(() => new Response(new ReadableStream()));
    const response = await streaming(new Request("http://x/"));
    assert.equal(shutdown.inFlight, 1);
    await response.body!.cancel();
    assert.equal(shutdown.inFlight, 0);
    await shutdown.wrapFetch(() => new Response(null, { status: 204 }))(new Request("http://x/"));
    assert.equal(shutdown.inFlight, 0);
    const failing = shutdown.wrapFetch(() => Promise.reject(new Error("boom")));
    await assert.rejects(failing(new Request("http://x/")), /boom/);
    assert.equal(shutdown.inFlight, 0);
  });

  it("drains at once when nothing is in flight", async () => {
    const drain = await new GracefulShutdown(quiet).drain();
    assert.equal(drain, "drained");
    assert.equal(drainExitCode(drain), 0);
  });

  it("waits for the request in flight, within the bound", async () => {
    const shutdown = new GracefulShutdown({ ...quiet, timeoutMs: 60_000 });
    let finish: (() => void) | undefined;
    const handler = shutdown.wrapFetch(async () => {
      await new Promise<void>((resolve) => finish = resolve);
      return new Response("done");
    });
    const answered = handler(new Request("http://x/")).then((response) => response.text());
    const drained = shutdown.drain();
    assert.equal(shutdown.draining, true);
    assert.equal(shutdown.drain(), drained, "one drain, however often it is asked for");
    finish!();
    assert.equal(await answered, "done");
    assert.equal(await drained, "drained");
  });

  it("waits for settle (sends that outlived their request, QUIT) once no request is in flight", async () => {
    const shutdown = new GracefulShutdown({ ...quiet, timeoutMs: 60_000 });
    let settled: (() => void) | undefined;
    let asked = false;
    const drained = shutdown.drain({
      settle: () => {
        asked = true;
        return new Promise<void>((resolve) => settled = resolve);
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(asked, true);
    settled!();
    assert.equal(await drained, "drained");
  });

  it("at the bound, closes the SMTP connections under a settle that is still running", async () => {
    const lines: string[] = [];
    const shutdown = new GracefulShutdown({ timeoutMs: 10, log: (line) => lines.push(line) });
    const socket = closableSocket();
    const wrapped = await shutdown.wrapConnect(() => Promise.resolve(socket))({
      hostname: "mx.test",
      port: 25,
      tls: false,
    });
    // A send whose HTTP client went away, waiting for the reply to its data.
    const send = wrapped.read().then((reply) => reply === null ? "unknown_outcome" : "sent");
    const drained = shutdown.drain({ settle: () => send.then(() => {}) });
    assert.equal(await drained, "forced");
    assert.equal(socket.closed, true);
    assert.equal(await send, "unknown_outcome");
    assert.match(lines.join("\n"), /SMTP work still running after 10 ms/);
  });

  it("at the bound, closes the SMTP connections and opens no new one", async () => {
    const lines: string[] = [];
    const shutdown = new GracefulShutdown({ timeoutMs: 10, log: (line) => lines.push(line) });
    const socket = closableSocket();
    const connect = shutdown.wrapConnect(() => Promise.resolve(socket));
    // A request waiting for the server's reply, as a send after its data does.
    const handler = shutdown.wrapFetch(async () => {
      const wrapped = await connect({ hostname: "mx.test", port: 25, tls: false });
      const reply = await wrapped.read();
      return new Response(reply === null ? "unknown_outcome" : "sent");
    });
    const answered = handler(new Request("http://x/")).then((response) => response.text());
    await new Promise((resolve) => setTimeout(resolve, 0));
    const drain = await shutdown.drain();
    assert.equal(drain, "forced");
    // Work was cut: a process manager must see a failure.
    assert.equal(drainExitCode(drain), 1);
    assert.match(lines.at(-1)!, /shutdown forced at the bound; exit status 1/);
    assert.equal(socket.closed, true);
    assert.equal(await answered, "unknown_outcome");
    // A connection failure before any data (the key is released), reported as it is.
    await assert.rejects(connect({ hostname: "mx.test", port: 25, tls: false }), (error) => {
      assert.ok(error instanceof SmtpError);
      assert.equal(error.type, "connection");
      assert.equal(error.phase, "connect");
      assert.match(error.message, /^edgemail is shutting down: .*nothing was sent/);
      return true;
    });
    assert.match(lines.join("\n"), /still in flight after 10 ms/);
  });

  it("at the bound, abandons a connection still being opened instead of waiting for it", async () => {
    const shutdown = new GracefulShutdown({ ...quiet, timeoutMs: 10 });
    const late = closableSocket();
    let opened: ((socket: SmtpSocket) => void) | undefined;
    let adapterSignal: AbortSignal | undefined;
    // A TLS handshake that hangs until the test lets it complete.
    const connect = shutdown.wrapConnect((options) => {
      adapterSignal = options.signal;
      return new Promise((resolve) => opened = resolve);
    });
    const handler = shutdown.wrapFetch(async () => {
      try {
        await connect({ hostname: "mx.test", port: 465, tls: true });
        return new Response("connected");
      } catch (error) {
        return new Response((error as Error).message);
      }
    });
    const answered = handler(new Request("http://x/")).then((response) => response.text());
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(await shutdown.drain(), "forced");
    assert.match(await answered, /shutting down/);
    assert.equal(adapterSignal?.aborted, true, "the adapter is told to close what it half opened");
    opened!(late);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(late.closed, true, "a socket that arrives after the bound is closed");
  });

  it("tracks the TLS socket after STARTTLS instead of the plain one", async () => {
    const shutdown = new GracefulShutdown({ ...quiet, timeoutMs: 0 });
    const plain = closableSocket();
    const tls = closableSocket();
    plain.startTls = () => Promise.resolve(tls);
    const wrapped = await shutdown.wrapConnect(() => Promise.resolve(plain))({
      hostname: "mx.test",
      port: 25,
      tls: false,
    });
    await wrapped.startTls({ hostname: "mx.test" });
    const handler = shutdown.wrapFetch(() => new Response(new ReadableStream()));
    const response = await handler(new Request("http://x/"));
    const drained = shutdown.drain();
    await new Promise((resolve) => setTimeout(resolve, 0));
    await response.body!.cancel();
    assert.equal(await drained, "forced");
    assert.equal(tls.closed, true);
    assert.equal(plain.closed, false, "the plain socket belongs to the TLS one now");
  });
});
