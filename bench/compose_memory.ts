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
 *
 * Run: deno run -A bench/compose_memory.ts [step…]   (all steps by default)
 *
 * @module
 */

import process from "node:process";

const ATTACHMENT_BYTES = 10 * 1024 * 1024;
const MiB = 1024 * 1024;
const SMTP_SINK = "/usr/sbin/smtp-sink";
const STEPS = ["compose", "encode", "encode-reuse", "send", "body", "body-hono", "http", "http-body"] as const;
type Step = typeof STEPS[number];
const NEEDS_SINK: readonly Step[] = ["send", "http", "http-body"];

/** Collects garbage (the step processes run with --expose-gc). */
function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

/** The base64 of 10 MiB of random bytes, as the HTTP layer receives it. */
function randomBase64(): string {
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

/** Tracks the peak of RSS, heap and ArrayBuffer memory over a baseline, and CPU time. */
class Meter {
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
    return {
      rssMb: (this.#peak.rss - this.#baseline.rss) / MiB,
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

  const content = randomBase64();
  const json = step.startsWith("body") || step.startsWith("http")
    ? new TextEncoder().encode(JSON.stringify(messageInput(content)))
    : undefined;
  // The parsed-JSON form for the library steps; the bytes only for the HTTP steps.
  const input = json === undefined ? messageInput(content) : undefined;
  const client = NEEDS_SINK.includes(step) ? new SmtpClient(clientOptions) : undefined;
  let app: { fetch(request: Request): Response | Promise<Response> } | undefined;
  if (step === "http") {
    const { createApp } = await import("../src/http/app.ts");
    const { loadConfig } = await import("../src/http/config.ts");
    const config = loadConfig({
      SMTP_URL: `smtp://127.0.0.1:${port}?tls=none`,
      MAIL_FROM: "bench@example.com",
      ALLOWED_FROM: "@example.com",
      ALLOWED_TO: "@example.net",
      API_KEYS: "bench-key",
    });
    app = createApp(config, { client });
  }
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

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Starts `smtp-sink` on a free loopback port. */
async function startSink(): Promise<{ port: number; stop(): void }> {
  const port = freePort();
  const child = new Deno.Command(SMTP_SINK, {
    args: ["-u", "nobody", `127.0.0.1:${port}`, "64"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { port, stop: () => child.kill() };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  child.kill();
  throw new Error("smtp-sink did not start");
}

/** Runs each step in a fresh process and prints a table. */
async function main(steps: Step[]): Promise<void> {
  const haveSink = await Deno.stat(SMTP_SINK).then(() => true, () => false);
  const sink = haveSink ? await startSink() : undefined;
  console.log("| step | peak extra RSS | heap | ArrayBuffers | CPU |");
  console.log("| --- | --- | --- | --- | --- |");
  try {
    for (const step of steps) {
      if (NEEDS_SINK.includes(step) && sink === undefined) {
        console.log(`| ${step} | skipped: ${SMTP_SINK} is missing | | | |`);
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
      const r = JSON.parse(line);
      const mb = (n: number) => `${n.toFixed(1)} MiB`;
      console.log(
        `| ${step} | ${mb(r.rssMb)} | ${mb(r.heapMb)} | ${mb(r.externalMb)} | ${
          r.cpuMs.toFixed(0)
        } ms |`,
      );
    }
  } finally {
    sink?.stop();
  }
}

if (Deno.args[0] === "--step") {
  await runStep(Deno.args[1] as Step, Number(Deno.args[2]));
} else {
  const asked = Deno.args.filter((arg): arg is Step => (STEPS as readonly string[]).includes(arg));
  await main(asked.length > 0 ? asked : [...STEPS]);
}
