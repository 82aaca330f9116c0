/**
 * The group-state exchange after a daemon membership that joins daemons which did not
 * share group state (§11.5): GROUPS ring messages, their byte layout, and the pure
 * pieces of the merge (chunking a report, reassembling it, ordering vs sets).
 *
 * A *synced set* is a set of daemons whose replicated group state is identical. Its
 * representative (its first daemon in configuration order) sends the set's state as a
 * *report*: one or more GROUPS chunks, ordered through the ring like everything else
 * (tspread's ring delivers every payload in one total order, so "all but the last
 * RELIABLE, the last AGREED" collapses to "all AGREED"; the daemon's FIFO order keeps
 * the chunks of one report in sequence). A report names the synced set it speaks for;
 * the exchange is complete once the reports delivered cover every daemon of the new
 * configuration.
 *
 * GROUPS chunk layout (tspread-internal, little-endian):
 *   0   u8   kind = 4
 *   1   u32  membership id proc_id  } the regular configuration the report was made
 *   5   u32  membership id time     } for; a report from another one is ignored
 *   9   u16  chunk number (0, 1, …)
 *   11  u8   flags: 1 = last chunk of the report
 *   12  u8   S = daemons in the synced set (1..128)
 *   13  4·S  their VIDs
 *   …   u16  R = records in this chunk
 *   R records: u8 group-name length, name bytes (latin1);
 *              u32 gid proc_id, u32 gid time, i32 gid index;
 *              u8 flags: 1 = the group lost daemons in the transitional period;
 *              u32 daemon VID; u32, u32 that daemon's membership id in the group;
 *              u16 n; n × (u8 length, private-group name bytes)
 * A group with members on several daemons of the set has one record per daemon, in
 * configuration order; a record may repeat (group, daemon) in a later chunk when the
 * members do not fit one chunk (their lists concatenate).
 */
import { ProtocolError } from '../protocol/header.js';
import type { GroupId } from '../protocol/membership.js';
import type { MembershipId } from '../ring/types.js';

export const GROUPS_KIND = 4;
/** Target size of one GROUPS chunk: well inside one ring message. */
export const GROUPS_CHUNK_BYTES = 60_000;

export interface GroupsDaemonRecord {
  vid: number;
  membId: MembershipId;
  members: string[];
}

export interface GroupsGroupRecord {
  name: string;
  gid: GroupId;
  changed: boolean;
  daemons: GroupsDaemonRecord[];
}

export interface GroupsChunk {
  membId: MembershipId;
  part: number;
  last: boolean;
  synced: number[];
  records: { group: string; gid: GroupId; changed: boolean; daemon: GroupsDaemonRecord }[];
}

/** A synced set's whole state for one configuration. */
export interface GroupsReport {
  membId: MembershipId;
  synced: number[];
  groups: GroupsGroupRecord[];
}

const HEADER_FIXED = 13;

function recordHeaderBytes(group: string): number {
  return 1 + group.length + 12 + 1 + 4 + 8 + 2;
}

/** Splits a report into chunk payloads of about GROUPS_CHUNK_BYTES each (at least one chunk). */
export function encodeGroupsReport(report: GroupsReport, chunkBytes = GROUPS_CHUNK_BYTES): Uint8Array[] {
  const base = HEADER_FIXED + 4 * report.synced.length + 2;
  type Piece = { group: GroupsGroupRecord; daemon: GroupsDaemonRecord; members: string[] };
  const chunks: Piece[][] = [[]];
  let size = base;
  for (const group of report.groups) {
    for (const daemon of group.daemons) {
      let members: string[] = [];
      let pieceSize = recordHeaderBytes(group.name);
      const flush = (): void => {
        chunks[chunks.length - 1].push({ group, daemon, members });
        size += pieceSize;
        members = [];
        pieceSize = recordHeaderBytes(group.name);
      };
      if (size + pieceSize > chunkBytes && chunks[chunks.length - 1].length > 0) {
        chunks.push([]);
        size = base;
      }
      for (const member of daemon.members) {
        const add = 1 + member.length;
        if (size + pieceSize + add > chunkBytes && members.length > 0) {
          flush();
          chunks.push([]);
          size = base;
        }
        members.push(member);
        pieceSize += add;
      }
      flush();
    }
  }
  return chunks.map((pieces, index) => {
    let bytes = base;
    for (const piece of pieces) bytes += recordHeaderBytes(piece.group.name) + piece.members.reduce((sum, m) => sum + 1 + m.length, 0);
    const out = Buffer.alloc(bytes);
    out[0] = GROUPS_KIND;
    out.writeUInt32LE(report.membId.procId >>> 0, 1);
    out.writeUInt32LE(report.membId.time >>> 0, 5);
    out.writeUInt16LE(index, 9);
    out[11] = index === chunks.length - 1 ? 1 : 0;
    out[12] = report.synced.length;
    let offset = 13;
    for (const vid of report.synced) {
      out.writeUInt32LE(vid >>> 0, offset);
      offset += 4;
    }
    out.writeUInt16LE(pieces.length, offset);
    offset += 2;
    for (const piece of pieces) {
      offset = writeString(out, offset, piece.group.name);
      out.writeUInt32LE(piece.group.gid.procId >>> 0, offset);
      out.writeUInt32LE(piece.group.gid.time >>> 0, offset + 4);
      out.writeInt32LE(piece.group.gid.index | 0, offset + 8);
      out[offset + 12] = piece.group.changed ? 1 : 0;
      out.writeUInt32LE(piece.daemon.vid >>> 0, offset + 13);
      out.writeUInt32LE(piece.daemon.membId.procId >>> 0, offset + 17);
      out.writeUInt32LE(piece.daemon.membId.time >>> 0, offset + 21);
      out.writeUInt16LE(piece.members.length, offset + 25);
      offset += 27;
      for (const member of piece.members) offset = writeString(out, offset, member);
    }
    return out;
  });
}

