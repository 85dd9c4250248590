/**
 * A real Postfix on loopback for end-to-end tests.
 *
 * Each test process runs its own private Postfix instance (`postfix -c <dir>`)
 * with its own configuration, queue and data directories under the system
 * temporary directory, listening on a free port of 127.0.0.1. The machine's
 * own Postfix (`/etc/postfix`) is neither read nor changed, so several test
 * processes can run at once. The instance is started by the first
 * {@linkcode startPostfix} call (later calls share it) and stopped when the
 * module unloads — `deno test` gives each test file its own module instance,
 * so that is once per test file (about 1–2 s). Instances left behind by a
 * killed test process are stopped and removed by the next start.
 *
 * What the instance does:
 * - STARTTLS with a certificate from {@linkcode generateTestCertificates}
 *   (trust {@linkcode PostfixServer.caCert}); plain SMTP is allowed too,
 *   because 127.0.0.0/8 is in `mynetworks` and may relay anywhere.
 * - Offers PIPELINING, SIZE, ENHANCEDSTATUSCODES, 8BITMIME, DSN, SMTPUTF8 and
 *   CHUNKING (Postfix 3.7 defaults), plus VRFY and ETRN.
 * - Strict: `smtpd_forbid_bare_newline = reject` (in Postfix 3.7.11 `yes`
 *   only means `normalize`, which accepts bare LFs) with no exclusions, so a
 *   bare LF gets `550 5.5.2 … Error: bare <LF> received` (in a command the
 *   connection is then closed; in message content at the end of data); and
 *   `smtpd_forbid_unauth_pipelining = yes`: a command sent before the reply it
 *   must wait for (EHLO with anything behind it, content behind DATA before
 *   the 354, anything before the greeting) gets
 *   `554 5.5.0 Error: SMTP protocol synchronization` and a hang-up; and
 *   `reject_unauth_pipelining` in the recipient and data restrictions, so a
 *   session that ever pipelined illegally has its recipients and data refused.
 * - `message_size_limit` = {@linkcode PostfixServer.sizeLimit} (1 MiB).
 * - Refuses {@linkcode PostfixServer.rejectedRecipient} (550 5.1.1),
 *   {@linkcode PostfixServer.deferredRecipient} (450 4.2.1) at RCPT and
 *   {@linkcode PostfixServer.rejectedSender} (553 5.7.1) at MAIL.
 * - Delivers every accepted message through a `pipe` transport that writes one
 *   file per message (and per delivery) into {@linkcode PostfixServer.deliveredDir}.
 *   Missing headers (Date, Message-ID, From) are NOT added for clients, so a
 *   test sees exactly what the client sent — after Postfix's own `Received:`
 *   header, with LF line endings (Postfix stores lines, the pipe writes `\n`).
 * - DSN notifications Postfix generates (e.g. `NOTIFY=SUCCESS`) are mail from
 *   the null sender and land in `deliveredDir` as well, with `sender === ""`
 *   (a success report says `Action: relayed`, since a pipe is not a mailbox;
 *   it carries `Original-Envelope-Id` and `Original-Recipient`). Use the
 *   `match` option of `waitForDelivery` to count only the messages you want.
 *
 * Needs Linux, root and the `postfix` package (`/usr/sbin/postfix`); use
 * {@linkcode postfixSkipReason} to skip otherwise.
 *
 * @example
 * ```ts
 * import { after, before, describe, it } from "node:test";
 * import { postfixSkipReason, type PostfixServer, startPostfix } from "../support/postfix.ts";
 *
 * describe("delivery through Postfix", { skip: postfixSkipReason() }, () => {
 *   let postfix: PostfixServer;
 *   before(async () => { postfix = await startPostfix(); });
 *   it("delivers", async () => {
 *     // … send to postfix.host:postfix.port, then:
 *     const [message] = await postfix.waitForDelivery(1, {
 *       match: (m) => m.recipients?.includes("bob@example.com") ?? false,
 *     });
 *   });
 * });
 * ```
 *
 * @module
 */

