/**
 * The replicated state of one queue, free of I/O: every member of the queue's
 * group applies the same operations in the same (AGREED) order, so every member
 * makes the same assignment of each message to a consumer with no coordinator.
 *
 * - A published record gets the next id and goes to the next registered consumer,
 *   round robin, that has fewer than `prefetch` unacknowledged messages; when none
 *   has room it waits in order.
 * - An ack (from the owner) removes the record and frees room; a nack puts it back
 *   (dropped after `maxDeliveries`).
 * - A view without a consumer unregisters it and its unacknowledged records go
 *   back to the front of the line (in id order), to be handed to another consumer
 *   with their delivery count raised.
 * - A record whose idempotency key was published recently is dropped, so a
 *   producer's retry does not queue it twice.
 * - Bounds: `maxRecords` and `maxBytes`; a publish past them is dropped (counted).
 */
import { PUBLISH } from './operations.js';

export interface QueueEntry {
  readonly id: number;
  /** The encoded record is `length` bytes at `offset` of `batch` (no view per record: fewer allocations). */
  readonly batch: Uint8Array;
  readonly offset: number;
  readonly length: number;
  /** The consumer it is assigned to, or null while it waits. */
  owner: string | null;
  /** How many times it was assigned (1 on first delivery). */
  deliveries: number;
}

interface Consumer {
  readonly name: string;
  prefetch: number;
  inflight: number;
}

export interface QueueLimits {
  maxRecords: number;
  maxBytes: number;
  maxDeliveries: number;
  /** How many recent idempotency keys are remembered. */
  keyMemory: number;
}

export const DEFAULT_LIMITS: QueueLimits = { maxRecords: 1_000_000, maxBytes: 512 * 1024 * 1024, maxDeliveries: 10, keyMemory: 100_000 };

export interface QueueCounters {
  published: number;
  acknowledged: number;
  duplicates: number;
  overflowed: number;
  deadLettered: number;
}

export class QueueState {
  readonly limits: QueueLimits;
  /** Called for every assignment, to any consumer (the caller picks its own). */
  onAssign: (entry: QueueEntry) => void = () => {};
  /**
   * Records by id. Ids are handed out densely and in order, so an array starting at
   * the oldest id still queued replaces a Map (whose hashing and rehashing were the
   * largest share of a consumer's CPU in publish and ack). Invariant:
   * #base + #slots.length === #nextId; slots before #head are all empty.
   */
  #slots: (QueueEntry | undefined)[] = [];
  #base = 1;
  #head = 0;
  #count = 0;
  /** Waiting records: redelivered ones first, then new ones; each an array read from a head index. */
  #retry: QueueEntry[] = [];
  #retryHead = 0;
  #waiting: QueueEntry[] = [];
  #waitingHead = 0;
  #consumers: Consumer[] = [];
  /** The same consumers by name (an ack looks its owner up once per record). */
  #byName = new Map<string, Consumer>();
  #next = 0;
  #nextId = 1;
  #bytes = 0;
  #keys = new Set<string>();
  #keyOrder: string[] = [];
  #keyHead = 0;
  counters: QueueCounters = { published: 0, acknowledged: 0, duplicates: 0, overflowed: 0, deadLettered: 0 };

