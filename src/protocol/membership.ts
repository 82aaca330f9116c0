/**
 * Membership message bodies (§5): the 12-byte group id, the regular-membership
 * body with its vs-set records, and the transitional body. Daemon-generated
 * integers are written little-endian (the daemon's order); readers swap when the
 * header's marker says the daemon was big-endian.
 */
import { GROUP_NAME_BYTES, ServiceType } from './constants.js';
import { ProtocolError } from './header.js';
import { readFixedName, writeFixedName } from './names.js';

export interface GroupId {
  /** VID of the daemon that led the membership in which the view was created. */
  procId: number;
  /** That membership's time stamp. */
  time: number;
  /** 1 on creation or network change, +1 per join, leave or disconnect. */
  index: number;
}

export const GROUP_ID_BYTES = 12;

export function groupIdsEqual(a: GroupId, b: GroupId): boolean {
  return a.procId === b.procId && a.time === b.time && a.index === b.index;
}

export function encodeGroupId(target: Uint8Array, offset: number, gid: GroupId, littleEndian = true): void {
  const view = new DataView(target.buffer, target.byteOffset + offset, GROUP_ID_BYTES);
  view.setInt32(0, gid.procId | 0, littleEndian);
  view.setInt32(4, gid.time | 0, littleEndian);
  view.setInt32(8, gid.index | 0, littleEndian);
}

export function decodeGroupId(bytes: Uint8Array, offset: number, littleEndian = true): GroupId {
  if (bytes.length < offset + GROUP_ID_BYTES) throw new ProtocolError('short group id');
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, GROUP_ID_BYTES);
  return {
    procId: view.getInt32(0, littleEndian) >>> 0,
    time: view.getInt32(4, littleEndian) >>> 0,
    index: view.getInt32(8, littleEndian),
  };
}

/**
 * Regular membership body: gid, num_vs_sets, local_vs_set_offset (relative to
 * body offset 20), then the records (§5.3). `localSetIndex` picks the record the
 * offset points at.
 */
export function encodeRegularBody(
  gid: GroupId,
  vsSets: readonly (readonly string[])[],
  localSetIndex: number,
  littleEndian = true,
): Uint8Array {
  let size = 20;
  for (const set of vsSets) size += 4 + set.length * GROUP_NAME_BYTES;
  const out = Buffer.alloc(size);
  encodeGroupId(out, 0, gid, littleEndian);
  const view = new DataView(out.buffer, out.byteOffset, out.length);
  view.setUint32(12, vsSets.length, littleEndian);
  let offset = 20;
  let localOffset = 0;
  vsSets.forEach((set, index) => {
    if (index === localSetIndex) localOffset = offset - 20;
    view.setUint32(offset, set.length, littleEndian);
    offset += 4;
    for (const member of set) {
      writeFixedName(out, offset, member);
      offset += GROUP_NAME_BYTES;
    }
  });
  view.setUint32(16, localOffset, littleEndian);
  return out;
}

export interface MembershipInfo {
  gid: GroupId;
  /** Empty for transitional and self-leave messages. */
  vsSets: string[][];
  /** Index in `vsSets` of the set containing the receiver's daemon (or the local joiner), -1 if none. */
  localSetIndex: number;
  /** Joiner, leaver or disconnected member for JOIN/LEAVE/DISCONNECT; null otherwise. */
  changedMember: string | null;
}

/** Parses a membership body for a message of `type` (marker cleared). */
export function decodeMembershipBody(body: Uint8Array, type: number, littleEndian = true): MembershipInfo {
  if ((type & ServiceType.REG_MEMB_MESS) === 0) {
    // Transitional: the body is the gid. Self-leave: the body is empty.
    const gid =
      body.length >= GROUP_ID_BYTES ? decodeGroupId(body, 0, littleEndian) : { procId: 0, time: 0, index: 0 };
    return { gid, vsSets: [], localSetIndex: -1, changedMember: null };
  }
  if (body.length < 20) throw new ProtocolError('short regular membership body');
  const view = new DataView(body.buffer, body.byteOffset, body.length);
  const gid = decodeGroupId(body, 0, littleEndian);
  const setCount = view.getUint32(12, littleEndian);
  const localOffset = view.getUint32(16, littleEndian);
  const vsSets: string[][] = [];
  let localSetIndex = -1;
  let offset = 20;
  for (let index = 0; index < setCount; index++) {
    if (offset + 4 > body.length) throw new ProtocolError('truncated vs set');
    if (offset - 20 === localOffset) localSetIndex = index;
    const count = view.getUint32(offset, littleEndian);
    offset += 4;
    if (offset + count * GROUP_NAME_BYTES > body.length) throw new ProtocolError('truncated vs set members');
    const members: string[] = [];
    for (let m = 0; m < count; m++) {
      members.push(readFixedName(body, offset));
      offset += GROUP_NAME_BYTES;
    }
    vsSets.push(members);
  }
  const causedByChange =
    (type & (ServiceType.CAUSED_BY_JOIN | ServiceType.CAUSED_BY_LEAVE | ServiceType.CAUSED_BY_DISCONNECT)) !== 0;
  const changedMember = causedByChange && vsSets[0]?.length ? vsSets[0][0] : null;
  return { gid, vsSets, localSetIndex, changedMember };
}

/** Transitional body: the group's old gid (§5.1). */
export function encodeTransitionalBody(gid: GroupId, littleEndian = true): Uint8Array {
  const out = Buffer.alloc(GROUP_ID_BYTES);
  encodeGroupId(out, 0, gid, littleEndian);
  return out;
}
