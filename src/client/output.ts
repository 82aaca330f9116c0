/**
 * Outgoing bytes of a session. Requests made in one tick are encoded straight
 * into a shared arena and handed to the socket as one write at the end of the
 * tick: one syscall and no per-message buffers, which is what makes a flooding
 * sender fast. Bytes handed to the socket are never touched again; a full arena
 * is simply replaced.
 */
import type { Socket } from 'node:net';

const ARENA_BYTES = 256 * 1024;
/** Above this many unsent bytes (ours plus the socket's), a sender should wait for drained(). */
export const OUTPUT_BYTES_HIGH_WATER = 1024 * 1024;

export class OutputBatch {
  #arena = Buffer.allocUnsafe(ARENA_BYTES);
  #start = 0;
  #end = 0;
  #scheduled = false;
  readonly #flushAtTickEnd = () => {
    this.#scheduled = false;
    this.flush();
  };

  constructor(private readonly socket: Socket) {}

  /** Reserves `size` bytes of `buffer` and returns their offset; they go out at the end of this tick. */
  reserve(size: number): number {
    if (this.#end + size > this.#arena.length) {
      this.flush();
      this.#arena = Buffer.allocUnsafe(Math.max(ARENA_BYTES, size));
      this.#start = 0;
      this.#end = 0;
    }
    const offset = this.#end;
    this.#end += size;
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#flushAtTickEnd);
    }
    return offset;
  }

  /** The arena the last reserve() returned an offset into. */
  get buffer(): Buffer {
    return this.#arena;
  }

  /** Bytes reserved but not yet handed to the socket. */
  get pendingBytes(): number {
    return this.#end - this.#start;
  }

  /** True while the session should not queue much more output. */
  get full(): boolean {
    return this.pendingBytes + this.socket.writableLength >= OUTPUT_BYTES_HIGH_WATER;
  }

  /** Hands the reserved bytes to the socket now. */
  flush(): void {
    if (this.#end === this.#start) return;
    const bytes = this.#arena.subarray(this.#start, this.#end);
    this.#start = this.#end;
    if (!this.socket.destroyed) this.socket.write(bytes);
  }
}
