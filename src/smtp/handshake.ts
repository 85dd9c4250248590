/**
 * Connection set-up: connect, greeting, EHLO (or HELO), STARTTLS and AUTH.
 * What the session knows afterwards is the server's capabilities, sent over
 * TLS when TLS is on.
 *
 * @module
 */

import type { Connect, SmtpSocket } from "../socket/socket.ts";
import { Capabilities } from "./capabilities.ts";
import { greetCommand } from "./commands.ts";
import { withDeadline } from "./deadline.ts";
import { isAbortError, SmtpError } from "./errors.ts";
import { replyError as refusal, type SmtpReply, summarizeReply } from "./reply.ts";
import {
  chooseMechanism,
  createSaslClient,
  credentialForms,
  echoesCredentials,
  type SaslCredentials,
} from "./sasl.ts";
import {
  emitStatus as status,
  type SmtpErrorType,
  type SmtpPhase,
  type StepOptions,
  type TlsMode,
} from "./types.ts";
import { asTlsError, describe, isTlsHandshakeFailure, Wire } from "./wire.ts";

/** Credentials for SMTP AUTH. */
export interface SmtpAuth {
  /** The user name. */
  username: string;
  /** The password (PLAIN, LOGIN, CRAM-MD5). */
  password?: string;
  /** An OAuth 2 access token (XOAUTH2). */
  accessToken?: string;
  /** Preferred mechanism: `plain`, `login`, `cram-md5` or `xoauth2`. */
  mechanism?: string;
}

/** Everything a session needs to open a connection. */
export interface SessionOptions {
  /** Server host name; also the name its certificate must match. */
  host: string;
  /** Server port. */
  port: number;
  /** TLS mode. */
  tls: TlsMode;
  /** Credentials, when the server requires AUTH. */
  auth?: SmtpAuth;
  /** Allow AUTH on a plaintext connection (only with `tls: "none"`). */
  allowInsecureAuth?: boolean;
  /** Extra trusted CA certificates (PEM). */
  caCerts?: string[];
  /** The EHLO name. */
  name: string;
  /** Deadline of each step, in milliseconds. */
  timeoutMs: number;
  /** The socket factory. */
  connect: Connect;
}

const MAX_AUTH_ROUNDS = 8;
// RFC 4954 4: an initial response that makes the line longer than this goes after a 334.
const MAX_AUTH_LINE = 500;
/** How long a refused greeting waits for the reply to its QUIT. */
const QUIT_AFTER_REFUSAL_MS = 2000;

/**
 * Connects and runs the set-up on a new {@linkcode Wire}: greeting, EHLO, TLS
 * and AUTH. Resolves with the wire and the capabilities to send with; on
 * failure the connection is closed.
 */
export async function openConnection(
  options: SessionOptions,
  step: StepOptions = {},
): Promise<{ wire: Wire; capabilities: Capabilities }> {
  const wire = new Wire(await connectSocket(options, step), options.timeoutMs);
  try {
    const capabilities = await new Handshake(options, wire).run(step);
    return { wire, capabilities };
  } catch (error) {
    await wire.destroy();
    throw error;
  }
}

/** The set-up of one connection, up to the first transaction. */
class Handshake {
  #options: SessionOptions;
  #wire: Wire;
  #capabilities = new Capabilities();

  constructor(options: SessionOptions, wire: Wire) {
    this.#options = options;
    this.#wire = wire;
  }