import { generateTestCertificates } from "../../src/dev/test_ca.ts";
import { freePort } from "./subprocess.ts";
import { skipOutsideCi } from "./skip.ts";

const POSTFIX_BINARY = "/usr/sbin/postfix";
const INSTANCE_PREFIX = "edgemail-postfix-";
const SIZE_LIMIT = 1024 * 1024;
const REJECTED_RECIPIENT = "refused@example.com";
const DEFERRED_RECIPIENT = "later@example.com";
const REJECTED_SENDER = "blocked@example.com";
const DEFAULT_START_TIMEOUT_MS = 20_000;
const DEFAULT_DELIVERY_TIMEOUT_MS = 10_000;
const POLL_MS = 50;

/** One message as the pipe transport wrote it into `deliveredDir`. */
export interface DeliveredMessage {
  /** Absolute path of the `.eml` file. */
  file: string;
  /** Postfix's queue ID (the `queued as …` in the reply to the end of data). */
  queueId: string;
  /**
   * The message as delivered, decoded as UTF-8 when it is valid UTF-8, else as
   * Latin-1 (one character per byte). Starts with Postfix's `Received:` header;
   * lines end in LF.
   */
  raw: string;
  /** The same message as bytes. */
  bytes: Uint8Array;
  /** Envelope sender (MAIL FROM); `""` for the null sender (DSNs, bounces). */
  sender?: string;
  /** Envelope recipients of this delivery (RCPT TO that were accepted). */
  recipients?: string[];
}

/** Options for {@linkcode PostfixServer.waitForDelivery}. */
export interface WaitForDeliveryOptions {
  /** Give up after this many milliseconds. Default 10000. */
  timeoutMs?: number;
  /** Count only the messages this returns `true` for (e.g. by recipient or subject). */
  match?: (message: DeliveredMessage) => boolean;
}

/** A running private Postfix instance; see the module documentation. */
export interface PostfixServer {
  /** Always `127.0.0.1`. Connect TLS with hostname `localhost` or `127.0.0.1`. */
  host: "127.0.0.1";
  /** The SMTP port (a free port, neither 25 nor 587). */
  port: number;
  /** PEM of the CA that signed the server certificate; pass it as `caCerts`. */
  caCert: string;
  /** Directory holding one `<queue id>.eml` (+ `.env` envelope) file per delivery. */
  deliveredDir: string;
  /** `message_size_limit` in bytes (advertised as `SIZE`). */
  sizeLimit: number;
  /** RCPT TO this address gets `550 5.1.1`. */
  rejectedRecipient: string;
  /** RCPT TO this address gets `450 4.2.1` (a temporary refusal). */
  deferredRecipient: string;
  /** MAIL FROM this address gets `553 5.7.1`. */
  rejectedSender: string;
  /** Postfix's log file for this instance (useful when a test fails). */
  logFile: string;
  /**
   * Resolves with the delivered messages (in delivery order) once at least
   * `count` of them (matching `options.match`, if given) are in `deliveredDir`.
   * Rejects after `options.timeoutMs` with what was found and the log's tail.
   */
  waitForDelivery(count: number, options?: WaitForDeliveryOptions): Promise<DeliveredMessage[]>;
  /** Every message delivered so far (since the last `clearDelivered`), oldest first. */
  delivered(): Promise<DeliveredMessage[]>;
  /** Deletes every delivered file. */
  clearDelivered(): Promise<void>;
  /**
   * Stops the instance and removes its directory. Safe to call repeatedly; the
   * next {@linkcode startPostfix} starts a fresh instance. Tests need not call
   * it: the instance is stopped when the process unloads.
   */
  stop(): Promise<void>;
}

/** Options for {@linkcode startPostfix}. */
export interface StartPostfixOptions {
  /** How long to wait for Postfix to start and greet. Default 20000 ms. */
  startTimeoutMs?: number;
}

