/**
 * Whole messages: header + [reject old_type] + 32-byte group names + payload (§1.3, §3).
 * Encoders write little-endian by default (what x86 Spread daemons and C clients send);
 * tests and Java-style clients use big-endian.
 */
import { ENDIAN_MARKER, GROUP_NAME_BYTES, HEADER_BYTES, ServiceType } from './constants.js';
import { encodeHeaderInto } from './header.js';
import { readFixedName, writeFixedName } from './names.js';

export interface MessageFields {
  /** `type` without the marker. */
  type: number;
  sender: string;
  groups: readonly string[];
  /** Raw hint bytes read little-endian (see header.ts). */
  hintRaw: number;
  data: Uint8Array;
  /** Only for reject messages: the original type (without marker), written right after the header. */
  oldType?: number;
}

export function encodeMessage(fields: MessageFields, littleEndian = true): Uint8Array {
  const out = Buffer.allocUnsafe(encodedMessageBytes(fields));
  encodeMessageInto(out, 0, fields, littleEndian);
  return out;
}

/** Bytes encodeMessage() produces for `fields`. */
export function encodedMessageBytes(fields: MessageFields): number {
  return HEADER_BYTES + (fields.oldType === undefined ? 0 : 4) + fields.groups.length * GROUP_NAME_BYTES + fields.data.length;
}

/** encodeMessage() into `target` at `offset` (which must have encodedMessageBytes() room); returns the end offset. */
export function encodeMessageInto(target: Uint8Array, offset: number, fields: MessageFields, littleEndian = true): number {
  encodeHeaderInto(
    target,
    offset,
    {
      type: fields.type,
      sender: fields.sender,
      numGroups: fields.groups.length,
      hintRaw: fields.hintRaw,
      dataLen: fields.data.length,
    },
    littleEndian,
  );
  let at = offset + HEADER_BYTES;
  if (fields.oldType !== undefined) {
    const marked = littleEndian ? (fields.oldType | ENDIAN_MARKER) >>> 0 : fields.oldType & ~ENDIAN_MARKER;
    new DataView(target.buffer, target.byteOffset + at, 4).setUint32(0, marked >>> 0, littleEndian);
    at += 4;
  }
  for (const group of fields.groups) {
    writeFixedName(target, at, group);
    at += GROUP_NAME_BYTES;
  }
  target.set(fields.data, at);
  return at + fields.data.length;
}

/** Reads `count` 32-byte names starting at `offset`. */
export function readGroupNames(bytes: Uint8Array, offset: number, count: number): string[] {
  const names = new Array<string>(count);
  for (let i = 0; i < count; i++) names[i] = readFixedName(bytes, offset + i * GROUP_NAME_BYTES);
  return names;
}

/** A request from a client: join, leave or disconnect (§3.3). */
export function encodeControlRequest(
  kind: 'join' | 'leave' | 'kill',
  sender: string,
  group: string,
  littleEndian = true,
): Uint8Array {
  const type =
    kind === 'join' ? ServiceType.JOIN_MESS : kind === 'leave' ? ServiceType.LEAVE_MESS : ServiceType.KILL_MESS;
  const hintRaw = littleEndian ? ENDIAN_MARKER : 0;
  return encodeMessage({ type, sender, groups: [group], hintRaw, data: new Uint8Array(0) }, littleEndian);
}
