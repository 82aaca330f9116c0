/**
 * Producer-side batching: records sent in one turn of the event loop to the same
 * group travel in as few Spread messages as fit (BATCH_BYTES_MAX each). One
 * reusable buffer per destination and one setImmediate per turn, so a producer
 * pays per Spread message, not per record.
 */
import type { Session } from '../../client/index.js';
import { BATCH_BYTES_MAX } from './envelope.js';

/**
 * A batch is sent once it holds this much: a Spread message that spans several
 * socket reads (64 KiB) is copied whole by the receiver's framer, one that fits
 * in one read is not (measured: the copy was 12–15% of a consumer's CPU with full
 * 140 KB batches). A larger record still goes, alone, up to BATCH_BYTES_MAX.
 */
export const BATCH_TARGET_BYTES = 16 * 1024;

interface PendingBatch {
  group: string;
  messType: number;
  buffer: Buffer;
  length: number;
}

export class Batcher {
  readonly #session: Session;
  readonly #batches = new Map<string, PendingBatch>();
  /** The batch of the previous add(): a producer mostly sends to one queue. */
  #last: PendingBatch | null = null;
  #scheduled = false;
  /** False after a multicast found the socket's buffer full: the caller should await drained(). */
  #writable = true;

  constructor(session: Session) {
    this.#session = session;
  }

  /** Queues `record` for `group`, behind the one-byte operation `opCode`; returns false under back-pressure. */
  add(group: string, messType: number, opCode: number, record: Uint8Array): boolean {
    let batch = this.#last;
    if (batch === null || batch.group !== group || batch.messType !== messType) {
      const key = `${messType} ${group}`;
      batch = this.#batches.get(key) ?? null;
      if (batch === null) {
        batch = { group, messType, buffer: Buffer.allocUnsafe(BATCH_BYTES_MAX), length: 0 };
        this.#batches.set(key, batch);
      }
      this.#last = batch;
    }
    if (batch.length > 0 && batch.length + 4 + record.length > BATCH_TARGET_BYTES) this.#send(batch);
    if (batch.length === 0) batch.buffer[batch.length++] = opCode;
    batch.buffer.writeUInt32LE(record.length, batch.length);
    batch.buffer.set(record, batch.length + 4);
    batch.length += 4 + record.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
    return this.#writable;
  }

  /** Sends every partial batch now; returns false under back-pressure. */
  flush(): boolean {
    this.#scheduled = false;
    this.#writable = true;
    for (const batch of this.#batches.values()) if (batch.length > 0) this.#send(batch);
    return this.#writable;
  }

  async drained(): Promise<void> {
    this.flush();
    await this.#session.drained();
  }

  #send(batch: PendingBatch): void {
    const bytes = batch.buffer.subarray(0, batch.length);
    batch.length = 0;
    if (this.#session.isClosed) return;
    if (!this.#session.multicast(batch.group, bytes, { service: 'agreed', messType: batch.messType })) this.#writable = false;
  }
}