  constructor(limits: Partial<QueueLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  get size(): number {
    return this.#count;
  }

  get waiting(): number {
    return this.#retry.length - this.#retryHead + this.#waiting.length - this.#waitingHead;
  }

  get consumers(): readonly string[] {
    return this.#consumers.map((consumer) => consumer.name);
  }

  entry(id: number): QueueEntry | undefined {
    const index = id - this.#base;
    return index >= this.#head && index < this.#slots.length ? this.#slots[index] : undefined;
  }

  /** The records assigned to `name` and not acknowledged, in id order. */
  ownedBy(name: string): QueueEntry[] {
    const owned: QueueEntry[] = [];
    for (const entry of this.#queued()) if (entry.owner === name) owned.push(entry);
    return owned;
  }

  /** Every queued record, in id order. */
  *#queued(): Generator<QueueEntry> {
    for (let index = this.#head; index < this.#slots.length; index++) {
      const entry = this.#slots[index];
      if (entry !== undefined) yield entry;
    }
  }

  /** Counts in-flight records per consumer (for checks and stats). */
  inflight(name: string): number {
    return this.#byName.get(name)?.inflight ?? 0;
  }

  /** Queues the record at `offset` of `batch` (`length` bytes; default: all of it). */
  publish(batch: Uint8Array, key: string | null, offset = 0, length = batch.length - offset): void {
    this.counters.published++;
    if (key !== null && this.#keys.has(key)) {
      this.counters.duplicates++;
      return;
    }
    if (this.#count >= this.limits.maxRecords || this.#bytes + length > this.limits.maxBytes) {
      this.counters.overflowed++;
      return;
    }
    // Remembered only once queued, so a retry after an overflow is not taken for a duplicate.
    if (key !== null) this.#rememberKey(key);
    const entry: QueueEntry = { id: this.#nextId++, batch, offset, length, owner: null, deliveries: 0 };
    this.#slots.push(entry);
    this.#count++;
    this.#bytes += length;
    if (this.waiting === 0) {
      const consumer = this.#pickConsumer();
      if (consumer !== null) {
        this.#assign(entry, consumer);
        return;
      }
    }
    this.#waiting.push(entry);
  }

  /** A consumer announces itself (again: its prefetch changes). */
  register(name: string, prefetch: number): void {
    const known = this.#byName.get(name);
    if (known !== undefined) known.prefetch = prefetch;
    else this.#addConsumer({ name, prefetch, inflight: 0 });
    this.#dispatch();
  }

  /** The group's current members: consumers not among them leave, their records go back in line. */
  setMembers(members: readonly string[]): void {
    const present = new Set(members);
    const leaving = this.#consumers.filter((consumer) => !present.has(consumer.name));
    if (leaving.length === 0) return;
    this.#consumers = this.#consumers.filter((consumer) => present.has(consumer.name));
    for (const consumer of leaving) this.#byName.delete(consumer.name);
    this.#next = 0;
    const names = new Set(leaving.map((consumer) => consumer.name));
    const returned: QueueEntry[] = [];
    for (const entry of this.#queued()) {
      if (entry.owner !== null && names.has(entry.owner)) {
        entry.owner = null;
        returned.push(entry);
      }
    }
    this.#retry = [...returned, ...this.#retry.slice(this.#retryHead)];
    this.#retryHead = 0;
    this.#dispatch();
  }

  ack(name: string, ids: ArrayLike<number>): void {
    // The owner is looked up once per ack, not once per record.
    const consumer = this.#byName.get(name);
    let acknowledged = 0;
    for (let index = 0; index < ids.length; index++) {
      const entry = this.entry(ids[index]!);
      if (entry === undefined || entry.owner !== name) continue;
      if (consumer !== undefined) consumer.inflight--;
      entry.owner = null;
      this.#drop(entry);
      acknowledged++;
    }
    this.counters.acknowledged += acknowledged;
    this.#dispatch();
  }

  /** The owner gives records back (its handler failed): they go to the back of the redelivery line. */
  nack(name: string, ids: ArrayLike<number>): void {
    for (let index = 0; index < ids.length; index++) {
      const entry = this.entry(ids[index]!);
      if (entry === undefined || entry.owner !== name) continue;
      this.#release(entry);
      if (entry.deliveries >= this.limits.maxDeliveries) {
        this.#drop(entry);
        this.counters.deadLettered++;
      } else this.#retry.push(entry);
    }
    this.#dispatch();
  }

  /** Empties the record's slot and moves #head past the empty ones (compacting now and then). */
  #drop(entry: QueueEntry): void {
    this.#slots[entry.id - this.#base] = undefined;
    this.#count--;
    this.#bytes -= entry.length;
    const slots = this.#slots;
    while (this.#head < slots.length && slots[this.#head] === undefined) this.#head++;
    if (this.#head === slots.length) {
      this.#base += slots.length;
      this.#slots = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > slots.length) {
      this.#slots = slots.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
  }

  #addConsumer(consumer: Consumer): void {
    this.#consumers.push(consumer);
    this.#byName.set(consumer.name, consumer);
  }

  #release(entry: QueueEntry): void {
    const owner = entry.owner === null ? undefined : this.#byName.get(entry.owner);
    if (owner !== undefined) owner.inflight--;
    entry.owner = null;
  }

  #rememberKey(key: string): void {
    this.#keys.add(key);
    this.#keyOrder.push(key);
    if (this.#keyOrder.length - this.#keyHead > this.limits.keyMemory) {
      this.#keys.delete(this.#keyOrder[this.#keyHead]!);
      this.#keyHead++;
      if (this.#keyHead > 4096 && this.#keyHead * 2 > this.#keyOrder.length) {
        this.#keyOrder = this.#keyOrder.slice(this.#keyHead);
        this.#keyHead = 0;
      }
    }
  }

