/**
 * The edgemail side of `deno task bench`, one measurement per process:
 *   deno run -A --v8-flags=--expose-gc bench/run_one.ts '<spec>'
 * The library's `SmtpClient` with a pool of `spec.connections` connections
 * (default 1). Prints one JSON line; see peer_common.mjs for the spec and the
 * scenarios, which the nodemailer peer runs the same way.
 *
 * @module
 */

import { SmtpClient } from "../src/mod.ts";
import { runScenario } from "./peer_common.mjs";

const spec = JSON.parse(Deno.args.at(-1)!);

const client = new SmtpClient({
  host: spec.host,
  port: spec.port,
  tls: spec.tls === "starttls" ? "starttls" : "none",
  caCerts: spec.caCert ? [spec.caCert] : undefined,
  auth: spec.auth,
  pool: { maxConnections: spec.connections ?? 1, maxMessagesPerConnection: 100_000 },
});

const peer = {
  send: async (message: Record<string, unknown>) => void await client.send(message as never),
  close: () => client.close(),
};

console.log(JSON.stringify(await runScenario(peer, spec)));
