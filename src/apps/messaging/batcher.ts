/**
 * Producer-side batching: records sent in one turn of the event loop to the same
 * group travel in as few Spread messages as fit (BATCH_BYTES_MAX each). One
 * reusable buffer per destination and one setImmediate per turn, so a producer
 * pays per Spread message, not per record.
 *
 * Flow control: after every MARK_EVERY_BYTES sent the producer multicasts a tiny
 * AGREED mark to its own private group. It comes back once the ring has ordered
 * it, so after everything the producer sent before it. With MARKS_IN_FLIGHT_MAX
 * marks out, add() and flush() return false and drained() waits for a mark: a
 * producer stays at most ~1 MiB ahead of the ring instead of piling megabytes
 * into its daemon, where a consumer's acknowledgement (and with it its room in
 * the prefetch window) would wait behind them.
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

/** The message type of flow-control marks (ignored by everyone but their sender). */
export const MARK_TYPE = 43;
const MARK_EVERY_BYTES = 256 * 1024;
const MARKS_IN_FLIGHT_MAX = 4;
const MARK = new Uint8Array(1);

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
  #bytesSinceMark = 0;
  #marksInFlight = 0;
  /** drained() callers waiting for a mark to come back. */
  #markWaiters: (() => void)[] = [];

  constructor(session: Session) {
    this.#session = session;
    void session.closed().then(() => this.#wakeMarkWaiters());
  }

  /** One of this producer's marks came back (the session's message handler calls it). */
  markReturned(): void {
    if (this.#marksInFlight > 0) this.#marksInFlight--;
    this.#wakeMarkWaiters();
  }

  get #aheadOfRing(): boolean {
    return this.#marksInFlight >= MARKS_IN_FLIGHT_MAX && !this.#session.isClosed;
  }

  #wakeMarkWaiters(): void {
    const waiters = this.#markWaiters;
    this.#markWaiters = [];
    for (const wake of waiters) wake();
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
    return this.#writable && !this.#aheadOfRing;
  }

  /** Sends every partial batch now; returns false under back-pressure. */
  flush(): boolean {
    this.#scheduled = false;
    this.#writable = true;
    for (const batch of this.#batches.values()) if (batch.length > 0) this.#send(batch);
    return this.#writable && !this.#aheadOfRing;
  }

  /** Sends what is batched; resolves once the daemon has taken it and the producer is not too far ahead of the ring. */
  async drained(): Promise<void> {
    this.flush();
    await this.#session.drained();
    this.#writable = true;
    while (this.#aheadOfRing) await new Promise<void>((resolve) => this.#markWaiters.push(resolve));
  }

  #send(batch: PendingBatch): void {
    const bytes = batch.buffer.subarray(0, batch.length);
    batch.length = 0;
    if (this.#session.isClosed) return;
    if (!this.#session.multicast(batch.group, bytes, { service: 'agreed', messType: batch.messType })) this.#writable = false;
    this.#bytesSinceMark += bytes.length;
    if (this.#bytesSinceMark >= MARK_EVERY_BYTES) {
      this.#bytesSinceMark = 0;
      this.#marksInFlight++;
      this.#session.multicast(this.#session.privateGroup, MARK, { service: 'agreed', messType: MARK_TYPE });
    }
  }
}
