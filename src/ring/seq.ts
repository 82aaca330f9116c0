/**
 * Wrap-safe comparisons of 32-bit unsigned sequence numbers (RFC 1982 style,
 * Corosync's `sq_lt_compare`). Two live sequence numbers are never more than
 * 2^31 apart (the receive buffer is far smaller), so the sign of the 32-bit
 * difference orders them. Never compare sequence numbers with `<` directly.
 */

/** a + n, wrapped to 32 bits unsigned. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** Signed distance b - a, valid while |b - a| < 2^31. */
export function seqDiff(b: number, a: number): number {
  return (b - a) | 0;
}

export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLte(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

export function seqMin(a: number, b: number): number {
  return seqLt(a, b) ? a : b;
}

export function seqMax(a: number, b: number): number {
  return seqLt(a, b) ? b : a;
}
