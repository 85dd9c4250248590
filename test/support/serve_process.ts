/**
 * `deno serve functions/deno.ts` (or any entry) as a subprocess on a free
 * loopback port, as `deno task start` runs it, with what the load and
 * shutdown tests need beyond test/support/function_server.ts: the process id
 * (for its peak RSS), signals, and the exit status.
 *
 * @module
 */

import { freePort, spawnDeno } from "./subprocess.ts";

const FUNCTION_ENTRY = new URL("../../functions/deno.ts", import.meta.url).pathname;
// Long enough for a first compile on a slow machine; only a guard against hanging.
const START_DEADLINE_MS = 120_000;

/** A running server process. */
export interface ServeProcess {
  /** Its base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** Its process id. */
  pid: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /**
   * Resolves once its output matches `pattern` (e.g. a log line saying a
   * signal was handled); rejects, with the output, if it ends first.
   */
  untilOutput(pattern: RegExp): Promise<void>;
  /** Sends `signal` (the process keeps running until it decides to end). */
  signal(signal: Deno.Signal): void;
  /** Resolves with the exit status once it has ended and its output is read. */
  exited: Promise<Deno.CommandStatus>;
  /** Sends SIGTERM (unless it has ended) and waits for the exit. */
  stop(): Promise<Deno.CommandStatus>;
}

/** Options of {@linkcode startServe}. */
export interface StartServeOptions {
  /**
   * `deno` arguments instead of `serve … functions/deno.ts`. `{port}` in them
   * and in the values of `env` is replaced by the free port chosen.
   */
  args?: string[];
}

/**
 * The permission flags of `deno task start` (deno.json), the command the README
 * gives: the function is tested with what it is deployed with, not --allow-all.
 */
const START_PERMISSIONS: string[] = await (async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const flags = (config.tasks.start as string).split(/\s+/).filter((arg) =>
    arg.startsWith("--allow-")
  );
  if (flags.length === 0) throw new Error("deno.json's start task grants no permissions");
  return flags;
})();

/**
 * Starts the server with exactly `env` (plus what Deno needs) and waits until
 * `GET /health` answers; throws with its output if it never does.
 */
export async function startServe(
  env: Record<string, string>,
  options: StartServeOptions = {},
): Promise<ServeProcess> {
  const port = freePort();
  const args = options.args?.map((arg) => arg.replace("{port}", String(port))) ?? [
    "serve",
    ...START_PERMISSIONS,
    "--unstable-no-legacy-abort",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    FUNCTION_ENTRY,
  ];
  const withPort = Object.fromEntries(
    Object.entries(env).map(([name, value]) => [name, value.replace("{port}", String(port))]),
  );
  const child = spawnDeno(args, withPort);
  let output = "";
  const waiters = new Set<{ pattern: RegExp; resolve: () => void }>();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      output += text;
      for (const waiter of waiters) {
        if (waiter.pattern.test(output)) {
          waiters.delete(waiter);
          waiter.resolve();
        }
      }
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const exited = child.status.then(async (status) => {
    await drained;
    return status;
  });
  let ended = false;
  exited.then(() => ended = true);
  const untilOutput = (pattern: RegExp) => {
    if (pattern.test(output)) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    waiters.add({ pattern, resolve });
    const failed = exited.then(() => {
      if (pattern.test(output)) return;
      throw new Error(`the server ended before printing ${pattern}:\n${output}`);
    });
    return Promise.race([promise, failed]);
  };
  const signal = (name: Deno.Signal) => {
    if (!ended) child.kill(name);
  };
  const stop = () => {
    signal("SIGTERM");
    return exited;
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_DEADLINE_MS;
  while (true) {
    try {
      const response = await fetch(`${url}/health`);
      await response.body?.cancel();
      if (response.ok) {
        return { url, pid: child.pid, output: () => output, untilOutput, signal, exited, stop };
      }
    } catch {
      // Not listening yet.
    }
    if (ended || Date.now() > deadline) {
      if (!ended) child.kill("SIGKILL");
      await exited;
      throw new Error(`the server did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
