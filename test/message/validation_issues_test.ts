import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import { MessageSchema } from "../../src/message/schema.ts";
import { MessageValidationError, toValidationIssues } from "../../src/message/validation_issues.ts";

const base = { from: "ann@example.com", to: "bob@example.com", text: "Hello" };

describe("toValidationIssues", () => {
  it("strips the echoed value from valibot's default messages", () => {
    const schema = v.object({ name: v.pipe(v.string(), v.email()), n: v.number() });
    const result = v.safeParse(schema, { name: "secret-value", n: "also-secret" });
    assert.equal(result.success, false);
    const issues = toValidationIssues(result.issues!);
    assert.deepEqual(issues.map((i) => i.path), ["name", "n"]);
    assert.ok(!JSON.stringify(issues).includes("secret"), JSON.stringify(issues));
    assert.match(issues[1].message, /number.*string/);
  });

  it("formats array, object and odd keys", () => {
    const schema = v.object({
      list: v.array(v.object({ "a-b": v.string() })),
    });
    const result = v.safeParse(schema, { list: [{ "a-b": "x" }, { "a-b": 1 }] });
    assert.deepEqual(toValidationIssues(result.issues!).map((i) => i.path), ['list[1]["a-b"]']);
  });

  it("is what MessageSchema issues become", () => {
    const result = v.safeParse(MessageSchema, { ...base, to: ["ok@example.com", "bad"] });
    assert.deepEqual(toValidationIssues(result.issues!), [{
      path: "to[1]",
      message: "the address has no @",
    }]);
  });
});

describe("MessageValidationError", () => {
  it("is a TypeError listing every path and reason", () => {
    const error = new MessageValidationError([
      { path: "to[1]", message: "the address has no @" },
      { path: "", message: "must be a JSON object" },
    ]);
    assert.ok(error instanceof TypeError);
    assert.equal(error.name, "MessageValidationError");
    assert.equal(
      error.message,
      "Invalid message: to[1]: the address has no @; (message): must be a JSON object",
    );
    assert.equal(error.issues.length, 2);
  });
});
