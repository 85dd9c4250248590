/**
 * EHLO capabilities (RFC 5321 4.1.1.1): keywords matched as whole words,
 * case-insensitively, with their parameters.
 *
 * @module
 */

import type { SmtpReply } from "./reply.ts";

/** The extensions a server advertised in its EHLO reply. */
export class Capabilities {
  #keywords = new Map<string, string[]>();

  /** Parses the lines after the first of an EHLO reply. A HELO session has none. */
  static fromEhloReply(reply: SmtpReply): Capabilities {
    const capabilities = new Capabilities();
    for (const line of reply.lines.slice(1)) {
      const [keyword, ...params] = line.trim().split(/\s+/);
      if (!keyword) continue;
      // "AUTH=PLAIN LOGIN" is the pre-standard spelling some servers still send.
      const [name, legacyParam] = keyword.toUpperCase().startsWith("AUTH=")
        ? ["AUTH", keyword.slice(5)]
        : [keyword.toUpperCase(), undefined];
      const existing = capabilities.#keywords.get(name) ?? [];
      const added = legacyParam === undefined ? params : [legacyParam, ...params];
      capabilities.#keywords.set(name, [...existing, ...added]);
    }
    return capabilities;
  }

  /** Whether the server offers `keyword` (whole keyword, any case). */
  has(keyword: string): boolean {
    return this.#keywords.has(keyword.toUpperCase());
  }

  /** The parameters of `keyword`, empty when absent. */
  params(keyword: string): string[] {
    return this.#keywords.get(keyword.toUpperCase()) ?? [];
  }

  /** The SIZE limit in octets; `undefined` when not offered or unlimited (`SIZE 0`). */
  get sizeLimit(): number | undefined {
    if (!this.has("SIZE")) return undefined;
    const limit = Number(this.params("SIZE")[0]);
    return Number.isSafeInteger(limit) && limit > 0 ? limit : undefined;
  }

  /** The SASL mechanisms offered, upper-case. */
  get authMechanisms(): string[] {
    return [...new Set(this.params("AUTH").map((m) => m.toUpperCase()))];
  }

  /** The advertised keywords, upper-case (for diagnostics). */
  get keywords(): string[] {
    return [...this.#keywords.keys()];
  }
}
