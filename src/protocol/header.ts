/**
 * The 48-byte message header (§3.1) and byte-order handling (§3.2).
 *
 * Integers are in the writer's byte order; a little-endian writer ORs the marker
 * 0x80000080 into `type` and `hint`. `hint` is carried as its raw four bytes
 * (`hintRaw`, read little-endian) because the daemon never converts it: the
 * receiving library learns the original sender's byte order from it.
 */
import { ENDIAN_MARKER, GROUP_NAME_BYTES, HEADER_BYTES } from './constants.js';
import { readFixedName, writeFixedName } from './names.js';

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export interface MessageHeader {
  /** `type` with the endian marker cleared. */
  type: number;
  /** Byte order of whoever wrote this header. */
  littleEndian: boolean;
  /** Sender's private group, or the group name for membership messages. */
  sender: string;
  numGroups: number;
  /** The raw four `hint` bytes, read little-endian; written back the same way they reproduce the bytes. */
  hintRaw: number;
  dataLen: number;
}

/** Byte order of a 32-bit field from its marker bits: true = LE, false = BE; throws on a mixed marker. */
export function markerByteOrder(bytes: Uint8Array, offset: number): boolean {
  const first = bytes[offset] & 0x80;
  const last = bytes[offset + 3] & 0x80;
  if (first !== 0 && last !== 0) return true;
  if (first === 0 && last === 0) return false;
  throw new ProtocolError('malformed endian marker');
}

function readInt32(view: DataView, offset: number, littleEndian: boolean): number {
  return view.getInt32(offset, littleEndian);
}

export function decodeHeader(bytes: Uint8Array, offset = 0): MessageHeader {
  if (bytes.length - offset < HEADER_BYTES) throw new ProtocolError('short header');
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, HEADER_BYTES);
  const littleEndian = markerByteOrder(bytes, offset);
  const type = (view.getUint32(0, littleEndian) & ~ENDIAN_MARKER) >>> 0;
  return {
    type,
    littleEndian,
    sender: readFixedName(bytes, offset + 4),
    numGroups: readInt32(view, 36, littleEndian),
    hintRaw: view.getUint32(40, true),
    dataLen: readInt32(view, 44, littleEndian),
  };
}

export interface HeaderFields {
  type: number;
  sender: string;
  numGroups: number;
  hintRaw: number;
  dataLen: number;
}

/** Writes a header at `offset`; `type` gets the marker when writing little-endian. */
export function encodeHeaderInto(target: Uint8Array, offset: number, fields: HeaderFields, littleEndian = true): void {
  const view = new DataView(target.buffer, target.byteOffset + offset, HEADER_BYTES);
  const type = littleEndian ? (fields.type | ENDIAN_MARKER) >>> 0 : fields.type & ~ENDIAN_MARKER;
  view.setUint32(0, type >>> 0, littleEndian);
  writeFixedName(target, offset + 4, fields.sender, GROUP_NAME_BYTES);
  view.setInt32(36, fields.numGroups, littleEndian);
  view.setUint32(40, fields.hintRaw >>> 0, true);
  view.setInt32(44, fields.dataLen, littleEndian);
}

/** The `hint` a writer of the given byte order puts on the wire for `messType` (§3.5), as raw LE-read bytes. */
export function encodeHint(messType: number, littleEndian = true): number {
  const value = ((messType & 0xffff) << 8) >>> 0;
  if (littleEndian) return (value | ENDIAN_MARKER) >>> 0;
  return byteSwap32(value);
}

export interface DecodedHint {
  messType: number;
  /** True when the hint's writer had the other byte order than `receiverLittleEndian`. */
  endianMismatch: boolean;
}

/** Recovers `mess_type` (signed 16-bit) and the endian mismatch flag from raw hint bytes (§3.2, §3.5). */
export function decodeHint(hintRaw: number, receiverLittleEndian = true): DecodedHint {
  const writerLittleEndian = (hintRaw & 0x80) !== 0 && (hintRaw & 0x80000000) !== 0;
  const value = writerLittleEndian ? hintRaw : byteSwap32(hintRaw);
  const cleared = (value & ~ENDIAN_MARKER) >>> 0;
  const unsigned = (cleared >>> 8) & 0xffff;
  return {
    messType: unsigned >= 0x8000 ? unsigned - 0x10000 : unsigned,
    endianMismatch: writerLittleEndian !== receiverLittleEndian,
  };
}

export function byteSwap32(value: number): number {
  return (
    (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | ((value >>> 24) & 0xff)) >>> 0
  );
}
