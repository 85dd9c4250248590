/**
 * Memory and CPU benchmark of one message with a 10 MiB attachment given as
 * base64 (not a test). Each step runs in a fresh process, with the garbage
 * collector exposed, and prints the peak extra RSS (and heap, and
 * ArrayBuffer memory) over a baseline taken once its input exists, plus the
 * CPU time (user + system) of the step:
 *
 * - `compose`: `parseMessage` + `composeMessage`, every chunk drained;
 * - `encode`: the same through the DATA encoder (`encodeData`), as a send does;
 * - `encode-reuse`: the same with the encoder's `reuseBuffers`;
 * - `send`: the library's `SmtpClient.send` to a local `smtp-sink`;
 * - `body`: reading the 14 MB JSON request body with `readJsonBody` (http/body.ts);
 * - `body-hono`: the same with Hono's `bodyLimit` + `c.req.json()` (what `validator("json")` does);
 * - `http`: `POST /send` through `createApp` (whatever body handling app.ts has) to `smtp-sink`;
 * - `http-body`: the intended HTTP path: `readJsonBody`, `safeParseMessage`, `SmtpClient.send`.
 * - `server-app` / `server-body`: the last two as a real server (`Deno.serve`) in its own
 *   process, the body posted over loopback by this one; the peak is the server's
 *   kernel high-water mark (VmHWM, reset after warming up), the CPU its utime + stime.
 *
 * Run: deno run -A bench/compose_memory.ts [step…]   (all steps by default)
 *
 * @module
 */

import process from "node:process";
import type { SmtpClient } from "../src/smtp/client.ts";
import { attachmentBase64, procStatusBytes, resetPeakRss } from "./peer_common.mjs";
import { hasSmtpSink, SMTP_SINK, startSmtpSink } from "./smtp_sink.ts";

const MiB = 1024 * 1024;
const STEPS = [
  "compose",
  "encode",
  "encode-reuse",
  "send",
  "body",
  "body-hono",
  "http",
  "http-body",
  "server-app",
  "server-body",
] as const;
type Step = typeof STEPS[number];
const NEEDS_SINK: readonly Step[] = [
  "send",
  "http",
  "http-body",
  "server-app",
  "server-body",
];

/** Collects garbage (the step processes run with --expose-gc). */
function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

/** The message (parsed JSON) with the attachment. */
function messageInput(content: string) {
  return {
    from: "Bench <bench@example.com>",
    to: "sink@example.net",
    subject: "10 MiB attachment",
    text: "See the attachment.\n",
    attachments: [{ filename: "random.bin", content }],
  };
}

/** A POST request whose body streams `bytes` in 64 KiB views, as a socket would deliver it. */
function postRequest(url: string, bytes: Uint8Array): Request {
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + 65536));
      offset += 65536;
    },
  });
  return new Request(url, {
    method: "POST",
    body,
    headers: { "Content-Type": "application/json", "Content-Length": String(bytes.length) },
  });
}

/** Resets the kernel's peak-RSS mark of this process (Linux); false where that is not possible. */
function tryResetPeakRss(): boolean {
  try {
    resetPeakRss();
    return true;
  } catch {
    return false;
  }
}

/**
 * Tracks the peak of RSS, heap and ArrayBuffer memory over a baseline, and
 * CPU time. RSS comes from the kernel's high-water mark where it can be reset
 * (so short spikes inside synchronous work count), else from a 2 ms sampler.
 */
class Meter {
  readonly #kernel = tryResetPeakRss();
  readonly #baseline = Deno.memoryUsage();
  #peak = { ...this.#baseline };
  readonly #cpu = process.cpuUsage();
  readonly #timer = setInterval(() => this.sample(), 2);

  sample(): void {
    const usage = Deno.memoryUsage();
    this.#peak.rss = Math.max(this.#peak.rss, usage.rss);
    this.#peak.heapUsed = Math.max(this.#peak.heapUsed, usage.heapUsed);
    this.#peak.external = Math.max(this.#peak.external, usage.external);
  }

