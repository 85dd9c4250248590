/**
 * The Deno entry as users deploy it: `deno serve functions/deno.ts` as a
 * subprocess on a free loopback port, configured only through its
 * environment.
 *
 * @example
 * ```ts
 * const fn = await startFunction({ SMTP_URL: "smtp://localhost:2525", API_KEYS: "key" });
 * try {
 *   const response = await fetch(`${fn.url}/health`);
 * } finally {
 *   await fn.stop();
 * }
 * ```
 *
 * @module
 */

import { freePort, spawnDeno } from "./subprocess.ts";

const ENTRY = new URL("../../functions/deno.ts", import.meta.url).pathname;
// Long enough for a first compile on a slow machine; only a guard against hanging.
const START_DEADLINE_MS = 120_000;
const POLL_INTERVAL_MS = 100;

/**
 * Flags as `deno task start` passes them: request.signal aborts only when the
 * client goes away, not after every successful response (Deno's legacy behaviour).
 */
const SERVE_FLAGS = ["--allow-all", "--unstable-no-legacy-abort"];

/** A running `deno serve functions/deno.ts`. */
export interface FunctionServer {
  /** Its base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /**
   * Stops it (SIGTERM; `"SIGKILL"` for a process that dies mid-request) and
   * waits until it has ended and its output is read.
   */
  stop(signal?: Deno.Signal): Promise<void>;
}

/**
 * Starts the Deno entry with exactly `env` (plus what Deno needs) and waits
 * until `GET /health` answers; throws with its output if it never does.
 * Without `KV_PATH` in `env`, it gets a Deno KV file of its own, removed on
 * stop, so no idempotency key or rate-limit count outlives the test.
 */
export async function startFunction(env: Record<string, string>): Promise<FunctionServer> {
  const port = freePort();
  const kvDir = env.KV_PATH === undefined ? await Deno.makeTempDir() : undefined;
  const child = spawnDeno(
    ["serve", ...SERVE_FLAGS, "--host", "127.0.0.1", "--port", String(port), ENTRY],
    kvDir === undefined ? env : { ...env, KV_PATH: `${kvDir}/kv.sqlite3` },
  );
  let output = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) output += text;
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const url = `http://127.0.0.1:${port}`;
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch {
      // Already ended.
    }
    await child.status;
    await drained;
    if (kvDir !== undefined) await Deno.remove(kvDir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + START_DEADLINE_MS;
  while (true) {
    try {
      const response = await fetch(`${url}/health`);
      await response.body?.cancel();
      if (response.ok) return { url, output: () => output, stop };
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`deno serve did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}
