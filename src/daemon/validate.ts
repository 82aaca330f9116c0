/**
 * Validation of client → daemon headers (§3.3, §12). Any failure kills the session.
 * Stricter than Spread where Spread is dangerous: every `type` bit outside
 * 0x3F | 0x40 | 0x70000 is refused (GROUPS_MESS and REJECT_MESS from a client crash
 * or confuse Spread daemons, §13 item 16), the body is capped at the real buffer size
 * (143 152 by default, §6.2), and join/leave must name a legal group.
 */
import {
  CLIENT_TYPE_ALLOWED_MASK,
  ENDIAN_MARKER,
  GROUP_NAME_BYTES,
  GROUPS_PER_MESSAGE_MAX,
  ServiceType,
} from '../protocol/constants.js';
import type { Frame } from '../protocol/framer.js';
import { hasTerminator, isLegalGroupName, readFixedName } from '../protocol/names.js';

/** Hint bits a client may set: mess_type (bits 8–23) and the marker (§3.3). */
const HINT_ALLOWED_MASK = 0x80ffff80;
const SERVICE_AND_CONTROL_BITS = ServiceType.REGULAR_MESS | ServiceType.JOIN_MESS | ServiceType.LEAVE_MESS | ServiceType.KILL_MESS;

function bitCount(value: number): number {
  let count = 0;
  for (let v = value >>> 0; v !== 0; v &= v - 1) count += 1;
  return count;
}

/** Why the request must kill the session, or null when it is acceptable. */
export function validateClientFrame(frame: Frame, privateGroup: string, bodyBytesMax: number): string | null {
  const { header } = frame;
  const type = header.type;
  if ((type & ~CLIENT_TYPE_ALLOWED_MASK) !== 0) return `type 0x${type.toString(16)} has bits outside 0x7007f`;
  if (bitCount(type & SERVICE_AND_CONTROL_BITS) !== 1) {
    return `type 0x${type.toString(16)} must carry exactly one service or join/leave/kill bit`;
  }
  if (header.sender !== privateGroup) return `sender '${header.sender}' is not the session's private group`;
  if (header.numGroups < 0 || header.numGroups > GROUPS_PER_MESSAGE_MAX) return `num_groups ${header.numGroups}`;
  if (header.dataLen < 0) return `data_len ${header.dataLen}`;
  if (header.numGroups * GROUP_NAME_BYTES + header.dataLen > bodyBytesMax) return 'message too large';
  if ((header.hintRaw & ~HINT_ALLOWED_MASK) !== 0) return `hint 0x${(header.hintRaw >>> 0).toString(16)} has stray bits`;
  if ((type & (ServiceType.JOIN_MESS | ServiceType.LEAVE_MESS)) !== 0) {
    if (header.numGroups < 1) return 'join/leave without a group';
    if (!hasTerminator(frame.bytes, frame.groupsOffset)) return 'join/leave group name not NUL-terminated';
    if (!isLegalGroupName(readFixedName(frame.bytes, frame.groupsOffset))) return 'join/leave of an illegal group name';
  }
  return null;
}

/** Rewrites `type`, `num_groups` and `data_len` of a big-endian frame in place as little-endian with the marker; `hint` is untouched (§3.2). */
export function normalizeToLittleEndian(frame: Frame): void {
  if (frame.header.littleEndian) return;
  const view = new DataView(frame.bytes.buffer, frame.bytes.byteOffset, frame.bytes.length);
  view.setUint32(0, (frame.header.type | ENDIAN_MARKER) >>> 0, true);
  view.setInt32(36, frame.header.numGroups, true);
  view.setInt32(44, frame.header.dataLen, true);
}
