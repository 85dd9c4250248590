/**
 * Memory benchmark of message composition (not a test): composes a message
 * with one 10 MiB random attachment, given as base64 the way the HTTP layer
 * receives it (a string inside parsed JSON), drains every chunk, and prints the
 * peak extra RSS and heap compared with a baseline taken after the input
 * string was built.
 *
 * Run: deno run --v8-flags=--expose-gc bench/compose_memory.ts
 *
 * @module
 */

import { composeMessage, parseMessage } from "../src/message/mod.ts";

const ATTACHMENT_BYTES = 10 * 1024 * 1024;
const MiB = 1024 * 1024;

/** Collects garbage when the runtime was started with --expose-gc. */
function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

/** The request body as the HTTP layer would parse it. */
function buildInput(): unknown {
  const bytes = new Uint8Array(ATTACHMENT_BYTES);
  for (let i = 0; i < bytes.length; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, i + 65536));
  }
  let binary = "";
  for (let i = 0; i < bytes.length; i += 32768) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 32768));
  }
  const json = JSON.stringify({
    from: "Bench <bench@example.com>",
    to: "sink@example.net",
    subject: "10 MiB attachment",
    text: "See the attachment.\n",
    attachments: [{ filename: "random.bin", content: btoa(binary) }],
  });
  return JSON.parse(json);
}

const input = buildInput();
collectGarbage();
const baseline = Deno.memoryUsage();
let peakRss = baseline.rss;
let peakHeap = baseline.heapUsed;
let peakExternal = baseline.external;
const sample = () => {
  const usage = Deno.memoryUsage();
  peakRss = Math.max(peakRss, usage.rss);
  peakHeap = Math.max(peakHeap, usage.heapUsed);
  peakExternal = Math.max(peakExternal, usage.external);
};

const started = performance.now();
const composed = composeMessage(parseMessage(input));
sample();
let drained = 0;
let chunks = 0;
let checksum = 0;
for (const chunk of composed.chunks()) {
  drained += chunk.length;
  checksum = (checksum + chunk[chunk.length - 1]) | 0;
  chunks++;
  sample();
}
const elapsed = performance.now() - started;
if (drained !== composed.size) {
  throw new Error(`drained ${drained} octets, size said ${composed.size}`);
}

const fmt = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
console.log(`attachment: ${fmt(ATTACHMENT_BYTES)} (base64 input ${fmt(ATTACHMENT_BYTES * 4 / 3)})`);
console.log(`message: ${composed.size} octets in ${chunks} chunks, ${elapsed.toFixed(0)} ms`);
console.log(
  `baseline after building the input: rss ${fmt(baseline.rss)}, heapUsed ${fmt(baseline.heapUsed)}`,
);
console.log(`peak extra rss: ${fmt(peakRss - baseline.rss)}`);
console.log(`peak extra heapUsed: ${fmt(peakHeap - baseline.heapUsed)}`);
console.log(`peak extra external (ArrayBuffers): ${fmt(peakExternal - baseline.external)}`);
console.log(`gc exposed: ${"gc" in globalThis} (checksum ${checksum})`);
