/**
 * Daemon-to-daemon packet codec (tspread's own format; §11 of spread-protocol.md
 * is only the conceptual model). Pure functions over Uint8Array/DataView: no I/O.
 *
 * Every integer is big-endian (network order): unlike Spread we do not carry an
 * endian marker, so there is nothing to swap.
 *
 * Common header (20 bytes), on every packet:
 *   0  u16 magic 0x7453 ('tS')      2 u8 version (1)      3 u8 type
 *   4  u32 sender VID (the daemon that put this datagram on the wire)
 *   8  u32 membership id: procId   12 u32 membership id: time   (0/0 before a ring exists)
 *   16 u32 configuration hash
 *
 * DATA (type 1): 20 u32 seq, 24 u32 origin VID (who assigned seq), 28 u32 token round,
 *   32 u16 fragment count, 34 u16 flags (bit 0: retransmission; bit 1: recovered — its one
 *   fragment is a whole DATA packet of the previous ring, re-sent during EVS recovery), then fragments:
 *   u8 flags (FIRST 1, LAST 2, SAFE 4), u8 zero, u16 length, `length` bytes.
 *   Small messages are packed several to a datagram; a large one is split across
 *   consecutive packets of the same origin and reassembled (FIRST … LAST).
 * TOKEN (type 2): 20 u32 token hop counter, 24 u32 seq, 28 u32 aru, 32 u32 aru setter VID
 *   (0: none), 36 u32 flow control, 40 u32 round, 44 u16 flags (bit 0: idle; bit 1: recovery
 *   pending; bit 2: install), 46 u16 rtr count, then rtr count × u32 requested seqs.
 * HELLO (type 3): 20 u32 flags. Obsolete start-up probe: decoded, ignored by the ring.
 * HURRY (type 4): 20 u32 last token hop seen. "I have messages; release the token."
 * TOKEN_ACK (type 5): 20 u32 token hop. "I already have this token; stop re-sending it."
 * JOIN (type 6), membership gather: 20 u32 flags (bit 0: probe from an operational ring),
 *   24 u32 incarnation, 28 u32 attempt (gathers entered so far), 32 u16 proc count,
 *   34 u16 fail count, then proc × u32 VID, fail × u32 VID. The header's membership id is
 *   the sender's last installed ring (0/0: none).
 * COMMIT (type 7), the form token: header membership id = the ring being formed;
 *   20 u32 hop, 24 u16 rotation (1 or 2), 26 u16 member count, then per member (config
 *   order) 32 bytes: u32 VID, u32 incarnation, u32 flags (bit 0: filled), u32 old ring
 *   procId, u32 old ring time, u32 old aru, u32 old highest seq, u32 old safe seq.
 *
 * Malformed input yields a PacketDecodeError value; decode never throws.
 */
import { DATAGRAM_BYTES_MAX, MEMBERS_MAX, RTR_ITEMS_MAX } from './limits.js';
import type { MembershipId } from './types.js';

export const PACKET_MAGIC = 0x7453;
export const PACKET_VERSION = 1;

