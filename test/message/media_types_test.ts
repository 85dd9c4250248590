/**
 * Attachment media types: the default guessed from the file name (the IANA
 * registrations of common extensions) and the check of a type given
 * explicitly (RFC 2045 `type/subtype`, nothing that cannot be sent base64).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mediaTypeForFilename, mediaTypeProblem } from "../../src/message/media_types.ts";

describe("mediaTypeForFilename", () => {
  const known: [string, string][] = [
    ["invoice.pdf", "application/pdf"],
    ["logo.png", "image/png"],
    ["photo.jpg", "image/jpeg"],
    ["photo.jpeg", "image/jpeg"],
    ["animation.gif", "image/gif"],
    ["diagram.svg", "image/svg+xml"],
    ["notes.txt", "text/plain"],
    ["export.csv", "text/csv"],
    ["page.html", "text/html"],
    ["invite.ics", "text/calendar"],
    ["data.json", "application/json"],
    ["bundle.zip", "application/zip"],
    ["letter.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
    ["sheet.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
    ["song.mp3", "audio/mpeg"],
    ["clip.mp4", "video/mp4"],
  ];
  for (const [filename, type] of known) {
    it(`gives ${type} for ${filename}`, () => {
      assert.equal(mediaTypeForFilename(filename), type);
    });
  }

  it("ignores the case of the extension", () => {
    assert.equal(mediaTypeForFilename("SCAN.PDF"), "application/pdf");
    assert.equal(mediaTypeForFilename("Photo.JpG"), "image/jpeg");
  });

  it("uses the last extension only", () => {
    assert.equal(mediaTypeForFilename("backup.tar.gz"), "application/gzip");
    assert.equal(mediaTypeForFilename("report.final.v2.pdf"), "application/pdf");
    assert.equal(mediaTypeForFilename("archive.pdf.zip"), "application/zip");
  });

  it("falls back to application/octet-stream for unknown or missing extensions", () => {
    for (const filename of ["README", "data.bin", "file.", "weird.p d f", ""]) {
      assert.equal(mediaTypeForFilename(filename), "application/octet-stream", filename);
    }
  });

  it("does not mistake Object.prototype names for extensions", () => {
    for (const filename of ["a.constructor", "a.toString", "a.__proto__", "a.hasOwnProperty"]) {
      assert.equal(mediaTypeForFilename(filename), "application/octet-stream", filename);
    }
  });

  it("sends .eml files as application/octet-stream, since message/rfc822 cannot be base64", () => {
    assert.equal(mediaTypeForFilename("forwarded.eml"), "application/octet-stream");
    assert.equal(mediaTypeProblem(mediaTypeForFilename("forwarded.eml")), undefined);
  });

  it("gives a type mediaTypeProblem accepts for every known extension", () => {
    for (const [filename] of known) {
      assert.equal(mediaTypeProblem(mediaTypeForFilename(filename)), undefined, filename);
    }
  });
});

describe("mediaTypeProblem", () => {
  it("accepts bare type/subtype names, including vendor and suffixed ones", () => {
    for (
      const type of [
        "application/pdf",
        "image/svg+xml",
        "application/vnd.ms-excel",
        "text/plain",
        "APPLICATION/PDF",
        "application/x-7z-compressed",
      ]
    ) {
      assert.equal(mediaTypeProblem(type), undefined, type);
    }
  });

  const MALFORMED = "must be a media type like application/pdf (type/subtype, without parameters)";

  it("refuses parameters", () => {
    assert.equal(mediaTypeProblem("text/plain; charset=utf-8"), MALFORMED);
    assert.equal(mediaTypeProblem("text/plain;charset=utf-8"), MALFORMED);
  });

  it("refuses what is not type/subtype", () => {
    for (const type of ["pdf", "", "text/", "/plain", "a/b/c", " text/plain", "text/plain "]) {
      assert.equal(mediaTypeProblem(type), MALFORMED, JSON.stringify(type));
    }
  });

  it("refuses line breaks and other header injection attempts", () => {
    for (const type of ["text/plain\r\nBcc: eve@example.org", "text/plain\n", "text/pl\0ain"]) {
      assert.equal(mediaTypeProblem(type), MALFORMED, JSON.stringify(type));
    }
  });

  it("refuses non-ASCII characters", () => {
    assert.equal(mediaTypeProblem("text/plaín"), MALFORMED);
  });

  it("refuses multipart/* and message/* in any case, saying what to use instead", () => {
    const expected =
      "multipart/* and message/* cannot be attached as base64; use application/octet-stream";
    for (
      const type of ["multipart/mixed", "message/rfc822", "Message/RFC822", "MULTIPART/ALTERNATIVE"]
    ) {
      assert.equal(mediaTypeProblem(type), expected, type);
    }
  });

  it("never repeats the type it refuses", () => {
    const type = "x-secret-token-abc123/; foo";
    assert.ok(!mediaTypeProblem(type)?.includes("secret"));
  });
});
