/**
 * Building blocks of the message schema's fields: objects that report every
 * unknown key, and strings refused with a reason that never repeats them
 * (header text, body text, strings with a check of their own).
 *
 * @module
 */

import * as v from "valibot";
import { hasMoreCodePoints } from "./address.ts";
import { headerTextProblem } from "./header_text.ts";

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

/** A string schema with one check that finds what is wrong with the text (see {@linkcode checkedString}). */
export type CheckedStringSchema = v.SchemaWithPipe<
  readonly [v.StringSchema<string | undefined>, v.RawCheckAction<string>]
>;

/**
 * A string that `problemOf` accepts: the reason it returns (which must not
 * repeat the text) becomes the issue; `message` is the issue for a value that
 * is not a string at all.
 */
export function checkedString(
  message: string | undefined,
  problemOf: (text: string) => string | undefined,
): CheckedStringSchema {
  return v.pipe(
    v.string(message),
    v.rawCheck<string>(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const problem = problemOf(dataset.value);
      if (problem !== undefined) addIssue({ message: problem });
    }),
  );
}

/** Why `text` is too long (checked first, before any other pass over it), or `undefined`. */
export function lengthProblem(text: string, max: number): string | undefined {
  return hasMoreCodePoints(text, max) ? `must be at most ${max} characters` : undefined;
}

/** A string field that must be usable in a header, at most `max` characters long. */
export function headerText(what: string, max: number): CheckedStringSchema {
  return checkedString(
    `must be ${what}`,
    (text) => lengthProblem(text, max) ?? headerTextProblem(text),
  );
}

/** A body string: any text, as long as it is well-formed Unicode. */
export function bodyText(
  what: string,
): v.SchemaWithPipe<readonly [v.StringSchema<string>, v.CheckAction<string, string>]> {
  return v.pipe(
    v.string(`must be ${what}`),
    v.check(
      (text: string) => text.isWellFormed(),
      "is not well-formed Unicode (it contains a lone surrogate)",
    ),
  );
}
