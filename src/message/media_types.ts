/**
 * Media types for attachments: the default type guessed from a file name,
 * and the check applied to a type given explicitly.
 *
 * @module
 */

/** Common file extensions and their media types. */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  "7z": "application/x-7z-compressed",
  avif: "image/avif",
  bmp: "image/bmp",
  csv: "text/csv",
  doc: "application/msword",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  eml: "application/octet-stream",
  epub: "application/epub+zip",
  gif: "image/gif",
  gz: "application/gzip",
  heic: "image/heic",
  htm: "text/html",
  html: "text/html",
  ics: "text/calendar",
  jpeg: "image/jpeg",
  jpg: "image/jpeg",
  js: "text/javascript",
  json: "application/json",
  m4a: "audio/mp4",
  md: "text/markdown",
  mov: "video/quicktime",
  mp3: "audio/mpeg",
  mp4: "video/mp4",
  odp: "application/vnd.oasis.opendocument.presentation",
  ods: "application/vnd.oasis.opendocument.spreadsheet",
  odt: "application/vnd.oasis.opendocument.text",
  ogg: "audio/ogg",
  pdf: "application/pdf",
  png: "image/png",
  ppt: "application/vnd.ms-powerpoint",
  pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  rtf: "application/rtf",
  svg: "image/svg+xml",
  tar: "application/x-tar",
  tif: "image/tiff",
  tiff: "image/tiff",
  txt: "text/plain",
  vcf: "text/vcard",
  wav: "audio/wav",
  webm: "video/webm",
  webp: "image/webp",
  xls: "application/vnd.ms-excel",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  xml: "application/xml",
  zip: "application/zip",
};

/** The type used when nothing better is known. */
export const DEFAULT_MEDIA_TYPE = "application/octet-stream";

/**
 * The media type for a file name's extension (case-insensitive), or
 * `application/octet-stream` for unknown ones.
 */
export function mediaTypeForFilename(filename: string): string {
  const dot = filename.lastIndexOf(".");
  if (dot === -1) return DEFAULT_MEDIA_TYPE;
  const extension = filename.slice(dot + 1).toLowerCase();
  return Object.hasOwn(BY_EXTENSION, extension) ? BY_EXTENSION[extension] : DEFAULT_MEDIA_TYPE;
}

/** RFC 2045 token characters. */
const TOKEN = "[A-Za-z0-9!#$%&'*+\\-.^_`{|}~]+";
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}$`);

/**
 * Why `type` cannot be an attachment's media type, or `undefined` when it can:
 * it must be a bare `type/subtype` (no parameters), and not `multipart/*` or
 * `message/*`, which may not be sent base64-encoded (RFC 2046).
 */
export function mediaTypeProblem(type: string): string | undefined {
  // RFC 6838 names are at most 127 characters each; the pattern only sees short text.
  if (type.length > 255) return "must be at most 255 characters";
  if (!MEDIA_TYPE.test(type)) {
    return "must be a media type like application/pdf (type/subtype, without parameters)";
  }
  if (/^(multipart|message)\//i.test(type)) {
    return "multipart/* and message/* cannot be attached as base64; use application/octet-stream";
  }
  return undefined;
}
