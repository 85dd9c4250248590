/**
 * The sending policy (contract section 2): ALLOWED_FROM / ALLOWED_TO matched
 * on the normalised RCPT form (IDN domains as A-labels, domains in any case),
 * `@domain` entries against exact addresses, MAIL_FROM as the default and
 * always-allowed sender, MAX_RECIPIENTS over to+cc+bcc, MAX_BATCH, and the
 * status and body of each refusal. Configurations come from loadConfig and
 * messages from ValidatedMessageSchema, as in the HTTP function; what is
 * admitted stays a ValidatedMessage, so the client never validates it again.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as v from "valibot";
import { type Config, loadConfig } from "../../src/http/config.ts";
import {
  admitBatch,
  admitMessage,
  checkPolicy,
  isAllowed,
  isRefusal,
  type Policy,
  type Refusal,
  validationProblem,
} from "../../src/http/policy.ts";
import { parseMailbox } from "../../src/message/address.ts";
import {
  isValidatedMessage,
  type MessageInput,
  type ValidatedMessage,
  ValidatedMessageSchema,
} from "../../src/message/schema.ts";

const API_KEY = "policy-test-key-12345";

function configFor(env: Record<string, string>, development = false): Config {
  return loadConfig({ SMTP_HOST: "smtp.example.com", API_KEYS: API_KEY, ...env }, {
    development,
  });
}

/** The policy the HTTP function builds from `config`. */
function policyFor(config: Config): Policy {
  return {
    config,
    defaultFrom: config.mailFrom === undefined ? undefined : parseMailbox(config.mailFrom),
  };
}

/** A request body as the HTTP function validates it (with a text: empty messages are refused). */
function message(input: MessageInput): ValidatedMessage {
  return v.parse(ValidatedMessageSchema, { text: "Hi", ...input });
}

function admitted(result: ValidatedMessage | Refusal): ValidatedMessage {
  assert.ok(!isRefusal(result), `refused: ${JSON.stringify(result)}`);
  return result as ValidatedMessage;
}

function refused(result: ValidatedMessage | Refusal | ValidatedMessage[]): Refusal {
  assert.ok(isRefusal(result), "expected a refusal");
  return result;
}

describe("isAllowed", () => {
  const { allowedTo } = configFor({ ALLOWED_TO: "Bob@Example.ORG, @Bücher.Example" });

  it("matches an exact address entry with the domain in any case", () => {
    assert.equal(isAllowed("Bob@example.org", allowedTo!), true);
  });

  it("compares the local part exactly, as it goes into RCPT TO", () => {
    assert.equal(isAllowed("bob@example.org", allowedTo!), false);
    assert.equal(isAllowed("bobby@example.org", allowedTo!), false);
  });

  it("matches every address of an @domain entry, IDN entries as A-labels", () => {
    assert.equal(isAllowed("ann@xn--bcher-kva.example", allowedTo!), true);
    assert.equal(isAllowed("Anyone.Else@xn--bcher-kva.example", allowedTo!), true);
  });

  it("does not extend an @domain entry to subdomains or look-alike domains", () => {
    assert.equal(isAllowed("ann@mail.xn--bcher-kva.example", allowedTo!), false);
    assert.equal(isAllowed("ann@xn--bcher-kva.example.evil.test", allowedTo!), false);
    assert.equal(isAllowed("ann@bucher.example", allowedTo!), false);
  });

  it("does not treat an exact address entry as its whole domain", () => {
    assert.equal(isAllowed("eve@example.org", allowedTo!), false);
  });
});

describe("admitMessage: ALLOWED_TO", () => {
  const policy = policyFor(configFor({
    MAIL_FROM: "app@example.com",
    ALLOWED_TO: "bob@example.org, @bücher.example",
  }));

  it("admits recipients written with an upper-case or Unicode domain", () => {
    const sent = admitted(admitMessage(
      message({
        from: "app@example.com",
        to: "Bob <bob@EXAMPLE.ORG>",
        cc: ["ann@BÜCHER.example", { name: "Cy", address: "cy@xn--bcher-kva.example" }],
        text: "Hi",
      }),
      policy,
    ));
    assert.deepEqual(
      [...sent.to, ...sent.cc].map((mailbox) => mailbox.address),
      ["bob@example.org", "ann@xn--bcher-kva.example", "cy@xn--bcher-kva.example"],
    );
  });

  for (const field of ["to", "cc", "bcc"] as const) {
    it(`refuses a ${field} recipient outside the list with 403, naming ${field}[1]`, () => {
      const refusal = refused(admitMessage(
        message({
          from: "app@example.com",
          [field]: ["bob@example.org", "eve@example.net"],
          text: "Hi",
          token: "t-7",
        }),
        policy,
      ));
      assert.equal(refusal.status, 403);
      assert.deepEqual(refusal.body, {
        status: "failed",
        token: "t-7",
        accepted: [],
        rejected: [],
        error: {
          type: "forbidden",
          message: `${field}[1] is not an allowed recipient (ALLOWED_TO).`,
        },
      });
    });
  }

  it("never repeats the refused address", () => {
    const refusal = refused(admitMessage(
      message({ from: "app@example.com", to: "eve@example.net", text: "Hi" }),
      policy,
    ));
    assert.doesNotMatch(JSON.stringify(refusal), /eve/);
  });

  it("admits any recipient when ALLOWED_TO is unset (API keys protect the endpoint)", () => {
    const open = policyFor(configFor({ MAIL_FROM: "app@example.com" }));
    admitted(admitMessage(message({ to: "anyone@anywhere.example", text: "Hi" }), open));
  });
});