/**
 * Why Postfix tests cannot run here, or `undefined` when they can. Use it as
 * `describe("…", { skip: postfixSkipReason() }, …)`. Throws instead in CI.
 */
export function postfixSkipReason(): string | undefined {
  return skipOutsideCi(postfixMissing());
}

function postfixMissing(): string | undefined {
  if (Deno.build.os !== "linux") {
    return `Postfix tests need Linux (this is ${Deno.build.os}).`;
  }
  try {
    Deno.statSync(POSTFIX_BINARY);
  } catch {
    return `Postfix is not installed (no ${POSTFIX_BINARY}): install it with ` +
      "`apt-get install postfix` (choose 'No configuration') to run these tests.";
  }
  if (Deno.uid() !== 0) {
    return "Postfix tests must run as root (they start a private Postfix instance).";
  }
  return undefined;
}

/** The start in progress or done, shared by every caller in this module instance. */
let running: Promise<PostfixInstance> | undefined;
/** The instance `running` resolved to, so that `stop()` can forget it synchronously. */
let current: PostfixInstance | undefined;

/**
 * Starts this test file's Postfix instance, or returns the one already running.
 * Resolves once the SMTP port answers `220`. Throws with the skip reason when
 * Postfix cannot run here, and with the log's tail when it fails to start.
 */
