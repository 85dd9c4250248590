/**
 * The development outbox: a folder of `.eml` files, one per message the
 * embedded mail server accepted, named `<timestamp>-<id>.eml` so that file
 * names sort by arrival (`20261121T231500123Z-7k3m9q2xaz.eml`). This module
 * owns that naming: it stores messages, lists them and reads them back, and
 * serves them over HTTP (`GET /dev/outbox`, `GET /dev/outbox/:id`).
 *
 * @module
 */

import { Hono } from "hono";
import PostalMime from "postal-mime";
import type { Address } from "postal-mime";

/** One message in the outbox, as listed by `GET /dev/outbox`. */
export interface OutboxEntry {
  /** The message's outbox id (the random part of its file name). */
  id: string;
  /** When the message was received, ISO 8601 (UTC). */
  date: string;
  /** The `From` header, decoded (`Ann <ann@example.com>`), or `null` when missing. */
  from: string | null;
  /** The `To` header's mailboxes, decoded; empty when missing. */
  to: string[];
  /** The `Subject` header, decoded, or `null` when missing. */
  subject: string | null;
  /** Size of the stored message in bytes. */
  size: number;
}

/** What {@linkcode saveOutboxMessage} stored. */
export interface SavedOutboxMessage {
  /** The new message's outbox id. */
  id: string;
  /** The path of the `.eml` file. */
  path: string;
}

const FILE_PATTERN = /^(\d{8}T\d{9}Z)-([0-9a-z]{10})\.eml$/;
const ID_PATTERN = /^[0-9a-z]{10}$/;
// Crockford's base32: 32 symbols, so one random byte masked to 5 bits picks one without bias.
const ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
const ID_LENGTH = 10;
// Enough for any real header block; the body is never read for the listing.
const HEADER_READ_LIMIT = 256 * 1024;

/** Whether `id` has the shape of an outbox id (so it can never name a path outside the outbox). */
export function isOutboxId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/**
 * Stores one message atomically: the bytes go to a hidden temporary file that
 * is renamed to `<timestamp>-<id>.eml` once complete, so readers never see a
 * partial message. Creates `dir` when missing.
 */
