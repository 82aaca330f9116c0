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
  const extra = fields.oldType === undefined ? 0 : 4;
  const groupsBytes = fields.groups.length * GROUP_NAME_BYTES;
  const out = Buffer.allocUnsafe(HEADER_BYTES + extra + groupsBytes + fields.data.length);
  encodeHeaderInto(
    out,
    0,
    {
      type: fields.type,
      sender: fields.sender,
      numGroups: fields.groups.length,
      hintRaw: fields.hintRaw,
      dataLen: fields.data.length,
    },
    littleEndian,
  );
  let offset = HEADER_BYTES;
  if (fields.oldType !== undefined) {
    const marked = littleEndian ? (fields.oldType | ENDIAN_MARKER) >>> 0 : fields.oldType & ~ENDIAN_MARKER;
    if (littleEndian) out.writeUInt32LE(marked >>> 0, offset);
    else out.writeUInt32BE(marked >>> 0, offset);
    offset += 4;
  }
  for (const group of fields.groups) {
    writeFixedName(out, offset, group);
    offset += GROUP_NAME_BYTES;
  }
  out.set(fields.data, offset);
  return out;
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