export function startPostfix(options: StartPostfixOptions = {}): Promise<PostfixServer> {
  if (!running) {
    const starting = launch(options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    running = starting;
    // A failed start must not poison later attempts.
    starting.catch(() => {
      if (running === starting) running = undefined;
    });
  }
  return running;
}

async function launch(startTimeoutMs: number): Promise<PostfixInstance> {
  const reason = postfixSkipReason();
  if (reason) throw new Error(reason);
  await reapStaleInstances();
  const instance = new PostfixInstance(await prepareInstance());
  try {
    await instance.start(startTimeoutMs);
  } catch (error) {
    instance.stopSync();
    throw error;
  }
  current = instance;
  return instance;
}

/** Paths and settings of one instance directory. */
interface InstanceLayout {
  root: string;
  configDir: string;
  deliveredDir: string;
  logFile: string;
  port: number;
  caCert: string;
}

class PostfixInstance implements PostfixServer {
  readonly host = "127.0.0.1";
  readonly port: number;
  readonly caCert: string;
  readonly deliveredDir: string;
  readonly sizeLimit = SIZE_LIMIT;
  readonly rejectedRecipient = REJECTED_RECIPIENT;
  readonly deferredRecipient = DEFERRED_RECIPIENT;
  readonly rejectedSender = REJECTED_SENDER;
  readonly logFile: string;
  #layout: InstanceLayout;
  #stopped = false;
  #onUnload = () => this.stopSync();

  constructor(layout: InstanceLayout) {
    this.#layout = layout;
    this.port = layout.port;
    this.caCert = layout.caCert;
    this.deliveredDir = layout.deliveredDir;
    this.logFile = layout.logFile;
  }

  async start(timeoutMs: number): Promise<void> {
    globalThis.addEventListener("unload", this.#onUnload);
    const result = await postfixCommand(this.#layout.configDir, "start").output();
    if (!result.success) {
      throw new Error(
        `Postfix failed to start (exit ${result.code}): ${decode(result.stderr)}\n` +
          await this.#logTail(),
      );
    }
    await waitForGreeting(this.port, timeoutMs).catch(async (error) => {
      throw new Error(`${(error as Error).message}\n${await this.#logTail()}`);
    });
  }

  async waitForDelivery(
    count: number,
    options: WaitForDeliveryOptions = {},
  ): Promise<DeliveredMessage[]> {
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS);
    const match = options.match ?? (() => true);
    for (;;) {
      const found = (await this.delivered()).filter(match);
      if (found.length >= count) return found;
      if (Date.now() >= deadline) {
        throw new Error(
          `Postfix delivered ${found.length} matching message(s), expected ${count}; ` +
            `files in ${this.deliveredDir}: ${(await this.#fileNames()).join(", ") || "none"}\n` +
            await this.#logTail(),
        );
      }
      await delay(POLL_MS);
    }
  }

  async delivered(): Promise<DeliveredMessage[]> {
    const messages: { message: DeliveredMessage; mtime: number }[] = [];
    for (const name of await this.#fileNames()) {
      if (!name.endsWith(".eml")) continue;
      const file = `${this.deliveredDir}/${name}`;
      const stem = name.slice(0, -".eml".length);
      const [bytes, info, envelope] = await Promise.all([
        Deno.readFile(file),
        Deno.stat(file),
        Deno.readTextFile(`${this.deliveredDir}/${stem}.env`).catch(() => ""),
      ]);
      messages.push({
        message: {
          file,
          queueId: stem.split("-")[0],
          raw: decodeMessage(bytes),
          bytes,
          ...parseEnvelope(envelope),
        },
        mtime: info.mtime?.getTime() ?? 0,
      });
    }
    messages.sort((a, b) => a.mtime - b.mtime || a.message.file.localeCompare(b.message.file));
    return messages.map((entry) => entry.message);
  }

  async clearDelivered(): Promise<void> {
    for (const name of await this.#fileNames()) {
      await Deno.remove(`${this.deliveredDir}/${name}`).catch(() => {});
    }
  }

  stop(): Promise<void> {
    this.stopSync();
    return Promise.resolve();
  }

  /** Synchronous, so that it also works from the `unload` event. */
  stopSync(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    globalThis.removeEventListener("unload", this.#onUnload);
    if (current === this) {
      current = undefined;
      running = undefined;
    }
    stopInstanceSync(this.#layout.configDir);
    removeSync(this.#layout.root);
  }

  async #fileNames(): Promise<string[]> {
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(this.deliveredDir)) {
        if (entry.isFile && !entry.name.startsWith(".")) names.push(entry.name);
      }
    } catch {
      // The directory is gone after stop(): nothing delivered.
    }
    return names.sort();
  }

  async #logTail(): Promise<string> {
    const log = await Deno.readTextFile(this.logFile).catch(() => "");
    const lines = log.trimEnd().split("\n").slice(-20).join("\n");
    return `Postfix log (${this.logFile}), last lines:\n${lines || "(empty)"}`;
  }
}

/** Creates the instance directory with its configuration, TLS files and capture script. */
async function prepareInstance(): Promise<InstanceLayout> {
  const root = await Deno.makeTempDir({ prefix: INSTANCE_PREFIX });
  // The pipe transport runs as `nobody`: it must reach the script and the delivered dir.
  await Deno.chmod(root, 0o755);
  const configDir = `${root}/conf`;
  const queueDir = `${root}/queue`;
  const deliveredDir = `${root}/delivered`;
  const logFile = `${root}/maillog`;
  await Deno.mkdir(configDir);
  await Deno.mkdir(queueDir);
  await Deno.mkdir(deliveredDir);
  await Deno.chmod(deliveredDir, 0o777);
  await Deno.writeTextFile(`${root}/owner.pid`, `${Deno.pid}\n`);

  const { caCert, cert, key } = await generateTestCertificates();
  await Deno.writeTextFile(`${configDir}/cert.pem`, cert);
  await Deno.writeTextFile(`${configDir}/key.pem`, key, { mode: 0o600 });
  await Deno.writeTextFile(`${configDir}/recipient_access`, recipientAccess());
  await Deno.writeTextFile(`${configDir}/sender_access`, senderAccess());
  const capture = `${root}/capture.sh`;
  await Deno.writeTextFile(capture, CAPTURE_SCRIPT);
  await Deno.chmod(capture, 0o755);

  const port = freePort();
  await Deno.writeTextFile(
    `${configDir}/main.cf`,
    mainCf({ root, configDir, queueDir, logFile }),
  );
  await Deno.writeTextFile(`${configDir}/master.cf`, masterCf(port, capture, deliveredDir));
  return { root, configDir, deliveredDir, logFile, port, caCert };
}

function recipientAccess(): string {
  return [
    `${REJECTED_RECIPIENT} 550 5.1.1 no such user here`,
    `${DEFERRED_RECIPIENT} 450 4.2.1 mailbox busy, try again later`,
    "",
  ].join("\n");
}

function senderAccess(): string {
  return `${REJECTED_SENDER} 553 5.7.1 sender not allowed\n`;
}

function mainCf(paths: { root: string; configDir: string; queueDir: string; logFile: string }) {
  return [
    "compatibility_level = 3.6",
    `queue_directory = ${paths.queueDir}`,
    `data_directory = ${paths.root}/data`,
    "myhostname = postfix.test",
    "mydomain = postfix.test",
    "myorigin = postfix.test",
    // Nothing is local: every recipient goes to the capture transport.
    "mydestination =",
    "relay_domains =",
    "local_recipient_maps =",
    "alias_maps =",
    "alias_database =",
    "inet_interfaces = 127.0.0.1",
    "inet_protocols = ipv4",
    "mynetworks = 127.0.0.0/8",
    // Keep the message as the client sent it (no added Date/Message-ID/From).
    "local_header_rewrite_clients =",
    "smtpd_delay_reject = no",
    "smtpd_relay_restrictions = permit_mynetworks, reject",
    `smtpd_sender_restrictions = check_sender_access texthash:${paths.configDir}/sender_access`,
    "smtpd_recipient_restrictions = reject_unauth_pipelining, " +
    `check_recipient_access texthash:${paths.configDir}/recipient_access, ` +
    "permit_mynetworks, reject",
    // Refuse the data of a client that ever pipelined where RFC 2920 does not allow it.
    "smtpd_data_restrictions = reject_unauth_pipelining",
    "default_transport = capture:capture",
    "relay_transport = capture:capture",
    `message_size_limit = ${SIZE_LIMIT}`,
    "smtpd_forbid_bare_newline = reject",
    "smtpd_forbid_bare_newline_exclusions =",
    "smtpd_forbid_unauth_pipelining = yes",
    `smtpd_tls_chain_files = ${paths.configDir}/key.pem, ${paths.configDir}/cert.pem`,
    "smtpd_tls_security_level = may",
    "smtpd_tls_loglevel = 1",
    // Fast tests: no penalties, no waits.
    "smtpd_error_sleep_time = 0",
    "smtpd_soft_error_limit = 1000",
    "smtpd_hard_error_limit = 1000",
    "smtpd_junk_command_limit = 1000",
    "smtpd_client_connection_rate_limit = 0",
    "smtpd_client_message_rate_limit = 0",
    "smtpd_client_connection_count_limit = 0",
    "in_flow_delay = 0",
    "queue_run_delay = 1s",
    "minimal_backoff_time = 1s",
    "maximal_backoff_time = 2s",
    "delay_warning_time = 0",
    "maillog_file = " + paths.logFile,
    "maillog_file_prefixes = " + paths.root,
    "",
  ].join("\n");
}

function masterCf(port: number, capture: string, deliveredDir: string): string {
  const services = [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    "pickup unix n - n 60 1 pickup",
    "cleanup unix n - n - 0 cleanup",
    "qmgr unix n - n 300 1 qmgr",
    "tlsmgr unix - - n 1000? 1 tlsmgr",
    "rewrite unix - - n - - trivial-rewrite",
    "bounce unix - - n - 0 bounce",
    "defer unix - - n - 0 bounce",
    "trace unix - - n - 0 bounce",
    "verify unix - - n - 1 verify",
    "proxymap unix - - n - - proxymap",
    "showq unix n - n - - showq",
    "error unix - - n - - error",
    "retry unix - - n - - error",
    "discard unix - - n - - discard",
    "anvil unix - - n - 1 anvil",
    "scache unix - - n - 1 scache",
    "postlog unix-dgram n - n - 1 postlogd",
    // flags=q quotes local parts the way RFC 5321 writes them; null_sender= keeps <> empty.
    "capture unix - n n - - pipe flags=q null_sender= user=nobody " +
    `argv=${capture} ${deliveredDir} \${queue_id} \${sender} \${recipient}`,
  ];
  return services.join("\n") + "\n";
}

/**
 * Run by the pipe transport as `nobody`: writes the envelope (`<id>.env`), then
 * the message to a hidden temporary file renamed to `<id>.eml`, so a reader
 * never sees a half-written message. A second delivery of the same queue file
 * gets a numbered suffix.
 */
const CAPTURE_SCRIPT = `#!/bin/sh
# capture.sh DIR QUEUE_ID SENDER RECIPIENT...
umask 022
dir=$1; id=$2; sender=$3; shift 3
name=$id; n=1
while [ -e "$dir/$name.eml" ]; do name="$id-$n"; n=$((n + 1)); done
{
  printf 'from %s\\n' "$sender"
  for rcpt in "$@"; do printf 'to %s\\n' "$rcpt"; done
} > "$dir/$name.env" || exit 75
cat > "$dir/.$name.tmp" || exit 75
mv "$dir/.$name.tmp" "$dir/$name.eml" || exit 75
`;

function parseEnvelope(text: string): { sender?: string; recipients?: string[] } {
  if (!text) return {};
  let sender: string | undefined;
  const recipients: string[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("from ")) sender = line.slice("from ".length);
    else if (line.startsWith("to ")) recipients.push(line.slice("to ".length));
  }
  return { sender, recipients };
}