export async function saveOutboxMessage(
  dir: string,
  message: ReadableStream<Uint8Array> | Uint8Array,
  options: { receivedAt?: Date } = {},
): Promise<SavedOutboxMessage> {
  await Deno.mkdir(dir, { recursive: true });
  const id = newOutboxId();
  const name = `${formatTimestamp(options.receivedAt ?? new Date())}-${id}.eml`;
  const temporary = join(dir, `.incoming-${id}.eml`);
  const path = join(dir, name);
  try {
    await Deno.writeFile(temporary, message);
    await Deno.rename(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  return { id, path };
}

/** Lists the outbox, newest first. A missing folder is an empty outbox. */
export async function listOutbox(dir: string): Promise<OutboxEntry[]> {
  const files: { name: string; timestamp: string; id: string }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const match = entry.isFile ? FILE_PATTERN.exec(entry.name) : null;
      if (match) files.push({ name: entry.name, timestamp: match[1], id: match[2] });
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  files.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  const entries = await Promise.all(files.map((file) => describe(dir, file)));
  return entries.filter((entry): entry is OutboxEntry => entry !== undefined);
}

/**
 * The raw bytes of the message with outbox id `id`, or `undefined` when there
 * is none. Throws a `TypeError` when `id` is not an outbox id.
 */
export async function readOutboxMessage(dir: string, id: string): Promise<Uint8Array | undefined> {
  const path = await findMessagePath(dir, id);
  if (path === undefined) return undefined;
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * The outbox HTTP routes, to be mounted at `/dev`: `GET /outbox` lists the
 * messages (JSON, newest first), `GET /outbox/:id` answers the raw message as
 * `message/rfc822`, 404 JSON for an unknown id, 400 JSON for anything that is
 * not an outbox id (so no path can reach outside the outbox).
 */
export function createOutboxRoutes(dir: string): Hono {
  const routes = new Hono();
  routes.onError((error, c) => {
    console.error(`edgemail dev: cannot read the outbox ${dir}: ${error.message}`);
    return c.json({
      error: {
        type: "outbox",
        message: "Cannot read the outbox folder: see the dev server's log.",
      },
    }, 500);
  });
  routes.get("/outbox", async (c) => c.json(await listOutbox(dir)));
  routes.get("/outbox/:id", async (c) => {
    const id = c.req.param("id");
    if (!isOutboxId(id)) {
      return c.json({
        error: {
          type: "validation",
          message:
            "id is not an outbox id (10 characters, 0-9 and a-z): use an id from GET /dev/outbox.",
        },
      }, 400);
    }
    const path = await findMessagePath(dir, id);
    const file = path === undefined ? undefined : await openIfExists(path);
    if (path === undefined || file === undefined) {
      return c.json({
        error: {
          type: "not_found",
          message: "No message with this id in the outbox: see GET /dev/outbox.",
        },
      }, 404);
    }
    const { size } = await file.stat();
    return new Response(file.readable, {
      headers: {
        "content-type": "message/rfc822",
        "content-length": String(size),
        "content-disposition": `inline; filename="${basename(path)}"`,
      },
    });
  });
  return routes;
}

async function describe(
  dir: string,
  file: { name: string; timestamp: string; id: string },
): Promise<OutboxEntry | undefined> {
  let header: Uint8Array;
  let size: number;
  try {
    ({ header, size } = await readHeader(join(dir, file.name)));
  } catch (error) {
    // Deleted between the directory listing and now.
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  const parsed = await PostalMime.parse(header);
  return {
    id: file.id,
    date: parseTimestamp(file.timestamp).toISOString(),
    from: parsed.from ? mailboxes([parsed.from])[0] ?? null : null,
    to: mailboxes(parsed.to ?? []),
    subject: parsed.subject ?? null,
    size,
  };
}

/** The header block of a stored message (up to the first empty line) and the file's size. */
async function readHeader(path: string): Promise<{ header: Uint8Array; size: number }> {
  using file = await Deno.open(path);
  const { size } = await file.stat();
  const buffer = new Uint8Array(Math.min(size, HEADER_READ_LIMIT));
  let filled = 0;
  while (filled < buffer.length) {
    const read = await file.read(buffer.subarray(filled));
    if (read === null) break;
    filled += read;
  }
  const bytes = buffer.subarray(0, filled);
  return { header: bytes.subarray(0, headerEnd(bytes)), size };
}

/** Index just after the blank line ending the header, or the whole buffer when there is none. */
function headerEnd(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (bytes[i + 1] === 0x0a) return i + 2;
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return i + 3;
  }
  return bytes.length;
}

function mailboxes(addresses: Address[]): string[] {
  return addresses.flatMap((address) => address.group ?? [address]).map((mailbox) =>
    mailbox.name ? `${mailbox.name} <${mailbox.address}>` : mailbox.address
  );
}

async function findMessagePath(dir: string, id: string): Promise<string | undefined> {
  if (!isOutboxId(id)) {
    throw new TypeError(
      "id: not an outbox id (10 characters, 0-9 and a-z): use an id from the listing",
    );
  }
  const suffix = `-${id}.eml`;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith(suffix) && FILE_PATTERN.test(entry.name)) {
        return join(dir, entry.name);
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  return undefined;
}

async function openIfExists(path: string): Promise<Deno.FsFile | undefined> {
  try {
    return await Deno.open(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

function newOutboxId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(ID_LENGTH));
  return Array.from(bytes, (byte) => ID_ALPHABET[byte & 31]).join("");
}

/** `2026-11-21T23:15:00.123Z` → `20261121T231500123Z`: sortable and safe in file names. */
function formatTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:.]/g, "");
}

function parseTimestamp(stamp: string): Date {
  const [, y, mo, d, h, mi, s, ms] = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(\d{3})Z$/.exec(
    stamp,
  )!;
  return new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`);
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