describe("admitMessage: the sender", () => {
  const policy = policyFor(configFor({
    MAIL_FROM: "App <app@Notify.Example.NET>",
    ALLOWED_FROM: "@example.com, Billing@Invoices.Example.com",
  }));

  it("uses MAIL_FROM when the message has no from", () => {
    const sent = admitted(admitMessage(message({ to: "bob@example.org", text: "Hi" }), policy));
    assert.deepEqual(sent.from, {
      name: "App",
      address: "app@notify.example.net",
      smtputf8: false,
    });
    assert.ok(isValidatedMessage(sent), "MAIL_FROM applied: still a ValidatedMessage");
    const own = message({ from: "Billing@Invoices.Example.com", to: "bob@example.org" });
    assert.equal(admitMessage(own, policy), own, "a message with its own from is sent as it is");
  });

  it("always allows MAIL_FROM as from, in any domain case, besides ALLOWED_FROM", () => {
    for (const from of ["app@notify.example.net", "Other Name <app@NOTIFY.example.net>"]) {
      const sent = admitted(
        admitMessage(message({ from, to: "bob@example.org", text: "Hi" }), policy),
      );
      assert.equal(sent.from?.address, "app@notify.example.net");
    }
  });

  it("allows senders matching ALLOWED_FROM, by @domain or exact address", () => {
    for (
      const from of ["ann@example.com", "Ann <ann@EXAMPLE.com>", "Billing@invoices.example.com"]
    ) {
      admitted(admitMessage(message({ from, to: "bob@example.org", text: "Hi" }), policy));
    }
  });

  it("refuses other senders with 403, naming from", () => {
    for (
      const from of [
        "other@notify.example.net",
        "ann@sub.example.com",
        "billing@invoices.example.com",
        "ann@example.org",
      ]
    ) {
      const refusal = refused(admitMessage(
        message({ from, to: "bob@example.org", text: "Hi" }),
        policy,
      ));
      assert.equal(refusal.status, 403, from);
      assert.deepEqual(refusal.body.error, {
        type: "forbidden",
        message: "from is not an allowed sender: it must be MAIL_FROM or match ALLOWED_FROM.",
      });
    }
  });

  it("allows only MAIL_FROM when ALLOWED_FROM is unset", () => {
    const only = policyFor(configFor({ MAIL_FROM: "app@example.com" }));
    admitted(admitMessage(message({ from: "app@example.com", to: "b@example.org" }), only));
    const refusal = refused(
      admitMessage(message({ from: "ann@example.com", to: "b@example.org" }), only),
    );
    assert.equal(refusal.status, 403);
  });

  it("allows no sender at all when neither MAIL_FROM nor ALLOWED_FROM is set", () => {
    const none = policyFor(configFor({}));
    const refusal = refused(
      admitMessage(message({ from: "ann@example.com", to: "b@example.org" }), none),
    );
    assert.equal(refusal.status, 403);
  });

  it("allows any sender in development mode when ALLOWED_FROM is unset", () => {
    const dev = policyFor(configFor({}, true));
    admitted(admitMessage(message({ from: "ann@example.com", to: "b@example.org" }), dev));
  });

  it("answers 400 with a from issue when there is neither from nor MAIL_FROM", () => {
    const dev = policyFor(configFor({}, true));
    const refusal = refused(admitMessage(message({ to: "b@example.org", token: 9 }), dev));
    assert.equal(refusal.status, 400);
    assert.deepEqual(refusal.body, {
      status: "failed",
      token: 9,
      accepted: [],
      rejected: [],
      error: {
        type: "validation",
        message: "The request body is not a valid message; error.issues says where and why.",
        issues: [{
          path: "from",
          message: "is required (no default sender is configured: MAIL_FROM)",
        }],
      },
    });
  });
});

