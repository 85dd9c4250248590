/**
 * The client side of the SASL mechanisms SMTP AUTH (RFC 4954) uses: PLAIN
 * (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195) and XOAUTH2 (Google and Microsoft).
 * Credentials are UTF-8; every response is base64 of bytes. Errors name the
 * field at fault and never carry a credential.
 *
 * @module
 */

import { bytesToHex, hmacMd5 } from "../hash/digests.ts";

/** The SASL mechanisms edgemail speaks. */
export type SaslMechanism = "PLAIN" | "LOGIN" | "CRAM-MD5" | "XOAUTH2";

/** Who to authenticate as: a password, or an OAuth 2 access token for XOAUTH2. */
export interface SaslCredentials {
  /** The user name (UTF-8). */
  username: string;
  /** The password, for PLAIN, LOGIN and CRAM-MD5. */
  password?: string;
  /** The OAuth 2 access token, for XOAUTH2 (a `password` stands in when XOAUTH2 is asked for by name). */
  accessToken?: string;
}

/**
 * One mechanism's client side. Send `AUTH <mechanism>` followed by
 * `initialResponse` when it is defined; answer each `334` challenge (the
 * base64 text after `334 `) with the line `respond(challenge)` returns.
 */
export interface SaslClient {
  /** The mechanism name for the AUTH command. */
  readonly mechanism: SaslMechanism;
  /** The base64 initial response for the AUTH line, or `undefined` for none. */
  readonly initialResponse?: string;
  /**
   * The base64 line answering a `334` challenge. An empty first challenge (the
   * AUTH line went without an initial response) is answered with the initial
   * response. A challenge the mechanism does not expect gets
   * {@linkcode SASL_CANCEL}: the server then ends the exchange with a 501.
   */
  respond(challenge: string): Promise<string>;
}

/** The line that cancels an AUTH exchange (RFC 4954 section 4). */
export const SASL_CANCEL = "*";

/** Every mechanism edgemail speaks. */
export const SASL_MECHANISMS: readonly SaslMechanism[] = ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"];

/**
 * Password mechanisms, best first. PLAIN and LOGIN run over TLS, where they are
 * as safe as CRAM-MD5, which needs the server to store plaintext passwords.
 */
const PASSWORD_MECHANISMS: readonly SaslMechanism[] = ["PLAIN", "LOGIN", "CRAM-MD5"];

/** Whether `name` (any case) is a mechanism edgemail speaks. */
export function isSaslMechanism(name: string): boolean {
  return (SASL_MECHANISMS as readonly string[]).includes(name.toUpperCase());
}

/**
 * Picks the mechanism for AUTH. With `preferred` (any case), that one, or a
 * `TypeError` when it is unknown or the server does not offer it. Otherwise
 * the best offered one the credentials can use: XOAUTH2 when there is an
 * access token, else PLAIN, LOGIN, CRAM-MD5 in that order when there is a
 * password; `undefined` when none fits.
 *
 * @param offered The mechanisms of the server's EHLO `AUTH` line.
 */
export function chooseMechanism(
  offered: readonly string[],
  credentials: SaslCredentials,
  preferred?: string,
): SaslMechanism | undefined {
  const offers = new Set(offered.map((name) => name.toUpperCase()));
  if (preferred !== undefined) {
    const mechanism = preferred.toUpperCase() as SaslMechanism;
    if (!SASL_MECHANISMS.includes(mechanism)) {
      throw new TypeError(`auth.mechanism must be one of ${SASL_MECHANISMS.join(", ")}`);
    }
    if (!offers.has(mechanism)) {
      throw new TypeError(
        `The server does not offer AUTH ${mechanism} (${describeOffers(offered)}); ` +
          "choose an offered mechanism or leave auth.mechanism unset",
      );
    }
    return mechanism;
  }
  if (credentials.accessToken !== undefined && offers.has("XOAUTH2")) return "XOAUTH2";
  if (credentials.password === undefined) return undefined;
  return PASSWORD_MECHANISMS.find((mechanism) => offers.has(mechanism));
}

