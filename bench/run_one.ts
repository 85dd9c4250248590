/**
 * One benchmark measurement in a fresh process (so heaps do not mix):
 *   deno run -A bench/run_one.ts <edgemail|nodemailer> <throughput|memory> <port> [count]
 * Prints one JSON line: { messages, seconds, peakRssDeltaMb }.
 *
 * @module
 */

import nodemailer from "nodemailer";
import { SmtpClient } from "../src/mod.ts";

const [peer, kind, portText, countText] = Deno.args;
const port = Number(portText);
const count = Number(countText ?? 200);
const ATTACHMENT_BYTES = 10 * 1024 * 1024;

interface Sender {
  send(message: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

function edgemailSender(): Sender {
  const client = new SmtpClient({
    host: "127.0.0.1",
    port,
    tls: "none",
    pool: { maxConnections: 1, maxMessagesPerConnection: 100_000 },
  });
  return {
    send: async (message) => void await client.send(message as never),
    close: () => client.close(),
  };
}

function nodemailerSender(): Sender {
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: 1,
    maxMessages: 100_000,
  });
  return {
    send: async (message) => {
      const { attachments, ...rest } = message as {
        attachments?: { filename: string; content: string }[];
      };
      await transport.sendMail({
        ...rest,
        attachments: attachments?.map((a) => ({ ...a, encoding: "base64" })),
      });
    },
    close: () => Promise.resolve(transport.close()),
  };
}

const sender = peer === "nodemailer" ? nodemailerSender() : edgemailSender();
const base = {
  from: "bench@example.com",
  to: "sink@example.org",
  subject: "Benchmark",
  text: "A short benchmark message.\n".repeat(20),
};

if (kind === "throughput") {
  await sender.send(base); // warm the connection
  const started = performance.now();
  for (let i = 0; i < count; i++) await sender.send({ ...base, subject: `Benchmark ${i}` });
  const seconds = (performance.now() - started) / 1000;
  await sender.close();
  console.log(JSON.stringify({ messages: count, seconds }));
} else {
  // The HTTP layer receives the attachment as base64 inside JSON: start from that string.
  const bytes = new Uint8Array(ATTACHMENT_BYTES);
  for (let i = 0; i < bytes.length; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, i + 65536));
  }
  let binary = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  const content = btoa(binary);
  binary = "";
  await sender.send(base);
  (globalThis as { gc?: () => void }).gc?.();
  const baseline = Deno.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, Deno.memoryUsage().rss);
  }, 5);
  await sender.send({ ...base, attachments: [{ filename: "big.bin", content }] });
  clearInterval(sampler);
  peak = Math.max(peak, Deno.memoryUsage().rss);
  await sender.close();
  console.log(JSON.stringify({ messages: 1, peakRssDeltaMb: (peak - baseline) / 1048576 }));
}
