/**
 * hash/deno.ts: the Deno hashes give the RFC 2202 HMAC-MD5 results and
 * WebCrypto's SHA-256, and the Deno entry points reach them through static
 * imports only — Deno Deploy and Supabase carry just the module graph, which
 * a dynamic import through a variable is not part of.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { denoDigests } from "../../src/hash/deno.ts";
import { bytesToHex } from "../../src/hash/digests.ts";
import { RFC_2202_HMAC_MD5 } from "./fixtures/rfc2202.ts";

const text = (value: string) => new TextEncoder().encode(value);

/** The modules `deno info` finds from `entry`, as paths relative to the repository. */
async function staticGraphOf(entry: string): Promise<string[]> {
  const root = new URL("../../", import.meta.url);
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const info = JSON.parse(new TextDecoder().decode(stdout)) as {
    modules: { specifier: string }[];
  };
  return info.modules.map((module) => module.specifier.replace(root.href, ""));
}

describe("denoDigests", () => {
  it("HMAC-MD5 gives the RFC 2202 results", () => {
    for (const { key, message, hex } of RFC_2202_HMAC_MD5) {
      assert.equal(bytesToHex(denoDigests.hmacMd5(key, message)), hex);
    }
  });

  it("the SHA-256 fed in pieces equals WebCrypto's", async () => {
    const hash = denoDigests.createSha256();
    hash.update(text("edge"));
    hash.update(text("mail"));
    const expected = await crypto.subtle.digest("SHA-256", text("edgemail"));
    assert.equal(bytesToHex(hash.digest()), bytesToHex(new Uint8Array(expected)));
  });

  for (const entry of ["functions/deno.ts", "src/dev/main.ts"]) {
    it(`${entry} reaches them through static imports`, async () => {
      const graph = await staticGraphOf(entry);
      assert.ok(graph.includes("src/hash/deno.ts"), `${entry} does not import src/hash/deno.ts`);
      assert.ok(graph.includes("src/hash/noble.ts"), "@noble/hashes is not in the static graph");
      assert.ok(graph.some((specifier) => specifier === "node:crypto"), "node:crypto is missing");
    });
  }
});
