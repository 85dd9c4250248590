/**
 * `deno task bench`: edgemail against nodemailer, side by side in one run, as
 * the table of CONTRACT section 7. Not a test: it prints numbers and whether
 * each meets its target, and always exits 0 once it has printed the table.
 *
 * - Servers, all on 127.0.0.1: Postfix `smtp-sink` (PIPELINING, no CHUNKING),
 *   a private full Postfix `smtpd` (STARTTLS, PIPELINING, CHUNKING;
 *   test/support/postfix.ts, needs root), and npm:smtp-server for the one row
 *   that needs AUTH (this Postfix has no SASL database).
 * - Latency: unless a row says RTT 0, traffic goes through bench/latency_proxy.ts,
 *   which delays each direction by 10 ms (≈ 21 ms round trip) and counts round
 *   trips: client flights that follow a server flight on a connection.
 * - Peers, each measurement in a fresh process: edgemail (bench/run_one.ts, on
 *   Deno), nodemailer on Node (`pool: true`) and nodemailer on Deno
 *   (bench/nodemailer_peer.mjs); all three run the same scenarios
 *   (bench/peer_common.mjs) with the same message to the same server. The
 *   HTTP rows run the real app (`createApp`, bench/http_server.ts) in its own
 *   process.
 * - 3 rounds per row: median [min–max]. Ratios divide edgemail's median by the
 *   better nodemailer median (Node or Deno).
 * - Bounded: every child process is killed after 30 s, and measurements that
 *   would start after 4 min 20 s are reported as skipped, so the run ends
 *   within 5 minutes even when a peer hangs.
 *
 * @module
 */

import * as esbuild from "esbuild";
import { type PostfixServer, postfixSkipReason, startPostfix } from "../test/support/postfix.ts";
import { startSmtpServer, type TestSmtpServer } from "../test/support/smtp_server.ts";
import { spawnDeno } from "../test/support/subprocess.ts";
import { workerBuildOptions } from "../test/support/workerd.ts";
import { type LatencyProxy, startLatencyProxy } from "./latency_proxy.ts";
import { hasSmtpSink, SMTP_SINK, startSmtpSink } from "./smtp_sink.ts";
import { attachmentBase64, BASE_MESSAGE } from "./peer_common.mjs";

const ROOT = new URL("../", import.meta.url);
const NODE = "/usr/bin/node";
const ROUNDS = 3;
const ONE_WAY_DELAY_MS = 10;
const CHILD_TIMEOUT_MS = 30_000;
const BUDGET_MS = 260_000;
const QUEUED_MESSAGES = 50;
const AWAITED_MESSAGES = 20;
const BATCH_MESSAGES = 100;
const CPU_MESSAGES = 2000;
const HUNDRED_MESSAGES = 100;
const API_KEY = "bench-key-0123456789abcdef";
const AUTH = { username: "bench", password: "bench-secret" };
const MB = 1e6;
const WORKER_LIMIT = 102_400;
const CLIENT_LIMIT = 6_144;

const started = performance.now();

// ---------------------------------------------------------------- statistics

interface Stats {
  median: number;
  min: number;
  max: number;
}

function stats(values: number[]): Stats | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted.at(-1)! };
}

type PeerName = "edgemail" | "node" | "nodeNoDelay" | "deno";
type Samples = Record<PeerName, number[]>;
const NODEMAILERS = ["node", "nodeNoDelay", "deno"] as const;

function samples(): Samples {
  return { edgemail: [], node: [], nodeNoDelay: [], deno: [] };
}

/** One line of the table. */
interface Row {
  label: string;
  target: string;
  digits: number;
  /** `lower`: fewer is better (ratio against the lower nodemailer); `higher`: more is better. */
  better: "lower" | "higher";
  values: Samples;
  /** Why a peer has no numbers (it failed, or this row does not run it). */
  failures: Partial<Record<PeerName, string>>;
  /** Whether edgemail's median (and the ratio, where there is one) meets the target. */
  meets: (edgemail: number, ratio: number | undefined) => boolean;
  /** Why the row has no numbers. */
  skipped?: string;
  /** Shown after the edgemail figure (e.g. the protocol minimum). */
  note?: string;
  /** No nodemailer columns and no ratio for this row. */
  noRatio?: boolean;
  /** nodemailer on Deno runs with TCP no-delay in this row (shown with a `*`). */
  denoNoDelay?: boolean;
}

