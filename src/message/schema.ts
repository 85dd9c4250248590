/**
 * The one valibot schema for a message (contract section 3), shared by the
 * HTTP layer and the library, and {@linkcode parseMessage}, which validates
 * and snapshots a message in one step. The fields' own schemas are in
 * `address_schema.ts`, `attachment_schema.ts` and `headers_schema.ts`.
 *
 * Issues name the field (`to[1]`, `attachments[0].content`) and say what is
 * wrong; they never repeat the value.
 *
 * @module
 */

import * as v from "valibot";
import { type Mailbox, parseMailbox } from "./address.ts";
import {
  type AddressInput,
  type AddressListInput,
  AddressListSchema,
  AddressSchema,
  countAddresses,
} from "./address_schema.ts";
import { type Attachment, type AttachmentInput, AttachmentSchema } from "./attachment_schema.ts";
import { bodyText, exactObject, headerText } from "./field_schemas.ts";
import { HeadersSchema } from "./headers_schema.ts";
import {
  MessageValidationError,
  toValidationIssues,
  type ValidationIssue,
} from "./validation_issues.ts";

// ---------------------------------------------------------------------------
// Types (written out, so that the public API has explicit types)

/** Delivery Status Notification options (RFC 3461). */
export interface DsnOptions {
  /** When to notify: any of success, failure, delay; or `["never"]`. */
  notify?: ("success" | "failure" | "delay" | "never")[];
  /** Return the headers only or the full message in a DSN. */
  return?: "headers" | "full";
  /** The envelope id (ENVID): 1 to 100 printable ASCII characters. */
  envelopeId?: string;
}

/** The message as a caller writes it (contract section 3, JSON shape). */
export interface MessageInput {
  /** The sender; optional when a default sender is configured. */
  from?: AddressInput;
  /** Recipients; at least one of to, cc, bcc must be non-empty. */
  to?: AddressListInput;
  /** Copy recipients. */
  cc?: AddressListInput;
  /** Blind copy recipients: in the envelope only, never in a header. */
  bcc?: AddressListInput;
  /** Where replies go. */
  replyTo?: AddressListInput;
  /** The subject; non-ASCII is sent as RFC 2047 encoded-words. */
  subject?: string;
  /** The plain text body. */
  text?: string;
  /** The html body. */
  html?: string;
  /** Files, as base64. */
  attachments?: AttachmentInput[];
  /** Extra header fields; structural ones are refused (see {@linkcode RESERVED_HEADERS}). */
  headers?: Record<string, string>;
  /** Delivery Status Notification request. */
  dsn?: DsnOptions;
  /** Send to the accepted recipients even when some are refused. Default false. */
  allowPartial?: boolean;
  /** Echoed back unchanged in every event and in the result. */
  token?: string | number;
}

/** The validated, normalised message that {@linkcode parseMessage} returns. */
export interface Message {
  /** The sender; undefined only when it was missing and no default applied. */
  from?: Mailbox;
  /** Recipients (always an array). */
  to: Mailbox[];
  /** Copy recipients (always an array). */
  cc: Mailbox[];
  /** Blind copy recipients (always an array). */
  bcc: Mailbox[];
  /** Reply addresses (always an array). */
  replyTo: Mailbox[];
  /** The subject. */
  subject?: string;
  /** The plain text body. */
  text?: string;
  /** The html body. */
  html?: string;
  /** Attachments (always an array), content types resolved. */
  attachments: Attachment[];
  /** Extra header fields (always an object). */
  headers: Record<string, string>;
  /** Delivery Status Notification request. */
  dsn?: DsnOptions;
  /** Send to the accepted recipients even when some are refused. */
  allowPartial: boolean;
  /** The caller's token. */
  token?: string | number;
}

/** Longest subject, in characters (the longest line SMTP allows, in octets). */
export const MAX_SUBJECT = 998;

// ---------------------------------------------------------------------------
// DSN

const NOTIFY = ["success", "failure", "delay", "never"] as const;

const DsnSchema = exactObject(
  {
    notify: v.optional(
      v.pipe(
        v.array(v.picklist(NOTIFY, "must be success, failure, delay or never"), "must be an array"),
        v.minLength(1, 'must list at least one of success, failure, delay, or be ["never"]'),
        v.check((list) => new Set(list).size === list.length, "must not repeat a value"),
        v.check(
          (list) => !list.includes("never") || list.length === 1,
          '"never" must be the only value',
        ),
      ),
    ),
    return: v.optional(v.picklist(["headers", "full"], 'must be "headers" or "full"')),
    envelopeId: v.optional(
      v.pipe(
        v.string("must be a string"),
        v.regex(/^[\x20-\x7e]{1,100}$/, "must be 1 to 100 printable ASCII characters"),
      ),
    ),
  },
  "an object { notify?, return?, envelopeId? }",
);