function decodeMessage(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // Real ISO-8859-1 (TextDecoder's "latin1" is windows-1252): byte n is U+00nn.
    let text = "";
    for (let i = 0; i < bytes.length; i += 8192) {
      text += String.fromCharCode(...bytes.subarray(i, i + 8192));
    }
    return text;
  }
}

function postfixCommand(configDir: string, action: string): Deno.Command {
  return new Deno.Command(POSTFIX_BINARY, {
    args: ["-c", configDir, action],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

function stopInstanceSync(configDir: string): void {
  try {
    postfixCommand(configDir, "stop").outputSync();
  } catch {
    // Not running or already gone.
  }
}

function removeSync(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch {
    // Already removed.
  }
}

/** Stops and removes instances whose test process no longer exists. */
async function reapStaleInstances(): Promise<void> {
  const tmp = Deno.env.get("TMPDIR") || "/tmp";
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(tmp));
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.isDirectory || !entry.name.startsWith(INSTANCE_PREFIX)) continue;
    const root = `${tmp}/${entry.name}`;
    const owner = Number(await Deno.readTextFile(`${root}/owner.pid`).catch(() => ""));
    if (owner && processExists(owner)) continue;
    stopInstanceSync(`${root}/conf`);
    removeSync(root);
  }
}

function processExists(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Connects until the server sends its `220` greeting, then says QUIT. */
async function waitForGreeting(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no connection yet";
  while (Date.now() < deadline) {
    let conn: Deno.Conn | undefined;
    // A peer that accepts but never greets must not hang the start: closing the
    // connection at the deadline ends the pending read.
    const timer = setTimeout(() => closeQuietly(conn), Math.max(deadline - Date.now(), 1));
    try {
      conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const greeting = await readReplyLine(conn);
      if (greeting.startsWith("220")) {
        await conn.write(new TextEncoder().encode("QUIT\r\n"));
        return;
      }
      last = `unexpected greeting ${JSON.stringify(greeting)}`;
    } catch (error) {
      last = (error as Error).message;
    } finally {
      clearTimeout(timer);
      closeQuietly(conn);
    }
    await delay(POLL_MS);
  }
  throw new Error(`Postfix did not greet on 127.0.0.1:${port} within ${timeoutMs} ms (${last}).`);
}

async function readReplyLine(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(1024);
  let text = "";
  while (!text.includes("\n")) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += decode(buffer.subarray(0, n));
  }
  return text.split("\r\n")[0];
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
