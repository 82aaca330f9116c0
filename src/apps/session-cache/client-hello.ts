/**
 * Reads the ticket a client offers from its TLS ClientHello, enough to tell
 * which ticket key sealed it: TLS 1.3's pre_shared_key identity or TLS 1.2's
 * session_ticket extension. Node (through OpenSSL) starts every ticket with the
 * 16-byte name of its key. Anything that does not parse yields null: the
 * connection then goes the ordinary way.
 */
const HANDSHAKE_RECORD = 22;
const CLIENT_HELLO = 1;
const SESSION_TICKET_EXTENSION = 35;
const PRE_SHARED_KEY_EXTENSION = 41;
export const KEY_NAME_BYTES = 16;
/** Bytes of a first record: its header and a ClientHello of at most 16 KiB. */
export const RECORD_HEADER_BYTES = 5;

/** Bytes needed for the first record, or null when `head` is not a TLS handshake record. */
export function firstRecordLength(head: Buffer): number | null {
  if (head.length < 1 || head[0] !== HANDSHAKE_RECORD) return null;
  if (head.length < RECORD_HEADER_BYTES) return RECORD_HEADER_BYTES;
  return RECORD_HEADER_BYTES + head.readUInt16BE(3);
}

/** The key name at the start of the offered ticket, or null. */
export function offeredTicketKeyName(record: Buffer): Buffer | null {
  try {
    let offset = RECORD_HEADER_BYTES;
    if (record[0] !== HANDSHAKE_RECORD || record[offset] !== CLIENT_HELLO) return null;
    offset += 4 + 2 + 32; // handshake header, legacy version, random
    offset += 1 + record[offset]!; // session id
    offset += 2 + record.readUInt16BE(offset); // cipher suites
    offset += 1 + record[offset]!; // compression methods
    const extensionsEnd = offset + 2 + record.readUInt16BE(offset);
    offset += 2;
    while (offset + 4 <= extensionsEnd && offset + 4 <= record.length) {
      const type = record.readUInt16BE(offset);
      const length = record.readUInt16BE(offset + 2);
      const body = record.subarray(offset + 4, offset + 4 + length);
      if (type === SESSION_TICKET_EXTENSION && body.length >= KEY_NAME_BYTES) return body.subarray(0, KEY_NAME_BYTES);
      if (type === PRE_SHARED_KEY_EXTENSION && body.length >= 4) {
        // identities<7..2^16-1>: the first identity's opaque bytes.
        const identityLength = body.readUInt16BE(2);
        if (identityLength >= KEY_NAME_BYTES) return body.subarray(4, 4 + KEY_NAME_BYTES);
      }
      offset += 4 + length;
    }
    return null;
  } catch {
    return null;
  }
}
