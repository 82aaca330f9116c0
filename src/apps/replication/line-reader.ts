/**
 * Splits a byte stream into UTF-8 lines without ever holding more than `lineBytesMax` bytes
 * of one line: a longer line is skipped and reported by its length, so a runaway input
 * cannot exhaust the replica's memory.
 */
const NEWLINE = 0x0a;

export interface LineHandlers {
  line: (text: string) => void;
  oversized: (bytes: number) => void;
}

export class BoundedLineSplitter {
  readonly #lineBytesMax: number;
  readonly #handlers: LineHandlers;
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** Bytes of the current line so far when it is already too long (its content is dropped). */
  #skippedBytes = 0;

  constructor(lineBytesMax: number, handlers: LineHandlers) {
    this.#lineBytesMax = lineBytesMax;
    this.#handlers = handlers;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
      this.#take(chunk.subarray(start, end));
      this.#finish();
      start = end + 1;
    }
    if (start < chunk.length) this.#take(chunk.subarray(start));
  }

  /** The input ended: an unfinished last line counts as a line. */
  end(): void {
    if (this.#partialBytes > 0 || this.#skippedBytes > 0) this.#finish();
  }

  #take(piece: Buffer): void {
    if (this.#skippedBytes > 0) {
      this.#skippedBytes += piece.length;
    } else if (this.#partialBytes + piece.length > this.#lineBytesMax) {
      this.#skippedBytes = this.#partialBytes + piece.length;
      this.#partial = [];
      this.#partialBytes = 0;
    } else if (piece.length > 0) {
      this.#partial.push(Buffer.from(piece));
      this.#partialBytes += piece.length;
    }
  }

  #finish(): void {
    if (this.#skippedBytes > 0) this.#handlers.oversized(this.#skippedBytes);
    else this.#handlers.line(Buffer.concat(this.#partial, this.#partialBytes).toString('utf8').replace(/\r$/, ''));
    this.#partial = [];
    this.#partialBytes = 0;
    this.#skippedBytes = 0;
  }
}
