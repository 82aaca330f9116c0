/**
 * One collector output file: appends lines, batching the writes of one event-loop
 * turn (or BufferSize bytes) into one writev, and reopens the path on demand
 * (SIGHUP after logrotate's `mv`). Writes are synchronous, so a reopen falls
 * between two messages: every line lands in the old file or the new one, once.
 * A file that cannot be opened is reported and its lines are counted as dropped
 * until a reopen succeeds; the other files are not affected.
 */
import * as fs from 'node:fs';
import { errorText, type Logger } from './logger.js';

export class LogFile {
  readonly path: string;
  readonly #bufferSize: number;
  readonly #log: Logger;
  #fd: number | null = null;
  #chunks: Buffer[] = [];
  #chunkBytes = 0;
  #chunkLines = 0;
  #flushQueued = false;
  #droppedSinceReport = 0;
  linesWritten = 0;
  linesDropped = 0;

  constructor(path: string, bufferSize: number, logger: Logger) {
    this.path = path;
    this.#bufferSize = bufferSize;
    this.#log = logger;
  }

  get isOpen(): boolean {
    return this.#fd !== null;
  }

  /** Opens (or reopens) the path for appending; false when it cannot. */
  open(): boolean {
    this.flush();
    this.#closeFd();
    try {
      this.#fd = fs.openSync(this.path, 'a', 0o644);
    } catch (error) {
      this.#log.error({ file: this.path, error: errorText(error), droppedLines: this.linesDropped }, 'cannot open log file: its lines are dropped until a reopen (SIGHUP) succeeds');
      return false;
    }
    if (this.#droppedSinceReport > 0) {
      this.#log.warn({ file: this.path, droppedLines: this.#droppedSinceReport }, 'log file open again; lines dropped while it was not');
      this.#droppedSinceReport = 0;
    }
    return true;
  }

  /** Appends whole lines (each ending in '\n'). */
  write(bytes: Buffer, lines: number): void {
    if (this.#fd === null) {
      this.linesDropped += lines;
      this.#droppedSinceReport += lines;
      return;
    }
    this.#chunks.push(bytes);
    this.#chunkBytes += bytes.length;
    this.#chunkLines += lines;
    if (this.#chunkBytes >= this.#bufferSize) this.flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.#flushQueued = false;
    if (this.#chunks.length === 0 || this.#fd === null) return;
    const chunks = this.#chunks;
    const lines = this.#chunkLines;
    this.#chunks = [];
    this.#chunkBytes = 0;
    this.#chunkLines = 0;
    try {
      writeAll(this.#fd, chunks);
      this.linesWritten += lines;
    } catch (error) {
      this.linesDropped += lines;
      this.#log.error({ file: this.path, lines, error: errorText(error) }, 'write failed: lines dropped');
    }
  }

  close(): void {
    this.flush();
    this.#closeFd();
  }

  #closeFd(): void {
    if (this.#fd === null) return;
    try {
      fs.closeSync(this.#fd);
    } catch {
      // Closing a file we wrote to cannot lose anything more than the write already reported.
    }
    this.#fd = null;
  }
}

function writeAll(fd: number, chunks: Buffer[]): void {
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const written = fs.writevSync(fd, chunks);
  if (written === total) return;
  // A short write (rare on regular files): write the rest in order.
  let skip = written;
  for (const chunk of chunks) {
    if (skip >= chunk.length) {
      skip -= chunk.length;
      continue;
    }
    let rest = chunk.subarray(skip);
    skip = 0;
    while (rest.length > 0) rest = rest.subarray(fs.writeSync(fd, rest));
  }
}