describe("admitMessage: MAX_RECIPIENTS", () => {
  const policy = policyFor(configFor({ MAIL_FROM: "app@example.com", MAX_RECIPIENTS: "3" }));

  it("admits exactly MAX_RECIPIENTS addresses over to, cc and bcc", () => {
    admitted(admitMessage(
      message({ to: "a@example.org, b@example.org", bcc: "c@example.org", text: "Hi" }),
      policy,
    ));
  });

  it("refuses one more with 413, counting to, cc and bcc together", () => {
    const refusal = refused(admitMessage(
      message({
        to: "a@example.org, b@example.org",
        cc: ["c@example.org"],
        bcc: "d@example.org",
        text: "Hi",
        token: "big",
      }),
      policy,
    ));
    assert.equal(refusal.status, 413);
    assert.deepEqual(refusal.body, {
      status: "failed",
      token: "big",
      accepted: [],
      rejected: [],
      error: {
        type: "too_large",
        message: "The message has 4 recipients in to, cc and bcc; at most 3 are allowed " +
          "(MAX_RECIPIENTS).",
      },
    });
  });

  // The contract counts "to+cc+bcc addresses": every address listed counts,
  // also one listed twice (the envelope would carry it once).
  it("counts an address listed in several fields once per listing", () => {
    const refusal = refused(admitMessage(
      message({
        to: ["a@example.org", "b@example.org"],
        cc: "a@example.org",
        bcc: "A@EXAMPLE.org",
        text: "Hi",
      }),
      policy,
    ));
    assert.equal(refusal.status, 413);
    assert.match(refusal.body.error.message, /has 4 recipients/);
  });

  it("checks MAX_RECIPIENTS before the allowlists", () => {
    const strict = policyFor(configFor({
      MAIL_FROM: "app@example.com",
      MAX_RECIPIENTS: "1",
      ALLOWED_TO: "a@example.org",
    }));
    const refusal = refused(
      admitMessage(message({ to: "a@example.org, eve@example.net" }), strict),
    );
    assert.equal(refusal.status, 413);
  });
});

describe("admitBatch", () => {
  const policy = policyFor(configFor({
    MAIL_FROM: "app@example.com",
    ALLOWED_TO: "@example.org",
    MAX_BATCH: "2",
    MAX_RECIPIENTS: "2",
  }));

  it("admits every message and applies MAIL_FROM to those without from", () => {
    const sent = admitBatch([
      message({ to: "a@example.org", text: "1" }),
      message({ from: "App <app@example.com>", to: "b@EXAMPLE.org", text: "2" }),
    ], policy);
    assert.ok(Array.isArray(sent));
    assert.deepEqual(sent.map((m) => m.from?.address), ["app@example.com", "app@example.com"]);
    assert.ok(sent.every(isValidatedMessage), "every message is still a ValidatedMessage");
  });

  it("refuses more than MAX_BATCH messages with 413", () => {
    const three = ["a", "b", "c"].map((name) => message({ to: `${name}@example.org` }));
    const refusal = refused(admitBatch(three, policy));
    assert.equal(refusal.status, 413);
    assert.deepEqual(refusal.body.error, {
      type: "too_large",
      message: "The batch has 3 messages; at most 2 are allowed (MAX_BATCH).",
    });
  });

  it("refuses the whole batch when one message breaks the policy, naming it", () => {
    const refusal = refused(admitBatch([
      message({ to: "a@example.org", token: "first" }),
      message({ to: "b@example.org", bcc: "eve@example.net", token: "second" }),
    ], policy));
    assert.equal(refusal.status, 403);
    assert.deepEqual(refusal.body, {
      status: "failed",
      token: null,
      accepted: [],
      rejected: [],
      error: {
        type: "forbidden",
        message: "messages[1].bcc[0] is not an allowed recipient (ALLOWED_TO).",
      },
    });
  });

  it("names the message that has too many recipients", () => {
    const refusal = refused(admitBatch([
      message({ to: "a@example.org" }),
      message({ to: "a@example.org, b@example.org", cc: "c@example.org" }),
    ], policy));
    assert.equal(refusal.status, 413);
    assert.equal(
      refusal.body.error.message,
      "messages[1] has 3 recipients in to, cc and bcc; at most 2 are allowed (MAX_RECIPIENTS).",
    );
  });

  it("names every message without a sender when there is no MAIL_FROM", () => {
    const dev = policyFor(configFor({}, true));
    const refusal = refused(admitBatch([
      message({ to: "a@example.org" }),
      message({ from: "ann@example.com", to: "b@example.org" }),
      message({ to: "c@example.org" }),
    ], dev));
    assert.equal(refusal.status, 400);
    assert.deepEqual(refusal.body.error.issues?.map((issue) => issue.path), [
      "messages[0].from",
      "messages[2].from",
    ]);
  });
});

describe("checkPolicy", () => {
  it("prefixes field paths with the batch position it is given", () => {
    const config = configFor({ ALLOWED_FROM: "@example.com" });
    assert.deepEqual(
      checkPolicy(message({ from: "eve@example.net", to: "b@example.org" }), config, "messages[4]"),
      {
        type: "forbidden",
        message:
          "messages[4].from is not an allowed sender: it must be MAIL_FROM or match ALLOWED_FROM.",
      },
    );
  });

  it("finds nothing wrong with an allowed message", () => {
    const config = configFor({ ALLOWED_FROM: "@example.com", ALLOWED_TO: "@example.org" });
    assert.equal(
      checkPolicy(message({ from: "ann@example.com", to: "b@example.org" }), config),
      undefined,
    );
  });
});

describe("validationProblem", () => {
  it("builds the 400 body with the issues and the token", () => {
    const issues = [{ path: "to[1]", message: "the address has no @" }];
    assert.deepEqual(validationProblem(issues, "tok"), {
      status: "failed",
      token: "tok",
      accepted: [],
      rejected: [],
      error: {
        type: "validation",
        message: "The request body is not a valid message; error.issues says where and why.",
        issues,
      },
    });
  });
});