export const PacketType = {
  DATA: 1,
  TOKEN: 2,
  HELLO: 3,
  HURRY: 4,
  TOKEN_ACK: 5,
  JOIN: 6,
  COMMIT: 7,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

export const HEADER_BYTES = 20;
export const DATA_HEADER_BYTES = 36;
export const FRAGMENT_HEADER_BYTES = 4;
export const TOKEN_HEADER_BYTES = 48;
const SMALL_PACKET_BYTES = 24;
/** Longest fragment the u16 length field can describe. */
export const FRAGMENT_BYTES_MAX = 0xffff;

export const FragmentFlag = { FIRST: 1, LAST: 2, SAFE: 4 } as const;
const FRAGMENT_FLAGS_KNOWN = 7;
export const DataFlag = { RETRANSMISSION: 1, RECOVERED: 2 } as const;
const DATA_FLAGS_KNOWN = 3;
export const TokenFlag = { IDLE: 1, RECOVERY_PENDING: 2, INSTALL: 4 } as const;
const TOKEN_FLAGS_KNOWN = 7;
export const JoinFlag = { PROBE: 1 } as const;
const JOIN_FLAGS_KNOWN = 1;
export const JOIN_HEADER_BYTES = 36;
export const COMMIT_HEADER_BYTES = 28;
export const COMMIT_ENTRY_BYTES = 32;
/** A recovery packet wraps a whole DATA packet: one data header and one fragment header more. */
export const RECOVERED_OVERHEAD_BYTES = 36 + 4;

export interface PacketHeader {
  sender: number;
  membId: MembershipId;
  configHash: number;
}

export interface Fragment {
  flags: number;
  payload: Uint8Array;
}

export interface DataPacket extends PacketHeader {
  type: typeof PacketType.DATA;
  seq: number;
  origin: number;
  round: number;
  flags: number;
  fragments: Fragment[];
  /** The whole datagram (kept to answer retransmission requests). */
  bytes: Uint8Array;
}

export interface TokenFields {
  hop: number;
  seq: number;
  aru: number;
  aruSetter: number;
  flowControl: number;
  round: number;
  flags: number;
  rtr: number[];
}

export interface TokenPacket extends PacketHeader, TokenFields {
  type: typeof PacketType.TOKEN;
}

export interface HelloPacket extends PacketHeader {
  type: typeof PacketType.HELLO;
  flags: number;
}

export interface HurryPacket extends PacketHeader {
  type: typeof PacketType.HURRY;
  lastHop: number;
}

export interface TokenAckPacket extends PacketHeader {
  type: typeof PacketType.TOKEN_ACK;
  hop: number;
}

export interface JoinFields {
  flags: number;
  incarnation: number;
  attempt: number;
  /** VIDs, configuration order. */
  proc: number[];
  fail: number[];
}

export interface JoinPacket extends PacketHeader, JoinFields {
  type: typeof PacketType.JOIN;
}

/** One member's slot on the commit token: what it brings from its previous ring. */
export interface CommitEntry {
  vid: number;
  incarnation: number;
  filled: boolean;
  oldRing: MembershipId;
  aru: number;
  highest: number;
  safe: number;
}

export interface CommitFields {
  hop: number;
  rotation: number;
  entries: CommitEntry[];
}

export interface CommitPacket extends PacketHeader, CommitFields {
  type: typeof PacketType.COMMIT;
}

export type Packet = DataPacket | TokenPacket | HelloPacket | HurryPacket | TokenAckPacket | JoinPacket | CommitPacket;

export type PacketDecodeErrorCode = 'short' | 'long' | 'magic' | 'version' | 'type' | 'length' | 'flags' | 'fragment' | 'rtr' | 'members';

/** A datagram that is not a well-formed packet. Returned, never thrown. */
export class PacketDecodeError extends Error {
  override readonly name = 'PacketDecodeError';
  constructor(
    readonly code: PacketDecodeErrorCode,
    detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

export type DecodeResult = { ok: true; packet: Packet } | { ok: false; error: PacketDecodeError };

function fail(code: PacketDecodeErrorCode, detail: string): DecodeResult {
  return { ok: false, error: new PacketDecodeError(code, detail) };
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The packet type, or null when the datagram does not even carry our header. Cheap: for routing. */
export function peekType(bytes: Uint8Array): number | null {
  if (bytes.length < HEADER_BYTES) return null;
  if (((bytes[0] << 8) | bytes[1]) !== PACKET_MAGIC || bytes[2] !== PACKET_VERSION) return null;
  return bytes[3];
}

/** The sender VID, or null (see peekType). Used by the UDP adapter to check source addresses. */
export function peekSender(bytes: Uint8Array): number | null {
  if (peekType(bytes) === null) return null;
  return viewOf(bytes).getUint32(4);
}

const u16At = (bytes: Uint8Array, at: number) => (bytes[at] << 8) | bytes[at + 1];

/**
 * Length of the packet that starts at `offset`, read from its own header, or null when
 * no complete header is there. A receive with UDP GRO hands several datagrams of one flow
 * over as one buffer; this finds where each ends (decodePacket then checks each whole).
 */
export function packetLength(bytes: Uint8Array, offset: number): number | null {
  const left = bytes.length - offset;
  if (left < HEADER_BYTES || u16At(bytes, offset) !== PACKET_MAGIC || bytes[offset + 2] !== PACKET_VERSION) return null;
  let length: number;
  switch (bytes[offset + 3]) {
    case PacketType.DATA:
      if (left < DATA_HEADER_BYTES) return null;
      length = DATA_HEADER_BYTES;
      for (let count = u16At(bytes, offset + 32); count > 0; count--) {
        if (length + FRAGMENT_HEADER_BYTES > left) return null;
        length += FRAGMENT_HEADER_BYTES + u16At(bytes, offset + length + 2);
      }
      break;
    case PacketType.TOKEN:
      if (left < TOKEN_HEADER_BYTES) return null;
      length = TOKEN_HEADER_BYTES + 4 * u16At(bytes, offset + 46);
      break;
    case PacketType.JOIN:
      if (left < JOIN_HEADER_BYTES) return null;
      length = JOIN_HEADER_BYTES + 4 * (u16At(bytes, offset + 32) + u16At(bytes, offset + 34));
      break;
    case PacketType.COMMIT:
      if (left < COMMIT_HEADER_BYTES) return null;
      length = COMMIT_HEADER_BYTES + COMMIT_ENTRY_BYTES * u16At(bytes, offset + 26);
      break;
    case PacketType.HELLO:
    case PacketType.HURRY:
    case PacketType.TOKEN_ACK:
      length = SMALL_PACKET_BYTES;
      break;
    default:
      return null;
  }
  return length <= left ? length : null;
}

function writeHeader(view: DataView, type: PacketType, h: PacketHeader): void {
  view.setUint16(0, PACKET_MAGIC);
  view.setUint8(2, PACKET_VERSION);
  view.setUint8(3, type);
  view.setUint32(4, h.sender >>> 0);
  view.setUint32(8, h.membId.procId >>> 0);
  view.setUint32(12, h.membId.time >>> 0);
  view.setUint32(16, h.configHash >>> 0);
}

export function decodePacket(bytes: Uint8Array): DecodeResult {
  if (bytes.length < HEADER_BYTES) return fail('short', `${bytes.length} bytes`);
  if (bytes.length > DATAGRAM_BYTES_MAX) return fail('long', `${bytes.length} bytes`);
  const view = viewOf(bytes);
  const magic = view.getUint16(0);
  if (magic !== PACKET_MAGIC) return fail('magic', `0x${magic.toString(16)}`);
  const version = view.getUint8(2);
  if (version !== PACKET_VERSION) return fail('version', String(version));
  const header: PacketHeader = {
    sender: view.getUint32(4),
    membId: { procId: view.getUint32(8), time: view.getUint32(12) },
    configHash: view.getUint32(16),
  };
  const type = view.getUint8(3);
  switch (type) {
    case PacketType.DATA:
      return decodeData(bytes, view, header);
    case PacketType.TOKEN:
      return decodeToken(bytes, view, header);
    case PacketType.JOIN:
      return decodeJoin(bytes, view, header);
    case PacketType.COMMIT:
      return decodeCommit(bytes, view, header);
    case PacketType.HELLO:
    case PacketType.HURRY:
    case PacketType.TOKEN_ACK: {
      if (bytes.length !== SMALL_PACKET_BYTES) return fail('length', `type ${type}: ${bytes.length} bytes`);
      const word = view.getUint32(HEADER_BYTES);
      if (type === PacketType.HELLO) return { ok: true, packet: { type, ...header, flags: word } };
      if (type === PacketType.HURRY) return { ok: true, packet: { type, ...header, lastHop: word } };
      return { ok: true, packet: { type, ...header, hop: word } };
    }
    default:
      return fail('type', String(type));
  }
}

function decodeData(bytes: Uint8Array, view: DataView, header: PacketHeader): DecodeResult {
  if (bytes.length < DATA_HEADER_BYTES) return fail('short', `data: ${bytes.length} bytes`);
  const fragmentCount = view.getUint16(32);
  const flags = view.getUint16(34);
  if ((flags & ~DATA_FLAGS_KNOWN) !== 0) return fail('flags', `data flags 0x${flags.toString(16)}`);
  if (fragmentCount === 0) return fail('fragment', 'data packet without fragments');
  const fragments: Fragment[] = new Array(fragmentCount);
  let offset = DATA_HEADER_BYTES;
  for (let i = 0; i < fragmentCount; i++) {
    if (offset + FRAGMENT_HEADER_BYTES > bytes.length) return fail('fragment', `fragment ${i} header past end`);
    const fragmentFlags = bytes[offset];
    if ((fragmentFlags & ~FRAGMENT_FLAGS_KNOWN) !== 0 || bytes[offset + 1] !== 0) {
      return fail('flags', `fragment ${i} flags 0x${fragmentFlags.toString(16)}`);
    }
    const length = view.getUint16(offset + 2);
    offset += FRAGMENT_HEADER_BYTES;
    if (offset + length > bytes.length) return fail('fragment', `fragment ${i} body past end`);
    fragments[i] = { flags: fragmentFlags, payload: bytes.subarray(offset, offset + length) };
    offset += length;
  }
  if (offset !== bytes.length) return fail('length', `data: ${bytes.length - offset} trailing bytes`);
  return {
    ok: true,
    packet: {
      type: PacketType.DATA,
      sender: header.sender,
      membId: header.membId,
      configHash: header.configHash,
      seq: view.getUint32(20),
      origin: view.getUint32(24),
      round: view.getUint32(28),
      flags,
      fragments,
      bytes,
    },
  };
}

function decodeToken(bytes: Uint8Array, view: DataView, header: PacketHeader): DecodeResult {
  if (bytes.length < TOKEN_HEADER_BYTES) return fail('short', `token: ${bytes.length} bytes`);
  const flags = view.getUint16(44);
  if ((flags & ~TOKEN_FLAGS_KNOWN) !== 0) return fail('flags', `token flags 0x${flags.toString(16)}`);
  const rtrCount = view.getUint16(46);
  if (rtrCount > RTR_ITEMS_MAX) return fail('rtr', `${rtrCount} requests`);
  if (bytes.length !== TOKEN_HEADER_BYTES + 4 * rtrCount) return fail('length', `token: ${bytes.length} bytes for ${rtrCount} requests`);
  const rtr: number[] = new Array(rtrCount);
  for (let i = 0; i < rtrCount; i++) rtr[i] = view.getUint32(TOKEN_HEADER_BYTES + 4 * i);
  return {
    ok: true,
    packet: {
      type: PacketType.TOKEN,
      ...header,
      hop: view.getUint32(20),
      seq: view.getUint32(24),
      aru: view.getUint32(28),
      aruSetter: view.getUint32(32),
      flowControl: view.getUint32(36),
      round: view.getUint32(40),
      flags,
      rtr,
    },
  };
}

function decodeJoin(bytes: Uint8Array, view: DataView, header: PacketHeader): DecodeResult {
  if (bytes.length < JOIN_HEADER_BYTES) return fail('short', `join: ${bytes.length} bytes`);
  const flags = view.getUint32(20);
  if ((flags & ~JOIN_FLAGS_KNOWN) !== 0) return fail('flags', `join flags 0x${flags.toString(16)}`);
  const procCount = view.getUint16(32);
  const failCount = view.getUint16(34);
  if (procCount > MEMBERS_MAX || failCount > MEMBERS_MAX) return fail('members', `join: ${procCount} proc, ${failCount} fail`);
  if (bytes.length !== JOIN_HEADER_BYTES + 4 * (procCount + failCount)) return fail('length', `join: ${bytes.length} bytes`);
  const proc: number[] = new Array(procCount);
  const failed: number[] = new Array(failCount);
  for (let i = 0; i < procCount; i++) proc[i] = view.getUint32(JOIN_HEADER_BYTES + 4 * i);
  for (let i = 0; i < failCount; i++) failed[i] = view.getUint32(JOIN_HEADER_BYTES + 4 * (procCount + i));
  return {
    ok: true,
    packet: { type: PacketType.JOIN, ...header, flags, incarnation: view.getUint32(24), attempt: view.getUint32(28), proc, fail: failed },
  };
}

function decodeCommit(bytes: Uint8Array, view: DataView, header: PacketHeader): DecodeResult {
  if (bytes.length < COMMIT_HEADER_BYTES) return fail('short', `commit: ${bytes.length} bytes`);
  const rotation = view.getUint16(24);
  const count = view.getUint16(26);
  if (rotation !== 1 && rotation !== 2) return fail('flags', `commit rotation ${rotation}`);
  if (count === 0 || count > MEMBERS_MAX) return fail('members', `commit: ${count} members`);
  if (bytes.length !== COMMIT_HEADER_BYTES + COMMIT_ENTRY_BYTES * count) return fail('length', `commit: ${bytes.length} bytes`);
  const entries: CommitEntry[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const at = COMMIT_HEADER_BYTES + COMMIT_ENTRY_BYTES * i;
    const flags = view.getUint32(at + 8);
    if ((flags & ~1) !== 0) return fail('flags', `commit entry flags 0x${flags.toString(16)}`);
    entries[i] = {
      vid: view.getUint32(at),
      incarnation: view.getUint32(at + 4),
      filled: flags === 1,
      oldRing: { procId: view.getUint32(at + 12), time: view.getUint32(at + 16) },
      aru: view.getUint32(at + 20),
      highest: view.getUint32(at + 24),
      safe: view.getUint32(at + 28),
    };
  }
  return { ok: true, packet: { type: PacketType.COMMIT, ...header, hop: view.getUint32(20), rotation, entries } };
}

export function encodeJoin(h: PacketHeader, j: JoinFields): Uint8Array {
  if (j.proc.length > MEMBERS_MAX || j.fail.length > MEMBERS_MAX) throw new RangeError('join: too many members');
  const bytes = new Uint8Array(JOIN_HEADER_BYTES + 4 * (j.proc.length + j.fail.length));
  const view = viewOf(bytes);
  writeHeader(view, PacketType.JOIN, h);
  view.setUint32(20, j.flags >>> 0);
  view.setUint32(24, j.incarnation >>> 0);
  view.setUint32(28, j.attempt >>> 0);
  view.setUint16(32, j.proc.length);
  view.setUint16(34, j.fail.length);
  let at = JOIN_HEADER_BYTES;
  for (const vid of j.proc) (view.setUint32(at, vid >>> 0), (at += 4));
  for (const vid of j.fail) (view.setUint32(at, vid >>> 0), (at += 4));
  return bytes;
}

export function encodeCommit(h: PacketHeader, c: CommitFields): Uint8Array {
  if (c.entries.length === 0 || c.entries.length > MEMBERS_MAX) throw new RangeError('commit: member count');
  const bytes = new Uint8Array(COMMIT_HEADER_BYTES + COMMIT_ENTRY_BYTES * c.entries.length);
  const view = viewOf(bytes);
  writeHeader(view, PacketType.COMMIT, h);
  view.setUint32(20, c.hop >>> 0);
  view.setUint16(24, c.rotation);
  view.setUint16(26, c.entries.length);
  c.entries.forEach((e, i) => {
    const at = COMMIT_HEADER_BYTES + COMMIT_ENTRY_BYTES * i;
    view.setUint32(at, e.vid >>> 0);
    view.setUint32(at + 4, e.incarnation >>> 0);
    view.setUint32(at + 8, e.filled ? 1 : 0);
    view.setUint32(at + 12, e.oldRing.procId >>> 0);
    view.setUint32(at + 16, e.oldRing.time >>> 0);
    view.setUint32(at + 20, e.aru >>> 0);
    view.setUint32(at + 24, e.highest >>> 0);
    view.setUint32(at + 28, e.safe >>> 0);
  });
  return bytes;
}

export function encodeToken(h: PacketHeader, t: TokenFields): Uint8Array {
  if (t.rtr.length > RTR_ITEMS_MAX) throw new RangeError(`token: ${t.rtr.length} retransmission requests > ${RTR_ITEMS_MAX}`);
  const bytes = new Uint8Array(TOKEN_HEADER_BYTES + 4 * t.rtr.length);
  const view = viewOf(bytes);
  writeHeader(view, PacketType.TOKEN, h);
  view.setUint32(20, t.hop >>> 0);
  view.setUint32(24, t.seq >>> 0);
  view.setUint32(28, t.aru >>> 0);
  view.setUint32(32, t.aruSetter >>> 0);
  view.setUint32(36, t.flowControl >>> 0);
  view.setUint32(40, t.round >>> 0);
  view.setUint16(44, t.flags);
  view.setUint16(46, t.rtr.length);
  for (let i = 0; i < t.rtr.length; i++) view.setUint32(TOKEN_HEADER_BYTES + 4 * i, t.rtr[i] >>> 0);
  return bytes;
}

function encodeSmall(type: PacketType, h: PacketHeader, word: number): Uint8Array {
  const bytes = new Uint8Array(SMALL_PACKET_BYTES);
  const view = viewOf(bytes);
  writeHeader(view, type, h);
  view.setUint32(HEADER_BYTES, word >>> 0);
  return bytes;
}

export function encodeHello(h: PacketHeader, flags = 0): Uint8Array {
  return encodeSmall(PacketType.HELLO, h, flags);
}

export function encodeHurry(h: PacketHeader, lastHop: number): Uint8Array {
  return encodeSmall(PacketType.HURRY, h, lastHop);
}

export function encodeTokenAck(h: PacketHeader, hop: number): Uint8Array {
  return encodeSmall(PacketType.TOKEN_ACK, h, hop);
}

/**
 * A fresh Uint8Array that is not zero-filled, for buffers that are written in full before
 * they are read (a plain Uint8Array, not a Buffer: decoded payloads stay Uint8Array views).
 */
export function uninitializedBytes(length: number): Uint8Array {
  const bytes = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, length);
}

/**
 * Slab the writer carves packets from. Not zero-filled: only the bytes written into a packet
 * are ever sent or read. A packet keeps only its own bytes (not a whole
 * DatagramBytes allocation: with 32 KiB datagrams and small messages that would pin 32 KiB
 * per buffered packet); a slab is garbage once every packet cut from it is discarded.
 */
const WRITER_SLAB_BYTES = 256 * 1024;

/**
 * Builds one DATA datagram in place, fragment by fragment, without intermediate
 * arrays (the send hot path). Usage: `begin`, `append` until it returns 0 or the
 * caller is done, then `finish`.
 */
export class DataPacketWriter {
  private slab: Uint8Array = new Uint8Array(0);
  /** Where the next packet starts in the slab. */
  private slabOffset = 0;
  /** The packet being written: a window of DatagramBytes on the slab. */
  private bytes: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.bytes.buffer);
  private offset = 0;
  private fragmentCount = 0;
  private fragmentList: Fragment[] = [];
  private seq = 0;
  private origin = 0;
  private round = 0;
  private header: PacketHeader | null = null;

  constructor(readonly datagramBytes: number) {
    if (datagramBytes < DATA_HEADER_BYTES + FRAGMENT_HEADER_BYTES + 1 || datagramBytes > DATAGRAM_BYTES_MAX) {
      throw new RangeError(`datagram size ${datagramBytes} out of range`);
    }
  }

  begin(h: PacketHeader, seq: number, origin: number, round: number): void {
    if (this.slab.length - this.slabOffset < this.datagramBytes) {
      this.slab = uninitializedBytes(Math.max(WRITER_SLAB_BYTES, this.datagramBytes));
      this.slabOffset = 0;
    }
    this.bytes = this.slab.subarray(this.slabOffset, this.slabOffset + this.datagramBytes);
    this.view = viewOf(this.bytes);
    writeHeader(this.view, PacketType.DATA, h);
    this.view.setUint32(20, seq >>> 0);
    this.view.setUint32(24, origin >>> 0);
    this.view.setUint32(28, round >>> 0);
    this.offset = DATA_HEADER_BYTES;
    this.fragmentCount = 0;
    this.fragmentList = [];
    this.header = h;
    this.seq = seq >>> 0;
    this.origin = origin >>> 0;
    this.round = round >>> 0;
  }

  /** Payload bytes one fragment can carry in an empty packet. */
  get emptyRoom(): number {
    return Math.min(this.datagramBytes - DATA_HEADER_BYTES - FRAGMENT_HEADER_BYTES, FRAGMENT_BYTES_MAX);
  }

  /** Room left for one more fragment's payload bytes; -1 when not even a fragment header fits. */
  room(): number {
    const free = this.datagramBytes - this.offset - FRAGMENT_HEADER_BYTES;
    return free < 0 || this.fragmentCount >= 0xffff ? -1 : Math.min(free, FRAGMENT_BYTES_MAX);
  }

  /** Appends `source[start, start+length)` as one fragment; the caller checked `room()`. */
  append(flags: number, source: Uint8Array, start: number, length: number): void {
    if (length < 0 || length > this.room()) throw new RangeError('fragment does not fit');
    this.bytes[this.offset] = flags;
    this.bytes[this.offset + 1] = 0;
    this.view.setUint16(this.offset + 2, length);
    this.offset += FRAGMENT_HEADER_BYTES;
    this.bytes.set(source.subarray(start, start + length), this.offset);
    this.fragmentList.push({ flags, payload: this.bytes.subarray(this.offset, this.offset + length) });
    this.offset += length;
    this.fragmentCount++;
  }

  get fragments(): number {
    return this.fragmentCount;
  }

  finish(): Uint8Array {
    return this.finishPacket().bytes;
  }

  /** The datagram and its decoded form (what decodePacket would return), without re-parsing it. */
  finishPacket(flags = 0): DataPacket {
    const h = this.header;
    if (this.fragmentCount === 0 || h === null) throw new RangeError('data packet without fragments');
    if ((flags & ~DATA_FLAGS_KNOWN) !== 0) throw new RangeError(`data flags 0x${flags.toString(16)}`);
    this.view.setUint16(32, this.fragmentCount);
    this.view.setUint16(34, flags);
    const packet: DataPacket = {
      type: PacketType.DATA,
      sender: h.sender,
      membId: h.membId,
      configHash: h.configHash,
      seq: this.seq,
      origin: this.origin,
      round: this.round,
      flags,
      fragments: this.fragmentList,
      bytes: this.bytes.subarray(0, this.offset),
    };
    // The next packet starts after this one, 8-byte aligned.
    this.slabOffset += (this.offset + 7) & ~7;
    this.header = null;
    return packet;
  }
}

/** Convenience encoder (tests, tools): one DATA packet from whole fragments. */
export function encodeData(
  h: PacketHeader,
  d: { seq: number; origin: number; round: number; fragments: Fragment[] },
  datagramBytes = DATAGRAM_BYTES_MAX,
): Uint8Array {
  const writer = new DataPacketWriter(datagramBytes);
  writer.begin(h, d.seq, d.origin, d.round);
  for (const f of d.fragments) writer.append(f.flags, f.payload, 0, f.payload.length);
  return writer.finish();
}

/** A copy of a DATA datagram re-stamped as a retransmission by `sender`. */
export function retransmissionOf(bytes: Uint8Array, sender: number): Uint8Array {
  const copy = bytes.slice();
  const view = viewOf(copy);
  view.setUint32(4, sender >>> 0);
  view.setUint16(34, view.getUint16(34) | DataFlag.RETRANSMISSION);
  return copy;
}
