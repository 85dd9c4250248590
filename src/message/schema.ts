/**
 * The one valibot schema for a message (contract section 3), shared by the
 * HTTP layer and the library, and {@linkcode parseMessage}, which validates
 * and snapshots a message in one step.
 *
 * Issues name the field (`to[1]`, `attachments[0].content`) and say what is
 * wrong; they never repeat the value.
 *
 * @module
 */

import * as v from "valibot";
import {
  checkDisplayName,
  countAddressList,
  hasMoreCodePoints,
  type Mailbox,
  parseAddressList,
  parseMailbox,
} from "./address.ts";
import { type Base64Scan, headerTextProblem, scanBase64 } from "./encoding.ts";
import { mediaTypeForFilename, mediaTypeProblem } from "./media_types.ts";

// ---------------------------------------------------------------------------
// Issues

/** One validation problem: where, and what is wrong (never the value). */
export interface ValidationIssue {
  /** The field, like `to[1]` or `attachments[0].content`; `""` for the message itself. */
  path: string;
  /** What is wrong with it. */
  message: string;
}

/** Thrown by {@linkcode parseMessage}: every problem with its path; values are never included. */
export class MessageValidationError extends TypeError {
  /** The problems, one per field. */
  readonly issues: ValidationIssue[];

  /** Creates the error; its message lists the paths and reasons. */
  constructor(issues: ValidationIssue[]) {
    super(
      `Invalid message: ${
        issues.map((issue) => `${issue.path || "(message)"}: ${issue.message}`).join("; ")
      }`,
    );
    this.name = "MessageValidationError";
    this.issues = issues;
  }
}

/** Formats one path key: `[1]`, `.name`, `["X-Campaign"]`, or `[?]` for keys unsafe to show. */
function formatKey(key: unknown, first: boolean): string {
  if (typeof key === "number") return `[${key}]`;
  if (typeof key !== "string" || key.length > 64) return "[?]";
  if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return first ? key : `.${key}`;
  if (!/[^\x20-\x7e]|["\\]/.test(key)) return `["${key}"]`;
  return "[?]";
}

/** Formats a valibot path as `to[1]`, `attachments[0].content`, `headers["X-A"]`. */
function formatPath(prefix: string, path: readonly { key: unknown }[] | undefined): string {
  let out = prefix;
  for (const item of path ?? []) out += formatKey(item.key, out === "");
  return out;
}

/** The JavaScript type name of a value, for "expected X, got Y" without the value. */
function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * A message for an issue that never contains the input: valibot's default
 * messages end with "received <value>", which is cut off.
 */
function safeMessage(issue: v.BaseIssue<unknown>): string {
  const tail = `eceived ${issue.received}`;
  if (!issue.message.endsWith(tail)) return issue.message;
  const head = issue.message.slice(0, -tail.length).replace(/( but r|: R|R)$/, "");
  return issue.kind === "schema" ? `${head} (got ${typeName(issue.input)})` : head;
}

/**
 * Converts valibot issues to {@linkcode ValidationIssue}s: paths as `to[1]` and
 * messages that never echo the input. Union issues are replaced by the issues
 * of the branch that matched the input's shape, when one did, so that the
 * path points at the innermost field. The HTTP layer uses it for its own schemas.
 */
export function toValidationIssues(issues: v.BaseIssue<unknown>[]): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const visit = (issue: v.BaseIssue<unknown>, prefix: string) => {
    const path = formatPath(prefix, issue.path);
    // An array also passes for an object: only the issues of branches of the input's own kind.
    const deeper = issue.type === "union"
      ? (issue.issues ?? []).filter((sub) =>
        sub.path !== undefined && sub.path.length > 0 &&
        (sub.path[0].type === "array") === Array.isArray(issue.input)
      )
      : [];
    if (deeper.length > 0) {
      for (const sub of deeper) visit(sub, path);
    } else if (!out.some((seen) => seen.path === path && seen.message === safeMessage(issue))) {
      out.push({ path, message: safeMessage(issue) });
    }
  };
  for (const issue of issues) visit(issue, "");
  return out;
}

// ---------------------------------------------------------------------------
// Types (written out, so that the public API has explicit types)

/**
 * An address as a caller writes it: `"a@b.c"`, `"Name <a@b.c>"` or
 * `{ name, address }`. `smtputf8` is ignored (recomputed); it is accepted so
 * that a parsed {@linkcode Mailbox} is valid input again.
 */
export type AddressInput = string | { name?: string; address: string; smtputf8?: boolean };

/** One or more addresses: an address, a comma list in a string, or an array of those. */
export type AddressListInput = AddressInput | AddressInput[];

/** An attachment as a caller writes it. */
export interface AttachmentInput {
  /** The file name shown to the recipient (required). */
  filename: string;
  /** The content, base64 (standard or URL-safe alphabet; whitespace and missing padding are fine). */
  content: string;
  /** The media type; by default guessed from the file name's extension. */
  contentType?: string;
  /** Makes the part inline, referenced from the html as `cid:<contentId>`. */
  contentId?: string;
}

/** An attachment after validation. */
export interface Attachment {
  /** The file name shown to the recipient. */
  filename: string;
  /** The content as base64 text, as given (validated, not decoded). */
  content: string;
  /** The media type, lowercase; guessed from the file name when not given. */
  contentType: string;
  /** Set for inline parts referenced from the html as `cid:<contentId>`. */
  contentId?: string;
}

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

// ---------------------------------------------------------------------------
// Building blocks

/** Message function for strict objects: missing key, or not an object. */
function objectMessage(what: string): (issue: v.BaseIssue<unknown>) => string {
  return (issue) => issue.path === undefined ? `must be ${what}` : "is required";
}

/**
 * An object with exactly these entries. Unlike `v.strictObject`, which stops
 * at the first unknown key, every unknown key is reported, each at its path.
 */
export function exactObject<const E extends v.ObjectEntries>(
  entries: E,
  what: string,
): v.ObjectWithRestSchema<E, v.NeverSchema<string>, (issue: v.BaseIssue<unknown>) => string> {
  return v.objectWithRest(entries, v.never("is not a known field"), objectMessage(what));
}

/** Longest subject, in characters (the longest line SMTP allows, in octets). */
export const MAX_SUBJECT = 998;
/** Longest custom header value, in characters. */
export const MAX_HEADER_VALUE = 4096;
/** Most custom header fields in one message. */
export const MAX_HEADERS = 64;
/**
 * Most addresses one of `to`, `cc`, `bcc`, `replyTo` may name, whatever the
 * HTTP function's `MAX_RECIPIENTS` (SMTP servers refuse more recipients per
 * message: Postfix's default is 1000). Longer lists are refused before any
 * address in them is parsed.
 */
export const MAX_LIST_ADDRESSES = 1000;

/** Why `text` is too long (checked first, before any other pass over it), or `undefined`. */
function lengthProblem(text: string, max: number): string | undefined {
  return hasMoreCodePoints(text, max) ? `must be at most ${max} characters` : undefined;
}

/** A string field that must be usable in a header, at most `max` characters long. */
function headerText(what: string, max: number) {
  return v.pipe(
    v.string(`must be ${what}`),
    v.rawCheck<string>(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const problem = lengthProblem(dataset.value, max) ?? headerTextProblem(dataset.value);
      if (problem !== undefined) addIssue({ message: problem });
    }),
  );
}

