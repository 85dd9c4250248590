/**
 * The HTTP function for `deno task bench`, in its own process: `createApp`
 * from the environment, as functions/deno.ts builds it (an in-memory store
 * instead of Deno KV, so no file is written), served by `Deno.serve` on a
 * free loopback port, which it prints as one JSON line `{ "port": n }`.
 *
 *   deno run -A --unstable-no-legacy-abort --v8-flags=--expose-gc bench/http_server.ts
 *
 * Two extra routes let the benchmark measure this process around one request:
 * `POST /__bench/baseline` collects garbage, restarts the peak-RSS mark and
 * the CPU clock; `POST /__bench/peak` answers `{ peakExtraBytes, cpuMs }`
 * since then.
 *
 * @module
 */

import { createApp } from "../src/http/app.ts";
import { loadConfig } from "../src/http/config.ts";
import { cpuMs, memoryBaseline, peakExtraBytes } from "./peer_common.mjs";

const app = createApp(loadConfig(Deno.env.toObject(), { store: true }));
let baseline = 0;
let cpuAtBaseline = 0;

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(JSON.stringify({ port })),
}, (request, info) => {
  const path = new URL(request.url).pathname;
  if (path === "/__bench/baseline") {
    baseline = memoryBaseline();
    cpuAtBaseline = cpuMs();
    return Response.json({ baseline });
  }
  if (path === "/__bench/peak") {
    return Response.json({
      peakExtraBytes: peakExtraBytes(baseline),
      cpuMs: cpuMs() - cpuAtBaseline,
    });
  }
  return app.fetch(request, info);
});