const rows: Row[] = [];

function addRow(row: Omit<Row, "values" | "failures">): Row {
  const full = { values: samples(), failures: {}, ...row };
  rows.push(full);
  return full;
}

/** A row's target: how it reads in the table and the test of it. */
type Target = Pick<Row, "target" | "better" | "meets" | "note">;

/** edgemail's median at most `limit` (fewer is better), shown as `≤ <limit><unit>`. */
function atMost(limit: number, unit = ""): Target {
  return { target: `≤ ${limit}${unit}`, better: "lower", meets: (e) => e <= limit };
}

/** edgemail's median at `minimum`, what the protocol cannot go below. */
function theMinimum(minimum: number): Target {
  return { ...atMost(minimum), target: `= ${minimum} (the minimum)`, note: `min ${minimum}` };
}

/** edgemail's median at least `factor` × the best nodemailer's (more is better). */
function ratioAtLeast(factor: number): Target {
  return {
    target: `≥ ${factor}×`,
    better: "higher",
    meets: (_, ratio) => ratio !== undefined && ratio >= factor,
  };
}

/** edgemail's median at most `factor` × the best nodemailer's (less is better). */
function ratioAtMost(factor: number): Target {
  return {
    target: `≤ ${factor}× nodemailer`,
    better: "lower",
    meets: (_, ratio) => ratio !== undefined && ratio <= factor,
  };
}

// ------------------------------------------------------------ child processes

const children = new Set<Deno.ChildProcess>();

/** Runs a command to its end (killed after CHILD_TIMEOUT_MS) and parses its last stdout line. */
async function runJson(command: string, args: string[]): Promise<Record<string, number>> {
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, CHILD_TIMEOUT_MS);
  try {
    const output = await child.output();
    const stdout = new TextDecoder().decode(output.stdout).trim();
    if (!output.success) {
      const stderr = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-3);
      throw new Error(
        timedOut
          ? `did not finish within ${CHILD_TIMEOUT_MS / 1000} s`
          : `exit ${output.code}: ${stderr.join(" / ").replaceAll("|", "/")}`,
      );
    }
    return JSON.parse(stdout.split("\n").at(-1)!);
  } finally {
    clearTimeout(timer);
    children.delete(child);
  }
}

interface PeerSpec {
  kind: string;
  host: string;
  port: number;
  tls?: "none" | "starttls";
  caCert?: string;
  auth?: { username: string; password: string };
  count?: number;
  connections?: number;
  inFlight?: number;
  /** nodemailer on Deno: TCP no-delay through its getSocket hook. */
  noDelay?: boolean;
}

const hasNode = await Deno.stat(NODE).then(() => true, () => false);

function runPeer(peer: PeerName, spec: PeerSpec): Promise<Record<string, number>> {
  const noDelay = peer === "nodeNoDelay" || (peer === "deno" && spec.noDelay === true);
  const json = JSON.stringify({ ...spec, noDelay });
  if (peer === "node" || peer === "nodeNoDelay") {
    return runJson(NODE, ["--expose-gc", "bench/nodemailer_peer.mjs", json]);
  }
  const file = peer === "edgemail" ? "bench/run_one.ts" : "bench/nodemailer_peer.mjs";
  return runJson(Deno.execPath(), ["run", "-A", "--v8-flags=--expose-gc", file, json]);
}

function overBudget(): boolean {
  return performance.now() - started > BUDGET_MS;
}

function elapsed(): string {
  return `${((performance.now() - started) / 1000).toFixed(0)} s`;
}

/**
 * Runs `measure` for each of `peers`, ROUNDS times (rounds interleaved, so a
 * neighbour's load spike spreads over all peers), unless the time budget is
 * spent. A peer that fails is not run again for these rows; the others go on.
 */
