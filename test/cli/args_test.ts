/** The command line of `deno task send`: strict parsing, each problem naming its flag. */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseSendArgs, USAGE, UsageError } from "../../src/cli/args.ts";
import { formatStep, SMTP_VARIABLES } from "../../src/cli/send.ts";

const BASE = ["--to", "bob@example.org", "--subject", "Hi", "--text", "Hello"];

function usageError(argv: string[]): string {
  try {
    parseSendArgs(argv);
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return error.message;
  }
  assert.fail(`accepted ${argv.join(" ")}`);
}

describe("parseSendArgs", () => {
  it("reads values, repeatable flags, --flag=value and booleans", () => {
    const args = parseSendArgs([
      ...BASE,
      "--to=cy@example.org",
      "--cc",
      "dee@example.org",
      "--header",
      "X-A: 1",
      "--header=X-B: 2",
      "--stream",
      "--json",
      "--endpoint",
      "http://127.0.0.1:8000",
      "--api-key",
      "k",
    ]);
    assert.deepEqual(args.to, ["bob@example.org", "cy@example.org"]);
    assert.deepEqual(args.cc, ["dee@example.org"]);
    assert.deepEqual(args.header, ["X-A: 1", "X-B: 2"]);
    assert.equal(args.subject, "Hi");
    assert.equal(args.text, "Hello");
    assert.equal(args.stream, true);
    assert.equal(args.json, true);
    assert.equal(args.endpoint, "http://127.0.0.1:8000");
    assert.equal(args.apiKey, "k");
  });

  it("takes a value that starts with a single dash", () => {
    assert.equal(parseSendArgs([...BASE.slice(0, 4), "--text", "-5 degrees"]).text, "-5 degrees");
  });

  it("needs nothing else with --help", () => {
    assert.equal(parseSendArgs(["--help"]).help, true);
    assert.equal(parseSendArgs(["-h"]).help, true);
  });

  it("names the flag of every problem", () => {
    assert.match(usageError(["--subject", "Hi", "--text", "x"]), /Missing --to/);
    assert.match(usageError(["--to", "a@example.org", "--text", "x"]), /Missing --subject/);
    assert.match(usageError(BASE.slice(0, 4)), /--text, --text-file, --html-file or --attach/);
    assert.match(usageError([...BASE, "--verbose"]), /Unknown flag --verbose/);
    assert.match(usageError([...BASE, "stray"]), /Unexpected argument "stray"/);
    assert.match(usageError([...BASE, "--from"]), /--from needs a value/);
    assert.match(usageError([...BASE, "--from", "--json"]), /--from needs a value/);
    assert.match(usageError([...BASE, "--subject", "again"]), /--subject is given twice/);
    assert.match(usageError([...BASE, "--json=1"]), /--json takes no value/);
    assert.match(usageError([...BASE, "--text-file", "a.txt"]), /--text and --text-file/);
    assert.match(usageError([...BASE, "--api-key", "k"]), /--api-key only applies with --endpoint/);
    assert.match(usageError([...BASE, "--endpoint", "localhost:8000"]), /--endpoint must be/);
  });

  it("--help lists every flag the parser knows", () => {
    for (const flag of USAGE.match(/--[a-z-]+/g) ?? []) {
      if (flag === "--help") continue;
      const message = usageError([flag]);
      assert.doesNotMatch(message, /Unknown flag/, `${flag} is in --help but unknown`);
    }
  });
});

describe("deno task send", () => {
  it("may read exactly the variables the SMTP path reads", async () => {
    const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
    const allowed = config.tasks.send.match(/--allow-env=(\S+)/)?.[1].split(",");
    assert.deepEqual(allowed, [...SMTP_VARIABLES]);
  });

  it("prints a --stream step with time, phase, state, codes, recipient and reply text", () => {
    const line = formatStep({
      phase: "rcpt",
      state: "done",
      token: null,
      recipient: "bob@example.org",
      reply: { code: 250, enhancedCode: "2.1.5", message: "Recipient ok" },
    }, 12.4);
    assert.equal(line, "    12 ms  rcpt      done     250 2.1.5  bob@example.org  Recipient ok");
    const started = formatStep({
      phase: "rcpt",
      state: "started",
      token: null,
      recipient: "bob@example.org",
    }, 13);
    assert.equal(started, "    13 ms  rcpt      started             bob@example.org");
    const batch = formatStep({ phase: "connect", state: "started", token: null, index: 3 }, 0);
    assert.equal(batch, "     0 ms  #3  connect   started");
  });
});
