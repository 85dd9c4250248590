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

const text = (value: string) => new TextEncoder().encode(value);

/** RFC 2202 section 2, test cases 1, 2 and 6. */
const RFC_2202 = [
  "9294727a3638bb1c13f48ef8158bfc9d",
  "750c783e6ab0b503eaa86e310a5db738",
  "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
];

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
    assert.deepEqual([
      bytesToHex(await hmacMd5(new Uint8Array(16).fill(0x0b), text("Hi There"))),
      bytesToHex(await hmacMd5(text("Jefe"), text("what do ya want for nothing?"))),
      bytesToHex(
        await hmacMd5(
          new Uint8Array(80).fill(0xaa),
          text("Test Using Larger Than Block-Size Key - Hash Key First"),
        ),
      ),
    ], RFC_2202);
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