async function forRounds(
  targets: Row[],
  peers: PeerName[],
  measure: (peer: PeerName) => Promise<void>,
): Promise<void> {
  const running = peers.filter((peer) => hasNode || !peer.startsWith("node"));
  for (const row of targets) {
    for (const peer of ["edgemail", ...NODEMAILERS] as PeerName[]) {
      if (!running.includes(peer)) row.failures[peer] ??= hasNode ? "not run" : "no Node";
    }
  }
  console.error(`[${elapsed()}] ${targets[0].label}`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const peer of running) {
      if (targets[0].failures[peer] !== undefined) continue;
      if (overBudget()) {
        for (const row of targets) {
          row.skipped ??= "the 5-minute budget ran out before this row finished";
        }
        return;
      }
      try {
        await measure(peer);
      } catch (error) {
        const reason = `failed: ${(error as Error).message}`;
        for (const row of targets) {
          row.failures[peer] = reason;
          if (peer === "edgemail") row.skipped ??= `edgemail ${reason}`;
        }
      }
    }
  }
}

// ------------------------------------------------------------------ servers

const TRACE = Deno.env.get("BENCH_TRACE") === "1";

/** BENCH_TRACE=1: every chunk the proxy reads, `C>` from the client (`*` = a counted round trip). */
function traceChunk(chunk: { fromClient: boolean; bytes: Uint8Array; counted: boolean }): void {
  const text = new TextDecoder().decode(chunk.bytes.subarray(0, 60)).replace(/[^ -~]+/g, "·");
  console.error(
    `${chunk.fromClient ? "C>" : "S>"}${chunk.counted ? "*" : " "} ${chunk.bytes.length} ${text}`,
  );
}

function proxyTo(port: number): LatencyProxy {
  return startLatencyProxy({ hostname: "127.0.0.1", port }, {
    delayMs: ONE_WAY_DELAY_MS,
    onChunk: TRACE ? traceChunk : undefined,
  });
}

/** Round trips per message and messages per second of a run that reported its window. */
async function windowed(peer: PeerName, proxy: LatencyProxy, spec: PeerSpec) {
  proxy.reset();
  const result = await runPeer(peer, spec);
  return {
    roundTripsPerMessage: proxy.roundTripsBetween(result.t0, result.t1) / result.messages,
    perSecond: result.messages / result.seconds,
  };
}

/** Every round trip of a run, from connect (the greeting) to the reply to QUIT. */
async function total(peer: PeerName, proxy: LatencyProxy, spec: PeerSpec): Promise<number> {
  proxy.reset();
  await runPeer(peer, spec);
  return proxy.roundTrips;
}

// ------------------------------------------------------------------ HTTP rows

interface HttpServer {
  url: string;
  stop(): Promise<void>;
}

async function startHttp(smtpPort: number): Promise<HttpServer> {
  const child = spawnDeno([
    "run",
    "-A",
    "--unstable-no-legacy-abort",
    "--v8-flags=--expose-gc",
    "bench/http_server.ts",
  ], {
    SMTP_URL: `smtp://127.0.0.1:${smtpPort}?tls=none`,
    API_KEYS: API_KEY,
    MAIL_FROM: BASE_MESSAGE.from,
    SMTP_POOL_MAX: "5",
  });
  children.add(child);
  const timer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stderr = "";
  const stderrDone = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) stderr += text;
  })();
  const stop = async () => {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch {
      // ended
    }
    await child.status;
    await lines.cancel().catch(() => {});
    await stderrDone.catch(() => {});
    children.delete(child);
  };
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) {
      await stop();
      throw new Error(`bench/http_server.ts did not start:\n${stderr}`);
    }
    text += value;
  }
  const { port } = JSON.parse(text.split("\n")[0]);
  return { url: `http://127.0.0.1:${port}`, stop };
}

