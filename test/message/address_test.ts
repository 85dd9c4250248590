import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  normalizeAddress,
  normalizeDomain,
  parseAddressList,
  parseMailbox,
} from "../../src/message/address.ts";

/** Asserts that `fn` throws a TypeError whose message matches `reason` and does not contain `secret`. */
function assertRefused(fn: () => unknown, reason: RegExp, secret: string) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TypeError);
    assert.match(error.message, reason);
    if (secret !== "") {
      assert.ok(!error.message.includes(secret), "the error message repeats the input");
    }
    return true;
  });
}

describe("parseMailbox", () => {
  it("accepts a bare address", () => {
    assert.deepEqual(parseMailbox("ann@example.com"), {
      address: "ann@example.com",
      smtputf8: false,
    });
  });

  it("accepts Name <address> and trims", () => {
    assert.deepEqual(parseMailbox("  Ann Lee <ann@example.com>  "), {
      name: "Ann Lee",
      address: "ann@example.com",
      smtputf8: false,
    });
  });

  it("unquotes a quoted display name with escapes and commas", () => {
    assert.deepEqual(parseMailbox('"Lee, Ann \\"The Boss\\"" <ann@example.com>'), {
      name: 'Lee, Ann "The Boss"',
      address: "ann@example.com",
      smtputf8: false,
    });
  });

  it("drops an empty name", () => {
    assert.deepEqual(parseMailbox("<ann@example.com>"), {
      address: "ann@example.com",
      smtputf8: false,
    });
    assert.deepEqual(parseMailbox('"" <ann@example.com>'), {
      address: "ann@example.com",
      smtputf8: false,
    });
  });

  it("keeps non-ASCII names as given", () => {
    assert.equal(parseMailbox("Jörg Ωμέγα 😀 <j@example.com>").name, "Jörg Ωμέγα 😀");
  });

  it("lowercases the domain, keeps the local part, converts IDN to A-labels", () => {
    assert.equal(
      parseMailbox("Ann.Lee+Tag@Bücher.EXAMPLE").address,
      "Ann.Lee+Tag@xn--bcher-kva.example",
    );
    assert.equal(parseMailbox("x@日本。jp").address, "x@xn--wgv71a.jp");
  });

  it("flags a non-ASCII local part as needing SMTPUTF8", () => {
    assert.deepEqual(parseMailbox("用户@例子.测试"), {
      address: "用户@xn--fsqu00a.xn--0zwm56d",
      smtputf8: true,
    });
  });

  it("accepts every dot-atom character in the local part", () => {
    const local = "a!#$%&'*+-/=?^_`{|}~.z";
    assert.equal(parseMailbox(`${local}@example.com`).address, `${local}@example.com`);
  });

  const refusals: [string, string, RegExp][] = [
    ["quoted local part", '"john doe"@example.com', /quoted local parts/],
    ["quoted local part with name", 'John <"john"@example.com>', /quoted local parts/],
    ["comment after address", "john@example.com (John)", /comments/],
    ["comment in local part", "john(x)@example.com", /comments/],
    ["comment after angle address", "John <john@example.com> (x)", /comments/],
    ["two @", "john@doe@example.com", /more than one @/],
    ["no @", "john.example.com", /no @/],
    ["leading hyphen", "-oQ@example.com", /must not start with '-'/],
    ["whitespace", "john doe@example.com", /whitespace/],
    ["CRLF", "john@example.com\r\nRCPT TO:<x@y.z>", /line break/],
    ["LF in name", "John\nDoe <john@example.com>", /line break/],
    ["NUL", "john\0@example.com", /control character/],
    ["double dot", "john..doe@example.com", /two dots/],
    ["leading dot", ".john@example.com", /dot/],
    ["empty local", "@example.com", /nothing before the @/],
    ["empty domain", "john@", /nothing after the @/],
    ["address literal", "john@[192.0.2.1]", /address literals/],
    ["IP address", "john@192.0.2.1", /IP addresses/],
    ["underscore in domain", "john@ex_ample.com", /domain may contain only/],
    ["trailing dot in domain", "john@example.com.", /not a valid host name/],
    ["hyphen at label start", "john@-example.com", /not a valid host name/],
    ["bad punycode", "john@xn--zz.example", /internationalised/],
    ["special in local part", "jo,hn@example.com", /local part may contain only/],
    ["unbalanced angle", "John <john@example.com", /angle brackets|comments/],
    ["unbalanced quotes in name", 'Jo"hn <john@example.com>', /unbalanced quotes/],
    ["empty", "", /empty/],
    ["local part too long", `${"a".repeat(65)}@example.com`, /longer than 64/],
    ["zero-width joiner in local part", "jo\u200dhn@example.com", /invisible/],
  ];
  for (const [label, input, reason] of refusals) {
    it(`refuses ${label} without echoing it`, () => {
      assertRefused(() => parseMailbox(input), reason, input.trim());
    });
  }
});

describe("normalizeAddress", () => {
  it("returns the exact RCPT TO form", () => {
    assert.equal(normalizeAddress(" Ann@Bücher.Example "), "Ann@xn--bcher-kva.example");
    assert.equal(normalizeAddress("ann@xn--bcher-kva.example"), "ann@xn--bcher-kva.example");
  });

  it("maps an IDN and its A-label to the same string (allowlists see one form)", () => {
    assert.equal(normalizeAddress("x@FAß.de"), normalizeAddress("x@xn--fa-hia.de"));
  });

  it("refuses a display name (it takes bare addresses only)", () => {
    assert.throws(() => normalizeAddress("Ann <ann@example.com>"), TypeError);
  });
});

describe("normalizeDomain", () => {
  it("accepts single-label host names such as localhost", () => {
    assert.equal(normalizeDomain("LocalHost"), "localhost");
  });

  it("refuses percent-escapes the URL parser would decode", () => {
    assert.throws(() => normalizeDomain("exa%41mple.com"), /only letters, digits/);
  });

  it("refuses hex IPv4 forms the URL parser would turn into an address", () => {
    assert.throws(() => normalizeDomain("0x7f.1"), /IP addresses/);
  });
});

describe("parseAddressList", () => {
  it("splits at commas outside quotes and angle brackets", () => {
    assert.deepEqual(
      parseAddressList('a@example.com, "Lee, Ann" <ann@example.com>,Bob <bob@example.org>'),
      [
        { address: "a@example.com", smtputf8: false },
        { name: "Lee, Ann", address: "ann@example.com", smtputf8: false },
        { name: "Bob", address: "bob@example.org", smtputf8: false },
      ],
    );
  });

  it("skips blank entries such as a trailing comma", () => {
    assert.deepEqual(parseAddressList("a@example.com, ").map((m) => m.address), [
      "a@example.com",
    ]);
  });

  it("refuses an entirely blank list", () => {
    assert.throws(() => parseAddressList(" , "), /empty/);
  });

  it("names the bad entry by position, not by value", () => {
    assertRefused(
      () => parseAddressList("a@example.com, bad@@example.com"),
      /entry 2 of the list: .*more than one @/,
      "bad@@",
    );
  });
});
