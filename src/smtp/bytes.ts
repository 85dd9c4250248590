/**
 * Byte helpers shared by the reply reader and the session.
 *
 * @module
 */

/** Joins byte arrays; returns the only non-empty part itself, without copying. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const nonEmpty = parts.filter((part) => part.length > 0);
  if (nonEmpty.length === 1) return nonEmpty[0];
  const out = new Uint8Array(nonEmpty.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of nonEmpty) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