/** A body string: any text, as long as it is well-formed Unicode. */
function bodyText(what: string) {
  return v.pipe(
    v.string(`must be ${what}`),
    v.check(
      (text: string) => text.isWellFormed(),
      "is not well-formed Unicode (it contains a lone surrogate)",
    ),
  );
}

/** The address object form; `smtputf8` is accepted (and recomputed) so that a parsed Message is valid input. */
const AddressObjectShape = exactObject(
  {
    name: v.optional(v.string("must be a string")),
    address: v.string("must be a string"),
    smtputf8: v.optional(
      v.pipe(
        v.boolean("must be a boolean"),
        v.description("Ignored (recomputed); accepted so that a parsed message is valid input."),
      ),
    ),
  },
  "an object { name?, address }",
);

/** The accepted shapes of one address: a string or an object. */
const AddressShape = v.union(
  [v.string(), AddressObjectShape],
  'must be an address: "a@example.com", "Name <a@example.com>" or { "name", "address" }',
);

type AddIssue = (info: { message: string; path?: [v.IssuePathItem, ...v.IssuePathItem[]] }) => void;

/** A valibot path item pointing at `key` of `input`. */
function pathItem(input: unknown, key: string | number, value: unknown): v.IssuePathItem {
  return typeof key === "number"
    ? { type: "array", origin: "value", input: input as unknown[], key, value }
    : { type: "object", origin: "value", input: input as Record<string, unknown>, key, value };
}

/**
 * Converts one address input to mailboxes (a string may be a comma list when
 * `list` is true), reporting problems at `path` (relative to the field).
 */
