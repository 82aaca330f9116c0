/**
 * Incremental message framer: accepts a byte stream split anywhere and yields
 * whole messages (§1.3). It never touches a socket. Sizes are checked as soon as a
 * header is complete, so a hostile peer cannot make it buffer more than the caller's bound.
 */
import { GROUP_NAME_BYTES, HEADER_BYTES, ServiceType } from './constants.js';
import { decodeHeader, ProtocolError, type MessageHeader } from './header.js';
import { readGroupNames } from './message.js';

export interface Frame {
  header: MessageHeader;
  /** The whole message as received. */
  bytes: Uint8Array;
  /** Reject messages from a daemon: the original type, marker cleared (§3.6); otherwise null. */
  oldType: number | null;
  groupsOffset: number;
  dataOffset: number;
}

export function frameGroups(frame: Frame): string[] {
  return readGroupNames(frame.bytes, frame.groupsOffset, frame.header.numGroups);
}

export function frameData(frame: Frame): Uint8Array {
  return frame.bytes.subarray(frame.dataOffset, frame.dataOffset + frame.header.dataLen);
}

export interface FramerOptions {
  /** Bound on num_groups. */
  groupsMax: number;
  /** Bound on data_len. */
  dataBytesMax: number;
  /** Bound on 32·num_groups + data_len. */
  bodyBytesMax: number;
  /** True on the client side: REJECT_MESS carries 4 extra bytes after the header. */
  rejectCarriesOldType: boolean;
}

export class Framer {
  private pending: Buffer = Buffer.alloc(0);
  private readonly options: FramerOptions;

  constructor(options: FramerOptions) {
    this.options = options;
  }

  /** Bytes held waiting for the rest of a message. */
  get bufferedBytes(): number {
    return this.pending.length;
  }

  /**
   * Adds bytes and returns every message now complete. Throws ProtocolError on a
   * malformed or oversized header; the stream is unusable afterwards.
   */
  push(chunk: Uint8Array): Frame[] {
    let buffer: Buffer =
      this.pending.length === 0
        ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
        : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    let offset = 0;
    for (;;) {
      const available = buffer.length - offset;
      if (available < HEADER_BYTES) break;
      const header = decodeHeader(buffer, offset);
      this.check(header);
      const hasOldType = this.options.rejectCarriesOldType && (header.type & ServiceType.REJECT_MESS) !== 0;
      const extra = hasOldType ? 4 : 0;
      const total = HEADER_BYTES + extra + header.numGroups * GROUP_NAME_BYTES + header.dataLen;
      if (available < total) break;
      const bytes = buffer.subarray(offset, offset + total);
      let oldType: number | null = null;
      if (hasOldType) {
        const raw = header.littleEndian ? bytes.readUInt32LE(HEADER_BYTES) : bytes.readUInt32BE(HEADER_BYTES);
        oldType = (raw & ~0x80000080) >>> 0;
      }
      const groupsOffset = HEADER_BYTES + extra;
      frames.push({
        header,
        bytes,
        oldType,
        groupsOffset,
        dataOffset: groupsOffset + header.numGroups * GROUP_NAME_BYTES,
      });
      offset += total;
    }
    // Keep only the unfinished tail; copy it so the caller's chunk can be reused.
    this.pending = offset === buffer.length ? Buffer.alloc(0) : Buffer.from(buffer.subarray(offset));
    buffer = this.pending;
    return frames;
  }

  private check(header: MessageHeader): void {
    const { groupsMax, dataBytesMax, bodyBytesMax } = this.options;
    if (header.numGroups < 0 || header.numGroups > groupsMax) {
      throw new ProtocolError(`num_groups ${header.numGroups} outside 0..${groupsMax}`);
    }
    if (header.dataLen < 0 || header.dataLen > dataBytesMax) {
      throw new ProtocolError(`data_len ${header.dataLen} outside 0..${dataBytesMax}`);
    }
    const body = header.numGroups * GROUP_NAME_BYTES + header.dataLen;
    if (body > bodyBytesMax) throw new ProtocolError(`message body ${body} bytes exceeds ${bodyBytesMax}`);
  }
}
