/**
 * Runs a Worker in real workerd for tests: bundles the entry with esbuild the
 * way wrangler does (bare imports from `node_modules`, `cloudflare:*` left to
 * the runtime), then serves it with miniflare on loopback.
 *
 * Certificates: workerd verifies TLS against the platform store plus the
 * certificates miniflare hands it. miniflare reads `NODE_EXTRA_CA_CERTS` once,
 * at import, for the whole process; instead, each worker started here gets
 * its own outbound network service trusting exactly `trustedCertificates`,
 * so tests can use fresh CAs and a CA that is deliberately not trusted.
 *
 * The compatibility date and flags come from `wrangler.toml`, so tests run
 * what `wrangler deploy` would deploy. workerd's own log is kept per worker
 * (`log()`); set `EDGEMAIL_WORKERD_LOG=1` to also print it.
 *
 * @module
 */

import type { Readable } from "node:stream";
import * as esbuild from "esbuild";
import { skipOutsideCi } from "./skip.ts";

const ROOT = new URL("../../", import.meta.url);

/** Options for {@linkcode startWorker}. */
export interface WorkerOptions {
  /** Environment bindings (`[vars]` and secrets), as strings. */
  bindings?: Record<string, string>;
  /** PEM CA certificates the Worker's outbound TLS trusts besides the public ones. */
  trustedCertificates?: string[];
  /**
   * Durable Object bindings: binding name → class the script exports (SQLite-backed, as
   * `new_sqlite_classes` in `wrangler.toml`). {@linkcode wranglerDurableObjects} reads them.
   */
  durableObjects?: Record<string, string>;
}

/** A Worker running in workerd. Dispose it to stop workerd. */
export interface TestWorker extends AsyncDisposable {
  /** The loopback URL the Worker listens on. */
  readonly url: URL;
  /** `fetch` against the Worker with a real HTTP request; `path` is relative to {@linkcode url}. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** What workerd wrote to stdout and stderr so far (failure reasons the Worker cannot see). */
  log(): string;
  /** Stops workerd. */
  close(): Promise<void>;
}

/**
 * esbuild options that bundle `entry` (a path from the repository root, or a
 * URL) into one ES module as wrangler does: bare imports from `node_modules`
 * with the workerd conditions, `cloudflare:*` left to the runtime, in memory.
 */
export function workerBuildOptions(entry: string | URL) {
  const entryPath = entry instanceof URL ? entry.pathname : new URL(entry, ROOT).pathname;
  return {
    entryPoints: [entryPath],
    absWorkingDir: ROOT.pathname,
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    external: ["cloudflare:*"],
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    logLevel: "silent",
  } satisfies esbuild.BuildOptions;
}

/** Bundles a Worker entry (TypeScript) into one ES module, as wrangler would. */
export async function bundleWorker(entry: string | URL): Promise<string> {
  try {
    const result = await esbuild.build(workerBuildOptions(entry));
    return result.outputFiles[0].text;
  } finally {
    // esbuild keeps a child process alive between builds; do not leak it into the test run.
    await esbuild.stop();
  }
}

/** The compatibility date and flags declared in `wrangler.toml`. */
export async function wranglerCompatibility(): Promise<{ date: string; flags: string[] }> {
  const toml = await Deno.readTextFile(new URL("wrangler.toml", ROOT));
  const date = toml.match(/^compatibility_date\s*=\s*"([^"]+)"/m)?.[1];
  const flagList = toml.match(/^compatibility_flags\s*=\s*\[([^\]]*)\]/m)?.[1] ?? "";
  if (date === undefined) throw new Error("wrangler.toml has no compatibility_date");
  const flags = [...flagList.matchAll(/"([^"]+)"/g)].map((match) => match[1]);
  return { date, flags };
}