function toMailboxes(
  input: AddressInput,
  list: boolean,
  addIssue: AddIssue,
  path: v.IssuePathItem[],
): Mailbox[] | undefined {
  const report = (message: string, at: v.IssuePathItem[]) =>
    addIssue(at.length > 0 ? { message, path: at as [v.IssuePathItem] } : { message });
  if (typeof input === "string") {
    try {
      const mailboxes = parseAddressList(input, { max: MAX_LIST_ADDRESSES });
      if (!list && mailboxes.length > 1) {
        report("must be a single address, not a list", path);
        return undefined;
      }
      return mailboxes;
    } catch (error) {
      report((error as Error).message, path);
      return undefined;
    }
  }
  let name: string | undefined;
  let ok = true;
  try {
    name = input.name === undefined ? undefined : checkDisplayName(input.name);
  } catch (error) {
    report((error as Error).message, [...path, pathItem(input, "name", input.name)]);
    ok = false;
  }
  try {
    if (input.address.includes("<")) {
      throw new TypeError(
        "must be a bare address like a@example.com; put the display name in name",
      );
    }
    const { address, smtputf8 } = parseMailbox(input.address);
    return ok
      ? [name === undefined ? { address, smtputf8 } : { name, address, smtputf8 }]
      : undefined;
  } catch (error) {
    report((error as Error).message, [...path, pathItem(input, "address", input.address)]);
    return undefined;
  }
}

/**
 * One address: `"a@b.c"`, `"Name <a@b.c>"` or `{ name?, address }`, as a
 * {@linkcode Mailbox} (normalised address, name unquoted).
 */
export const AddressSchema: v.GenericSchema<AddressInput, Mailbox> = v.pipe(
  AddressShape,
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const mailboxes = toMailboxes(dataset.value, false, addIssue, []);
    return mailboxes === undefined ? NEVER : mailboxes[0];
  }),
);

/**
 * Zero or more addresses: one address, a comma list in a string, or an array
 * of those; always an array of {@linkcode Mailbox}es.
 */
export const AddressListSchema: v.GenericSchema<AddressListInput, Mailbox[]> = v.pipe(
  v.union(
    [v.string(), AddressObjectShape, v.array(AddressShape)],
    "must be an address, a comma-separated list of addresses, or an array of addresses",
  ),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const single = !Array.isArray(dataset.value);
    const inputs = Array.isArray(dataset.value) ? dataset.value : [dataset.value];
    // Counted before anything is parsed, so a huge list costs one scan.
    if (countAddresses(inputs, MAX_LIST_ADDRESSES) > MAX_LIST_ADDRESSES) {
      addIssue({ message: `must not name more than ${MAX_LIST_ADDRESSES} addresses` });
      return NEVER;
    }
    const out: Mailbox[] = [];
    let ok = true;
    for (const [index, input] of inputs.entries()) {
      const path = single ? [] : [pathItem(inputs, index, input)];
      const mailboxes = toMailboxes(input, true, addIssue, path);
      if (mailboxes === undefined) ok = false;
      else for (const mailbox of mailboxes) out.push(mailbox);
    }
    return ok ? out : NEVER;
  }),
);

// ---------------------------------------------------------------------------
// Custom headers

/**
 * Header fields a message may not set through `headers`, lowercase. The
 * composer writes the structural ones itself (From, To, Cc, Subject, Date,
 * Message-ID, MIME-Version, Reply-To, Content-*); Bcc must never appear; and
 * the trace and authentication fields (Received, Return-Path, DKIM and ARC
 * signatures, Authentication-Results, Resent-*) are for the servers on the
 * way, not for the sender to forge. Sender is refused because it claims an
 * identity that the allowlists do not check.
 */
export const RESERVED_HEADERS: readonly string[] = [
  "from",
  "to",
  "cc",
  "bcc",
  "subject",
  "date",
  "message-id",
  "mime-version",
  "reply-to",
  "sender",
  "return-path",
  "received",
  "received-spf",
  "delivered-to",
  "dkim-signature",
  "domainkey-signature",
  "authentication-results",
];
/** Prefixes of reserved header names (`Content-Type`, `Resent-From`, `ARC-Seal`, ...). */
export const RESERVED_HEADER_PREFIXES: readonly string[] = ["content-", "resent-", "arc-"];

/** Longest accepted custom header name. */
const MAX_HEADER_NAME = 64;
/** Longest run of non-space characters in an ASCII header value (so it can be folded within 998). */
const MAX_HEADER_WORD = 900;

/** Why `name` cannot be a custom header name, or `undefined`. */
function headerNameProblem(name: string): string | undefined {
  if (name.length > MAX_HEADER_NAME || name.length === 0 || /[^\x21-\x39\x3b-\x7e]/.test(name)) {
    return `is not a valid header name (printable ASCII without spaces or ':', at most ${MAX_HEADER_NAME} characters)`;
  }
  const lower = name.toLowerCase();
  if (
    RESERVED_HEADERS.includes(lower) ||
    RESERVED_HEADER_PREFIXES.some((prefix) => lower.startsWith(prefix))
  ) {
    return "is a structural header that edgemail sets itself; use the message fields instead";
  }
  return undefined;
}

