/**
 * The client side of tests against the scripted fault server: a server whose
 * connections are kept (for what each one received), an `SmtpClient` for it,
 * a send expected to fail, whether anything was delivered, and queued runs
 * of numbered messages for the pipelining faults.
 *
 * @example
 * ```ts
 * await withServer({ MAIL: "451 4.3.0 Try later" }, async (server) => {
 *   const error = await sendExpectingError(faultClient(server, { tls: "none" }));
 *   assert.equal(error.type, "transient");
 *   assert.equal(await delivered(server), false);
 * });
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  denoConnect,
  type MessageInput,
  SmtpClient,
  type SmtpClientOptions,
  SmtpError,
} from "../../src/mod.ts";
import type { Connect, SmtpSocket } from "../../src/socket/socket.ts";
import {
  type FaultConnection,
  type FaultServer,
  type FaultServerOptions,
  smtpScript,
  type SmtpScriptOptions,
  startFaultServer,
} from "./fault_server.ts";
import { guard } from "./guard.ts";

/** The message most fault tests send: two recipients, a line that needs dot-stuffing. */
export const FAULT_MESSAGE = {
  from: "ann@example.com",
  to: ["bob@example.org", "cy@example.org"],
  subject: "Fault test",
  text: "Hello\r\n.leading dot\r\n",
};

/** The connections each server started by {@linkcode startScripted} accepted. */
const accepted = new WeakMap<FaultServer, FaultConnection[]>();

/** The connections `server` (started by {@linkcode startScripted}) accepted, in order. */
export function connectionsOf(server: FaultServer): FaultConnection[] {
  return accepted.get(server) ?? [];
}

/**
 * A fault server playing `script` on every connection (or `script(index)` on
 * connection `index`), whose connections {@linkcode delivered} can wait for.
 */
export async function startScripted(
  script: SmtpScriptOptions | ((index: number) => SmtpScriptOptions),
  options: FaultServerOptions = {},
): Promise<FaultServer> {
  const connections: FaultConnection[] = [];
  const shared = typeof script === "function" ? undefined : smtpScript(script);
  const server = await startFaultServer((conn) => {
    connections.push(conn);
    const handler = shared ??
      smtpScript((script as (index: number) => SmtpScriptOptions)(connections.length - 1));
    return handler(conn);
  }, options);
  accepted.set(server, connections);
  return server;
}

/** Runs `run` against a server playing `script`; always closes it (rethrowing script errors). */
export async function withServer(
  script: SmtpScriptOptions | ((index: number) => SmtpScriptOptions),
  run: (server: FaultServer) => Promise<void>,
  options: FaultServerOptions = {},
): Promise<void> {
  const server = await startScripted(script, options);
  try {
    await run(server);
  } finally {
    await server.close();
  }
}

/** A client for `server`: host `localhost`, trusting its CA, 2 s deadlines, unless overridden. */
export function faultClient(
  server: Pick<FaultServer, "port" | "caCert">,
  options: Partial<SmtpClientOptions> = {},
): SmtpClient {
  return new SmtpClient({
    host: "localhost",
    port: server.port,
    caCerts: [server.caCert],
    timeoutMs: 2000,
    ...options,
  });
}

/** The calls of a socket a test may take over: the others pass straight through. */
export type SocketOverrides = Partial<Pick<SmtpSocket, "read" | "write" | "close">>;

/**
 * A socket factory over `denoConnect` whose sockets pass every call through,
 * except the ones `overrides` returns for that socket (`index` counts from 0).
 */
export function overriddenConnect(
  overrides: (socket: SmtpSocket, index: number) => SocketOverrides,
): Connect {
  let opened = 0;
  return async (options) => {
    const socket = await denoConnect(options);
    const own = overrides(socket, opened++);
    return {
      get secure() {
        return socket.secure;
      },
      read: own.read ?? (() => socket.read()),
      write: own.write ?? ((bytes) => socket.write(bytes)),
      startTls: (tls) => socket.startTls(tls),
      close: own.close ?? (() => socket.close()),
    };
  };
}