/** The Durable Object bindings declared in `wrangler.toml` (binding name → class name). */
export async function wranglerDurableObjects(): Promise<Record<string, string>> {
  const toml = await Deno.readTextFile(new URL("wrangler.toml", ROOT));
  const bindings: Record<string, string> = {};
  for (const block of toml.split(/^\[\[durable_objects\.bindings\]\]\s*$/m).slice(1)) {
    const name = block.match(/^name\s*=\s*"([^"]+)"/m)?.[1];
    const className = block.match(/^class_name\s*=\s*"([^"]+)"/m)?.[1];
    if (name !== undefined && className !== undefined) bindings[name] = className;
  }
  return bindings;
}

/** Bundles `entry` and serves it in workerd on an ephemeral loopback port. */
export async function startWorker(
  entry: string | URL,
  options: WorkerOptions = {},
): Promise<TestWorker> {
  const script = await bundleWorker(entry);
  return await serveScript(script, options);
}

/** Serves an already bundled ES module Worker in workerd. */
export async function serveScript(
  script: string,
  options: WorkerOptions = {},
): Promise<TestWorker> {
  const { Miniflare } = await import("miniflare");
  const echo = Deno.env.get("EDGEMAIL_WORKERD_LOG") === "1";
  let log = "";
  const collect = (stream: Readable) => {
    stream.on("data", (chunk: Uint8Array | string) => {
      const text = typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
      log += text;
      if (echo) console.error(text.trimEnd());
    });
  };
  const compatibility = await wranglerCompatibility();
  const mf = new Miniflare({
    // One explicit module: miniflare does not go looking for the bundle's imports (the
    // optional `import("zod…")` calls hono-openapi keeps for other validators would fail it).
    modules: [{ type: "ESModule", path: new URL("worker.js", ROOT).pathname, contents: script }],
    compatibilityDate: compatibility.date,
    compatibilityFlags: compatibility.flags,
    bindings: options.bindings ?? {},
    durableObjects: Object.fromEntries(
      Object.entries(options.durableObjects ?? {}).map((
        [name, className],
      ) => [name, { className, useSQLite: true }]),
    ),
    // Without this, miniflare fetches request metadata from the internet.
    cf: false,
    // Keep workerd's log (e.g. why a certificate was refused) out of the test output.
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      collect(stdout);
      collect(stderr);
    },
    host: "127.0.0.1",
    port: 0,
    // Serve the Worker on its own socket, not behind miniflare's entry Worker: that proxy
    // does not pass a client's disconnect on, so `request.signal` would never fire.
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    outboundService: {
      network: {
        // As miniflare's default outbound service: the tests' peers are on loopback.
        allow: ["public", "private", "240.0.0.0/4"],
        deny: [],
        tlsOptions: { trustBrowserCas: true, trustedCertificates: options.trustedCertificates },
      },
    },
  });
  let url: URL;
  try {
    await mf.ready;
    url = await mf.unsafeGetDirectURL();
  } catch (error) {
    await mf.dispose().catch(() => {});
    throw error;
  }
  const close = () => mf.dispose();
  return {
    url,
    fetch: (path, init) => fetch(new URL(path, url), init),
    log: () => log,
    close,
    [Symbol.asyncDispose]: close,
  };
}

let skipReasonPromise: Promise<string | undefined> | undefined;

/**
 * Why workerd cannot run here, or `undefined` when it can. Starts one trivial
 * Worker (once per process) so a missing or unusable workerd binary skips the
 * Cloudflare suites with a clear message instead of failing them (in CI it
 * rejects instead: see `skip.ts`).
 */
export function workerdSkipReason(): Promise<string | undefined> {
  skipReasonPromise ??= probeWorkerd().then(skipOutsideCi);
  return skipReasonPromise;
}

async function probeWorkerd(): Promise<string | undefined> {
  try {
    await using worker = await serveScript(
      `export default { fetch() { return new Response("ok"); } }`,
    );
    const response = await worker.fetch("/");
    const body = await response.text();
    if (body !== "ok") return `workerd answered ${response.status} ${body}`;
    return undefined;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return `workerd (npm:miniflare) cannot start here: ${message}. ` +
      "Run the tests with `deno task test` (it installs test/deno.json's packages) and check " +
      "that test/node_modules/.deno/@cloudflare+workerd-*/ holds a workerd binary for this " +
      "platform.";
  }
}
