/**
 * What both benchmark peers share (plain JavaScript, so that Node runs it as
 * it is): the message every measurement sends, the 10 MiB attachment, the
 * scenarios (`kind`s) and how each is measured. A peer only supplies how to
 * send one message and how to close.
 *
 * A peer process is started as `<runtime> <peer file> '<spec as JSON>'` and
 * prints one JSON line with its measurements. Spec fields: `kind`, `host`,
 * `port`, `tls` (`"none"` | `"starttls"`), `caCert`, `auth` (`{ username,
 * password }`), `count`, `connections`, `inFlight`, `noDelay`.
 *
 * @module
 */

import fs from "node:fs";
import process from "node:process";

/** The message of every measurement (about 600 bytes once composed). */
export const BASE_MESSAGE = Object.freeze({
  from: "bench@example.com",
  to: "sink@example.org",
  subject: "Benchmark",
  text: "A short benchmark message.\n".repeat(20),
});

const ATTACHMENT_BYTES = 10 * 1024 * 1024;
const CPU_WARM_UP_MESSAGES = 20;

/** Milliseconds on the wall clock, comparable with the latency proxy's time stamps. */
export function wallClockMs() {
  return performance.timeOrigin + performance.now();
}

/** The base64 of 10 MiB of random bytes, as a caller of the HTTP API would hand it over. */
export function attachmentBase64() {
  const bytes = new Uint8Array(ATTACHMENT_BYTES);
  for (let i = 0; i < bytes.length; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, i + 65536));
  }
  let binary = "";
  for (let i = 0; i < bytes.length; i += 32768) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 32768));
  }
  return btoa(binary);
}

/**
 * Bytes of `field` (`VmRSS`, `VmHWM`) in /proc/<pid>/status.
 *
 * @param {string} field
 * @param {number | "self"} [pid] this process by default
 * @returns {number}
 */
export function procStatusBytes(field, pid = "self") {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]) * 1024;
}

/**
 * Restarts the kernel's peak-RSS mark (VmHWM) of a process from its current
 * RSS (Linux; throws where that is not allowed).
 *
 * @param {number | "self"} [pid] this process by default
 */
export function resetPeakRss(pid = "self") {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

/**
 * Collects garbage and restarts the kernel's peak-RSS mark (VmHWM) from the
 * current RSS, so that a later {@linkcode peakExtraBytes} sees the true peak,
 * not what a sampling timer happened to catch.
 */
export function memoryBaseline() {
  const gc = globalThis.gc;
  if (typeof gc !== "function") throw new Error("run the peer with the GC exposed (--expose-gc)");
  gc();
  gc();
  resetPeakRss();
  return procStatusBytes("VmRSS");
}

/** The peak RSS since {@linkcode memoryBaseline}, minus that baseline. */
export function peakExtraBytes(baseline) {
  return procStatusBytes("VmHWM") - baseline;
}

/** User + system CPU time of this process, in ms. */
export function cpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function messageNumbered(i) {
  return { ...BASE_MESSAGE, subject: `Benchmark ${i}` };
}

/** Sends `count` messages with at most `limit` in flight at once. */
async function sendWindowed(send, count, limit) {
  let next = 0;
  const lane = async () => {
    while (next < count) await send(messageNumbered(next++));
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
}

/**
 * Runs `spec.kind` with `peer` (`{ send(message), close() }`, both returning
 * promises) and resolves with the measurements. `t0`/`t1` bound the timed part
 * on the wall clock, for the proxy to count the round trips inside it.
 */
export async function runScenario(peer, spec) {
  const count = spec.count ?? 1;
  switch (spec.kind) {
    case "queued": // all at once on one warm connection
    case "awaited": // one by one on one warm connection
    case "batch": { // `inFlight` at once over `connections` warm connections
      await peer.send(BASE_MESSAGE);
      const t0 = wallClockMs();
      if (spec.kind === "queued") {
        await Promise.all(Array.from({ length: count }, (_, i) => peer.send(messageNumbered(i))));
      } else {
        await sendWindowed(peer.send, count, spec.kind === "awaited" ? 1 : spec.inFlight);
      }
      const t1 = wallClockMs();
      await peer.close();
      return { t0, t1, messages: count, seconds: (t1 - t0) / 1000 };
    }
    case "cold": // a new client, one message, closed: every round trip counts
    case "hundred": { // a new client, `count` messages queued at once, closed
      await Promise.all(Array.from({ length: count }, (_, i) => peer.send(messageNumbered(i))));
      await peer.close();
      return { messages: count };
    }
    case "cpu": { // client CPU time per message, `count` queued on one connection
      await sendWindowed(peer.send, CPU_WARM_UP_MESSAGES, 1);
      const before = cpuMs();
      await Promise.all(Array.from({ length: count }, (_, i) => peer.send(messageNumbered(i))));
      const cpuPerMessageMs = (cpuMs() - before) / count;
      await peer.close();
      return { messages: count, cpuPerMessageMs };
    }
    case "memory": { // one 10 MiB attachment given as base64
      const content = attachmentBase64();
      await peer.send(BASE_MESSAGE);
      const baseline = memoryBaseline();
      const before = cpuMs();
      await peer.send({ ...BASE_MESSAGE, attachments: [{ filename: "random.bin", content }] });
      const cpu = cpuMs() - before;
      const peak = peakExtraBytes(baseline);
      await peer.close();
      return { messages: 1, peakExtraBytes: peak, cpuMs: cpu };
    }
    default:
      throw new Error(`unknown benchmark kind ${JSON.stringify(spec.kind)}`);
  }
}
