/**
 * Incremental message framer: accepts a byte stream split anywhere and yields
 * whole messages (§1.3). It never touches a socket. Sizes are checked as soon as a
 * header is complete, so a hostile peer cannot make it buffer more than the caller's bound.
 */
import { ENDIAN_MARKER, GROUP_NAME_BYTES, HEADER_BYTES, ServiceType } from './constants.js';
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
  /** The message begun in an earlier chunk: `partial[0, filled)`, sized to the whole message once its header is known. */
  private partial: Buffer = Buffer.alloc(0);
  private filled = 0;
  private readonly options: FramerOptions;

  constructor(options: FramerOptions) {
    this.options = options;
  }

  /** Bytes held waiting for the rest of a message. */
  get bufferedBytes(): number {
    return this.filled;
  }

  /**
   * Adds bytes and returns every message now complete. Throws ProtocolError on a
   * malformed or oversized header; the stream is unusable afterwards.
   * Complete messages inside `chunk` are returned as views of it, without copying.
   */
  push(chunk: Uint8Array): Frame[] {
    const input = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const frames: Frame[] = [];
    let offset = 0;
    // First finish the message begun earlier, copying only its own bytes.
    while (this.filled > 0 && offset < input.length) {
      const target = this.filled < HEADER_BYTES ? HEADER_BYTES : this.measure(this.partial, 0).total;
      const take = Math.min(target - this.filled, input.length - offset);
      this.reserve(this.filled + take);
      input.copy(this.partial, this.filled, offset, offset + take);
      this.filled += take;
      offset += take;
      if (this.filled < HEADER_BYTES) break;
      const measured = this.measure(this.partial, 0);
      if (this.filled === measured.total) {
        frames.push(this.frameAt(this.partial, 0, measured));
        this.partial = Buffer.alloc(0);
        this.filled = 0;
      } else {
        this.reserve(measured.total);
      }
    }
    for (;;) {
      const available = input.length - offset;
      if (available < HEADER_BYTES) break;
      const measured = this.measure(input, offset);
      if (available < measured.total) break;
      frames.push(this.frameAt(input, offset, measured));
      offset += measured.total;
    }
    if (this.filled === 0 && offset < input.length) {
      // Keep the unfinished tail; copy it so the caller's chunk can be reused.
      const tail = input.subarray(offset);
      const total = tail.length >= HEADER_BYTES ? this.measure(tail, 0).total : HEADER_BYTES;
      this.partial = Buffer.allocUnsafe(Math.max(total, tail.length));
      tail.copy(this.partial, 0);
      this.filled = tail.length;
    }
    return frames;
  }

  /** Grows `partial` to hold `size` bytes, keeping what it holds. */
  private reserve(size: number): void {
    if (this.partial.length >= size) return;
    const grown = Buffer.allocUnsafe(size);
    this.partial.copy(grown, 0, 0, this.filled);
    this.partial = grown;
  }

  /** Decodes and checks the header at `offset`; `total` is the whole message's length. */
  private measure(buffer: Buffer, offset: number): { header: MessageHeader; total: number; extra: number } {
    const header = decodeHeader(buffer, offset);
    this.check(header);
    const hasOldType = this.options.rejectCarriesOldType && (header.type & ServiceType.REJECT_MESS) !== 0;
    const extra = hasOldType ? 4 : 0;
    return { header, extra, total: HEADER_BYTES + extra + header.numGroups * GROUP_NAME_BYTES + header.dataLen };
  }

  private frameAt(buffer: Buffer, offset: number, measured: { header: MessageHeader; total: number; extra: number }): Frame {
    const { header, total, extra } = measured;
    const bytes = buffer.subarray(offset, offset + total);
    let oldType: number | null = null;
    if (extra > 0) {
      const raw = header.littleEndian ? bytes.readUInt32LE(HEADER_BYTES) : bytes.readUInt32BE(HEADER_BYTES);
      oldType = (raw & ~ENDIAN_MARKER) >>> 0;
    }
    const groupsOffset = HEADER_BYTES + extra;
    return {
      header,
      bytes,
      oldType,
      groupsOffset,
      dataOffset: groupsOffset + header.numGroups * GROUP_NAME_BYTES,
    };
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
