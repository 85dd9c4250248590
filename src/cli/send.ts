/**
 * `deno task send` (contract section 4c): sends one message over SMTP with
 * the configuration of contract section 2, or with `--endpoint` through a
 * running edgemail function (via the browser client). `--stream` prints each
 * protocol step as it happens, `--json` the Result. Exit status 0 sent, 1
 * failed or cancelled (Ctrl-C cancels), 2 bad arguments or configuration.
 *
 * @example
 * ```sh
 * SMTP_URL=smtp://user:pass@smtp.example.com MAIL_FROM=ann@example.com \
 *   deno task send --to bob@example.org --subject Hi --text "Hello" --stream
 * deno task send --endpoint http://127.0.0.1:8000 --to bob@example.org --subject Hi --text Hi
 * ```
 *
 * @module
 */

import { EdgemailError, sendEmail } from "../client/mod.ts";
import type { EmailResult, EmailStatusEvent } from "../client/types.ts";
import { ConfigError, loadConfig } from "../http/config.ts";
import {
  type AttachmentInput,
  type MessageInput,
  MessageValidationError,
  sendSettled,
  SmtpClient,
  type ValidationIssue,
} from "../mod.ts";
import { parseSendArgs, type SendArgs, USAGE, UsageError } from "./args.ts";

/**
 * The variables the SMTP path reads (contract section 2); the task's
 * `--allow-env` lists exactly these.
 *
 * @example
 * ```ts
 * const env = Object.fromEntries(SMTP_VARIABLES.map((name) => [name, Deno.env.get(name)]));
 * ```
 */
export const SMTP_VARIABLES = [
  "SMTP_URL",
  "SMTP_HOST",
  "SMTP_PORT",
  "SMTP_USER",
  "SMTP_PASS",
  "SMTP_TLS",
  "SMTP_INSECURE_AUTH",
  "SMTP_CA_CERT",
  "SMTP_AUTH",
  "SMTP_NAME",
  "SMTP_TIMEOUT_MS",
  "MAIL_FROM",
] as const;

/** The flag behind each message field, for validation issues. */
const FLAG_OF_FIELD: Record<string, string> = {
  from: "--from",
  to: "--to",
  cc: "--cc",
  bcc: "--bcc",
  subject: "--subject",
  text: "--text",
  html: "--html-file",
  attachments: "--attach",
  headers: "--header",
};

/** Where output goes; the tests and `main` use the process's streams. */
interface Output {
  out(line: string): void;
  err(line: string): void;
}

/**
 * Runs `deno task send` with `argv` and returns the exit status.
 *
 * @example
 * ```ts
 * Deno.exitCode = await main(["--to", "bob@example.org", "--subject", "Hi", "--text", "Hi"]);
 * ```
 */
