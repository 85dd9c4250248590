/**
 * The sending policy of the HTTP function, applied to validated messages:
 * the default sender (`MAIL_FROM`), the recipient count, and `from` and
 * recipients against the allowlists, compared on the normalised addresses
 * that go into MAIL FROM / RCPT TO (domain lowercased, A-labels).
 *
 * @module
 */

import type { Mailbox } from "../message/address.ts";
import {
  countRecipients,
  type Message,
  type ValidatedMessage,
  withDefaultSender,
} from "../message/schema.ts";
import type { ValidationIssue } from "../message/validation_issues.ts";
import type { Config } from "./config.ts";
import type { Allowlist } from "./config_values.ts";
import { problem, type ProblemBody, tokenOf } from "./problems.ts";

/** A request the policy refuses: the HTTP status and the JSON body. */
export interface Refusal {
  /** 400 (no sender), 403 or 413. */
  status: 400 | 403 | 413;
  /** The error body. */
  body: ProblemBody;
}

/** What {@linkcode admitMessage} and {@linkcode admitBatch} need. */
export interface Policy {
  /** The configuration (allowlists, limits). */
  config: Config;
  /** `MAIL_FROM`, parsed. */
  defaultFrom?: Mailbox;
}

/**
 * The message ready to send (default sender applied), or why it may not be
 * sent. It stays a `ValidatedMessage`: the client sends it without validating again.
 */
export function admitMessage(
  message: ValidatedMessage,
  policy: Policy,
): ValidatedMessage | Refusal {
  const sent = withSender(message, policy.defaultFrom);
  const token = tokenOf(message);
  if (sent === undefined) return validationRefusal([missingFrom("from")], token);
  const violation = checkPolicy(sent, policy.config);
  return violation === undefined ? sent : policyRefusal(violation, token);
}

/** The messages of a batch ready to send, or why the batch may not be sent (all or nothing). */
export function admitBatch(
  messages: ValidatedMessage[],
  policy: Policy,
): ValidatedMessage[] | Refusal {
  const { config } = policy;
  if (messages.length > config.maxBatch) {
    return {
      status: 413,
      body: problem(
        "too_large",
        `The batch has ${messages.length} messages; at most ${config.maxBatch} are allowed ` +
          "(MAX_BATCH).",
      ),
    };
  }
  const sent = messages.map((message) => withSender(message, policy.defaultFrom));
  const missing = sent.flatMap((message, i) =>
    message === undefined ? [missingFrom(`messages[${i}].from`)] : []
  );
  if (missing.length > 0) return validationRefusal(missing, null);
  for (const [i, message] of sent.entries()) {
    const violation = checkPolicy(message!, config, `messages[${i}]`);
    if (violation !== undefined) return policyRefusal(violation, null);
  }
  return sent as ValidatedMessage[];
}

/**
 * 413 `too_large` when a request body names more recipients (to + cc + bcc)
 * than `MAX_RECIPIENTS`, counted in the parsed JSON before any address is
 * parsed, so a 150 000-address `to` string costs one scan and no mailbox
 * objects. Run it before validating the body; with `batch`, the body is
 * `{ messages: [...] }` and each message is counted.
 */
export function recipientCountRefusal(
  body: unknown,
  config: Config,
  options: { batch?: boolean } = {},
): Refusal | undefined {
  const max = config.maxRecipients;
  const tooMany = (at: string) => ({
    status: 413 as const,
    body: problem(
      "too_large",
      `${at} has more than ${max} recipients in to, cc and bcc (MAX_RECIPIENTS).`,
      { token: options.batch ? null : tokenOf(body) },
    ),
  });
  if (!options.batch) return countRecipients(body, max) > max ? tooMany("The message") : undefined;
  const messages = typeof body === "object" && body !== null
    ? (body as { messages?: unknown }).messages
    : undefined;
  if (!Array.isArray(messages)) return undefined;
  const index = messages.findIndex((message) => countRecipients(message, max) > max);
  return index === -1 ? undefined : tooMany(`messages[${index}]`);
}

/** Whether a value returned by {@linkcode admitMessage} or {@linkcode admitBatch} is a refusal. */
export function isRefusal(value: unknown): value is Refusal {
  return typeof value === "object" && value !== null && "status" in value && "body" in value &&
    typeof (value as Refusal).status === "number";
}

/** The body of a request that is not a valid message; `error.issues` says where. */
export function validationProblem(issues: ValidationIssue[], token: unknown): ProblemBody {
  return problem(
    "validation",
    "The request body is not a valid message; error.issues says where and why.",
    { issues, token },
  );
}

function validationRefusal(issues: ValidationIssue[], token: unknown): Refusal {
  return { status: 400, body: validationProblem(issues, token) };
}

function policyRefusal(violation: PolicyViolation, token: unknown): Refusal {
  return {
    status: violation.type === "forbidden" ? 403 : 413,
    body: problem(violation.type, violation.message, { token }),
  };
}

/** `from`, or the default sender; `undefined` when there is neither. */
function withSender(
  message: ValidatedMessage,
  defaultFrom: Mailbox | undefined,
): ValidatedMessage | undefined {
  if (message.from !== undefined) return message;
  return defaultFrom === undefined ? undefined : withDefaultSender(message, defaultFrom);
}

function missingFrom(path: string): ValidationIssue {
  return { path, message: "is required (no default sender is configured: MAIL_FROM)" };
}

/** Why a message may not be sent: the error type and a message naming the field. */
export interface PolicyViolation {
  /** `too_large` (413) or `forbidden` (403). */
  type: "too_large" | "forbidden";
  /** What is not allowed, naming the field but not its value. */
  message: string;
}

/** Whether `address` (normalised RCPT form) is on `allowlist`. */
export function isAllowed(address: string, allowlist: Allowlist): boolean {
  const domain = address.slice(address.lastIndexOf("@") + 1);
  return allowlist.addresses.includes(address) || allowlist.domains.includes(domain);
}

/**
 * The first policy violation of a validated message whose `from` is resolved
 * (the default sender applied), or `undefined`. In a batch, `at` is the
 * message's path (`messages[2]`), put before field paths.
 */
export function checkPolicy(
  message: Message,
  config: Config,
  at = "",
): PolicyViolation | undefined {
  const field = (name: string) => at === "" ? name : `${at}.${name}`;
  const count = message.to.length + message.cc.length + message.bcc.length;
  if (count > config.maxRecipients) {
    return {
      type: "too_large",
      message: `${at || "The message"} has ${count} recipients in to, cc and bcc; ` +
        `at most ${config.maxRecipients} are allowed (MAX_RECIPIENTS).`,
    };
  }
  if (
    config.allowedFrom !== undefined && message.from !== undefined &&
    !isAllowed(message.from.address, config.allowedFrom)
  ) {
    return {
      type: "forbidden",
      message: `${
        field("from")
      } is not an allowed sender: it must be MAIL_FROM or match ALLOWED_FROM.`,
    };
  }
  if (config.allowedTo === undefined) return undefined;
  for (const name of ["to", "cc", "bcc"] as const) {
    const index = message[name].findIndex((mailbox) =>
      !isAllowed(mailbox.address, config.allowedTo!)
    );
    if (index !== -1) {
      return {
        type: "forbidden",
        message: `${field(name)}[${index}] is not an allowed recipient (ALLOWED_TO).`,
      };
    }
  }
  return undefined;
}
