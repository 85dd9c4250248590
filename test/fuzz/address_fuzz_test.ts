/**
 * Fuzzing the address parser (src/message/address.ts) against an independent
 * oracle for the RFC 5321 `Mailbox` grammar (section 4.1.2, with the RFC 6531
 * UTF-8 extension of the local part): whatever the input, what the parser
 * accepts is a dot-atom local part kept as written, `@`, and a host name in
 * lowercase A-labels within the RFC 5321 length limits. Inputs of 100 KB of
 * the characters the grammar cares about are parsed or refused in bounded time.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Mailbox,
  normalizeAddress,
  parseAddressList,
  parseMailbox,
} from "../../src/message/address.ts";
import { fuzzParameters } from "./fuzz.ts";

const ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~";
const encoder = new TextEncoder();

/** Whether every UTF-16 unit of `text` is below `limit`. */
const below = (text: string, limit: number) => [...text].every((c) => c.charCodeAt(0) < limit);
/** C0 controls other than tab, and DEL. */
const hasControl = (text: string) =>
  [...text].some((c) => (c.charCodeAt(0) < 0x20 && c !== "\t") || c === "\x7f");

/** RFC 5321 atext, with RFC 6531's UTF8-non-ascii (any non-ASCII scalar value that is not a control). */
function isAtext(char: string): boolean {
  const code = char.codePointAt(0)!;
  if (code < 0x80) return ATEXT.includes(char);
  return !/[\p{Cc}\p{Cs}\p{Cn}]/u.test(char);
}

/** RFC 5321 Dot-string: Atom *("." Atom), at most 64 octets (section 4.5.3.1.1). */
function isDotString(local: string): boolean {
  if (encoder.encode(local).length > 64) return false;
  return local.split(".").every((atom) => atom.length > 0 && [...atom].every(isAtext));
}

/** RFC 5321 Domain as sent on the wire: sub-domain *("." sub-domain), LDH labels of 1-63 octets. */
function isLdhDomain(domain: string): boolean {
  if (domain.length > 253) return false;
  return domain.split(".").every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label));
}

/**
 * Checks an accepted address against the oracle: `input` (the addr-spec as
 * written) must be `local@domain` with a Dot-string local part, and the
 * normalised `address` must be that local part, `@`, and an LDH domain, the
 * domain being the input's own lowercased when the input's is ASCII.
 */
