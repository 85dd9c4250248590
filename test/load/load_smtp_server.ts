/**
 * The SMTP server of the load test: raw TCP on loopback (Deno.listen), with
 * PIPELINING, answering every reply after a random delay, refusing a fixed
 * share of recipients (half 4xx, half 5xx, decided by a hash of the address so
 * that a retry meets the same answer) and dropping the connection right after
 * the final dot of a fixed share of messages (by a hash of their id), without
 * answering. It records every message it accepted (250 after the data) and
 * every one it dropped, by the value of its `X-Load-Id` header, so the test
 * can compare what the function reported with what really happened.
 *
 * @module
 */

/** Options of {@linkcode startLoadSmtpServer}. */
export interface LoadSmtpServerOptions {
  /** Share of recipients refused, 0..1 (half with 450, half with 550). Default 0.1. */
  refuseShare?: number;
  /** Share of messages whose connection is dropped after the final dot. Default 0.02. */
  dropShare?: number;
  /** Longest random delay before a reply, in milliseconds. Default 10. */
  maxDelayMs?: number;
  /** Mixed into the hashes, so another seed refuses other recipients. */
  seed?: number;
}

/** What the server did with each message. */
export interface LoadSmtpRecord {
  /** `X-Load-Id` → how many times the message was accepted (250 after its data). */
  accepted: Map<string, number>;
  /** `X-Load-Id` of every message whose connection was dropped after its final dot. */
  dropped: Set<string>;
  /** Recipients refused with 4xx and with 5xx. */
  refused: { transient: number; permanent: number };
  /** Connections accepted. */
  connections: number;
  /** Protocol errors seen from the client (commands this server does not know, data without id). */
  errors: string[];
}

