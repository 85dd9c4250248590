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

import { type ServeProcess, startServe } from "./serve_process.ts";

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
 * stop, so no idempotency key or rate-limit count outlives the test. The
 * process is test/support/serve_process.ts's, which the load and shutdown tests
 * drive further (signals, exit status).
 */
export async function startFunction(env: Record<string, string>): Promise<FunctionServer> {
  const kvDir = env.KV_PATH === undefined ? await Deno.makeTempDir() : undefined;
  const removeKv = async () => {
    if (kvDir !== undefined) await Deno.remove(kvDir, { recursive: true }).catch(() => {});
  };
  let server: ServeProcess;
  try {
    server = await startServe(
      kvDir === undefined ? env : { ...env, KV_PATH: `${kvDir}/kv.sqlite3` },
    );
  } catch (error) {
    await removeKv();
    throw error;
  }
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      server.signal(signal);
    } catch {
      // Already ended.
    }
    await server.exited;
    await removeKv();
  };
  return { url: server.url, output: server.output, stop };
}
