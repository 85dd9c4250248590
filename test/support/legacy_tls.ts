/**
 * An SMTP peer that offers only TLS 1.0/1.1, for the client's refusal of old
 * TLS: `legacy_tls_peer.mjs` under Node (whose OpenSSL still speaks TLS 1.1;
 * Deno's `node:tls` cannot), with a certificate of the generated test CA, so
 * that the version is the only thing wrong with it.
 *
 * @example
 * ```ts
 * const server = await startLegacyTlsServer({ implicit: false });
 * try {
 *   // … send with tls "starttls" and caCerts [server.caCert]: a `tls` error …
 *   assert.match((await server.events()).tlsError ?? "", /version/);
 * } finally {
 *   await server.close();
 * }
 * ```
 *
 * @module
 */

import { generateTestCertificates } from "../../src/dev/test_ca.ts";
import { guard } from "./guard.ts";

const PEER = new URL("./legacy_tls_peer.mjs", import.meta.url);
const NODE = "node";

/** What the peer saw on its connections. */
export interface LegacyTlsEvents {
  /** The verbs of the plaintext commands received, in order. */
  lines: string[];
  /** The TLS version of a handshake that completed (none should). */
  secure?: string;
  /** The peer's own error for the handshake that failed. */
  tlsError?: string;
}

/** A running legacy TLS peer. */
export interface LegacyTlsServer {
  /** Always `127.0.0.1`. */
  host: "127.0.0.1";
  /** The listening port. */
  port: number;
  /** PEM of the CA that signed its certificate (for `localhost`). */
  caCert: string;
  /** What the peer saw, once a handshake has ended one way or the other. */
  events(): Promise<LegacyTlsEvents>;
  /** Stops the peer process. */
  close(): Promise<void>;
}

/** Why the legacy TLS peer cannot run here (no Node), or `undefined` when it can. */
export function legacyTlsUnavailable(): string | undefined {
  try {
    const { success } = new Deno.Command(NODE, { args: ["--version"], stdout: "null" })
      .outputSync();
    return success ? undefined : "Node (for a TLS 1.1-only peer) does not run here.";
  } catch {
    return "Node (for a TLS 1.1-only peer) is not installed.";
  }
}

/** Starts the peer: SMTP with STARTTLS, or implicit TLS when `implicit`. */
export async function startLegacyTlsServer(
  options: { implicit: boolean },
): Promise<LegacyTlsServer> {
  const { caCert, cert, key } = await generateTestCertificates();
  const child = new Deno.Command(NODE, {
    args: [PEER.pathname, options.implicit ? "implicit" : "starttls"],
    clearEnv: true,
    env: { LEGACY_CERT: cert, LEGACY_KEY: key, PATH: Deno.env.get("PATH") ?? "" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const seen: LegacyTlsEvents = { lines: [] };
  let notify: () => void = () => {};
  let port: number | undefined;
  const reading = (async () => {
    let pending = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += text;
      for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
        const event = JSON.parse(pending.slice(0, end));
        pending = pending.slice(end + 1);
        if (typeof event.port === "number") port = event.port;
        if (typeof event.line === "string") seen.lines.push(event.line);
        if (typeof event.secure === "string") seen.secure = event.secure;
        if (typeof event.tlsError === "string") seen.tlsError = event.tlsError;
        notify();
      }
    }
    notify();
  })();
  const until = (done: () => boolean, what: string): Promise<void> =>
    guard(
      new Promise<void>((resolve) => {
        const check = () => {
          if (done()) resolve();
        };
        const previous = notify;
        notify = () => {
          previous();
          check();
        };
        check();
      }),
      what,
    );
  try {
    await until(() => port !== undefined, "the legacy TLS peer's start");
  } catch (error) {
    child.kill("SIGTERM");
    await child.status;
    throw error;
  }
  let closed = false;
  return {
    host: "127.0.0.1",
    port: port!,
    caCert,
    async events() {
      await until(
        () => seen.secure !== undefined || seen.tlsError !== undefined,
        "the legacy TLS peer's handshake",
      );
      return { ...seen, lines: [...seen.lines] };
    },
    async close() {
      if (closed) return;
      closed = true;
      child.kill("SIGTERM");
      await child.status;
      await reading;
    },
  };
}
