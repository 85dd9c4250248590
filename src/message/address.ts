/**
 * A strict, boring address grammar and the normalised form that goes into
 * `MAIL FROM` / `RCPT TO`.
 *
 * Accepted: `local@domain`, `Name <local@domain>` and `"Quoted, Name" <local@domain>`.
 * The local part is a dot-atom (no quoted local parts, no comments, no
 * whitespace, no leading `-`); non-ASCII local parts are accepted but flagged
 * (`smtputf8`), because only servers with SMTPUTF8 can take them. Domains are
 * host names; internationalised domains are converted to A-labels with the
 * platform's own `URL` parser and lowercased, so every consumer (allowlists,
 * the envelope, the headers) sees one form. The local part is kept as given.
 *
 * Errors are `TypeError`s that say what is wrong and never repeat the input.
 *
 * @module
 */

import { headerTextProblem } from "./header_text.ts";

/** A parsed address with an optional display name. */
export interface Mailbox {
  /** The display name, unquoted and unescaped; absent when empty. */
  name?: string;
  /** The normalised RCPT form: `local@a-label-domain`, domain lowercased. */
  address: string;
  /** Whether the local part is non-ASCII, so sending needs SMTPUTF8. */
  smtputf8: boolean;
}

/** RFC 5321 limits, in octets. */
const MAX_LOCAL_OCTETS = 64;
const MAX_ADDRESS_OCTETS = 254;
/**
 * Longer address text is refused before any per-character work: UTF-8 never
 * has fewer octets than UTF-16 code units, so only domain mappings that drop
 * characters (UTS #46) could bring such text under 254 octets.
 */
const MAX_ADDRESS_TEXT = 1024;

/** Longest display name, in characters (code points). */
export const MAX_DISPLAY_NAME = 256;

/** RFC 5322 atext, ASCII part. */
const ATEXT_ASCII = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]$/;
/** Characters no part of an address or display name may contain. */
// deno-lint-ignore no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;
/** Non-ASCII characters that are never part of an address (controls, formats, separators). */
const BAD_NON_ASCII = /[\p{C}\p{Z}]/u;
/** An LDH label as the URL parser leaves it (lowercase A-labels). */
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

const encoder = new TextEncoder();

/** Length of `text` in UTF-8 octets. */
function octets(text: string): number {
  return encoder.encode(text).length;
}

/**
 * Validates a dot-atom local part and reports whether it is non-ASCII.
 * Throws a `TypeError` naming the rule that failed.
 */
function checkLocalPart(local: string): boolean {
  if (local.length === 0) throw new TypeError("the address has nothing before the @");
  if (local.length > MAX_LOCAL_OCTETS) {
    throw new TypeError(`the local part is longer than ${MAX_LOCAL_OCTETS} octets`);
  }
  if (local.startsWith('"')) {
    throw new TypeError(
      "quoted local parts are not accepted; use a plain address like name@example.com",
    );
  }
  if (local.startsWith("-")) throw new TypeError("the local part must not start with '-'");
  if (local.startsWith(".") || local.endsWith(".") || local.includes("..")) {
    throw new TypeError(
      "the local part must not start or end with a dot or contain two dots in a row",
    );
  }
  let nonAscii = false;
  for (const char of local) {
    if (char === ".") continue;
    if (char.charCodeAt(0) < 0x80) {
      if (!ATEXT_ASCII.test(char)) {
        throw new TypeError(
          "the local part may contain only letters, digits, dots and !#$%&'*+-/=?^_`{|}~",
        );
      }
    } else {
      if (BAD_NON_ASCII.test(char)) {
        throw new TypeError("the local part contains an invisible or control character");
      }
      nonAscii = true;
    }
  }
  if (octets(local) > MAX_LOCAL_OCTETS) {
    throw new TypeError(`the local part is longer than ${MAX_LOCAL_OCTETS} octets`);
  }
  return nonAscii;
}

/**
 * Converts a domain to its lowercase A-label form with the platform's URL
 * parser (UTS #46), and checks that the result is a plain host name.
 * Throws a `TypeError` for anything else (IP addresses and literals included).
 */
export function normalizeDomain(domain: string): string {
  if (domain.length === 0) throw new TypeError("the address has nothing after the @");
  if (domain.length > MAX_ADDRESS_TEXT) {
    throw new TypeError("the domain is longer than 253 characters");
  }
  if (domain.startsWith("[")) {
    throw new TypeError("address literals like [192.0.2.1] are not accepted; use a domain name");
  }
  for (const char of domain) {
    const code = char.charCodeAt(0);
    if (code < 0x80 ? !/[A-Za-z0-9.-]/.test(char) : BAD_NON_ASCII.test(char)) {
      throw new TypeError(
        "the domain may contain only letters, digits, hyphens and dots",
      );
    }
  }
  let hostname: string;
  try {
    hostname = new URL(`http://${domain}/`).hostname;
  } catch {
    // The URL error message repeats the input, so it is not passed on.
    throw new TypeError("the domain is not a valid internationalised domain name");
  }
  const labels = hostname.split(".");
  if (hostname.length > 253 || !labels.every((label) => LDH_LABEL.test(label))) {
    throw new TypeError(
      "the domain is not a valid host name (labels of 1-63 letters, digits or inner hyphens, separated by single dots)",
    );
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1])) {
    throw new TypeError("IP addresses are not accepted as domains; use a domain name");
  }
  return hostname;
}