  set #phase(phase: SmtpPhase) {
    this.#wire.phase = phase;
  }

  get #socket(): SmtpSocket {
    return this.#wire.socket;
  }

  set #broken(broken: true) {
    if (broken) this.#wire.markBroken();
  }

  #write(data: string, step: StepOptions): Promise<void> {
    return this.#wire.write(data, step.signal);
  }

  #read(what: string, step: StepOptions): Promise<SmtpReply> {
    return this.#wire.read(what, { signal: step.signal });
  }

  async run(step: StepOptions): Promise<Capabilities> {
    const { tls } = this.#options;
    this.#phase = "greeting";
    const greeting = await this.#read("the server's greeting", step);
    status(step, { phase: "greeting", state: "done", reply: summarizeReply(greeting) });
    if (greeting.code !== 220) {
      if (greeting.code < 400) {
        // RFC 5321 4.3.2: a greeting is 220 or a refusal; a 250 or 354 here is no SMTP.
        throw replyError(
          greeting,
          "greeting",
          "The server's greeting is not SMTP (expected 220)",
          "protocol",
        );
      }
      // RFC 5321 3.1: after a 554 greeting the client SHOULD say QUIT; a 421 closes at once.
      if (greeting.code >= 500) await this.#quitQuietly();
      throw replyError(
        greeting,
        "greeting",
        "The server refused the connection",
        greeting.code >= 500 ? "rejected" : "transient",
      );
    }

    await this.#ehlo(step);
    if (!this.#socket.secure && (tls === "starttls" || tls === "opportunistic")) {
      await this.#startTls(step);
    }
    if (this.#options.auth) await this.#authenticate(this.#options.auth, step);
    return this.#capabilities;
  }

  async #quitQuietly(): Promise<void> {
    try {
      const timeoutMs = Math.min(this.#options.timeoutMs, QUIT_AFTER_REFUSAL_MS);
      await this.#wire.write("QUIT\r\n");
      await this.#wire.read("the reply to QUIT", { timeoutMs });
    } catch {
      // The server may close first; the connection is going away either way.
    }
  }

  async #ehlo(step: StepOptions): Promise<void> {
    this.#phase = "ehlo";
    status(step, { phase: "ehlo", state: "started" });
    await this.#write(greetCommand("EHLO", this.#options.name) + "\r\n", step);
    let reply = await this.#read("the reply to EHLO", step);
    if (reply.code === 500 || reply.code === 502) {
      // A server without ESMTP: HELO, and no extensions at all.
      await this.#write(greetCommand("HELO", this.#options.name) + "\r\n", step);
      reply = await this.#read("the reply to HELO", step);
      if (reply.code !== 250) {
        throw replyError(reply, "ehlo", "The server refused HELO", sessionErrorType(reply));
      }
      this.#capabilities = new Capabilities();
    } else if (reply.code === 250) {
      this.#capabilities = Capabilities.fromEhloReply(reply);
    } else {
      throw replyError(reply, "ehlo", "The server refused EHLO", sessionErrorType(reply));
    }
    status(step, { phase: "ehlo", state: "done", reply: summarizeReply(reply) });
  }

  async #startTls(step: StepOptions): Promise<void> {
    const required = this.#options.tls === "starttls";
    this.#phase = "starttls";
    if (!this.#capabilities.has("STARTTLS")) {
      if (!required) return;
      this.#broken = true;
      throw new SmtpError(
        "tls",
        "The server does not offer STARTTLS, and TLS is required. Use a server or port with " +
          'TLS (465 with tls "implicit"), or set tls to "opportunistic" to allow plaintext.',
        { phase: "starttls" },
      );
    }
    status(step, { phase: "starttls", state: "started" });
    await this.#write("STARTTLS\r\n", step);
    const reply = await this.#read("the reply to STARTTLS", step);
    if (reply.code !== 220) {
      if (!required) return;
      this.#broken = true;
      throw replyError(reply, "starttls", "The server refused STARTTLS", "tls");
    }
    // Bytes after the 220 came before TLS: a man in the middle may have injected
    // them to be read as if they came over TLS (CVE-2011-0411 class). The reader
    // discards them when the socket is replaced below, and never reads them.
    let secure: SmtpSocket;
    try {
      secure = await withDeadline(
        this.#socket.startTls({ hostname: this.#options.host, caCerts: this.#options.caCerts }),
        {
          timeoutMs: this.#options.timeoutMs,
          phase: "starttls",
          what: "the TLS handshake",
          signal: step.signal,
        },
      );
    } catch (error) {
      // Closing the old socket (when the session is destroyed) ends a handshake that hangs.
      this.#broken = true;
      throw isAbortError(error) ? error : asTlsError(error, "starttls");
    }
    this.#wire.replaceSocket(secure);
    status(step, { phase: "starttls", state: "done", reply: summarizeReply(reply) });
    try {
      // Only the capabilities sent over TLS count (RFC 3207 4.2).
      await this.#ehlo(step);
    } catch (error) {
      // On some platforms the handshake completes lazily: its failure shows here.
      throw error instanceof SmtpError && (error.type === "connection" || error.type === "tls")
        ? asTlsError(error, "starttls")
        : error;
    }
  }

  async #authenticate(auth: SmtpAuth, step: StepOptions): Promise<void> {
    this.#phase = "auth";
    if (!this.#socket.secure) {
      const mayAuth = this.#options.tls === "none" && this.#options.allowInsecureAuth;
      if (!mayAuth) {
        this.#broken = true;
        throw this.#options.tls === "opportunistic"
          ? new SmtpError(
            "tls",
            "The server did not offer STARTTLS, and credentials are never sent over plaintext. " +
              'Use tls "starttls" or "implicit" with a server that supports TLS.',
            { phase: "starttls" },
          )
          : new SmtpError(
            "auth",
            "Refusing to authenticate over a plaintext connection. Use TLS, or allow it " +
              "explicitly (allowInsecureAuth / insecure_auth=1) on a trusted network.",
            { phase: "auth" },
          );
      }
    }
    const credentials: SaslCredentials = auth;
    const offered = this.#capabilities.authMechanisms;
    let mechanism;
    try {
      mechanism = chooseMechanism(offered, credentials, auth.mechanism);
    } catch (error) {
      throw new SmtpError("auth", (error as Error).message, { phase: "auth" });
    }
    if (!mechanism) {
      throw new SmtpError(
        "auth",
        offered.length === 0
          ? "The server does not offer AUTH, but credentials were configured."
          : `None of the server's AUTH mechanisms (${offered.join(", ")}) fits the credentials.`,
        { phase: "auth" },
      );
    }
    status(step, { phase: "auth", state: "started" });
    const sasl = createSaslClient(mechanism, credentials);
    let pending: string | undefined;
    let line = `AUTH ${mechanism}`;
    if (sasl.initialResponse !== undefined) {
      if (line.length + 1 + sasl.initialResponse.length <= MAX_AUTH_LINE) {
        line += ` ${sasl.initialResponse}`;
      } else {
        pending = sasl.initialResponse;
      }
    }
    // Everything we send in this exchange; server text that repeats any of it is withheld.
    const sent = credentialForms(credentials);
    if (sasl.initialResponse !== undefined) sent.push(sasl.initialResponse);
    await this.#write(line + "\r\n", step);
    for (let round = 0; round < MAX_AUTH_ROUNDS; round++) {
      const reply = withholdEcho(await this.#read("the reply to AUTH", step), sent);
      if (reply.code === 235) {
        status(step, { phase: "auth", state: "done", reply: summarizeReply(reply) });
        return;
      }
      if (reply.code !== 334) {
        throw replyError(
          reply,
          "auth",
          "Authentication failed",
          reply.code >= 500 ? "auth" : undefined,
        );
      }
      const answer = pending ?? await sasl.respond(reply.lines[0].trim());
      pending = undefined;
      sent.push(answer);
      await this.#write(answer + "\r\n", step);
    }
    this.#broken = true;
    throw new SmtpError("protocol", "The server kept the AUTH exchange going for too long.", {
      phase: "auth",
    });
  }
}

