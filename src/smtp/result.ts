/**
 * The outcome of a send, shared by the library, the HTTP responses and the
 * SSE `completed` event (contract section 3, "Result"). The types live in
 * the leaf module `types.ts`; this module names them for readers of results.
 *
 * @module
 */

export type {
  DsnOutcome,
  RecipientRejection,
  ReplySummary,
  ResultError,
  SendResult,
  StatusEvent,
} from "./types.ts";
