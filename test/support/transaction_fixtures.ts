/**
 * Building blocks for unit tests of the transaction modules: capabilities
 * from EHLO keywords, a small transaction, parsed replies, and a flight
 * whose settlements are recorded.
 *
 * @module
 */

import { Capabilities } from "../../src/smtp/capabilities.ts";
import type { SmtpReply } from "../../src/smtp/reply.ts";
import { Flight, type SendSettlement } from "../../src/smtp/transaction_flight.ts";
import { planTransaction, type Transaction } from "../../src/smtp/transaction_plan.ts";
import type { StepOptions } from "../../src/smtp/types.ts";

/** The capabilities of an EHLO reply listing `keywords`. */
export function capabilities(...keywords: string[]): Capabilities {
  const lines = ["mx.example", ...keywords];
  return Capabilities.fromEhloReply({
    code: 250,
    lines,
    message: lines.join(" "),
    raw: lines.map((line) => `250 ${line}`).join("\n"),
  });
}

/** A one-line message from ann@example.com to bob@example.org, changed by `overrides`. */
export function transaction(overrides: Partial<Transaction> = {}): Transaction {
  const content = new TextEncoder().encode("Subject: x\r\n\r\nhi\r\n");
  return {
    envelope: { from: "ann@example.com", to: ["bob@example.org"] },
    size: content.length,
    smtputf8: false,
    eightBit: false,
    chunks: () => [content],
    allowPartial: false,
    ...overrides,
  };
}

/** A one-line reply: `reply(550, "5.1.1 no such user")`. */
export function reply(code: number, text = "ok"): SmtpReply {
  const enhanced = /^([245]\.\d{1,3}\.\d{1,3}) /.exec(text);
  return {
    code,
    enhancedCode: enhanced?.[1],
    lines: [text],
    message: enhanced ? text.slice(enhanced[0].length) : text,
    raw: `${code} ${text}`,
  };
}

/** A flight of `tx` for a server with `caps`, and the settlements it received. */
export function flightOf(
  tx: Transaction = transaction(),
  options: { caps?: Capabilities; pipelining?: boolean; ordinal?: number; step?: StepOptions } = {},
): { flight: Flight; settlements: SendSettlement[] } {
  const settlements: SendSettlement[] = [];
  const pipelining = options.pipelining ?? true;
  const plan = planTransaction(tx, options.caps ?? capabilities("PIPELINING"), pipelining);
  const send = {
    transaction: tx,
    step: options.step ?? {},
    settle: (settlement: SendSettlement) => settlements.push(settlement),
  };
  return { flight: new Flight(send, plan, options.ordinal ?? 0), settlements };
}