async function post(server: HttpServer, path: string, body?: string): Promise<unknown> {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" },
    body,
    signal: AbortSignal.timeout(CHILD_TIMEOUT_MS),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

function expectSent(answer: unknown, count: number): void {
  const results = (answer as { results?: { status: string }[] }).results ?? [answer];
  const sent = results.filter((result) => (result as { status: string }).status === "sent");
  if (sent.length !== count) {
    throw new Error(`${sent.length} of ${count} sent: ${JSON.stringify(results[0]).slice(0, 300)}`);
  }
}

/** Messages per second of one `POST /send/batch` of BATCH_MESSAGES on a warmed function. */
async function httpBatch(smtpPort: number): Promise<number> {
  const server = await startHttp(smtpPort);
  try {
    expectSent(await post(server, "/send", JSON.stringify(BASE_MESSAGE)), 1);
    const messages = Array.from(
      { length: BATCH_MESSAGES },
      (_, i) => ({ ...BASE_MESSAGE, subject: `Benchmark ${i}` }),
    );
    const body = JSON.stringify({ messages });
    const t0 = performance.now();
    expectSent(await post(server, "/send/batch", body), BATCH_MESSAGES);
    return BATCH_MESSAGES / ((performance.now() - t0) / 1000);
  } finally {
    await server.stop();
  }
}

/** Peak extra RSS (bytes) and CPU (ms) of the server process for one POST /send of `body`. */
async function httpMemory(smtpPort: number, body: string) {
  const server = await startHttp(smtpPort);
  try {
    expectSent(await post(server, "/send", JSON.stringify(BASE_MESSAGE)), 1);
    await post(server, "/__bench/baseline");
    expectSent(await post(server, "/send", body), 1);
    return await post(server, "/__bench/peak") as { peakExtraBytes: number; cpuMs: number };
  } finally {
    await server.stop();
  }
}

// ------------------------------------------------------------------- bundles

/** Minified and gzipped bytes of `entry`, bundled as wrangler bundles the Worker, for `platform`. */
async function bundleSize(entry: string, platform: "neutral" | "browser") {
  const result = await esbuild.build({ ...workerBuildOptions(entry), minify: true, platform });
  const bytes = result.outputFiles[0].contents;
  const gzip = await new Response(
    new Blob([new Uint8Array(bytes)]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer();
  return { minified: bytes.length, gzip: gzip.byteLength };
}

// ------------------------------------------------------------------- machine

async function commandLine(command: string, args: string[]): Promise<string> {
  try {
    const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "null" })
      .output();
    return new TextDecoder().decode(output.stdout).trim();
  } catch {
    return "absent";
  }
}

async function machine(): Promise<string> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown CPU";
  const memKb = Number(meminfo.match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0);
  const postfix = (await commandLine("/usr/sbin/postconf", ["-d", "mail_version"]))
    .replace("mail_version = ", "");
  const node = hasNode ? await commandLine(NODE, ["--version"]) : "absent";
  return `${model}, ${navigator.hardwareConcurrency} cores, ${(memKb / 1048576).toFixed(1)} GiB; ` +
    `Deno ${Deno.version.deno}, Node ${node}, Postfix ${postfix}; ` +
    `load average ${Deno.loadavg().map((n) => n.toFixed(2)).join(" ")} at start`;
}

// ---------------------------------------------------------------- the rows

const machineLine = await machine();