  stop() {
    this.sample();
    clearInterval(this.#timer);
    const cpu = process.cpuUsage(this.#cpu);
    const peakRss = this.#kernel
      ? Math.max(this.#peak.rss, procStatusBytes("VmHWM"))
      : this.#peak.rss;
    return {
      rssMb: (peakRss - this.#baseline.rss) / MiB,
      heapMb: (this.#peak.heapUsed - this.#baseline.heapUsed) / MiB,
      externalMb: (this.#peak.external - this.#baseline.external) / MiB,
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
  }
}

/** Runs one step in this process and prints its figures as one JSON line. */
async function runStep(step: Step, port: number): Promise<void> {
  const schema = await import("../src/message/schema.ts");
  const { parseMessage } = schema;
  // (Older trees, measured for comparison, have parseMessage only.)
  const safeParseMessage = "safeParseMessage" in schema
    ? schema.safeParseMessage
    : (value: unknown) => ({ success: true as const, message: parseMessage(value), issues: [] });
  const { composeMessage } = await import("../src/message/compose.ts");
  const { encodeData } = await import("../src/smtp/data_encoder.ts");
  const { SmtpClient } = await import("../src/smtp/client.ts");
  const { readJsonBody } = await import("../src/http/body.ts");
  const small = messageInput("");
  small.attachments = [];
  const clientOptions = { host: "127.0.0.1", port, tls: "none" as const };

  const content = attachmentBase64();
  const json = step.startsWith("body") || step.startsWith("http")
    ? new TextEncoder().encode(JSON.stringify(messageInput(content)))
    : undefined;
  // The parsed-JSON form for the library steps; the bytes only for the HTTP steps.
  const input = json === undefined ? messageInput(content) : undefined;
  const client = NEEDS_SINK.includes(step) ? new SmtpClient(clientOptions) : undefined;
  let app: { fetch(request: Request): Response | Promise<Response> } | undefined;
  if (step === "http") app = await benchApp(port, client!);
  if (step === "body-hono") {
    const { Hono } = await import("hono");
    const { bodyLimit } = await import("hono/body-limit");
    const hono = new Hono();
    hono.post("/send", bodyLimit({ maxSize: 26_214_400 }), async (c) => {
      const value = await c.req.json();
      return c.json({ ok: value !== undefined });
    });
    app = hono;
  }
  // Warm up (connection, JIT, module state) with a small message first.
  if (client !== undefined) await client.send(small);
  collectGarbage();

  const meter = new Meter();
  let octets = 0;
  switch (step) {
    case "compose": {
      for (const chunk of composeMessage(parseMessage(input)).chunks()) octets += chunk.length;
      break;
    }
    case "encode":
    case "encode-reuse": {
      const composed = composeMessage(parseMessage(input));
      const reuseBuffers = step === "encode-reuse";
      for (const chunk of encodeData(composed.chunks(), { reuseBuffers })) octets += chunk.length;
      break;
    }
    case "send":
      await client!.send(input!);
      break;
    case "body": {
      const body = await readJsonBody(postRequest("http://x/send", json!), {
        maxBytes: 26_214_400,
      });
      meter.sample();
      octets = body.ok ? json!.length : -1;
      break;
    }
    case "body-hono":
    case "http": {
      const request = postRequest("http://127.0.0.1/send", json!);
      request.headers.set("Authorization", "Bearer bench-key");
      const response = await app!.fetch(request);
      octets = response.status === 200 ? json!.length : -response.status;
      await response.body?.cancel();
      break;
    }
    case "http-body": {
      const body = await readJsonBody(postRequest("http://x/send", json!), {
        maxBytes: 26_214_400,
      });
      if (!body.ok) throw new Error(body.message);
      const parsed = safeParseMessage(body.value);
      if (!parsed.success) throw new Error(JSON.stringify(parsed.issues));
      await client!.send(parsed.message);
      octets = json!.length;
      break;
    }
  }
  const figures = meter.stop();
  await client?.close();
  console.log(JSON.stringify({ step, octets, ...figures }));
}

/** The whole app (`createApp`), configured as the HTTP steps use it, sending through `client`. */
async function benchApp(smtpPort: number, client: SmtpClient) {
  const { createApp } = await import("../src/http/app.ts");
  const { loadConfig } = await import("../src/http/config.ts");
  const config = loadConfig({
    SMTP_URL: `smtp://127.0.0.1:${smtpPort}?tls=none`,
    MAIL_FROM: "bench@example.com",
    ALLOWED_FROM: "@example.com",
    ALLOWED_TO: "@example.net",
    API_KEYS: "bench-key",
  });
  return createApp(config, { client });
}

/** The HTTP function a server step serves: the whole app, or the body.ts path alone. */
async function serverHandler(
  kind: "app" | "body",
  port: number,
): Promise<(request: Request) => Response | Promise<Response>> {
  const { SmtpClient } = await import("../src/smtp/client.ts");
  const client = new SmtpClient({ host: "127.0.0.1", port, tls: "none" });
  if (kind === "app") return (await benchApp(port, client)).fetch;
  const { readJsonBody } = await import("../src/http/body.ts");
  const { safeParseMessage } = await import("../src/message/schema.ts");
  // BENCH_TRACE=1: where the memory is at each stage (stderr), to find the peak.
  // Between stages, the highest RSS seen by a 1 ms sampler (it runs while the handler awaits).
  let highest = 0;
  if (Deno.env.get("BENCH_TRACE") === "1") {
    setInterval(() => highest = Math.max(highest, Deno.memoryUsage().rss), 1);
  }
  const trace = Deno.env.get("BENCH_TRACE") === "1"
    ? (stage: string) => {
      const { rss, heapUsed, external } = Deno.memoryUsage();
      const mb = (n: number) => (n / MiB).toFixed(1);
      console.error(
        `${stage}: rss ${mb(rss)} (highest since the last stage ${mb(highest)}) heap ${
          mb(heapUsed)
        } external ${mb(external)}`,
      );
      highest = 0;
    }
    : () => {};
  return async (request) => {
    trace("request");
    const body = await readJsonBody(request, { maxBytes: 26_214_400 });
    trace("body read");
    if (!body.ok) return Response.json({ error: body.message }, { status: body.status });
    const parsed = safeParseMessage(body.value);
    trace("validated");
    if (!parsed.success) return Response.json({ issues: parsed.issues }, { status: 400 });
    const result = await client.send(parsed.message);
    trace("sent");
    return Response.json(result);
  };
}

/** Serves a server step on a free port; prints the port, then serves until killed. */
async function serve(kind: "app" | "body", smtpPort: number): Promise<void> {
  const handler = await serverHandler(kind, smtpPort);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  console.log(JSON.stringify({ port: server.addr.port }));
}

/** User + system CPU of a process so far, in milliseconds. */
async function procCpuMs(pid: number): Promise<number> {
  const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime in 1/100 s
}

/** Runs a server step: a server process, warmed up, then one 10 MiB POST /send. */
async function runServerStep(step: Step, smtpPort: number) {
  const kind = step === "server-app" ? "app" : "body";
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, "--serve", kind, String(smtpPort)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let line = "";
    while (!line.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the server process ended");
      line += value;
    }
    reader.releaseLock();
    const { port } = JSON.parse(line);
    const url = `http://127.0.0.1:${port}/send`;
    const post = async (body: string | Uint8Array<ArrayBuffer>) => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer bench-key" },
        body,
      });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`${response.status}: ${text.slice(0, 200)}`);
    };
    const small = messageInput("");
    small.attachments = [];
    for (let i = 0; i < 3; i++) await post(JSON.stringify(small));
    const json = new TextEncoder().encode(JSON.stringify(messageInput(attachmentBase64())));
    await post(JSON.stringify(small));
    await new Promise((resolve) => setTimeout(resolve, 200));
    resetPeakRss(child.pid);
    const baseline = procStatusBytes("VmRSS", child.pid);
    const cpu = await procCpuMs(child.pid);
    await post(json);
    const peak = procStatusBytes("VmHWM", child.pid);
    return {
      step,
      octets: json.length,
      rssMb: (peak - baseline) / MiB,
      heapMb: NaN,
      externalMb: NaN,
      cpuMs: await procCpuMs(child.pid) - cpu,
    };
  } finally {
    child.kill();
    await child.status;
  }
}

/** Runs each step in a fresh process and prints a table. */
async function main(steps: Step[]): Promise<void> {
  const sink = await hasSmtpSink() ? await startSmtpSink({ backlog: 64 }) : undefined;
  console.log("| step | peak extra RSS | heap | ArrayBuffers | CPU |");
  console.log("| --- | --- | --- | --- | --- |");
  try {
    for (const step of steps) {
      if (NEEDS_SINK.includes(step) && sink === undefined) {
        console.log(`| ${step} | skipped: ${SMTP_SINK} is missing | | | |`);
        continue;
      }
      if (step.startsWith("server")) {
        print(await runServerStep(step, sink!.port));
        continue;
      }
      const output = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          import.meta.filename!,
          "--step",
          step,
          String(sink?.port ?? 0),
        ],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      if (!output.success) throw new Error(`step ${step} failed`);
      const line = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1)!;
      print(JSON.parse(line));
    }
  } finally {
    await sink?.stop();
  }
}

/** Prints one row of the table. */
function print(
  r: { step: string; rssMb: number; heapMb: number; externalMb: number; cpuMs: number },
) {
  const mb = (n: number) => Number.isNaN(n) ? "n/a" : `${n.toFixed(1)} MiB`;
  console.log(
    `| ${r.step} | ${mb(r.rssMb)} | ${mb(r.heapMb)} | ${mb(r.externalMb)} | ${
      r.cpuMs.toFixed(0)
    } ms |`,
  );
}

if (Deno.args[0] === "--serve") {
  await serve(Deno.args[1] as "app" | "body", Number(Deno.args[2]));
} else if (Deno.args[0] === "--step") {
  await runStep(Deno.args[1] as Step, Number(Deno.args[2]));
} else {
  const asked = Deno.args.filter((arg): arg is Step => (STEPS as readonly string[]).includes(arg));
  await main(asked.length > 0 ? asked : [...STEPS]);
}
