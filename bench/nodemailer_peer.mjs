/**
 * The nodemailer side of `deno task bench`, runnable by Node and by Deno:
 *   node --expose-gc bench/nodemailer_peer.mjs '<spec>'
 *   deno run -A --v8-flags=--expose-gc bench/nodemailer_peer.mjs '<spec>'
 * nodemailer's SMTP pool (`pool: true`) with `spec.connections` connections
 * (default 1), as its users configure it. `spec.noDelay` hands it sockets with
 * TCP no-delay through its `getSocket` hook (used only where said: Node's
 * default Nagle + the server's delayed ACK stall every message ≈ 40 ms, which
 * would stretch a CPU measurement without using CPU). Prints one JSON line;
 * see peer_common.mjs.
 *
 * @module
 */

import net from "node:net";
import process from "node:process";
import nodemailer from "nodemailer";
import { runScenario } from "./peer_common.mjs";

const spec = JSON.parse(process.argv.at(-1));

/** nodemailer's `getSocket` hook: a connected plain socket with no-delay set. */
function noDelaySocket(options, callback) {
  const socket = net.connect(options.port, options.host, () => {
    socket.setNoDelay(true);
    callback(null, { connection: socket });
  });
  socket.once("error", (error) => callback(error));
}

const transport = nodemailer.createTransport({
  host: spec.host,
  port: spec.port,
  secure: false,
  ignoreTLS: spec.tls !== "starttls",
  requireTLS: spec.tls === "starttls",
  tls: spec.caCert ? { ca: [spec.caCert], servername: "localhost" } : undefined,
  auth: spec.auth ? { user: spec.auth.username, pass: spec.auth.password } : undefined,
  pool: true,
  maxConnections: spec.connections ?? 1,
  maxMessages: Infinity,
  ...(spec.noDelay ? { getSocket: noDelaySocket } : {}),
});

const peer = {
  async send(message) {
    const { attachments, ...rest } = message;
    await transport.sendMail({
      ...rest,
      attachments: attachments?.map((a) => ({ ...a, encoding: "base64" })),
    });
  },
  close() {
    transport.close();
    return Promise.resolve();
  },
};

console.log(JSON.stringify(await runScenario(peer, spec)));