function writeString(out: Buffer, offset: number, text: string): number {
  const length = Math.min(text.length, 255);
  out[offset] = length;
  out.write(text.slice(0, length), offset + 1, 'latin1');
  return offset + 1 + length;
}

class Reader {
  offset = 13;
  constructor(private readonly bytes: Buffer) {}

  need(count: number): void {
    if (this.offset + count > this.bytes.length) throw new ProtocolError('truncated GROUPS message');
  }
  u8(): number {
    this.need(1);
    return this.bytes[this.offset++];
  }
  u16(): number {
    this.need(2);
    const value = this.bytes.readUInt16LE(this.offset);
    this.offset += 2;
    return value;
  }
  u32(): number {
    this.need(4);
    const value = this.bytes.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }
  i32(): number {
    this.need(4);
    const value = this.bytes.readInt32LE(this.offset);
    this.offset += 4;
    return value;
  }
  string(): string {
    const length = this.u8();
    this.need(length);
    const text = this.bytes.toString('latin1', this.offset, this.offset + length);
    this.offset += length;
    return text;
  }
}

export function decodeGroupsChunk(payload: Uint8Array): GroupsChunk {
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  if (bytes.length < HEADER_FIXED || bytes[0] !== GROUPS_KIND) throw new ProtocolError('short GROUPS message');
  const membId = { procId: bytes.readUInt32LE(1), time: bytes.readUInt32LE(5) };
  const part = bytes.readUInt16LE(9);
  const last = (bytes[11] & 1) !== 0;
  const syncedCount = bytes[12];
  if (syncedCount === 0) throw new ProtocolError('GROUPS message without a synced set');
  const reader = new Reader(bytes);
  const synced: number[] = [];
  for (let i = 0; i < syncedCount; i++) synced.push(reader.u32());
  const recordCount = reader.u16();
  const records: GroupsChunk['records'] = [];
  for (let i = 0; i < recordCount; i++) {
    const group = reader.string();
    const gid = { procId: reader.u32(), time: reader.u32(), index: reader.i32() };
    const changed = (reader.u8() & 1) !== 0;
    const vid = reader.u32();
    const daemonMembId = { procId: reader.u32(), time: reader.u32() };
    const count = reader.u16();
    const members: string[] = [];
    for (let j = 0; j < count; j++) members.push(reader.string());
    records.push({ group, gid, changed, daemon: { vid, membId: daemonMembId, members } });
  }
  if (reader.offset !== bytes.length) throw new ProtocolError('trailing bytes in GROUPS message');
  return { membId, part, last, synced, records };
}

/** Reassembles one representative's chunks; returns null while incomplete or inconsistent. */
export class ReportAssembler {
  private readonly chunks: GroupsChunk[] = [];
  broken = false;

  add(chunk: GroupsChunk): GroupsReport | null {
    if (this.broken) return null;
    if (chunk.part !== this.chunks.length) {
      this.broken = true; // a chunk went missing (only possible after a gap in a transitional period)
      return null;
    }
    this.chunks.push(chunk);
    if (!chunk.last) return null;
    const groups = new Map<string, GroupsGroupRecord>();
    for (const part of this.chunks) {
      for (const record of part.records) {
        let group = groups.get(record.group);
        if (!group) {
          group = { name: record.group, gid: record.gid, changed: record.changed, daemons: [] };
          groups.set(record.group, group);
        }
        const previous = group.daemons.at(-1);
        if (previous && previous.vid === record.daemon.vid) previous.members.push(...record.daemon.members);
        else group.daemons.push({ vid: record.daemon.vid, membId: record.daemon.membId, members: [...record.daemon.members] });
      }
    }
    return { membId: chunk.membId, synced: chunk.synced, groups: [...groups.values()] };
  }
}

/** Spread's membership-id order for vs sets: sign of the 32-bit differences, proc_id then time (§5.3). */
export function compareMembershipIds(a: MembershipId, b: MembershipId): number {
  const byProc = (a.procId - b.procId) | 0;
  if (byProc !== 0) return byProc;
  return (a.time - b.time) | 0;
}

export function membershipIdsEqual(a: MembershipId, b: MembershipId): boolean {
  return a.procId >>> 0 === b.procId >>> 0 && a.time >>> 0 === b.time >>> 0;
}