/** The server's offer for an error message, keeping only well-formed mechanism names. */
function describeOffers(offered: readonly string[]): string {
  const names = offered.filter((name) => /^[A-Za-z0-9_-]{1,20}$/.test(name));
  return names.length === 0 ? "it offers none" : `it offers ${names.join(" ").toUpperCase()}`;
}

/**
 * The client side of `mechanism` (any case) for `credentials`. Throws `TypeError`
 * (naming the field, never its value) when the credentials cannot be used
 * with it: a missing password or token, a NUL in PLAIN credentials, a \x01 in
 * XOAUTH2 ones.
 */
export function createSaslClient(
  mechanism: SaslMechanism,
  credentials: SaslCredentials,
): SaslClient {
  const { username } = credentials;
  if (typeof username !== "string" || username === "") {
    throw new TypeError("auth.username must be a non-empty string");
  }
  switch (String(mechanism).toUpperCase()) {
    case "PLAIN":
      return plainClient(username, requirePassword(credentials, "PLAIN"));
    case "LOGIN":
      return loginClient(username, requirePassword(credentials, "LOGIN"));
    case "CRAM-MD5":
      return cramMd5Client(username, requirePassword(credentials, "CRAM-MD5"));
    case "XOAUTH2":
      return xoauth2Client(username, requireToken(credentials));
    default:
      throw new TypeError(`auth.mechanism must be one of ${SASL_MECHANISMS.join(", ")}`);
  }
}

function requirePassword(credentials: SaslCredentials, mechanism: SaslMechanism): string {
  if (typeof credentials.password !== "string") {
    throw new TypeError(`auth.password is required for AUTH ${mechanism}`);
  }
  return credentials.password;
}

function requireToken(credentials: SaslCredentials): string {
  const token = credentials.accessToken ?? credentials.password;
  if (typeof token !== "string" || token === "") {
    throw new TypeError("auth.accessToken is required for AUTH XOAUTH2");
  }
  return token;
}

/** Throws when `value` contains `char`, naming `field` only. */
function refuseChar(value: string, char: string, field: string, why: string): void {
  if (value.includes(char)) throw new TypeError(`${field} must not contain ${why}`);
}

/**
 * A client whose whole exchange is one message: sent as the initial response,
 * or in answer to an empty first challenge. `afterwards` answers any later challenge.
 */
function oneShotClient(
  mechanism: SaslMechanism,
  response: string,
  afterwards: string,
): SaslClient {
  let challenges = 0;
  return {
    mechanism,
    initialResponse: response,
    respond(challenge) {
      const first = challenges++ === 0;
      return Promise.resolve(first && challenge.trim() === "" ? response : afterwards);
    },
  };
}

/** PLAIN (RFC 4616): empty authorization identity, NUL, user, NUL, password. */
function plainClient(username: string, password: string): SaslClient {
  refuseChar(username, "\0", "auth.username", "NUL characters for AUTH PLAIN");
  refuseChar(password, "\0", "auth.password", "NUL characters for AUTH PLAIN");
  return oneShotClient("PLAIN", encodeText(`\0${username}\0${password}`), SASL_CANCEL);
}

/**
 * XOAUTH2: `user=<u>^Aauth=Bearer <token>^A^A`. On failure the server sends a
 * 334 with a base64 JSON error; the empty answer lets it end with a 535.
 */
function xoauth2Client(username: string, token: string): SaslClient {
  refuseChar(username, "\x01", "auth.username", "\\x01 characters for AUTH XOAUTH2");
  refuseChar(token, "\x01", "auth.accessToken", "\\x01 characters for AUTH XOAUTH2");
  return oneShotClient(
    "XOAUTH2",
    encodeText(`user=${username}\x01auth=Bearer ${token}\x01\x01`),
    "",
  );
}

