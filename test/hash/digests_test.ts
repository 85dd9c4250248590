/**
 * hash/digests.ts: HMAC-MD5 gives the RFC 2202 results (short key, text key,
 * a key longer than the block) and the streamed SHA-256 equals WebCrypto's
 * one-shot digest whatever the pieces — on Deno (through @noble/hashes) and
 * in workerd (on the platform's MD5 and `crypto.DigestStream`), where a
 * Worker bundle of the module must not carry @noble/hashes at all.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as esbuild from "esbuild";
import { bytesToHex, hmacMd5, streamingSha256 } from "../../src/hash/digests.ts";
import { serveScript, workerBuildOptions, workerdSkipReason } from "../support/workerd.ts";
import { RFC_2202_HMAC_MD5 } from "./fixtures/rfc2202.ts";

const RFC_2202 = RFC_2202_HMAC_MD5.map(({ hex }) => hex);

async function oneShotSha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** 100 000 bytes of a repeating pattern, cut into pieces of uneven sizes. */
function pieces(): { whole: Uint8Array<ArrayBuffer>; parts: Uint8Array[] } {
  const whole = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
  const parts: Uint8Array[] = [];
  for (let start = 0, size = 1; start < whole.length; start += size, size = size * 3 + 1) {
    parts.push(whole.subarray(start, start + size));
  }
  return { whole, parts };
}

describe("digests on this runtime", () => {
  it("HMAC-MD5 gives the RFC 2202 results", async () => {
    for (const { key, message, hex } of RFC_2202_HMAC_MD5) {
      assert.equal(bytesToHex(await hmacMd5(key, message)), hex);
    }
  });

  it("the streamed SHA-256 equals the one-shot digest, also of nothing", async () => {
    const { whole, parts } = pieces();
    const hash = await streamingSha256();
    for (const part of parts) await hash.update(part);
    assert.equal(await hash.digest(), await oneShotSha256(whole));
    const empty = await streamingSha256();
    assert.equal(await empty.digest(), await oneShotSha256(new Uint8Array(0)));
  });
});

const skip = await workerdSkipReason();
if (skip) console.warn(`skipping the workerd digest tests: ${skip}`);

describe("digests in workerd", { skip }, () => {
  const entry = "test/hash/fixtures/digest_worker.ts";

  it("use the platform's MD5 and DigestStream: the bundle has no @noble/hashes", async () => {
    let result;
    try {
      result = await esbuild.build({ ...workerBuildOptions(entry), metafile: true });
    } finally {
      await esbuild.stop();
    }
    const inputs = Object.keys(result.metafile.inputs);
    assert.deepEqual(inputs.filter((path) => path.includes("@noble")), []);
    await using worker = await serveScript(result.outputFiles[0].text);
    const { whole, parts } = pieces();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const part of parts) controller.enqueue(part.slice());
        controller.close();
      },
    });
    const response = await worker.fetch(
      "/",
      { method: "POST", body, duplex: "half" } as RequestInit,
    );
    assert.deepEqual(await response.json(), {
      platform: true,
      bytes: whole.length,
      sha256: await oneShotSha256(whole),
      hmacMd5: RFC_2202,
    });
  });
});