const queuedRoundTrips = addRow({
  label: `round trips / message, ${QUEUED_MESSAGES} sends queued at once on one connection, ` +
    "smtp-sink (PIPELINING, no CHUNKING)",
  digits: 2,
  ...atMost(1.05),
});
const queuedThroughput = addRow({
  label: "messages/s, the same vs nodemailer maxConnections: 1",
  digits: 1,
  ...ratioAtLeast(1.9),
});
const awaitedPostfix = addRow({
  label: `round trips / message, ${AWAITED_MESSAGES} sends awaited one by one, warm, ` +
    "full Postfix (STARTTLS, CHUNKING)",
  digits: 2,
  ...atMost(1.05),
});
const awaitedSink = addRow({
  label: `the same to smtp-sink (no CHUNKING)`,
  digits: 2,
  ...atMost(2.05),
});
const batch = addRow({
  label: `messages/s, POST /send/batch of ${BATCH_MESSAGES} (SMTP_POOL_MAX 5) vs nodemailer ` +
    "maxConnections: 5 with 10 in flight, smtp-sink",
  digits: 1,
  ...ratioAtLeast(5),
});
const coldPlain = addRow({
  label: "cold send round trips (connect to QUIT), plain, smtp-sink",
  digits: 0,
  ...theMinimum(5),
});
const coldAuth = addRow({
  label: "cold send round trips (connect to QUIT), STARTTLS + AUTH PLAIN, smtp-server",
  digits: 0,
  ...theMinimum(9),
});
const libraryMemory = addRow({
  label: "peak extra RSS (MB), one 10 MiB attachment as base64, library send, RTT 0",
  digits: 1,
  ...atMost(15, " MB"),
});
const httpMemoryRow = addRow({
  label: "peak extra RSS (MB) of the server process, the same through POST /send",
  digits: 1,
  ...atMost(30, " MB"),
  noRatio: true,
});
const libraryCpu = addRow({
  label: "CPU ms for that one 10 MiB send (library, process user+system)",
  digits: 0,
  ...ratioAtMost(0.5),
});
const cpuPerMessage = addRow({
  label: `client CPU ms / message, RTT 0, ${CPU_MESSAGES} queued on one connection, smtp-sink`,
  digits: 3,
  ...ratioAtMost(0.1),
  denoNoDelay: true,
});
const hundred = addRow({
  label: `round trips in all, ${HUNDRED_MESSAGES} single-recipient messages queued on one ` +
    "connection, plain, connect to QUIT, full Postfix (CHUNKING)",
  digits: 0,
  ...atMost(10),
});
const workerBundle = addRow({
  label: "Worker bundle, functions/cloudflare.ts, esbuild --minify (gzip)",
  digits: 0,
  ...atMost(WORKER_LIMIT, " B"),
  noRatio: true,
});
const clientBundle = addRow({
  label: "browser client bundle, src/client/mod.ts, esbuild --minify (gzip)",
  digits: 0,
  ...atMost(CLIENT_LIMIT, " B"),
  noRatio: true,
});

const ALL_PEERS: PeerName[] = ["edgemail", ...NODEMAILERS];
const smtpRows = rows.filter((row) => row !== workerBundle && row !== clientBundle);
const postfixRows = [awaitedPostfix, hundred];
const gzipNotes = new Map<Row, string>();

// ------------------------------------------------------------ measurements

async function measureBundles(): Promise<void> {
  try {
    const worker = await bundleSize("functions/cloudflare.ts", "neutral");
    workerBundle.values.edgemail.push(worker.minified);
    gzipNotes.set(workerBundle, `gzip ${worker.gzip}`);
    const clientEntry = new URL("src/client/mod.ts", ROOT);
    if (await Deno.stat(clientEntry).then(() => true, () => false)) {
      const client = await bundleSize("src/client/mod.ts", "browser");
      clientBundle.values.edgemail.push(client.minified);
      gzipNotes.set(clientBundle, `gzip ${client.gzip}`);
    } else {
      clientBundle.skipped = "n/a: src/client/mod.ts does not exist yet";
    }
  } catch (error) {
    workerBundle.skipped ??= `esbuild failed: ${(error as Error).message}`;
    clientBundle.skipped ??= `esbuild failed: ${(error as Error).message}`;
  } finally {
    await esbuild.stop();
  }
}

