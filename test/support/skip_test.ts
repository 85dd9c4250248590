import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { skipOutsideCi } from "./skip.ts";

describe("skipOutsideCi", () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = Deno.env.get("CI");
  });
  afterEach(() => {
    if (saved === undefined) Deno.env.delete("CI");
    else Deno.env.set("CI", saved);
  });

  it("passes a reason through on a developer's machine", () => {
    Deno.env.delete("CI");
    assert.equal(skipOutsideCi("Postfix is not installed."), "Postfix is not installed.");
  });

  it("fails in CI instead of skipping, saying why", () => {
    Deno.env.set("CI", "true");
    assert.throws(() => skipOutsideCi("Postfix is not installed."), /not installed.*CI must run/);
  });

  it("lets a runnable suite run anywhere", () => {
    Deno.env.set("CI", "true");
    assert.equal(skipOutsideCi(undefined), undefined);
  });
});
