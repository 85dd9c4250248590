/**
 * `deno task bench`: edgemail against nodemailer, in one run, to the same
 * local Postfix `smtp-sink`, directly and through a proxy adding about 20 ms
 * of round-trip time. Prints messages per second, round trips per message and
 * the peak extra memory for a 10 MiB attachment, with edgemail / nodemailer ratios.
 *
 * @module
 */

import { postfixSkipReason, startPostfix } from "../test/support/postfix.ts";
import { type LatencyProxy, startLatencyProxy } from "./latency_proxy.ts";

const SMTP_SINK = "/usr/sbin/smtp-sink";
const DIRECT_MESSAGES = 500;
const PROXIED_MESSAGES = 50;
const PEERS = ["edgemail", "nodemailer"] as const;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function startSink(): Promise<{ port: number; stop(): void }> {
  const port = freePort();
  const child = new Deno.Command(SMTP_SINK, {
    args: ["-u", "nobody", `127.0.0.1:${port}`, "256"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { port, stop: () => child.kill() };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  child.kill();
  throw new Error("smtp-sink did not start");
}

async function runOne(peer: string, kind: string, port: number, count = 0) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--expose-gc",
      new URL("./run_one.ts", import.meta.url).pathname,
      peer,
      kind,
      String(port),
      String(count),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`${peer} ${kind} failed`);
  const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
  return JSON.parse(lines.at(-1)!);
}

function format(n: number, digits = 1): string {
  return n.toFixed(digits);
}

if (!(await Deno.stat(SMTP_SINK).catch(() => null))) {
  console.log(`Skipping the benchmark: ${SMTP_SINK} is missing (apt-get install postfix).`);
  Deno.exit(0);
}

/**
 * Sends through `proxy` and returns the messages per second and the round
 * trips per message of the timed messages only (connection set-up and the
 * warm-up send, measured in a second run, are subtracted).
 */
async function throughProxy(peer: string, proxy: LatencyProxy) {
  proxy.reset();
  const timed = await runOne(peer, "throughput", proxy.port, PROXIED_MESSAGES);
  const roundTrips = proxy.roundTrips;
  proxy.reset();
  await runOne(peer, "throughput", proxy.port, 0);
  return {
    perSecond: timed.messages / timed.seconds,
    roundTripsPerMessage: (roundTrips - proxy.roundTrips) / PROXIED_MESSAGES,
  };
}

const sink = await startSink();
const proxy = startLatencyProxy({ hostname: "127.0.0.1", port: sink.port }, { delayMs: 10 });
const rows: Record<string, Record<string, number>> = {};
try {
  for (const peer of PEERS) {
    const direct = await runOne(peer, "throughput", sink.port, DIRECT_MESSAGES);
    const proxied = await throughProxy(peer, proxy);
    const memory = await runOne(peer, "memory", sink.port);
    rows[peer] = {
      directPerSecond: direct.messages / direct.seconds,
      proxiedPerSecond: proxied.perSecond,
      roundTripsPerMessage: proxied.roundTripsPerMessage,
      attachmentPeakMb: memory.peakRssDeltaMb,
    };
  }
} finally {
  await proxy.close();
  sink.stop();
}

// smtp-sink offers no CHUNKING; Postfix's smtpd does, when it can run here (root).
let postfixSkip: string | undefined;
try {
  postfixSkip = postfixSkipReason();
} catch (error) {
  postfixSkip = (error as Error).message; // CI would fail the suite; the bench just says why
}
if (postfixSkip === undefined) {
  const postfix = await startPostfix();
  const toPostfix = startLatencyProxy({ hostname: "127.0.0.1", port: postfix.port }, {
    delayMs: 10,
  });
  try {
    for (const peer of PEERS) {
      rows[peer].postfixRoundTripsPerMessage =
        (await throughProxy(peer, toPostfix)).roundTripsPerMessage;
    }
  } finally {
    await toPostfix.close();
    await postfix.stop();
  }
}

const e = rows.edgemail, n = rows.nodemailer;
if (postfixSkip !== undefined) console.log(`(No Postfix smtpd row: ${postfixSkip})`);
console.log("edgemail vs nodemailer, Postfix smtp-sink on 127.0.0.1, one pooled connection each");
console.log(`${"metric".padEnd(40)}  edgemail  nodemailer   ratio (e/n)`);
const metrics: [string, string, number][] = [
  ["messages/s, direct", "directPerSecond", 0],
  ["messages/s, +20 ms RTT proxy", "proxiedPerSecond", 1],
  ["round trips per message (warm)", "roundTripsPerMessage", 2],
  ["  the same to Postfix smtpd (CHUNKING)", "postfixRoundTripsPerMessage", 2],
  ["peak extra RSS, 10 MiB attachment (MB)", "attachmentPeakMb", 1],
];
for (const [label, key, digits] of metrics) {
  if (e[key] === undefined) continue;
  console.log(
    `${label.padEnd(40)} ${format(e[key], digits).padStart(9)} ${
      format(n[key], digits).padStart(11)
    }   ${format(e[key] / n[key], 2)}`,
  );
}