async function measureSmtp(): Promise<void> {
  if (!(await hasSmtpSink())) {
    for (const row of smtpRows) {
      row.skipped = `${SMTP_SINK} is missing (apt-get install postfix)`;
    }
    return;
  }
  let postfixSkip: string | undefined;
  try {
    postfixSkip = postfixSkipReason();
  } catch (error) {
    postfixSkip = (error as Error).message; // CI makes the suites fail; the bench just says why
  }
  const sink = await startSmtpSink();
  const sinkProxy = proxyTo(sink.port);
  let postfix: PostfixServer | undefined;
  let postfixProxy: LatencyProxy | undefined;
  let authServer: TestSmtpServer | undefined;
  let authProxy: LatencyProxy | undefined;
  try {
    if (postfixSkip === undefined) {
      try {
        postfix = await startPostfix();
        postfixProxy = proxyTo(postfix.port);
      } catch (error) {
        postfixSkip = `Postfix did not start: ${(error as Error).message.split("\n")[0]}`;
      }
    }
    if (postfixSkip !== undefined) {
      for (const row of postfixRows) row.skipped = `no full Postfix: ${postfixSkip}`;
    }
    const sinkAt = { host: "127.0.0.1", port: sinkProxy.port, tls: "none" } as const;

    await forRounds([queuedRoundTrips, queuedThroughput], ALL_PEERS, async (peer) => {
      const run = await windowed(peer, sinkProxy, {
        ...sinkAt,
        kind: "queued",
        count: QUEUED_MESSAGES,
      });
      queuedRoundTrips.values[peer].push(run.roundTripsPerMessage);
      queuedThroughput.values[peer].push(run.perSecond);
    });

    await forRounds([awaitedSink], ["edgemail", "node"], async (peer) => {
      const run = await windowed(peer, sinkProxy, {
        ...sinkAt,
        kind: "awaited",
        count: AWAITED_MESSAGES,
      });
      awaitedSink.values[peer].push(run.roundTripsPerMessage);
    });

    if (postfix && postfixProxy) {
      const viaProxy = postfixProxy;
      const tlsAt = {
        host: "127.0.0.1",
        port: viaProxy.port,
        tls: "starttls",
        caCert: postfix.caCert,
      } as const;
      await forRounds([awaitedPostfix], ["edgemail", "node"], async (peer) => {
        const run = await windowed(peer, viaProxy, {
          ...tlsAt,
          kind: "awaited",
          count: AWAITED_MESSAGES,
        });
        awaitedPostfix.values[peer].push(run.roundTripsPerMessage);
      });
      await forRounds([hundred], ["edgemail", "nodeNoDelay"], async (peer) => {
        hundred.values[peer].push(
          await total(peer, viaProxy, {
            host: "127.0.0.1",
            port: viaProxy.port,
            tls: "none",
            kind: "hundred",
            count: HUNDRED_MESSAGES,
          }),
        );
      });
    }

    await forRounds([batch], ["edgemail", "node", "nodeNoDelay"], async (peer) => {
      if (peer === "edgemail") batch.values.edgemail.push(await httpBatch(sinkProxy.port));
      else {
        const run = await windowed(peer, sinkProxy, {
          ...sinkAt,
          kind: "batch",
          count: BATCH_MESSAGES,
          connections: 5,
          inFlight: 10,
        });
        batch.values[peer].push(run.perSecond);
      }
    });

    await forRounds([coldPlain], ["edgemail", "node"], async (peer) => {
      coldPlain.values[peer].push(await total(peer, sinkProxy, { ...sinkAt, kind: "cold" }));
    });

    authServer = await startSmtpServer({ users: { [AUTH.username]: AUTH.password } });
    authProxy = proxyTo(authServer.port);
    const authAt = {
      host: "127.0.0.1",
      port: authProxy.port,
      tls: "starttls",
      caCert: authServer.caCert,
      auth: AUTH,
    } as const;
    const viaAuthProxy = authProxy;
    await forRounds([coldAuth], ["edgemail", "node"], async (peer) => {
      coldAuth.values[peer].push(await total(peer, viaAuthProxy, { ...authAt, kind: "cold" }));
    });

    const direct = { host: "127.0.0.1", port: sink.port, tls: "none" } as const;
    await forRounds([libraryMemory, libraryCpu], ["edgemail", "node", "deno"], async (peer) => {
      const run = await runPeer(peer, { ...direct, kind: "memory" });
      libraryMemory.values[peer].push(run.peakExtraBytes / MB);
      libraryCpu.values[peer].push(run.cpuMs);
    });

    const body = JSON.stringify({
      ...BASE_MESSAGE,
      attachments: [{ filename: "random.bin", content: attachmentBase64() }],
    });
    await forRounds([httpMemoryRow], ["edgemail"], async () => {
      const run = await httpMemory(sink.port, body);
      httpMemoryRow.values.edgemail.push(run.peakExtraBytes / MB);
    });

    await forRounds([cpuPerMessage], ["edgemail", "nodeNoDelay", "deno"], async (peer) => {
      const run = await runPeer(peer, {
        ...direct,
        kind: "cpu",
        count: CPU_MESSAGES,
        noDelay: true,
      });
      cpuPerMessage.values[peer].push(run.cpuPerMessageMs);
    });
  } finally {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // ended
      }
    }
    await sinkProxy.close();
    await postfixProxy?.close();
    await authProxy?.close();
    await authServer?.close();
    await postfix?.stop();
    await sink.stop();
  }
}