function assertGrammatical(input: string, address: string) {
  const at = input.lastIndexOf("@");
  assert.ok(at > 0, `accepted without a local part: ${JSON.stringify(input)}`);
  const local = input.slice(0, at);
  const domain = input.slice(at + 1);
  assert.ok(
    isDotString(local),
    `accepted a local part outside Dot-string: ${JSON.stringify(input)}`,
  );
  assert.ok(address.startsWith(`${local}@`), `the local part changed: ${JSON.stringify(input)}`);
  const outDomain = address.slice(local.length + 1);
  assert.ok(isLdhDomain(outDomain), `a domain outside the grammar: ${JSON.stringify(address)}`);
  if (below(domain, 0x80)) assert.equal(outDomain, domain.toLowerCase());
  assert.ok(encoder.encode(address).length <= 254, "an address over 254 octets");
  assert.ok(!hasControl(address) && !/[\s<>()"\\,;:[\]]/.test(address), "a special in the address");
}

/** Characters where the grammar makes decisions, plus ordinary ones. */
const grammarChar = fc.constantFrom(
  ..."aZ09.-_+!#$%&'*/=?^`{|}~@<>()[]:;,\"\\ \t\r\n\0\x7f".split(""),
  "\u00e9",
  "\u00fc",
  "\u4e2d",
  "\u{1F600}",
  "\u00a0",
  "\u200b",
  "\u2028",
  "\ufeff",
  "\uff0e",
  "\ufe6b",
  "\ud800",
  "xn--",
  "B\u00fccher",
);
const grammarString = fc.array(grammarChar, { maxLength: 40 }).map((chars) => chars.join(""));

/** Mostly well-formed addresses with one random edit, near the boundary of the grammar. */
const nearAddress = fc.tuple(
  fc.stringMatching(/^[a-zA-Z0-9.+_-]{1,20}$/),
  fc.array(fc.stringMatching(/^[a-zA-Z0-9-]{1,10}$/), { minLength: 1, maxLength: 4 }),
  fc.nat(60),
  fc.array(grammarChar, { maxLength: 3 }).map((chars) => chars.join("")),
).map(([local, labels, at, insert]) => {
  const address = `${local}@${labels.join(".")}`;
  const cut = at % (address.length + 1);
  return address.slice(0, cut) + insert + address.slice(cut);
});

const input = fc.oneof(grammarString, nearAddress, fc.string({ unit: "grapheme", maxLength: 40 }));

/** The parser's verdict: the value or the TypeError; any other exception fails the test. */
function verdict<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch (error) {
    assert.ok(error instanceof TypeError, `not a TypeError: ${error}`);
    assert.ok((error as Error).message.length > 0);
    return undefined;
  }
}

function assertMailbox(mailbox: Mailbox, addrSpec: string) {
  assertGrammatical(addrSpec, mailbox.address);
  assert.equal(mailbox.smtputf8, !below(mailbox.address.split("@")[0], 0x80));
  if (mailbox.name !== undefined) {
    assert.ok(!hasControl(mailbox.name), "a control character in a name");
    assert.ok(mailbox.name.isWellFormed(), "a lone surrogate in a name");
    assert.equal(mailbox.name, mailbox.name.trim());
    assert.ok(mailbox.name.length > 0);
  }
}

describe("fuzz: address parser", () => {
  it("normalizeAddress accepts only RFC 5321 Mailbox syntax (Dot-string @ host name)", () => {
    fc.assert(
      fc.property(input, (text) => {
        const address = verdict(() => normalizeAddress(text));
        if (address !== undefined) assertGrammatical(text.trim(), address);
      }),
      fuzzParameters(5000, 0xadd001),
    );
  });

  it("parseMailbox: the address part obeys the grammar and names carry no controls", () => {
    fc.assert(
      fc.property(input, grammarString, (spec, name) => {
        for (const text of [spec, `${name} <${spec}>`, `"${name}" <${spec}>`]) {
          const mailbox = verdict(() => parseMailbox(text));
          if (mailbox === undefined) continue;
          const trimmed = text.trim();
          const addrSpec = trimmed.endsWith(">")
            ? trimmed.slice(trimmed.lastIndexOf("<") + 1, -1).trim()
            : trimmed;
          assertMailbox(mailbox, addrSpec);
        }
      }),
      fuzzParameters(3000, 0xadd002),
    );
  });

  it("parseAddressList: every entry obeys the grammar, or the list is refused", () => {
    fc.assert(
      fc.property(fc.array(input, { minLength: 1, maxLength: 5 }), (entries) => {
        const list = verdict(() => parseAddressList(entries.join(",")));
        if (list === undefined) return;
        assert.ok(list.length >= 1);
        for (const mailbox of list) {
          assert.ok(isLdhDomain(mailbox.address.slice(mailbox.address.lastIndexOf("@") + 1)));
          assert.ok(isDotString(mailbox.address.slice(0, mailbox.address.lastIndexOf("@"))));
        }
      }),
      fuzzParameters(2000, 0xadd003),
    );
  });

  it("well-formed addresses are accepted as written (the oracle is not vacuous)", () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9][a-z0-9+_-]{0,19}(\.[a-z0-9]{1,5})?$/),
        fc.array(fc.stringMatching(/^[a-z]([a-z0-9-]{0,8}[a-z0-9])?$/), {
          minLength: 2,
          maxLength: 4,
        }),
        (local, labels) => {
          const address = `${local}@${labels.join(".")}`;
          assert.equal(normalizeAddress(address), address);
          assert.deepEqual(parseMailbox(`Ann <${address}>`), {
            name: "Ann",
            address,
            smtputf8: false,
          });
        },
      ),
      fuzzParameters(500, 0xadd004),
    );
  });

  it("100 KB of any grammar character pattern is parsed or refused within 1 s", () => {
    const patterns = [
      '"',
      "<",
      ">",
      "\\",
      "a.",
      "@",
      ",",
      "a<",
      '"\\',
      '",',
      " ",
      "\u00e9",
      "<a@b.c>",
      "a@b.c,",
      "a",
      "-",
      ".",
      "(",
      "xn--",
    ];
    const size = 100_000;
    for (const pattern of patterns) {
      const body = pattern.repeat(Math.ceil(size / pattern.length)).slice(0, size);
      for (
        const text of [body, `a@${body}`, `${body}@b.c`, `${body} <a@b.c>`, `"${body}" <a@b.c>`]
      ) {
        for (const parse of [normalizeAddress, parseMailbox, parseAddressList]) {
          const started = performance.now();
          verdict(() => parse(text));
          const elapsed = performance.now() - started;
          assert.ok(
            elapsed < 1000,
            `${parse.name} took ${elapsed.toFixed(0)} ms on ${JSON.stringify(text.slice(0, 12))}…`,
          );
        }
      }
    }
  });
});