// ---------------------------------------------------------------------------
// The message

/**
 * The whole message (contract section 3). Output: addresses as
 * {@linkcode Mailbox}es, `to`/`cc`/`bcc`/`replyTo` always arrays,
 * `attachments` and `headers` always present, `allowPartial` defaults to false.
 * At least one of `to`, `cc`, `bcc` must be non-empty; `from` stays optional
 * here (a default sender may apply, see {@linkcode parseMessage}).
 */
export const MessageSchema: v.GenericSchema<MessageInput, Message> = v.pipe(
  exactObject(
    {
      from: v.optional(AddressSchema),
      to: v.optional(AddressListSchema, () => []),
      cc: v.optional(AddressListSchema, () => []),
      bcc: v.optional(AddressListSchema, () => []),
      replyTo: v.optional(AddressListSchema, () => []),
      subject: v.optional(headerText("a string", MAX_SUBJECT)),
      text: v.optional(bodyText("a string")),
      html: v.optional(bodyText("a string")),
      attachments: v.optional(
        v.array(AttachmentSchema, "must be an array of attachments"),
        () => [],
      ),
      headers: v.optional(HeadersSchema, () => ({})),
      dsn: v.optional(DsnSchema),
      allowPartial: v.optional(v.boolean("must be true or false"), false),
      token: v.optional(v.union([v.string(), v.number()], "must be a string or a number")),
    },
    "a JSON object",
  ),
  v.forward(
    v.partialCheck(
      [["to"], ["cc"], ["bcc"]],
      (message) => message.to.length + message.cc.length + message.bcc.length > 0,
      "at least one recipient is required in to, cc or bcc",
    ),
    ["to"],
  ),
  v.partialCheck(
    [["subject"], ["text"], ["html"], ["attachments"]],
    (message) =>
      !!message.subject || !!message.text || !!message.html || message.attachments.length > 0,
    "is empty: give at least one of subject, text, html or attachments",
  ),
) as v.GenericSchema<MessageInput, Message>;

/**
 * The number of addresses in `to`, `cc` and `bcc` of a message as a caller
 * wrote it (before validation), counted in one scan without parsing any:
 * comma lists count their entries, objects one each. Counting stops once it
 * passes `max`. Anything that is not an address counts one (validation will
 * refuse it).
 */
export function countRecipients(input: unknown, max = Infinity): number {
  if (typeof input !== "object" || input === null) return 0;
  const fields = input as Record<string, unknown>;
  let count = 0;
  for (const name of ["to", "cc", "bcc"]) {
    const value = fields[name];
    if (value === undefined) continue;
    count += countAddresses(Array.isArray(value) ? value : [value], max - count);
    if (count > max) break;
  }
  return count;
}

// ---------------------------------------------------------------------------
// Validating once

declare const validatedBrand: unique symbol;

/**
 * A {@linkcode Message} that {@linkcode parseMessage} (or
 * {@linkcode safeParseMessage}) produced: validated, normalised and frozen,
 * so it can be handed on (HTTP layer → policy → SMTP client) and sent without
 * being parsed again. Check a value with {@linkcode isValidatedMessage}.
 */
export type ValidatedMessage = Message & { readonly [validatedBrand]: true };

/** The messages this module validated (frozen, so they are still valid). */
const validatedMessages = new WeakSet<object>();

/**
 * Whether `value` is a message {@linkcode parseMessage} returned: then it is
 * valid and frozen, and may be sent as it is. A copy (`{ ...message }`) is not.
 */
export function isValidatedMessage(value: unknown): value is ValidatedMessage {
  return typeof value === "object" && value !== null && validatedMessages.has(value);
}

