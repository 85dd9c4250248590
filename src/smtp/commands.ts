/**
 * SMTP command lines. Every value that reaches a command line passes
 * {@linkcode assertCommandSafe}: no CR, LF or NUL from any input, configuration
 * included, so nothing can inject a command.
 *
 * @module
 */

/** CR, LF and NUL: the characters no value may bring into a command line. */
export const COMMAND_UNSAFE: RegExp = /[\r\n\0]/;

/** Throws a TypeError naming `field` when `value` contains CR, LF or NUL. */
export function assertCommandSafe(value: string, field: string): void {
  if (COMMAND_UNSAFE.test(value)) {
    throw new TypeError(`${field} must not contain CR, LF or NUL characters.`);
  }
}

/**
 * Encodes `value` as xtext (RFC 3461 4): printable ASCII except `+` and `=`
 * as is, everything else as `+XX`, with non-ASCII characters as their UTF-8 bytes.
 */
export function xtext(value: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(value)) {
    out += byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d
      ? String.fromCharCode(byte)
      : `+${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The MAIL FROM parameters edgemail uses. */
export interface MailFromParams {
  /** Message size in octets (SIZE, RFC 1870). */
  size?: number;
  /** Declare 8-bit content (BODY=8BITMIME, RFC 6152). */
  eightBitMime?: boolean;
  /** Declare internationalised addresses or headers (SMTPUTF8, RFC 6531). */
  smtputf8?: boolean;
  /** DSN: what to return on failure (RET, RFC 3461). */
  ret?: "headers" | "full";
  /** DSN: the envelope identifier (ENVID, RFC 3461). */
  envelopeId?: string;
}

/** `MAIL FROM:<address> params…` */
export function mailFromCommand(address: string, params: MailFromParams = {}): string {
  assertCommandSafe(address, "from");
  let line = `MAIL FROM:<${address}>`;
  if (params.size !== undefined) line += ` SIZE=${params.size}`;
  if (params.eightBitMime) line += " BODY=8BITMIME";
  if (params.smtputf8) line += " SMTPUTF8";
  if (params.ret) line += ` RET=${params.ret === "full" ? "FULL" : "HDRS"}`;
  if (params.envelopeId !== undefined) {
    assertCommandSafe(params.envelopeId, "dsn.envelopeId");
    line += ` ENVID=${xtext(params.envelopeId)}`;
  }
  return line;
}

/** The RCPT TO parameters edgemail uses. */
export interface RcptToParams {
  /** DSN: when to notify (NOTIFY, RFC 3461). */
  notify?: readonly string[];
  /** DSN: the original recipient, sent as `rfc822;` + xtext. */
  originalRecipient?: string;
}

/** `RCPT TO:<address> params…` */
export function rcptToCommand(address: string, params: RcptToParams = {}): string {
  assertCommandSafe(address, "recipient");
  let line = `RCPT TO:<${address}>`;
  if (params.notify && params.notify.length > 0) {
    line += ` NOTIFY=${params.notify.map((n) => n.toUpperCase()).join(",")}`;
  }
  if (params.originalRecipient !== undefined) {
    line += ` ORCPT=rfc822;${xtext(params.originalRecipient)}`;
  }
  return line;
}

/** `EHLO name` or `HELO name`. */
export function greetCommand(verb: "EHLO" | "HELO", name: string): string {
  assertCommandSafe(name, "name");
  return `${verb} ${name}`;
}

/** Whether any of `addresses` is non-ASCII (and so needs SMTPUTF8). */
export function needsSmtputf8(addresses: readonly string[]): boolean {
  // deno-lint-ignore no-control-regex
  return addresses.some((address) => !/^[\x00-\x7f]*$/.test(address));
}
