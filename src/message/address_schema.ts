/**
 * The address fields of a message: {@linkcode AddressSchema} (`from`) and
 * {@linkcode AddressListSchema} (`to`, `cc`, `bcc`, `replyTo`), which turn the
 * shapes a caller writes into {@linkcode Mailbox}es, reporting each problem at
 * the address it concerns.
 *
 * @module
 */

import * as v from "valibot";
import {
  checkDisplayName,
  countAddressList,
  type Mailbox,
  parseAddressList,
  parseMailbox,
} from "./address.ts";
import { exactObject } from "./field_schemas.ts";

/**
 * An address as a caller writes it: `"a@b.c"`, `"Name <a@b.c>"` or
 * `{ name, address }`. `smtputf8` is ignored (recomputed); it is accepted so
 * that a parsed {@linkcode Mailbox} is valid input again.
 */
export type AddressInput = string | { name?: string; address: string; smtputf8?: boolean };

/** One or more addresses: an address, a comma list in a string, or an array of those. */
export type AddressListInput = AddressInput | AddressInput[];

/**
 * Most addresses one of `to`, `cc`, `bcc`, `replyTo` may name, whatever the
 * HTTP function's `MAX_RECIPIENTS` (SMTP servers refuse more recipients per
 * message: Postfix's default is 1000). Longer lists are refused before any
 * address in them is parsed.
 */
export const MAX_LIST_ADDRESSES = 1000;

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

/**
 * The number of addresses in the inputs of one list field, counted without
 * parsing any: comma lists count their entries, anything else one. Counting
 * stops once it passes `max`.
 */
export function countAddresses(inputs: readonly unknown[], max: number): number {
  let count = 0;
  for (const input of inputs) {
    count += typeof input === "string" ? countAddressList(input, max - count) : 1;
    if (count > max) break;
  }
  return count;
}