/** Splits and checks a bare addr-spec; returns the normalised form and the SMTPUTF8 flag. */
function parseAddrSpec(text: string): { address: string; smtputf8: boolean } {
  if (text.length === 0) throw new TypeError("the address is empty");
  if (text.length > MAX_ADDRESS_TEXT) {
    throw new TypeError(`the address is longer than ${MAX_ADDRESS_OCTETS} octets`);
  }
  if (CONTROL.test(text)) {
    throw new TypeError("the address contains a line break or another control character");
  }
  if (text.includes('"')) {
    throw new TypeError(
      "quoted local parts are not accepted; use a plain address like name@example.com",
    );
  }
  if (/[()]/.test(text)) throw new TypeError("comments in parentheses are not accepted");
  if (/[\s\p{Z}]/u.test(text)) throw new TypeError("the address must not contain whitespace");
  if (/[<>]/.test(text)) throw new TypeError("the address has unbalanced angle brackets");
  const at = text.indexOf("@");
  if (at === -1) throw new TypeError("the address has no @");
  if (text.indexOf("@", at + 1) !== -1) throw new TypeError("the address contains more than one @");
  const local = text.slice(0, at);
  const smtputf8 = checkLocalPart(local);
  const address = `${local}@${normalizeDomain(text.slice(at + 1))}`;
  if (octets(address) > MAX_ADDRESS_OCTETS) {
    throw new TypeError(`the address is longer than ${MAX_ADDRESS_OCTETS} octets`);
  }
  return { address, smtputf8 };
}

/**
 * Returns the exact string that goes into `RCPT TO` / `MAIL FROM` for a bare
 * address: the local part as given, the domain as lowercase A-labels.
 * Allowlist checks must compare this form.
 *
 * @example
 * ```ts
 * normalizeAddress("Ann@Bücher.Example"); // "Ann@xn--bcher-kva.example"
 * ```
 * @throws {TypeError} when the address does not follow the grammar.
 */
export function normalizeAddress(address: string): string {
  return parseAddrSpec(address.trim()).address;
}

/**
 * Whether `text` has more than `max` code points, found without going
 * through all of a long text (a UTF-16 unit count bounds the code points).
 */
export function hasMoreCodePoints(text: string, max: number): boolean {
  if (text.length <= max) return false;
  if (text.length > 2 * max) return true;
  let count = 0;
  for (const _ of text) if (++count > max) return true;
  return false;
}

/**
 * Checks a display name: at most 256 characters, no line breaks, NUL or
 * other C0 controls, and well-formed Unicode. Returns it, or `undefined` when
 * it is empty.
 *
 * @throws {TypeError} when the name is too long or contains a forbidden character.
 */
export function checkDisplayName(name: string): string | undefined {
  if (hasMoreCodePoints(name, MAX_DISPLAY_NAME)) {
    throw new TypeError(`the display name is longer than ${MAX_DISPLAY_NAME} characters`);
  }
  const problem = headerTextProblem(name);
  if (problem !== undefined) throw new TypeError(`the display name ${problem}`);
  const trimmed = name.trim();
  return trimmed.length === 0 ? undefined : trimmed;
}

/** Unquotes a display name written as an RFC 5322 quoted-string. */
function unquote(text: string): string {
  const parts: string[] = [];
  let from = 1;
  for (let i = 1; i < text.length - 1; i++) {
    const char = text[i];
    if (char === "\\") {
      if (i + 1 >= text.length - 1) {
        throw new TypeError("the quoted display name ends with a backslash");
      }
      parts.push(text.slice(from, i));
      from = ++i;
    } else if (char === '"') {
      throw new TypeError("the display name has an unescaped quote inside quotes");
    }
  }
  parts.push(text.slice(from, text.length - 1));
  return parts.join("");
}

/** Parses the part before `<`: a quoted-string or plain text. */
function parseDisplayName(text: string): string | undefined {
  const trimmed = text.trim();
  // A quoted name is at most twice as long as its content (escapes), plus the quotes.
  if (trimmed.length > 4 * MAX_DISPLAY_NAME + 2) {
    throw new TypeError(`the display name is longer than ${MAX_DISPLAY_NAME} characters`);
  }
  if (trimmed.startsWith('"') && trimmed.endsWith('"') && trimmed.length >= 2) {
    return checkDisplayName(unquote(trimmed));
  }
  if (trimmed.includes('"')) {
    throw new TypeError(
      'the display name has unbalanced quotes; quote the whole name: "Name" <a@b>',
    );
  }
  if (/[<>]/.test(trimmed)) throw new TypeError("the display name contains < or >");
  return checkDisplayName(trimmed);
}

