/**
 * The `attachments` field of a message: file name, base64 content (validated
 * without decoding, the scan kept for the composer), media type and
 * Content-ID of each attachment.
 *
 * @module
 */

import * as v from "valibot";
import { type Base64Scan, scanBase64 } from "./base64.ts";
import { checkedString, exactObject, headerText } from "./field_schemas.ts";
import { mediaTypeForFilename, mediaTypeProblem } from "./media_types.ts";

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

/** Longest accepted file name, in characters. */
const MAX_FILENAME = 255;
/** Content-ID: dot-atom-like tokens, optionally `left@right`. */
const CONTENT_ID =
  /^[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*(?:@[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*)?$/;

/** Why `id` cannot be a Content-ID, or `undefined`. */
function contentIdProblem(id: string): string | undefined {
  // The length first: the pattern only ever sees short text.
  if (id.length > 200) return "must be at most 200 characters";
  if (!CONTENT_ID.test(id)) {
    return "must be a token of letters, digits and . _ - + = (optionally one @), without spaces or < >";
  }
  return undefined;
}

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

/**
 * One attachment: the content is checked to be base64 (never decoded) and the
 * media type, when not given, is guessed from the file name.
 */
export const AttachmentSchema: v.GenericSchema<AttachmentInput, Attachment> = v.pipe(
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
      contentType: v.optional(checkedString("must be a string", mediaTypeProblem)),
      contentId: v.optional(checkedString("must be a string", contentIdProblem)),
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