/** Sends `message` (default {@linkcode FAULT_MESSAGE}), expecting an `SmtpError`; closes the client. */
export async function sendExpectingError(
  client: SmtpClient,
  message: MessageInput = FAULT_MESSAGE,
): Promise<SmtpError> {
  try {
    await client.send(message);
  } catch (error) {
    if (error instanceof SmtpError) return error;
    throw error;
  } finally {
    await client.close();
  }
  assert.fail("the send should have failed");
}

/**
 * Whether the client sent a final dot, the only thing that makes a server
 * deliver. Call it once the client is closed: it waits until the server has
 * seen each connection end, so a dot written just before the end is counted.
 */
export async function delivered(server: FaultServer): Promise<boolean> {
  const connections = connectionsOf(server);
  await guard(Promise.all(connections.map((conn) => conn.waitClosed())), "the connections' end");
  return server.transcript.some((line) => line === ".");
}

// --- queued runs of numbered messages (pipelining across messages) ---

/** The recipient {@linkcode realistic} refuses with 550. */
export const REFUSED = "refused@example.org";

/** Message `n` of a run: its subject and body say which it is. */
export function nth(n: number, to = "bob@example.org"): MessageInput {
  return { from: "ann@example.com", to, subject: `Message ${n}`, text: `Body of message ${n}\n` };
}

/**
 * A realistic server's envelope handling: `REFUSED` gets 550 at RCPT, and
 * DATA / BDAT without an accepted recipient gets 554. `message` answers the
 * end of each message's data, numbered from 1 on this connection.
 */
export function realistic(
  capabilities: string[],
  message: (conn: FaultConnection, count: number) => Promise<void>,
): SmtpScriptOptions {
  let recipients = 0;
  let messages = 0;
  return {
    capabilities,
    MAIL: async (conn) => {
      recipients = 0;
      await conn.send("250 2.1.0 Ok\r\n");
    },
    RCPT: async (conn, line) => {
      if (line.includes(REFUSED)) {
        await conn.send(`550 5.1.1 <${REFUSED}>: Recipient address rejected\r\n`);
      } else {
        recipients++;
        await conn.send("250 2.1.5 Ok\r\n");
      }
    },
    RSET: async (conn) => {
      recipients = 0;
      await conn.send("250 2.0.0 Ok\r\n");
    },
    DATA: async (conn) => {
      if (recipients === 0) {
        await conn.send("554 5.5.1 Error: no valid recipients\r\n");
        return;
      }
      await conn.send("354 End data with <CR><LF>.<CR><LF>\r\n");
      if (await conn.readData() !== null) await message(conn, ++messages);
    },
    BDAT: async (conn, line) => {
      const [, size, last] = line.split(/\s+/);
      if (await conn.readBytes(Number(size)) === null) return;
      if (recipients === 0) await conn.send("554 5.5.1 Error: no valid recipients\r\n");
      else if (last === "LAST") await message(conn, ++messages);
      else await conn.send("250 2.0.0 chunk ok\r\n");
    },
  };
}

/** Accepts message `count` of a connection as `Q<count>`. */
export async function accept(conn: FaultConnection, count: number): Promise<void> {
  await conn.send(`250 2.0.0 Ok: queued as Q${count}\r\n`);
}

/** Subjects of the messages whose data reached the server on `conn`, in order. */
export function subjectsOn(conn: FaultConnection): string[] {
  return [...conn.received.matchAll(/^Subject: (Message \d+)\r$/gm)].map((m) => m[1]);
}

/**
 * Queues messages 1..`count` at once (message `n` to `to(n)`); settles with
 * each one's status (`"sent"`) or its error, once all are done; closes the client.
 */
export async function queueAll(
  client: SmtpClient,
  count: number,
  to: (n: number) => string = () => "bob@example.org",
): Promise<(string | SmtpError)[]> {
  const sends = Array.from({ length: count }, (_, i) => client.send(nth(i + 1, to(i + 1))));
  const settled = await guard(Promise.allSettled(sends), "every queued send to settle");
  await client.close();
  return settled.map((s) => s.status === "fulfilled" ? s.value.status : (s.reason as SmtpError));
}
