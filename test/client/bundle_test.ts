/**
 * The checked-in browser bundle of the client is what `deno task build:client`
 * builds from the current source, and within the size budget (contract
 * section 7: at most 6 144 bytes minified).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CLIENT_BUNDLE_MAX_BYTES, CLIENT_BUNDLE_URL } from "../../src/client/bundle_path.ts";

const ROOT = new URL("../../", import.meta.url);

/** The command of `deno task build:client`, with the output moved to `output`. */
async function buildCommand(output: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const words: string[] = config.tasks["build:client"].split(/\s+/);
  const at = words.indexOf("-o");
  assert.ok(words[0] === "deno" && at > 0, "build:client is a deno bundle -o … command");
  words[at + 1] = output;
  return words.slice(1);
}

describe("client bundle", () => {
  it("is up to date: rebuilding gives the checked-in bytes (run deno task build:client)", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const output = `${dir}/edgemail_client.js`;
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: await buildCommand(output),
        cwd: ROOT,
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      const built = await Deno.readTextFile(output);
      const checkedIn = await Deno.readTextFile(CLIENT_BUNDLE_URL);
      assert.ok(
        built === checkedIn,
        "src/client/dist/edgemail_client.js is stale: run deno task build:client and commit it",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it(`is at most ${CLIENT_BUNDLE_MAX_BYTES} bytes`, async () => {
    const { size } = await Deno.stat(CLIENT_BUNDLE_URL);
    assert.ok(size <= CLIENT_BUNDLE_MAX_BYTES, `the bundle has ${size} bytes`);
  });

  it("is one self-contained ES module exporting the client", async () => {
    const text = await Deno.readTextFile(CLIENT_BUNDLE_URL);
    assert.doesNotMatch(text, /\bimport\s*[{*"'(]|\brequire\(/, "it imports nothing");
    const module = await import(CLIENT_BUNDLE_URL.href);
    assert.deepEqual(Object.keys(module).sort(), ["EdgemailError", "sendBatch", "sendEmail"]);
  });
});