/**
 * LOGIN: no initial response; answers the "Username:" and "Password:"
 * prompts, read from the decoded challenge, or by their order when a prompt
 * says neither.
 */
function loginClient(username: string, password: string): SaslClient {
  let challenges = 0;
  return {
    mechanism: "LOGIN",
    respond(challenge) {
      const index = challenges++;
      if (index >= 2) return Promise.resolve(SASL_CANCEL);
      const prompt = decodeText(challenge)?.toLowerCase() ?? "";
      const wantsPassword = prompt.includes("pass") ||
        (!prompt.includes("user") && index === 1);
      return Promise.resolve(encodeText(wantsPassword ? password : username));
    },
  };
}

/**
 * CRAM-MD5 (RFC 2195): `user SP hex(HMAC-MD5(password, challenge))`. The platform's MD5
 * where it has one, else the audited @noble/hashes (hash/digests.ts); MD5 is used for nothing
 * else.
 */
function cramMd5Client(username: string, password: string): SaslClient {
  const key = new TextEncoder().encode(password);
  let challenges = 0;
  return {
    mechanism: "CRAM-MD5",
    async respond(challenge) {
      const bytes = challenges++ === 0 ? decodeBase64(challenge) : undefined;
      if (bytes === undefined || bytes.length === 0) return SASL_CANCEL;
      return encodeText(`${username} ${bytesToHex(await hmacMd5(key, bytes))}`);
    },
  };
}

/**
 * The forms `credentials` take on the wire: the user name, the password or
 * token, each of them in base64, and the whole base64 responses PLAIN, LOGIN
 * and XOAUTH2 send. Whatever repeats one of these repeats a credential; empty
 * values are left out.
 *
 * @example
 * ```ts
 * credentialForms({ username: "ann", password: "pw" }).includes(btoa("\0ann\0pw")); // true
 * ```
 */
export function credentialForms(credentials: SaslCredentials): string[] {
  const { username, password, accessToken } = credentials;
  const secrets = [password, accessToken].filter((value): value is string => !!value);
  const forms = new Set<string>([username, ...secrets].filter((value) => !!value));
  for (const value of [...forms]) forms.add(encodeText(value));
  for (const secret of secrets) {
    forms.add(encodeText(`\0${username}\0${secret}`));
    forms.add(encodeText(`user=${username}\x01auth=Bearer ${secret}\x01\x01`));
  }
  return [...forms];
}

/** Runs this long are looked for when a text is checked for part of a credential form. */
const ECHO_RUN = 8;

/**
 * Whether `text` repeats any of `forms`, whole or (for longer forms) any run
 * of 8 of its characters, ignoring case: a server that echoes even part of
 * an AUTH response must not have its text passed on.
 */
export function echoesCredentials(text: string, forms: readonly string[]): boolean {
  const haystack = text.toLowerCase();
  return forms.some((form) => {
    const needle = form.toLowerCase();
    if (needle.length <= ECHO_RUN) return haystack.includes(needle);
    for (let i = 0; i + ECHO_RUN <= needle.length; i++) {
      if (haystack.includes(needle.slice(i, i + ECHO_RUN))) return true;
    }
    return false;
  });
}

/** Base64 of the UTF-8 bytes of `text` (btoa alone fails on non-Latin-1 text). */
function encodeText(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  // In slices: spreading a huge array into fromCharCode overflows the stack.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** The bytes of a base64 challenge, or `undefined` when it is not base64. */
function decodeBase64(text: string): Uint8Array | undefined {
  try {
    return Uint8Array.from(atob(text.trim()), (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/** A base64 challenge as (lenient) UTF-8 text, or `undefined` when it is not base64. */
function decodeText(text: string): string | undefined {
  const bytes = decodeBase64(text);
  return bytes && new TextDecoder().decode(bytes);
}