/** A running load SMTP server. */
export interface LoadSmtpServer {
  /** The loopback port it listens on. */
  port: number;
  /** What it did so far. */
  record: LoadSmtpRecord;
  /** What it will do with `recipient`: accept it, or refuse it with 4xx or 5xx. */
  fateOfRecipient(recipient: string): "accept" | "transient" | "permanent";
  /** Whether it drops the connection after the data of message `id`. */
  dropsMessage(id: string): boolean;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLF = "\r\n";
const END_OF_DATA = encoder.encode("\r\n.\r\n");

/** FNV-1a, 32 bits: a stable hash, so fates do not depend on timing. */
function hash(text: string, seed: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The index of `needle` in `haystack` from `from`, or -1. */
function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = Math.max(0, from); i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Starts the server on a free loopback port. */
export function startLoadSmtpServer(options: LoadSmtpServerOptions = {}): LoadSmtpServer {
  const refuseShare = options.refuseShare ?? 0.1;
  const dropShare = options.dropShare ?? 0.02;
  const maxDelayMs = options.maxDelayMs ?? 10;
  const seed = options.seed ?? 1;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const record: LoadSmtpRecord = {
    accepted: new Map(),
    dropped: new Set(),
    refused: { transient: 0, permanent: 0 },
    connections: 0,
    errors: [],
  };
  const open = new Set<Deno.Conn>();
  const handlers: Promise<void>[] = [];

  const fateOfRecipient = (recipient: string) => {
    const h = hash(recipient.toLowerCase(), seed);
    if ((h % 10_000) / 10_000 >= refuseShare) return "accept" as const;
    return (h >>> 16) % 2 === 0 ? "transient" as const : "permanent" as const;
  };
  const dropsMessage = (id: string) => (hash(`drop:${id}`, seed) % 10_000) / 10_000 < dropShare;

  const serve = async (conn: Deno.Conn) => {
    record.connections++;
    open.add(conn);
    let buffer = new Uint8Array(0);
    const delay = () => new Promise((resolve) => setTimeout(resolve, Math.random() * maxDelayMs));
    const reply = async (text: string) => {
      await delay();
      await conn.write(encoder.encode(text + CRLF));
    };
    /** Reads until `buffer` holds `needle`; returns its index, or -1 when the client closed. */
    const fill = async (needle: Uint8Array, from = 0): Promise<number> => {
      while (true) {
        const at = indexOfBytes(buffer, needle, from);
        if (at !== -1) return at;
        from = Math.max(0, buffer.length - needle.length + 1);
        const chunk = new Uint8Array(65536);
        const count = await conn.read(chunk);
        if (count === null) return -1;
        const joined = new Uint8Array(buffer.length + count);
        joined.set(buffer);
        joined.set(chunk.subarray(0, count), buffer.length);
        buffer = joined;
      }
    };
    const crlf = encoder.encode(CRLF);
    let recipients: string[] = [];
    try {
      await reply("220 load.test ESMTP ready");
      while (true) {
        const end = await fill(crlf);
        if (end === -1) return;
        const line = decoder.decode(buffer.subarray(0, end));
        buffer = buffer.subarray(end + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO") {
          await reply(
            "250-load.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n" +
              "250-ENHANCEDSTATUSCODES\r\n250 SIZE 52428800",
          );
        } else if (verb === "HELO") {
          await reply("250 load.test");
        } else if (verb === "MAIL") {
          recipients = [];
          await reply("250 2.1.0 Ok");
        } else if (verb === "RCPT") {
          const address = /<([^>]*)>/.exec(line)?.[1] ?? "";
          const fate = fateOfRecipient(address);
          if (fate === "accept") {
            recipients.push(address);
            await reply("250 2.1.5 Ok");
          } else if (fate === "transient") {
            record.refused.transient++;
            await reply("450 4.2.0 Mailbox busy, try later");
          } else {
            record.refused.permanent++;
            await reply("550 5.1.1 No such user");
          }
        } else if (verb === "DATA") {
          if (recipients.length === 0) {
            await reply("554 5.5.1 No valid recipients");
            continue;
          }
          await reply("354 End data with <CR><LF>.<CR><LF>");
          // The data may be just ".\r\n", or end in CRLF.CRLF.
          const empty = buffer.length >= 3 && decoder.decode(buffer.subarray(0, 3)) === ".\r\n";
          const at = empty ? -2 : await fill(END_OF_DATA);
          if (at === -1) return;
          const data = decoder.decode(buffer.subarray(0, Math.max(0, at)));
          buffer = buffer.subarray(at + 5);
          const id = /^X-Load-Id: *(\S+)\r?$/im.exec(data.slice(0, data.indexOf("\r\n\r\n")))?.[1];
          if (id === undefined) {
            record.errors.push("a message without X-Load-Id");
            await reply("554 5.6.0 No X-Load-Id");
            continue;
          }
          if (dropsMessage(id)) {
            record.dropped.add(id);
            return; // finally closes without a reply: the outcome is unknown to the client.
          }
          record.accepted.set(id, (record.accepted.get(id) ?? 0) + 1);
          recipients = [];
          await reply("250 2.0.0 Ok: queued");
        } else if (verb === "RSET") {
          recipients = [];
          await reply("250 2.0.0 Ok");
        } else if (verb === "NOOP") {
          await reply("250 2.0.0 Ok");
        } else if (verb === "QUIT") {
          await reply("221 2.0.0 Bye");
          return;
        } else {
          record.errors.push(`unknown command ${JSON.stringify(line.slice(0, 20))}`);
          await reply("500 5.5.2 Unknown command");
        }
      }
    } catch (error) {
      // The client closed or reset the connection: nothing to record unless mid-command.
      if (
        !(error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe)
      ) {
        if (!(error instanceof Deno.errors.BadResource)) record.errors.push(String(error));
      }
    } finally {
      open.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  };

  const accepting = (async () => {
    for await (const conn of listener) handlers.push(serve(conn));
  })();

  return {
    port: (listener.addr as Deno.NetAddr).port,
    record,
    fateOfRecipient,
    dropsMessage,
    async close() {
      listener.close();
      await accepting.catch(() => {});
      for (const conn of open) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await Promise.allSettled(handlers);
    },
  };
}