  /** The next consumer with room, round robin from the one after the last pick. */
  #pickConsumer(): Consumer | null {
    const count = this.#consumers.length;
    for (let step = 0; step < count; step++) {
      const consumer = this.#consumers[(this.#next + step) % count]!;
      if (consumer.inflight < consumer.prefetch) {
        this.#next = (this.#next + step + 1) % count;
        return consumer;
      }
    }
    return null;
  }

  #assign(entry: QueueEntry, consumer: Consumer): void {
    entry.owner = consumer.name;
    entry.deliveries++;
    consumer.inflight++;
    this.onAssign(entry);
  }

  #takeWaiting(): QueueEntry | undefined {
    if (this.#retryHead < this.#retry.length) {
      const entry = this.#retry[this.#retryHead++]!;
      if (this.#retryHead === this.#retry.length) (this.#retry = []), (this.#retryHead = 0);
      return entry;
    }
    if (this.#waitingHead < this.#waiting.length) {
      const entry = this.#waiting[this.#waitingHead++]!;
      if (this.#waitingHead === this.#waiting.length) (this.#waiting = []), (this.#waitingHead = 0);
      else if (this.#waitingHead > 4096 && this.#waitingHead * 2 > this.#waiting.length) {
        this.#waiting = this.#waiting.slice(this.#waitingHead);
        this.#waitingHead = 0;
      }
      return entry;
    }
    return undefined;
  }

  #dispatch(): void {
    while (this.waiting > 0) {
      const consumer = this.#pickConsumer();
      if (consumer === null) return;
      const entry = this.#takeWaiting()!;
      // A record dropped (dead-lettered) while it waited is skipped.
      if (this.entry(entry.id) !== entry) continue;
      this.#assign(entry, consumer);
    }
  }

  /**
   * Every unacknowledged record as PUBLISH batches of at most `maxBytes`, in id order: after a
   * partition, one side's state replaces the other's, and the losing side sends its records again
   * (records the winner has twice are redelivered: at least once; idempotency keys drop repeats).
   */
  republishBatches(maxBytes: number): Buffer[] {
    const batches: Buffer[] = [];
    let parts: Uint8Array[] = [Buffer.from([PUBLISH])];
    let size = 1;
    for (const entry of this.#queued()) {
      if (size > 1 && size + 4 + entry.length > maxBytes) {
        batches.push(Buffer.concat(parts, size));
        parts = [Buffer.from([PUBLISH])];
        size = 1;
      }
      const length = Buffer.alloc(4);
      length.writeUInt32LE(entry.length);
      parts.push(length, recordOf(entry));
      size += 4 + entry.length;
    }
    if (size > 1) batches.push(Buffer.concat(parts, size));
    return batches;
  }

  /** The whole state, so a joining member continues exactly where the group is. */
  snapshot(): Buffer {
    const entries = [...this.#queued()];
    const meta = {
      nextId: this.#nextId,
      next: this.#next,
      consumers: this.#consumers.map((consumer) => [consumer.name, consumer.prefetch]),
      entries: entries.map((entry) => [entry.id, entry.owner, entry.deliveries, entry.length]),
      retry: this.#retry.slice(this.#retryHead).map((entry) => entry.id),
      waiting: this.#waiting.slice(this.#waitingHead).map((entry) => entry.id),
      keys: this.#keyOrder.slice(this.#keyHead),
      counters: this.counters,
    };
    const head = Buffer.from(JSON.stringify(meta), 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(head.length);
    return Buffer.concat([length, head, ...entries.map(recordOf)]);
  }

  restore(snapshot: Buffer): void {
    const headLength = snapshot.readUInt32LE(0);
    const meta = JSON.parse(snapshot.toString('utf8', 4, 4 + headLength)) as {
      nextId: number;
      next: number;
      consumers: [string, number][];
      entries: [number, string | null, number, number][];
      retry: number[];
      waiting: number[];
      keys: string[];
      counters: QueueCounters;
    };
    this.#nextId = meta.nextId;
    this.#next = meta.next;
    this.#consumers = [];
    this.#byName.clear();
    for (const [name, prefetch] of meta.consumers) this.#addConsumer({ name, prefetch, inflight: 0 });
    this.#slots = [];
    this.#base = meta.entries[0]?.[0] ?? meta.nextId;
    this.#head = 0;
    this.#count = 0;
    this.#bytes = 0;
    let at = 4 + headLength;
    for (const [id, owner, deliveries, length] of meta.entries) {
      const entry: QueueEntry = { id, batch: snapshot, offset: at, length, owner, deliveries };
      at += length;
      while (this.#base + this.#slots.length < id) this.#slots.push(undefined);
      this.#slots.push(entry);
      this.#count++;
      this.#bytes += length;
      const consumer = owner === null ? undefined : this.#byName.get(owner);
      if (consumer !== undefined) consumer.inflight++;
    }
    while (this.#base + this.#slots.length < this.#nextId) this.#slots.push(undefined);
    this.#retry = meta.retry.map((id) => this.entry(id)!);
    this.#retryHead = 0;
    this.#waiting = meta.waiting.map((id) => this.entry(id)!);
    this.#waitingHead = 0;
    this.#keyOrder = meta.keys;
    this.#keyHead = 0;
    this.#keys = new Set(meta.keys);
    this.counters = meta.counters;
  }
}

/** The bytes of an entry's record (a view). */
export function recordOf(entry: QueueEntry): Uint8Array {
  return entry.batch.subarray(entry.offset, entry.offset + entry.length);
}
