/**
 * The messages of a replicated service, as JSON. Requests, state updates, style
 * switches and hand-over notices travel as operations of the service's group
 * (AGREED, so every replica sees them in one order); replies go to the caller's
 * private group. Kept apart from the I/O so the wire form is tested alone.
 */
export type Style = 'active' | 'passive';
export const STYLES: readonly Style[] = ['active', 'passive'];

/** Largest request or reply body (JSON bytes), well under Spread's 143 152-byte message. */
export const PAYLOAD_BYTES_MAX = 100_000;
/** Largest warm-passive state update: the service state travels whole in each one. */
export const UPDATE_BYTES_MAX = 140_000;

export type ErrorCode =
  | 'unknown-method'
  | 'handler-error'
  | 'payload-too-large'
  | 'reply-too-large'
  | 'state-too-large'
  | 'bad-request'
  | 'not-primary'
  | 'timeout';

export type Outcome = { ok: true; result: unknown } | { ok: false; error: { code: ErrorCode; message: string } };

/**
 * A call: client `c`'s call number `n`, the same over its retries; `to` is where
 * to reply now; `d`: the client has every reply to its calls numbered under it.
 */
export interface Request {
  k: 'q';
  c: string;
  n: number;
  d: number;
  to: string;
  m: string;
  a: unknown;
}

/** Warm passive: the primary's state after executing call `n` of client `c`, and the reply it gave. */
export interface StateUpdate {
  k: 'u';
  c: string;
  n: number;
  to: string;
  s: unknown;
  r: Outcome;
}

export type Operation =
  | Request
  | StateUpdate
  /** Switch the replication style at this point of the total order. */
  | { k: 'w'; style: Style }
  /** `member` is leaving (proactive recovery): from here on it is never the primary. */
  | { k: 'x'; member: string }
  /** `member` holds the group's state (a replacement announces itself with this). */
  | { k: 'y'; member: string };

/** A reply to call `n`, to the caller's private group; `replicas` is how many the sender saw, `style` says who answers. */
export interface Reply {
  n: number;
  from: string;
  replicas: number;
  style: Style;
  r: Outcome;
}

export function encode(value: Operation | Reply): Buffer {
  return Buffer.from(JSON.stringify(value));
}

const isText = (value: unknown): value is string => typeof value === 'string';
const isNumber = (value: unknown): value is number => Number.isSafeInteger(value);

/** The key of a call among pending requests and updates. */
export const callKey = (call: { c: string; n: number }): string => `${call.c}/${call.n}`;

/** An operation from the group, or null when it is not one (a stray or hostile sender). */
export function decodeOperation(bytes: Uint8Array): Operation | null {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const op = value as Record<string, unknown>;
  switch (op.k) {
    case 'q':
      return isText(op.c) && isNumber(op.n) && isNumber(op.d) && isText(op.to) && isText(op.m) ? (op as unknown as Request) : null;
    case 'u':
      return isText(op.c) && isNumber(op.n) && isText(op.to) && typeof op.r === 'object' && op.r !== null ? (op as unknown as StateUpdate) : null;
    case 'w':
      return STYLES.includes(op.style as Style) ? (op as unknown as Operation) : null;
    case 'x':
    case 'y':
      return isText(op.member) ? (op as unknown as Operation) : null;
    default:
      return null;
  }
}

export function decodeReply(bytes: Uint8Array): Reply | null {
  try {
    const value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as Reply;
    return isNumber(value.n) && typeof value.r === 'object' && value.r !== null ? value : null;
  } catch {
    return null;
  }
}

export const failure = (code: ErrorCode, message: string): Outcome => ({ ok: false, error: { code, message } });

/** The error a caller sees for a failed call; `code` says which kind. */
export class ServiceError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'ServiceError';
    this.code = code;
  }
}