/** Freezes a parsed message and everything in it, then marks it validated. */
function seal(message: Message): ValidatedMessage {
  for (const list of [message.to, message.cc, message.bcc, message.replyTo]) {
    for (const mailbox of list) Object.freeze(mailbox);
    Object.freeze(list);
  }
  if (message.from !== undefined) Object.freeze(message.from);
  for (const attachment of message.attachments) Object.freeze(attachment);
  Object.freeze(message.attachments);
  Object.freeze(message.headers);
  if (message.dsn !== undefined) {
    if (message.dsn.notify !== undefined) Object.freeze(message.dsn.notify);
    Object.freeze(message.dsn);
  }
  Object.freeze(message);
  validatedMessages.add(message);
  return message as ValidatedMessage;
}

/**
 * {@linkcode MessageSchema} whose output is a {@linkcode ValidatedMessage}
 * (frozen and marked), so that what it validated is sent as it is, never
 * validated again. The HTTP function's request schemas use it.
 */
export const ValidatedMessageSchema: v.GenericSchema<MessageInput, ValidatedMessage> = v.pipe(
  MessageSchema,
  v.transform(seal),
);

/**
 * `message` with `sender` as its `from` when it has none (a default sender,
 * `MAIL_FROM`): a new {@linkcode ValidatedMessage} sharing everything else;
 * `message` itself when it has a sender. `sender` must be what
 * {@linkcode parseMailbox} returned.
 *
 * @throws {TypeError} when `message` is not a {@linkcode ValidatedMessage}.
 */
export function withDefaultSender(message: ValidatedMessage, sender: Mailbox): ValidatedMessage {
  if (!isValidatedMessage(message)) {
    throw new TypeError("withDefaultSender takes a ValidatedMessage (what parseMessage returns)");
  }
  const withSender = withFrom(message, sender);
  return withSender === message ? message : seal(withSender);
}

/** `message` with a copy of `sender` as its `from` when it has none, else `message` itself. */
function withFrom(message: Message, sender: Mailbox): Message {
  return message.from === undefined ? { ...message, from: { ...sender } } : message;
}

/** Options for {@linkcode parseMessage}. */
export interface ParseMessageOptions {
  /** The sender used when the message has no `from` (`MAIL_FROM`), e.g. `"App <app@example.com>"`. */
  defaultFrom?: string;
}

/** What {@linkcode safeParseMessage} returns. */
export type ParseMessageResult =
  | { success: true; message: ValidatedMessage }
  | { success: false; issues: ValidationIssue[] };

/**
 * {@linkcode parseMessage} without the throw for invalid input: the message,
 * or every problem with its path (what the HTTP layer answers with a 400).
 *
 * @throws {TypeError} when `options.defaultFrom` itself is not a valid address.
 */
export function safeParseMessage(
  input: unknown,
  options: ParseMessageOptions = {},
): ParseMessageResult {
  let defaultFrom: Mailbox | undefined;
  if (options.defaultFrom !== undefined) {
    try {
      defaultFrom = parseMailbox(options.defaultFrom);
    } catch (error) {
      throw new TypeError(
        `The default sender (defaultFrom) is invalid: ${(error as Error).message}`,
      );
    }
  }
  const result = v.safeParse(MessageSchema, input);
  const issues = result.success ? [] : toValidationIssues(result.issues);
  const hasFrom = typeof input === "object" && input !== null &&
    (input as Record<string, unknown>).from !== undefined;
  if (!hasFrom && defaultFrom === undefined && typeof input === "object" && input !== null) {
    issues.unshift({ path: "from", message: "is required (no default sender is configured)" });
  }
  if (!result.success || issues.length > 0) return { success: false, issues };
  // Sealed once, with the default sender already in place.
  const message = defaultFrom === undefined ? result.output : withFrom(result.output, defaultFrom);
  return { success: true, message: seal(message) };
}

/**
 * Validates a message and returns a normalised, frozen snapshot of it that
 * shares nothing mutable with `input`, so later changes by the caller have no
 * effect; the result is a {@linkcode ValidatedMessage}, which can be sent
 * without validating again. `from` falls back to `options.defaultFrom`; one of
 * them is required.
 *
 * @example
 * ```ts
 * const message = parseMessage({ from: "a@example.com", to: "b@example.org", text: "Hi" });
 * isValidatedMessage(message); // true
 * ```
 * @throws {MessageValidationError} listing every problem by path, never the values.
 * @throws {TypeError} when `options.defaultFrom` itself is not a valid address.
 */
export function parseMessage(input: unknown, options: ParseMessageOptions = {}): ValidatedMessage {
  const result = safeParseMessage(input, options);
  if (!result.success) throw new MessageValidationError(result.issues);
  return result.message;
}
