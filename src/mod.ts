/**
 * edgemail: send email from edge functions over SMTP, TLS first.
 *
 * ```ts
 * import { SmtpClient } from "@edgemail/edgemail";
 *
 * await using client = new SmtpClient({
 *   host: "smtp.example.com",
 *   port: 465,
 *   auth: { username: "ann", password: "secret" },
 * });
 * const result = await client.send({
 *   from: "Ann <ann@example.com>",
 *   to: "bob@example.org",
 *   subject: "Hello",
 *   text: "Hi Bob",
 * });
 * console.log(result.messageId, result.accepted);
 * ```
 *
 * On Cloudflare Workers pass `connect: cloudflareConnect` from
 * `@edgemail/edgemail/cloudflare` (`src/socket/cloudflare.ts`).
 *
 * @module
 */

export {
  type CompletedDetail,
  type PoolOptions,
  resultOf,
  type SendOptions,
  sendSettled,
  type SmtpAuth,
  SmtpClient,
  type SmtpClientOptions,
  type TlsMode,
} from "./smtp/client.ts";
export {
  SMTP_ERROR_TYPES,
  SMTP_PHASES,
  SmtpError,
  type SmtpErrorOptions,
  type SmtpErrorType,
  type SmtpPhase,
} from "./smtp/errors.ts";
export { TLS_MODES } from "./smtp/types.ts";
// The Result types: DsnOutcome, RecipientRejection, ReplySummary, ResultError, SendResult, StatusEvent.
export type * from "./smtp/result.ts";
export {
  type Connect,
  type ConnectOptions,
  type SmtpSocket,
  type StartTlsOptions,
  TLS_HANDSHAKE_ERROR,
  tlsHandshakeError,
} from "./socket/socket.ts";
export { denoConnect } from "./socket/deno.ts";
export * from "./message/mod.ts";
export type { ValidatedMessage } from "./message/schema.ts";
