/**
 * Header folding (RFC 5322 section 2.2.3): a field's tokens laid out on lines
 * of at most 78 characters, folded only where unfolding restores the value.
 *
 * @module
 */

import { PREFERRED_LINE_LENGTH } from "./header_text.ts";

/**
 * Builds a header field `Name: token token …` followed by CRLF, folding
 * (CRLF + space) in place of a separating space wherever a line would
 * otherwise pass 78 characters. Empty tokens stand for extra spaces and are
 * never folded before, so unfolding restores the exact value. A token longer
 * than a line stays whole; callers bound token lengths to keep lines ≤ 998.
 */
export function foldHeader(name: string, tokens: readonly string[]): string {
  const lines: string[] = [];
  let line = `${name}:`;
  let lineHasToken = false;
  for (const token of tokens) {
    const fits = line.length + 1 + token.length <= PREFERRED_LINE_LENGTH;
    const worthFolding = lineHasToken || 1 + token.length <= PREFERRED_LINE_LENGTH;
    if (!fits && token.length > 0 && worthFolding && line.trim() !== "") {
      lines.push(line);
      line = ` ${token}`;
    } else {
      line += ` ${token}`;
    }
    lineHasToken = true;
  }
  lines.push(line);
  return lines.join("\r\n") + "\r\n";
}

/**
 * Appends `separator` to each token that ends a group (every group but the
 * last), flattening the groups: used to put `,` between mailboxes and `;`
 * between parameters.
 */
export function joinGroups(groups: readonly string[][], separator: string): string[] {
  const tokens: string[] = [];
  groups.forEach((group, index) => {
    const copy = [...group];
    if (index < groups.length - 1) copy[copy.length - 1] += separator;
    tokens.push(...copy);
  });
  return tokens;
}