/** Why `value` cannot be a custom header value, or `undefined`. */
function headerValueProblem(value: string): string | undefined {
  const problem = lengthProblem(value, MAX_HEADER_VALUE) ?? headerTextProblem(value);
  if (problem !== undefined) return problem;
  if (
    !/[^\p{ASCII}]/u.test(value) && value.split(/[ \t]/).some((w) => w.length > MAX_HEADER_WORD)
  ) {
    return `has more than ${MAX_HEADER_WORD} characters without a space, so it cannot be folded`;
  }
  return undefined;
}

const HeadersSchema = v.pipe(
  v.record(
    v.pipe(
      v.string(),
      v.rawCheck<string>(({ dataset, addIssue }) => {
        if (!dataset.typed) return;
        const problem = headerNameProblem(dataset.value);
        if (problem !== undefined) addIssue({ message: problem });
      }),
    ),
    v.pipe(
      v.string("must be a string"),
      v.rawCheck<string>(({ dataset, addIssue }) => {
        if (!dataset.typed) return;
        const problem = headerValueProblem(dataset.value);
        if (problem !== undefined) addIssue({ message: problem });
      }),
    ),
    "must be an object of header names to string values",
  ),
  v.check(
    (headers) => Object.keys(headers).length <= MAX_HEADERS,
    `must have at most ${MAX_HEADERS} header fields`,
  ),
);

// ---------------------------------------------------------------------------
// Attachments

/** Longest accepted file name, in characters. */
const MAX_FILENAME = 255;
/** Content-ID: dot-atom-like tokens, optionally `left@right`. */
const CONTENT_ID =
  /^[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*(?:@[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*)?$/;

/**
 * What the validation of each attachment's content found (its padded length,
 * its form), so that the composer re-wraps it without scanning it again.
 */
const base64Scans = new WeakMap<Attachment, Base64Scan>();
/** The scan of the content just validated, until its attachment object is built. */
let lastScan: { content: string; scan: Base64Scan } | undefined;

/**
 * The base64 scan of a validated attachment's content: the one made during
 * validation when the attachment came from {@linkcode parseMessage} or
 * {@linkcode MessageSchema}, else a new one.
 *
 * @throws {TypeError} when the content is not valid base64.
 */
export function base64ScanOf(attachment: Attachment): Base64Scan {
  return base64Scans.get(attachment) ?? scanBase64(attachment.content);
}

const AttachmentSchema = v.pipe(
  exactObject(
    {
      filename: v.pipe(
        headerText("a string", MAX_FILENAME),
        v.check((name: string) => name.trim().length > 0, "must not be empty"),
      ),
      content: v.pipe(
        v.string("must be a base64 string"),
        v.rawCheck<string>(({ dataset, addIssue }) => {
          if (!dataset.typed) return;
          try {
            lastScan = { content: dataset.value, scan: scanBase64(dataset.value) };
          } catch (error) {
            addIssue({ message: (error as Error).message });
          }
        }),
      ),
      contentType: v.optional(
        v.pipe(
          v.string("must be a string"),
          v.rawCheck<string>(({ dataset, addIssue }) => {
            if (!dataset.typed) return;
            const problem = mediaTypeProblem(dataset.value);
            if (problem !== undefined) addIssue({ message: problem });
          }),
        ),
      ),
      contentId: v.optional(
        v.pipe(
          v.string("must be a string"),
          v.rawCheck<string>(({ dataset, addIssue }) => {
            if (!dataset.typed) return;
            // The length first: the pattern only ever sees short text.
            if (dataset.value.length > 200) {
              addIssue({ message: "must be at most 200 characters" });
            } else if (!CONTENT_ID.test(dataset.value)) {
              addIssue({
                message:
                  "must be a token of letters, digits and . _ - + = (optionally one @), without spaces or < >",
              });
            }
          }),
        ),
      ),
    },
    "an object { filename, content, contentType?, contentId? }",
  ),
  v.transform((attachment): Attachment => {
    const contentType = attachment.contentType?.toLowerCase() ??
      mediaTypeForFilename(attachment.filename);
    const { filename, content, contentId } = attachment;
    const out: Attachment = contentId === undefined
      ? { filename, content, contentType }
      : { filename, content, contentType, contentId };
    if (lastScan?.content === content) base64Scans.set(out, lastScan.scan);
    lastScan = undefined;
    return out;
  }),
);

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

/** The number of addresses in the inputs of one list field (see {@linkcode countRecipients}). */
function countAddresses(inputs: readonly unknown[], max: number): number {
  let count = 0;
  for (const input of inputs) {
    count += typeof input === "string" ? countAddressList(input, max - count) : 1;
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
  const message = result.output;
  return {
    success: true,
    message: seal(message.from === undefined ? { ...message, from: { ...defaultFrom! } } : message),
  };
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
