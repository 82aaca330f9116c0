/**
 * The wire form of one queued message (a "record") and of the batches that
 * carry many records in one Spread message. Records are written straight into
 * a batch buffer and read back lazily: a replica only needs each record's
 * length and idempotency key; headers and body are decoded by the one consumer
 * the record is handed to.
 *
 * Record: u8 flags | u8 keyLength | key | u16 headersLength | headers (JSON) |
 *         [u8 replyToLength | replyTo | f64 correlation]  (requests only) | body
 */
/** Spread's limits (sp.h), restated: the app uses the public client API only. */
const MESSAGE_BYTES_MAX = 143_152;
const GROUP_NAME_BYTES = 32;

/** A body is bytes (Uint8Array) or any JSON value. */
export type Body = unknown;
export type Headers = Readonly<Record<string, string>>;

const FLAG_JSON = 1;
const FLAG_REQUEST = 2;

/** Room in one Spread message for a batch, leaving the group name and the batch's own prefix. */
export const BATCH_BYTES_MAX = MESSAGE_BYTES_MAX - GROUP_NAME_BYTES - 64;
/** Per-record framing: u32 length, flags, key and headers lengths, reply-to and correlation. */
const RECORD_OVERHEAD_MAX = 4 + 1 + 1 + 2 + 1 + GROUP_NAME_BYTES + 8;
const KEY_BYTES_MAX = 255;
const HEADERS_BYTES_MAX = 0xffff;

/** The largest record (headers + body) that fits one Spread message. */
export const RECORD_BYTES_MAX = BATCH_BYTES_MAX - 1 - RECORD_OVERHEAD_MAX;

export interface RecordFields {
  body: Body;
  headers?: Headers;
  idempotencyKey?: string;
  /** For requests (ask): where the reply goes, and its correlation id there. */
  replyTo?: string;
  correlation?: number;
}

/** Bad input from the caller: the message was not sent. */
export class MessageFormatError extends Error {
  override name = 'MessageFormatError';
}

/** Encodes a record, checking what a caller can get wrong. */
export function encodeRecord(fields: RecordFields): Buffer {
  const isBytes = fields.body instanceof Uint8Array;
  let body: Uint8Array;
  if (isBytes) body = fields.body as Uint8Array;
  else {
    let text: string | undefined;
    try {
      text = JSON.stringify(fields.body);
    } catch (error) {
      throw new MessageFormatError(`the body is not JSON-serializable: ${(error as Error).message}`);
    }
    if (text === undefined) throw new MessageFormatError(`a ${typeof fields.body} body is not JSON-serializable; send bytes or a JSON value`);
    body = Buffer.from(text, 'utf8');
  }
  const key = fields.idempotencyKey === undefined ? EMPTY : Buffer.from(fields.idempotencyKey, 'utf8');
  if (fields.idempotencyKey !== undefined && (key.length === 0 || key.length > KEY_BYTES_MAX)) {
    throw new MessageFormatError(`an idempotency key must have 1..${KEY_BYTES_MAX} bytes, not ${key.length}`);
  }
  const headers = encodeHeaders(fields.headers);
  const replyTo = fields.replyTo === undefined ? null : Buffer.from(fields.replyTo, 'latin1');
  const size = 1 + 1 + key.length + 2 + headers.length + (replyTo === null ? 0 : 1 + replyTo.length + 8) + body.length;
  if (size > RECORD_BYTES_MAX) {
    throw new MessageFormatError(`a message of ${size} bytes (body and headers) exceeds the limit of ${RECORD_BYTES_MAX} bytes`);
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  out[at++] = (isBytes ? 0 : FLAG_JSON) | (replyTo === null ? 0 : FLAG_REQUEST);
  out[at++] = key.length;
  at += key.copy(out, at);
  out.writeUInt16LE(headers.length, at);
  at += 2;
  at += headers.copy(out, at);
  if (replyTo !== null) {
    out[at++] = replyTo.length;
    at += replyTo.copy(out, at);
    out.writeDoubleLE(fields.correlation ?? 0, at);
    at += 8;
  }
  out.set(body, at);
  return out;
}

const EMPTY = Buffer.alloc(0);

function encodeHeaders(headers: Headers | undefined): Buffer {
  if (headers === undefined) return EMPTY;
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) throw new MessageFormatError('headers must be an object of strings');
  const keys = Object.keys(headers);
  if (keys.length === 0) return EMPTY;
  for (const name of keys) {
    if (typeof headers[name] !== 'string') throw new MessageFormatError(`header ${JSON.stringify(name)} is not a string`);
  }
  const bytes = Buffer.from(JSON.stringify(headers), 'utf8');
  if (bytes.length > HEADERS_BYTES_MAX) throw new MessageFormatError(`headers of ${bytes.length} bytes exceed ${HEADERS_BYTES_MAX} bytes`);
  return bytes;
}

/** A record's fields as read back; throws MessageFormatError when the bytes are not a record. */
export interface DecodedRecord {
  body: Body;
  headers: Headers;
  idempotencyKey: string | undefined;
  replyTo: string | undefined;
  correlation: number | undefined;
}

function truncated(): MessageFormatError {
  return new MessageFormatError('truncated message record');
}

export function decodeRecord(record: Uint8Array): DecodedRecord {
  const view = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  if (view.length < 4) throw truncated();
  const flags = view[0]!;
  const keyLength = view[1]!;
  let at = 2 + keyLength;
  if (at + 2 > view.length) throw truncated();
  const idempotencyKey = keyLength === 0 ? undefined : view.toString('utf8', 2, at);
  const headersLength = view.readUInt16LE(at);
  at += 2;
  if (at + headersLength > view.length) throw truncated();
  const headers = headersLength === 0 ? {} : parseHeaders(view.toString('utf8', at, at + headersLength));
  at += headersLength;
  let replyTo: string | undefined;
  let correlation: number | undefined;
  if ((flags & FLAG_REQUEST) !== 0) {
    const length = view[at++] ?? 0;
    if (at + length + 8 > view.length) throw truncated();
    replyTo = view.toString('latin1', at, at + length);
    at += length;
    correlation = view.readDoubleLE(at);
    at += 8;
  }
  const bodyBytes = view.subarray(at);
  let body: Body = bodyBytes;
  if ((flags & FLAG_JSON) !== 0) {
    try {
      body = JSON.parse(bodyBytes.toString('utf8'));
    } catch {
      throw new MessageFormatError('a JSON body that does not parse');
    }
  }
  return { body, headers, idempotencyKey, replyTo, correlation };
}

function parseHeaders(text: string): Headers {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Headers;
  } catch {
    // Reported below.
  }
  throw new MessageFormatError('headers that do not parse');
}

/** The idempotency key of the record at `offset`, read without decoding the rest (latin1: only compared). */
export function recordKey(bytes: Uint8Array, offset = 0): string | null {
  const keyLength = bytes[offset + 1] ?? 0;
  if (keyLength === 0 || bytes.length < offset + 2 + keyLength) return null;
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset + 2, keyLength).toString('latin1');
}

/**
 * Walks the records of a batch (after its one-byte operation code) and calls
 * `each` with each record's offset and length; stops at the first record that
 * does not fit (a malformed batch loses only its tail).
 */
export function forEachRecord(batch: Uint8Array, start: number, each: (offset: number, length: number) => void): boolean {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let at = start;
  while (at + 4 <= batch.length) {
    const length = view.getUint32(at, true);
    at += 4;
    if (length < 4 || at + length > batch.length) return false;
    each(at, length);
    at += length;
  }
  return at === batch.length;
}
