/**
 * Turns a byte stream (stdin, a pipe from Apache) into runs of whole lines, each
 * ending in '\n'. A line longer than LINE_BYTES_MAX keeps its first LINE_BYTES_MAX
 * bytes followed by ` [tspread: truncated N bytes]` (N = the bytes cut), so it still
 * fits one message. Bytes are passed through untouched otherwise: binary junk
 * arrives as it was written, cut only at '\n'.
 */
import { LINE_BYTES_MAX } from './wire.js';

const NEWLINE = 0x0a;

/** Whole lines found in a chunk: the bytes and how many lines they hold. */
export interface LineRun {
  bytes: Buffer;
  lines: number;
}

export class LineSplitter {
  readonly #lineBytesMax: number;
  /** The start of an unfinished line (at most lineBytesMax bytes kept). */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** Bytes of the unfinished line beyond lineBytesMax, cut. */
  #cutBytes = 0;
  /** Lines that were truncated so far. */
  truncatedLines = 0;

  constructor(lineBytesMax = LINE_BYTES_MAX) {
    this.#lineBytesMax = lineBytesMax;
  }

  /** The whole lines completed by `chunk` (possibly none). */
  push(chunk: Buffer): LineRun {
    const pieces: Buffer[] = [];
    let lines = 0;
    let start = 0;
    // A run of short lines is passed on as one slice of the chunk.
    let runStart = -1;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      if (this.#partialBytes === 0 && this.#cutBytes === 0 && end - start <= this.#lineBytesMax) {
        if (runStart < 0) runStart = start;
      } else {
        if (runStart >= 0) pieces.push(chunk.subarray(runStart, start));
        runStart = -1;
        this.#keep(chunk.subarray(start, end));
        pieces.push(this.#finishLine());
      }
      lines++;
      start = end + 1;
    }
    if (runStart >= 0) pieces.push(chunk.subarray(runStart, start));
    if (start < chunk.length) this.#keep(chunk.subarray(start));
    return { bytes: pieces.length === 1 ? pieces[0] : Buffer.concat(pieces), lines };
  }

  /** The unfinished last line, ended with '\n' (at end of input). */
  end(): LineRun {
    if (this.#partialBytes === 0 && this.#cutBytes === 0) return { bytes: Buffer.alloc(0), lines: 0 };
    return { bytes: this.#finishLine(), lines: 1 };
  }

  #keep(bytes: Buffer): void {
    const room = this.#lineBytesMax - this.#partialBytes;
    if (bytes.length > room) {
      this.#cutBytes += bytes.length - room;
      bytes = bytes.subarray(0, room);
    }
    if (bytes.length === 0) return;
    // Copy: the chunk's memory may be reused by the stream.
    this.#partial.push(Buffer.from(bytes));
    this.#partialBytes += bytes.length;
  }

  #finishLine(): Buffer {
    const marker = this.#cutBytes > 0 ? ` [tspread: truncated ${this.#cutBytes} bytes]` : '';
    if (this.#cutBytes > 0) this.truncatedLines++;
    const line = Buffer.concat([...this.#partial, Buffer.from(marker + '\n', 'latin1')]);
    this.#partial = [];
    this.#partialBytes = 0;
    this.#cutBytes = 0;
    return line;
  }
}

/** Lines in whole-line bytes. */
export function countLines(bytes: Uint8Array): number {
  let count = 0;
  for (let at = bytes.indexOf(NEWLINE); at >= 0; at = bytes.indexOf(NEWLINE, at + 1)) count++;
  return count;
}
