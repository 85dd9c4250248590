/**
 * Validation issues as edgemail reports them: {@linkcode ValidationIssue}
 * (a field path like `to[1]` and what is wrong), {@linkcode MessageValidationError},
 * and {@linkcode toValidationIssues}, which turns valibot's issues into them.
 *
 * Issues name the field and say what is wrong; they never repeat the value.
 *
 * @module
 */

import type * as v from "valibot";

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