/**
 * Parses one mailbox: `a@b.c` or `Name <a@b.c>` (the name may be quoted).
 *
 * @example
 * ```ts
 * parseMailbox("Ann <ann@example.com>"); // { name: "Ann", address: "ann@example.com", smtputf8: false }
 * ```
 * @throws {TypeError} with the reason (never the input) when it is not a valid mailbox.
 */
export function parseMailbox(text: string): Mailbox {
  if (CONTROL.test(text)) {
    throw new TypeError("the address contains a line break or another control character");
  }
  const trimmed = text.trim();
  if (trimmed.length === 0) throw new TypeError("the address is empty");
  if (!trimmed.endsWith(">")) {
    if (trimmed.includes("<")) {
      throw new TypeError("text after the closing > is not accepted (comments are not accepted)");
    }
    return { ...parseAddrSpec(trimmed) };
  }
  const open = trimmed.lastIndexOf("<");
  if (open === -1) throw new TypeError("the address has unbalanced angle brackets");
  const name = parseDisplayName(trimmed.slice(0, open));
  const spec = parseAddrSpec(trimmed.slice(open + 1, -1).trim());
  return name === undefined ? spec : { name, ...spec };
}

/**
 * Calls `onEntry(start, end)` for each entry of a comma list, split at commas
 * outside quotes and angle brackets, in one pass and without building strings;
 * stops early when `onEntry` returns false. Returns the number of entries seen.
 */
function scanList(text: string, onEntry: (start: number, end: number) => boolean): number {
  let entries = 0;
  let start = 0;
  // Plain lists (no quotes, no angle brackets) split at every comma: indexOf is native.
  if (!/["<>]/.test(text)) {
    for (;;) {
      const comma = text.indexOf(",", start);
      const end = comma === -1 ? text.length : comma;
      entries++;
      if (!onEntry(start, end) || comma === -1) return entries;
      start = comma + 1;
    }
  }
  let quoted = false;
  let angle = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === "\\") i++;
      else if (char === '"') quoted = false;
    } else if (char === '"') quoted = true;
    else if (char === "<") angle = true;
    else if (char === ">") angle = false;
    else if (char === "," && !angle) {
      entries++;
      if (!onEntry(start, i)) return entries;
      start = i + 1;
    }
  }
  entries++;
  onEntry(start, text.length);
  return entries;
}

/** Finds the next non-whitespace character (global: searched from `lastIndex`). */
const NOT_BLANK = /\S/g;

/** Whether `text[start, end)` has a non-whitespace character. */
function isEntry(text: string, start: number, end: number): boolean {
  NOT_BLANK.lastIndex = start;
  return NOT_BLANK.test(text) && NOT_BLANK.lastIndex <= end;
}

/**
 * The number of mailboxes a comma list names (blank entries are not counted),
 * found in one pass without parsing them; counting stops once it passes `max`.
 *
 * @example
 * ```ts
 * countAddressList("a@example.com, Name <b@example.com>,"); // 2
 * ```
 */
export function countAddressList(text: string, max = Infinity): number {
  let count = 0;
  scanList(text, (start, end) => {
    if (isEntry(text, start, end)) count++;
    return count <= max;
  });
  return count;
}

/** Options for {@linkcode parseAddressList}. */
export interface ParseAddressListOptions {
  /** The most mailboxes the list may name; more throw a `RangeError` before any is parsed. */
  max?: number;
}

/**
 * Parses a comma-separated list of mailboxes (`"a@b, Name <c@d>"`) in linear
 * time, without recursion. Blank entries (a trailing comma) are skipped; an
 * entirely blank list is an error.
 *
 * @throws {TypeError} naming the 1-based entry that is invalid.
 * @throws {RangeError} when the list names more than `options.max` mailboxes.
 */
export function parseAddressList(text: string, options: ParseAddressListOptions = {}): Mailbox[] {
  const { max = Infinity } = options;
  if (max !== Infinity && countAddressList(text, max) > max) {
    throw new RangeError(`the list has more than ${max} addresses`);
  }
  const mailboxes: Mailbox[] = [];
  let index = 0;
  let failure: unknown;
  scanList(text, (start, end) => {
    index++;
    if (!isEntry(text, start, end)) return true;
    try {
      mailboxes.push(parseMailbox(text.slice(start, end)));
      return true;
    } catch (error) {
      // A list of one entry is reported without "entry 1 of the list".
      const single = start === 0 && end === text.length;
      failure = single
        ? error
        : new TypeError(`entry ${index} of the list: ${(error as Error).message}`);
      return false;
    }
  });
  if (failure !== undefined) throw failure;
  if (mailboxes.length === 0) throw new TypeError("the address list is empty");
  return mailboxes;
}
