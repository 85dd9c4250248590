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
import { checkDisplayName, type Mailbox, parseAddressList, parseMailbox } from "./address.ts";
import { headerTextProblem, measureBase64 } from "./encoding.ts";
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
  if (typeof key !== "string") return "[?]";
  if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return first ? key : `.${key}`;
  if (/^[\x20-\x7e]{1,64}$/.test(key) && !/["\\]/.test(key)) return `["${key}"]`;
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
    const deeper = issue.type === "union"
      ? (issue.issues ?? []).filter((sub) => (sub.path?.length ?? 0) > 0)
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

/** Message function for strict objects: unknown key, missing key, or not an object. */
function objectMessage(what: string): (issue: v.BaseIssue<unknown>) => string {
  return (issue) => {
    if (issue.path === undefined) return `must be ${what}`;
    return issue.expected === "never" ? "is not a known field" : "is required";
  };
}

/** A string field that must be usable in a header. */
function headerText(what: string) {
  return v.pipe(
    v.string(`must be ${what}`),
    v.rawCheck<string>(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const problem = headerTextProblem(dataset.value);
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
const AddressObjectShape = v.strictObject(
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
  objectMessage("an object { name?, address }"),
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
      const mailboxes = parseAddressList(input);
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
    const out: Mailbox[] = [];
    let ok = true;
    inputs.forEach((input, index) => {
      const path = single ? [] : [pathItem(inputs, index, input)];
      const mailboxes = toMailboxes(input, true, addIssue, path);
      if (mailboxes === undefined) ok = false;
      else out.push(...mailboxes);
    });
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
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name) || name.length > MAX_HEADER_NAME) {
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
  const problem = headerTextProblem(value);
  if (problem !== undefined) return problem;
  if (/^\p{ASCII}*$/u.test(value) && value.split(/[ \t]/).some((w) => w.length > MAX_HEADER_WORD)) {
    return `has more than ${MAX_HEADER_WORD} characters without a space, so it cannot be folded`;
  }
  return undefined;
}

const HeadersSchema = v.record(
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
);

// ---------------------------------------------------------------------------
// Attachments

/** Longest accepted file name, in characters. */
const MAX_FILENAME = 255;
/** Content-ID: dot-atom-like tokens, optionally `left@right`. */
const CONTENT_ID =
  /^[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*(?:@[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*)?$/;

const AttachmentSchema = v.pipe(
  v.strictObject(
    {
      filename: v.pipe(
        headerText("a string"),
        v.check((name: string) => name.trim().length > 0, "must not be empty"),
        v.check(
          (name: string) => [...name].length <= MAX_FILENAME,
          `must be at most ${MAX_FILENAME} characters`,
        ),
      ),
      content: v.pipe(
        v.string("must be a base64 string"),
        v.rawCheck<string>(({ dataset, addIssue }) => {
          if (!dataset.typed) return;
          try {
            measureBase64(dataset.value);
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
          v.regex(
            CONTENT_ID,
            "must be a token of letters, digits and . _ - + = (optionally one @), without spaces or < >",
          ),
          v.maxLength(200, "must be at most 200 characters"),
        ),
      ),
    },
    objectMessage("an object { filename, content, contentType?, contentId? }"),
  ),
  v.transform((attachment): Attachment => {
    const contentType = attachment.contentType?.toLowerCase() ??
      mediaTypeForFilename(attachment.filename);
    const { filename, content, contentId } = attachment;
    return contentId === undefined
      ? { filename, content, contentType }
      : { filename, content, contentType, contentId };
  }),
);

// ---------------------------------------------------------------------------
// DSN

const NOTIFY = ["success", "failure", "delay", "never"] as const;

const DsnSchema = v.strictObject(
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
  objectMessage("an object { notify?, return?, envelopeId? }"),
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
  v.strictObject(
    {
      from: v.optional(AddressSchema),
      to: v.optional(AddressListSchema, () => []),
      cc: v.optional(AddressListSchema, () => []),
      bcc: v.optional(AddressListSchema, () => []),
      replyTo: v.optional(AddressListSchema, () => []),
      subject: v.optional(headerText("a string")),
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
    objectMessage("a JSON object"),
  ),
  v.forward(
    v.partialCheck(
      [["to"], ["cc"], ["bcc"]],
      (message) => message.to.length + message.cc.length + message.bcc.length > 0,
      "at least one recipient is required in to, cc or bcc",
    ),
    ["to"],
  ),
);

/** Options for {@linkcode parseMessage}. */
export interface ParseMessageOptions {
  /** The sender used when the message has no `from` (`MAIL_FROM`), e.g. `"App <app@example.com>"`. */
  defaultFrom?: string;
}

/**
 * Validates a message and returns a normalised snapshot of it that shares
 * nothing mutable with `input`, so later changes by the caller have no effect.
 * `from` falls back to `options.defaultFrom`; one of them is required.
 *
 * @throws {MessageValidationError} listing every problem by path, never the values.
 * @throws {TypeError} when `options.defaultFrom` itself is not a valid address.
 */
export function parseMessage(input: unknown, options: ParseMessageOptions = {}): Message {
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
  if (!result.success || issues.length > 0) throw new MessageValidationError(issues);
  const message = result.output;
  return message.from === undefined ? { ...message, from: { ...defaultFrom! } } : message;
}