await measureBundles();
await measureSmtp();

// ------------------------------------------------------------------- output

function formatStats(values: number[], digits: number): string {
  const s = stats(values);
  if (!s) return "—";
  const f = (n: number) => n.toFixed(digits);
  return s.min === s.max
    ? `${f(s.median)} [all ${values.length}]`
    : `${f(s.median)} [${f(s.min)}–${f(s.max)}]`;
}

function ratioOf(row: Row): number | undefined {
  if (row.noRatio) return undefined;
  const e = stats(row.values.edgemail)?.median;
  const others = NODEMAILERS.map((peer) => stats(row.values[peer])?.median)
    .filter((n): n is number => n !== undefined && n > 0);
  if (e === undefined || others.length === 0) return undefined;
  const best = row.better === "lower" ? Math.min(...others) : Math.max(...others);
  return e / best;
}

function nodemailerCell(row: Row, peer: PeerName): string {
  if (row.noRatio) return "—";
  const failure = row.failures[peer];
  if (failure !== undefined) return failure.startsWith("failed") ? "failed" : failure;
  const star = peer === "deno" && row.denoNoDelay ? "*" : "";
  return formatStats(row.values[peer], row.digits) + star;
}

const seconds = ((performance.now() - started) / 1000).toFixed(0);
console.log(
  `\nedgemail vs nodemailer 7 (pool: true), ${ROUNDS} rounds each, median [min–max]; ` +
    `≈${2 * ONE_WAY_DELAY_MS + 1} ms RTT through the counting proxy unless the row says RTT 0.`,
);
console.log(`Machine: ${machineLine}.`);
console.log(
  '"no-delay": nodemailer with TCP no-delay set through its getSocket hook (* likewise on ' +
    "Deno), which removes its ≈40 ms Nagle/delayed-ACK stall per message; ratios divide by the " +
    "best nodemailer figure of the row.\n",
);
console.log(
  "| row | edgemail | nodemailer (Node) | nodemailer (Node, no-delay) | nodemailer (Deno) | " +
    "ratio | target | result |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
const notes: string[] = [];
for (const row of rows) {
  const edgemail = formatStats(row.values.edgemail, row.digits) +
    (row.note ? ` (${row.note})` : "") +
    (gzipNotes.has(row) ? ` (${gzipNotes.get(row)})` : "");
  const ratio = ratioOf(row);
  const median = stats(row.values.edgemail)?.median;
  const complete = row.skipped === undefined && median !== undefined;
  const result = complete ? (row.meets(median, ratio) ? "pass" : "**miss**") : "skipped";
  if (!complete) notes.push(`- ${row.label}: ${row.skipped ?? "no measurement"}`);
  for (const peer of NODEMAILERS) {
    const failure = row.failures[peer];
    if (failure?.startsWith("failed")) notes.push(`- ${row.label}, nodemailer ${peer}: ${failure}`);
  }
  const cells = [
    row.label,
    complete ? edgemail : row.skipped?.startsWith("n/a") ? "n/a" : "skipped",
    ...NODEMAILERS.map((peer) => nodemailerCell(row, peer)),
    ratio === undefined ? "—" : `${ratio.toFixed(2)}×`,
    row.target,
    result,
  ];
  console.log(`| ${cells.join(" | ")} |`);
}
if (notes.length > 0) console.log(`\nSkipped, incomplete or failed:\n${notes.join("\n")}`);
console.log(
  `\nFinished in ${seconds} s; load average ${
    Deno.loadavg().map((n) => n.toFixed(2)).join(" ")
  } at the end.`,
);
Deno.exit(0);
