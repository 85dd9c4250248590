import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { combinationProblems } from "../../src/http/config_combinations.ts";

const production = { development: false, store: true };

describe("combinationProblems", () => {
  it("wants exactly one of SMTP_URL and SMTP_HOST", () => {
    const server = { API_KEYS: "k" };
    assert.match(combinationProblems(server, production)[0], /^No SMTP server/);
    assert.deepEqual(
      combinationProblems({ ...server, SMTP_URL: "x", SMTP_HOST: "y" }, production),
      ["SMTP_URL and SMTP_HOST are both set: use one of them."],
    );
    assert.deepEqual(combinationProblems({ ...server, SMTP_HOST: "y" }, production), []);
  });

  it("refuses an open relay except in development mode", () => {
    const open = { SMTP_HOST: "h" };
    assert.match(combinationProblems(open, production)[0], /^No open relay: API_KEYS is unset/);
    assert.deepEqual(combinationProblems(open, { development: true, store: true }), []);
    assert.match(
      combinationProblems(
        { ...open, API_KEYS: "k", CORS_ORIGINS: "https://a.example" },
        production,
      )[0],
      /^No open relay: CORS_ORIGINS is set/,
    );
    assert.deepEqual(combinationProblems({ ...open, ALLOWED_TO: "@a.example" }, production), []);
  });

  it("without a store, wants RATE_LIMIT=off for public callers or a limit asked for", () => {
    const noStore = { development: false, store: false };
    const site = { SMTP_HOST: "h", ALLOWED_TO: "@a.example" };
    assert.match(combinationProblems(site, noStore)[0], /^RATE_LIMIT: public callers/);
    assert.deepEqual(combinationProblems({ ...site, RATE_LIMIT: " OFF " }, noStore), []);
    assert.match(
      combinationProblems({ SMTP_HOST: "h", API_KEYS: "k", RATE_LIMIT: "5/1m" }, noStore)[0],
      /^RATE_LIMIT is set/,
    );
    assert.deepEqual(combinationProblems({ SMTP_HOST: "h", API_KEYS: "k" }, noStore), []);
  });
});