async function connectSocket(options: SessionOptions, step: StepOptions): Promise<SmtpSocket> {
  status(step, { phase: "connect", state: "started" });
  const implicit = options.tls === "implicit";
  const giveUp = new AbortController();
  const pending = options.connect({
    hostname: options.host,
    port: options.port,
    tls: implicit,
    caCerts: options.caCerts,
    signal: giveUp.signal,
  });
  try {
    const socket = await withDeadline(pending, {
      timeoutMs: options.timeoutMs,
      phase: "connect",
      what: `a connection to ${options.host}:${options.port}`,
      signal: step.signal,
    });
    status(step, { phase: "connect", state: "done" });
    return socket;
  } catch (error) {
    // A connection half open, or completing after we gave up, must not leak.
    giveUp.abort();
    pending.then((socket) => socket.close(), () => {});
    if (error instanceof SmtpError || isAbortError(error)) throw error;
    if (isTlsHandshakeFailure(error)) throw asTlsError(error, "connect");
    throw new SmtpError(
      "connection",
      `Could not connect to ${options.host}:${options.port}: ${describe(error)}. ` +
        "Check the host, the port and that outbound connections to it are allowed.",
      { phase: "connect", cause: error },
    );
  }
}

/**
 * The error type of a refusal of the session itself (EHLO): 4xx is
 * transient; 5xx refuses the session, not a sender, recipient or content,
 * so it counts as a failure to reach the service (`connection`).
 */
function sessionErrorType(reply: SmtpReply): SmtpErrorType {
  return reply.code >= 400 && reply.code < 500 ? "transient" : "connection";
}

function replyError(
  reply: SmtpReply,
  phase: SmtpPhase,
  what: string,
  type?: SmtpErrorType,
): SmtpError {
  return refusal(reply, phase, what, { type });
}

/** What replaces server text that repeated part of what we sent during AUTH. */
const WITHHELD = "(server text withheld: it repeated the credentials)";

/**
 * `reply` with its text withheld when it repeats anything in `sent` (some
 * servers quote the AUTH response or the user name back); codes stay.
 * A 334 challenge is kept: the mechanism must read it.
 */
function withholdEcho(reply: SmtpReply, sent: readonly string[]): SmtpReply {
  if (reply.code === 334 || !echoesCredentials(reply.raw, sent)) return reply;
  const prefix = [String(reply.code), reply.enhancedCode].filter(Boolean).join(" ");
  return { ...reply, lines: [WITHHELD], message: WITHHELD, raw: `${prefix} ${WITHHELD}` };
}