export async function main(argv: readonly string[]): Promise<number> {
  const output: Output = { out: (line) => console.log(line), err: (line) => console.error(line) };
  const controller = new AbortController();
  let interrupts = 0;
  const onInterrupt = () => {
    // The first Ctrl-C cancels the send (its outcome is still reported); a second one quits.
    if (interrupts++ > 0) Deno.exit(130);
    output.err("Cancelling… (Ctrl-C again to quit at once)");
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    return await run(argv, controller.signal, output);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.err(`edgemail send: ${error.message}`);
    return 2;
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

async function run(argv: readonly string[], signal: AbortSignal, output: Output): Promise<number> {
  const args = parseSendArgs(argv);
  if (args.help) {
    output.out(USAGE);
    return 0;
  }
  const message = await buildMessage(args);
  const started = performance.now();
  const progress = args.json ? output.err : output.out;
  const onStatus = args.stream
    ? (event: EmailStatusEvent) => progress(formatStep(event, performance.now() - started))
    : undefined;
  const result = args.endpoint === undefined
    ? await sendOverSmtp(message, args, signal, onStatus)
    : await sendThroughEndpoint(message, args, signal, onStatus);
  if (result === undefined) return 1;
  if (args.json) output.out(JSON.stringify(result, null, 2));
  if (result.status === "sent") {
    if (!args.json) output.out(formatSent(result));
    return 0;
  }
  output.err(formatFailure(result));
  return 1;
}

/** The message of the command line: bodies and attachments read from their files. */
async function buildMessage(args: SendArgs): Promise<MessageInput> {
  const message: MessageInput = { to: args.to, subject: args.subject };
  if (args.from !== undefined) message.from = args.from;
  if (args.cc.length > 0) message.cc = args.cc;
  if (args.bcc.length > 0) message.bcc = args.bcc;
  if (args.text !== undefined) message.text = args.text;
  if (args.textFile !== undefined) message.text = await readText("--text-file", args.textFile);
  if (args.htmlFile !== undefined) message.html = await readText("--html-file", args.htmlFile);
  if (args.attach.length > 0) message.attachments = await Promise.all(args.attach.map(attachment));
  if (args.header.length > 0) message.headers = parseHeaders(args.header);
  return message;
}

async function readText(flag: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(error as Error).message}`);
  }
}

async function attachment(path: string): Promise<AttachmentInput> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new UsageError(`--attach: cannot read ${path}: ${(error as Error).message}`);
  }
  // No contentType: the message schema takes it from the file name's extension.
  return { filename: path.split(/[\\/]/).pop()!, content: bytes.toBase64() };
}

/** `--header "Name: value"` flags as a record; values are never echoed (they may be secrets). */
function parseHeaders(lines: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  lines.forEach((line, index) => {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim();
    if (colon < 1 || name === "") {
      throw new UsageError(`--header number ${index + 1} must look like "X-Name: value".`);
    }
    if (Object.hasOwn(headers, name)) {
      throw new UsageError(`--header ${name} is given twice; give each header once.`);
    }
    headers[name] = line.slice(colon + 1).trim();
  });
  return headers;
}

/** Sends over SMTP with the configuration of the environment (contract section 2). */
async function sendOverSmtp(
  message: MessageInput,
  args: SendArgs,
  signal: AbortSignal,
  onStatus: ((event: EmailStatusEvent) => void) | undefined,
): Promise<EmailResult> {
  const env: Record<string, string | undefined> = {};
  for (const name of SMTP_VARIABLES) env[name] = Deno.env.get(name);
  let config;
  try {
    // Development mode: the open-relay rules guard a public endpoint, not a local command.
    config = loadConfig(env, { development: true });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new UsageError(error.message);
  }
  const from = args.from ?? config.mailFrom;
  if (from === undefined) throw new UsageError("No sender: give --from or set MAIL_FROM.");
  const client = new SmtpClient(config.smtp);
  try {
    return await sendSettled(client, { ...message, from }, {
      signal,
      onStatus: onStatus && ((event) => onStatus({ ...event, token: null })),
    });
  } catch (error) {
    if (error instanceof MessageValidationError) throw usageOfIssues(error.issues);
    throw error;
  } finally {
    await client.close();
  }
}

/** Sends through a running edgemail function; `undefined` when there is no Result to show. */
async function sendThroughEndpoint(
  message: MessageInput,
  args: SendArgs,
  signal: AbortSignal,
  onStatus: ((event: EmailStatusEvent) => void) | undefined,
): Promise<EmailResult | undefined> {
  try {
    return await sendEmail(args.endpoint!, message, { apiKey: args.apiKey, signal, onStatus });
  } catch (error) {
    if (error instanceof EdgemailError) {
      if (error.type === "validation" && error.issues) throw usageOfIssues(error.issues);
      if (error.result?.error) return error.result;
      console.error(`${error.type}: ${error.message}`);
      return undefined;
    }
    if (signal.aborted) {
      console.error("cancelled: the request to the function was cancelled.");
      return undefined;
    }
    throw error;
  }
}

/** Validation issues as a usage error naming the flags. */
function usageOfIssues(issues: ValidationIssue[]): UsageError {
  return new UsageError(
    "The message is not valid:\n" + issues.map(({ path, message }) => {
      const flag = FLAG_OF_FIELD[path.match(/^[A-Za-z]+/)?.[0] ?? ""];
      return flag === undefined ? `  ${message}` : `  ${flag} (${path}): ${message}`;
    }).join("\n"),
  );
}

/**
 * One `--stream` line: time since start, phase, state, reply code, recipient, reply text.
 *
 * @example
 * ```ts
 * formatStep({ phase: "rcpt", state: "done", token: null, recipient: "bob@example.org",
 *   reply: { code: 250, enhancedCode: "2.1.5", message: "Ok" } }, 12);
 * // "    12 ms  rcpt      done     250 2.1.5  bob@example.org  Ok"
 * // "    13 ms  rcpt      started             bob@example.org"
 * ```
 */
export function formatStep(event: EmailStatusEvent, elapsedMs: number): string {
  const parts = [
    `${Math.round(elapsedMs).toString().padStart(6)} ms`,
    event.index === undefined ? undefined : `#${event.index}`,
    event.phase.padEnd(8),
    event.state.padEnd(7),
    // "250 2.1.5" is the widest: the columns after it stay aligned.
    (event.reply ? [event.reply.code, event.reply.enhancedCode].filter(Boolean).join(" ") : "")
      .padEnd(9),
    event.recipient,
    event.reply?.message ? clip(event.reply.message, 72) : undefined,
  ];
  return parts.filter((part) => part !== undefined).join("  ").trimEnd();
}

function formatSent(result: EmailResult): string {
  const lines = [`sent ${result.messageId} to ${result.accepted.join(", ")}`];
  for (const refusal of result.rejected) lines.push(`  refused ${formatRefusal(refusal)}`);
  if (result.response) lines.push(`  server: ${result.response}`);
  return lines.join("\n");
}

function formatFailure(result: EmailResult): string {
  const error = result.error;
  const where = error?.phase ? ` (${error.phase}${error.code ? ` ${error.code}` : ""})` : "";
  const lines = [`${result.status}: ${error?.type ?? "unknown"}${where}: ${error?.message ?? ""}`];
  for (const refusal of result.rejected) lines.push(`  refused ${formatRefusal(refusal)}`);
  return lines.join("\n");
}

function formatRefusal(refusal: EmailResult["rejected"][number]): string {
  const code = [refusal.code, refusal.enhancedCode].filter(Boolean).join(" ");
  return `${refusal.address}: ${code} ${refusal.message}`.trimEnd();
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
