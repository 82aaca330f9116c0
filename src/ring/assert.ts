/** Invariant checks that stay on in production (TigerStyle): a failure is a bug in this code, not bad input. */
export class RingInvariantError extends Error {
  override readonly name = 'RingInvariantError';
}

export function assert(condition: boolean, what: string): asserts condition {
  if (!condition) throw new RingInvariantError(what);
}
