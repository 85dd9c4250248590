import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import {
  AddressListSchema,
  AddressSchema,
  countAddresses,
  MAX_LIST_ADDRESSES,
} from "../../src/message/address_schema.ts";
import { toValidationIssues } from "../../src/message/validation_issues.ts";

describe("AddressSchema", () => {
  it("outputs one mailbox", () => {
    assert.deepEqual(v.parse(AddressSchema, "Ann <ann@example.com>"), {
      name: "Ann",
      address: "ann@example.com",
      smtputf8: false,
    });
  });

  it("reports problems as issues, not exceptions", () => {
    const result = v.safeParse(AddressSchema, "x@@y");
    assert.equal(result.success, false);
  });
});

describe("AddressListSchema", () => {
  it("turns an address, a comma list or an array into mailboxes", () => {
    const addresses = (input: unknown) =>
      v.parse(AddressListSchema, input).map((mailbox) => mailbox.address);
    assert.deepEqual(addresses("ann@example.com"), ["ann@example.com"]);
    assert.deepEqual(addresses("Ann <ann@example.com>, bob@example.org"), [
      "ann@example.com",
      "bob@example.org",
    ]);
    assert.deepEqual(addresses(["ann@example.com", { address: "bob@example.org" }]), [
      "ann@example.com",
      "bob@example.org",
    ]);
  });

  it("reports each bad entry at its index, and an angle address in the object form", () => {
    const result = v.safeParse(AddressListSchema, [
      "ann@example.com",
      "bad",
      { address: "Ann <ann@example.com>" },
    ]);
    assert.equal(result.success, false);
    assert.deepEqual(toValidationIssues(result.issues!).map((issue) => issue.path), [
      "[1]",
      "[2].address",
    ]);
  });

  it(`refuses more than ${MAX_LIST_ADDRESSES} addresses before parsing them`, () => {
    const list = Array.from({ length: MAX_LIST_ADDRESSES + 1 }, () => "not an address");
    const result = v.safeParse(AddressListSchema, list);
    assert.equal(result.success, false);
    assert.deepEqual(toValidationIssues(result.issues!), [{
      path: "",
      message: `must not name more than ${MAX_LIST_ADDRESSES} addresses`,
    }]);
  });
});

describe("countAddresses", () => {
  it("counts comma list entries and one per other input, stopping past max", () => {
    assert.equal(countAddresses(["a@x.org, b@x.org", { address: "c@x.org" }, 42], 10), 4);
    assert.equal(countAddresses([], 10), 0);
    assert.ok(countAddresses(["a@x.org, ".repeat(100), "b@x.org"], 5) > 5);
  });
});
