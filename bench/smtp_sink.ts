/**
 * Postfix's `smtp-sink` (PIPELINING, no CHUNKING; accepts and discards every
 * message) on a free loopback port, the benchmarks' fastest SMTP server.
 *
 * @module
 */

import { freePort } from "../test/support/subprocess.ts";

/** Where Debian's postfix package installs it. */
export const SMTP_SINK = "/usr/sbin/smtp-sink";

/** A running `smtp-sink`. */
export interface SmtpSink {
  /** Its port on 127.0.0.1. */
  port: number;
  /** Kills it and waits for the exit. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startSmtpSink}. */
export interface SmtpSinkOptions {
  /** Its listen backlog (the connections the kernel queues for it); default 256. */
  backlog?: number;
}

/** Whether {@linkcode SMTP_SINK} is installed (`apt-get install postfix`). */
export function hasSmtpSink(): Promise<boolean> {
  return Deno.stat(SMTP_SINK).then(() => true, () => false);
}

/** Starts `smtp-sink` and resolves once it accepts connections; throws if it never does. */
export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const port = freePort();
  const child = new Deno.Command(SMTP_SINK, {
    args: ["-u", "nobody", `127.0.0.1:${port}`, String(options.backlog ?? 256)],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill();
    } catch {
      // Already ended.
    }
    await child.status;
  };
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return { port, stop };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  await stop();
  throw new Error(`${SMTP_SINK} did not start listening on 127.0.0.1:${port}`);
}
