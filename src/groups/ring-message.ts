/**
 * What daemons put in the total order (the payloads given to `Ring.submit`). This is
 * tspread's own daemon-to-daemon encoding, not Spread's; only tspread daemons read it.
 *
 * Two shapes, told apart by the first byte:
 *   - A client data message: the client's whole frame (§3.1), normalized to little-endian
 *     (type with the marker, num_groups and data_len LE; hint untouched). Its first byte
 *     always has bit 7 set (the low byte of `type` carries the marker's 0x80), so a
 *     receiving daemon delivers these bytes to its clients as they are: no re-encoding.
 *   - A daemon control message: one kind byte below 0x80, then length-prefixed latin1
 *     strings (u8 length + bytes).
 *        JOIN  (1): member private group, group name
 *        LEAVE (2): member private group, group name
 *        KILL  (3): member private group
 *        GROUPS (4): one chunk of a synced set's group state (state-exchange.ts has
 *                    the layout); kinds 5..0x7f stay reserved.
 */
import { ENDIAN_MARKER } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/header.js';
import { decodeGroupsChunk, type GroupsChunk } from './state-exchange.js';

export const RingMessageKind = {
  JOIN: 1,
  LEAVE: 2,
  KILL: 3,
  GROUPS: 4,
} as const;

export type RingMessage =
  | { kind: 'data'; frame: Uint8Array }
  | { kind: 'join'; member: string; group: string }
  | { kind: 'leave'; member: string; group: string }
  | { kind: 'kill'; member: string }
  | { kind: 'groups'; chunk: GroupsChunk };

/** Strings here are names of at most 31 bytes; the u8 length bounds them anyway. */
const STRING_BYTES_MAX = 255;

function encodeStrings(kind: number, strings: readonly string[]): Uint8Array {
  let size = 1;
  for (const text of strings) size += 1 + Math.min(text.length, STRING_BYTES_MAX);
  const out = Buffer.allocUnsafe(size);
  out[0] = kind;
  let offset = 1;
  for (const text of strings) {
    const length = Math.min(text.length, STRING_BYTES_MAX);
    out[offset++] = length;
    out.write(text.slice(0, length), offset, 'latin1');
    offset += length;
  }
  return out;
}

export function encodeJoin(member: string, group: string): Uint8Array {
  return encodeStrings(RingMessageKind.JOIN, [member, group]);
}

export function encodeLeave(member: string, group: string): Uint8Array {
  return encodeStrings(RingMessageKind.LEAVE, [member, group]);
}

export function encodeKill(member: string): Uint8Array {
  return encodeStrings(RingMessageKind.KILL, [member]);
}

/** True when the payload is a client frame (first byte carries the LE marker bit). */
export function isDataPayload(payload: Uint8Array): boolean {
  return payload.length > 0 && (payload[0] & (ENDIAN_MARKER & 0xff)) !== 0;
}

function readStrings(payload: Uint8Array, count: number): string[] {
  const strings: string[] = [];
  let offset = 1;
  for (let i = 0; i < count; i++) {
    if (offset >= payload.length) throw new ProtocolError('truncated ring control message');
    const length = payload[offset++];
    if (offset + length > payload.length) throw new ProtocolError('truncated ring control string');
    strings.push(Buffer.from(payload.buffer, payload.byteOffset + offset, length).toString('latin1'));
    offset += length;
  }
  return strings;
}

/** Throws ProtocolError on a malformed payload (a daemon bug or a foreign daemon). */
export function decodeRingMessage(payload: Uint8Array): RingMessage {
  if (payload.length === 0) throw new ProtocolError('empty ring message');
  if (isDataPayload(payload)) return { kind: 'data', frame: payload };
  switch (payload[0]) {
    case RingMessageKind.JOIN: {
      const [member, group] = readStrings(payload, 2);
      return { kind: 'join', member, group };
    }
    case RingMessageKind.LEAVE: {
      const [member, group] = readStrings(payload, 2);
      return { kind: 'leave', member, group };
    }
    case RingMessageKind.KILL: {
      const [member] = readStrings(payload, 1);
      return { kind: 'kill', member };
    }
    case RingMessageKind.GROUPS:
      return { kind: 'groups', chunk: decodeGroupsChunk(payload) };
    default:
      throw new ProtocolError(`unknown ring message kind ${payload[0]}`);
  }
}
