/**
 * A deterministic, byte-capped key/value map for replication in total order:
 * every replica that applies the same operations in the same order ends in the
 * same state. Hence nothing here reads the local clock or depends on reads:
 *
 * - an operation carries its sender's time (`atMs`) and, for stores, an absolute
 *   expiry; expired entries are dropped only when an operation's time passes them;
 * - eviction order is write order (least recently stored first), since gets are
 *   local and replicas could not agree on them;
 * - `cas` values come from a counter of applied stores, carried in snapshots.
 *
 * Reads take the caller's clock and never return an expired entry.
 */
export type StoreMode = 'set' | 'add' | 'replace';

export interface MapEntry {
  value: Buffer;
  flags: number;
  /** Absolute expiry in ms since the epoch; 0 = never. */
  expiresAtMs: number;
  cas: number;
}

export type MapOperation =
  | { kind: StoreMode; key: string; value: Buffer; flags: number; expiresAtMs: number; atMs: number }
  | { kind: 'delete'; key: string; atMs: number };

export type ApplyResult = 'stored' | 'not-stored' | 'deleted' | 'not-found' | 'too-large';

/** Bytes charged per entry besides key and value (bookkeeping), as memcached charges its item header. */
export const ENTRY_OVERHEAD_BYTES = 48;

export interface MapStats {
  entries: number;
  bytes: number;
  limitBytes: number;
  evictions: number;
  expiredDropped: number;
}

export class ReplicatedMap {
  readonly limitBytes: number;
  /** Insertion order of a JS Map is the eviction order: a store moves its key to the end. */
  readonly #entries = new Map<string, MapEntry>();
  #bytes = 0;
  #casCounter = 0;
  #evictions = 0;
  #expiredDropped = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  /** The live entry for `key` at `nowMs`, or undefined. */
  get(key: string, nowMs: number): MapEntry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined || isExpired(entry, nowMs)) return undefined;
    return entry;
  }

  get stats(): MapStats {
    return { entries: this.#entries.size, bytes: this.#bytes, limitBytes: this.limitBytes, evictions: this.#evictions, expiredDropped: this.#expiredDropped };
  }

  apply(operation: MapOperation): ApplyResult {
    this.#dropExpiredHead(operation.atMs);
    const current = this.#entries.get(operation.key);
    const live = current !== undefined && !isExpired(current, operation.atMs);
    if (operation.kind === 'delete') {
      if (current !== undefined) this.#remove(operation.key, current);
      return live ? 'deleted' : 'not-found';
    }
    if ((operation.kind === 'add' && live) || (operation.kind === 'replace' && !live)) return 'not-stored';
    const size = entrySize(operation.key, operation.value);
    if (size > this.limitBytes) return 'too-large';
    if (current !== undefined) this.#remove(operation.key, current);
    while (this.#bytes + size > this.limitBytes) this.#evictOldest();
    this.#casCounter += 1;
    this.#entries.set(operation.key, { value: operation.value, flags: operation.flags, expiresAtMs: operation.expiresAtMs, cas: this.#casCounter });
    this.#bytes += size;
    return 'stored';
  }

  /** Every entry (expired ones too, so replicas restoring it agree byte for byte) and the counters. */
  snapshot(): Buffer {
    const parts: Buffer[] = [];
    const head = Buffer.alloc(12);
    head.writeDoubleLE(this.#casCounter, 0);
    head.writeUInt32LE(this.#entries.size, 8);
    parts.push(head);
    for (const [key, entry] of this.#entries) {
      const keyBytes = Buffer.from(key, 'latin1');
      const fields = Buffer.alloc(2 + 4 + 8 + 8 + 4);
      fields.writeUInt16LE(keyBytes.length, 0);
      fields.writeUInt32LE(entry.flags, 2);
      fields.writeDoubleLE(entry.expiresAtMs, 6);
      fields.writeDoubleLE(entry.cas, 14);
      fields.writeUInt32LE(entry.value.length, 22);
      parts.push(fields, keyBytes, entry.value);
    }
    return Buffer.concat(parts);
  }

  /** Replaces the whole content with a snapshot's (evictions and expiries counted here stay). */
  restore(snapshot: Buffer): void {
    this.#entries.clear();
    this.#bytes = 0;
    this.#casCounter = snapshot.readDoubleLE(0);
    const count = snapshot.readUInt32LE(8);
    let offset = 12;
    for (let index = 0; index < count; index++) {
      const keyLength = snapshot.readUInt16LE(offset);
      const flags = snapshot.readUInt32LE(offset + 2);
      const expiresAtMs = snapshot.readDoubleLE(offset + 6);
      const cas = snapshot.readDoubleLE(offset + 14);
      const valueLength = snapshot.readUInt32LE(offset + 22);
      offset += 26;
      const key = snapshot.toString('latin1', offset, offset + keyLength);
      offset += keyLength;
      const value = Buffer.from(snapshot.subarray(offset, offset + valueLength));
      offset += valueLength;
      this.#entries.set(key, { value, flags, expiresAtMs, cas });
      this.#bytes += entrySize(key, value);
    }
  }

  #remove(key: string, entry: MapEntry): void {
    this.#entries.delete(key);
    this.#bytes -= entrySize(key, entry.value);
  }

  #evictOldest(): void {
    const oldest = this.#entries.entries().next();
    if (oldest.done) return;
    this.#remove(oldest.value[0], oldest.value[1]);
    this.#evictions += 1;
  }

  /** Cheap, deterministic clean-up: drops expired entries at the old end only. */
  #dropExpiredHead(nowMs: number): void {
    for (let dropped = 0; dropped < 8; dropped++) {
      const oldest = this.#entries.entries().next();
      if (oldest.done || !isExpired(oldest.value[1], nowMs)) return;
      this.#remove(oldest.value[0], oldest.value[1]);
      this.#expiredDropped += 1;
    }
  }
}

function isExpired(entry: MapEntry, nowMs: number): boolean {
  return entry.expiresAtMs !== 0 && entry.expiresAtMs <= nowMs;
}

export function entrySize(key: string, value: Buffer): number {
  return key.length + value.length + ENTRY_OVERHEAD_BYTES;
}

const KIND_CODES: Record<MapOperation['kind'], number> = { set: 1, add: 2, replace: 3, delete: 4 };
const KINDS_BY_CODE: MapOperation['kind'][] = ['set', 'set', 'add', 'replace', 'delete'];

/** Wire form of an operation: kind, flags, times, key and value lengths, key, value. */
export function encodeMapOperation(operation: MapOperation): Buffer {
  const keyBytes = Buffer.from(operation.key, 'latin1');
  const value = operation.kind === 'delete' ? Buffer.alloc(0) : operation.value;
  const head = Buffer.alloc(1 + 4 + 8 + 8 + 2);
  head.writeUInt8(KIND_CODES[operation.kind], 0);
  head.writeUInt32LE(operation.kind === 'delete' ? 0 : operation.flags, 1);
  head.writeDoubleLE(operation.atMs, 5);
  head.writeDoubleLE(operation.kind === 'delete' ? 0 : operation.expiresAtMs, 13);
  head.writeUInt16LE(keyBytes.length, 21);
  return Buffer.concat([head, keyBytes, value]);
}

export function decodeMapOperation(bytes: Uint8Array): MapOperation {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const code = buffer.readUInt8(0);
  const kind = KINDS_BY_CODE[code];
  if (code === 0 || kind === undefined) throw new Error(`unknown map operation ${code}`);
  const atMs = buffer.readDoubleLE(5);
  const keyLength = buffer.readUInt16LE(21);
  const key = buffer.toString('latin1', 23, 23 + keyLength);
  if (kind === 'delete') return { kind, key, atMs };
  const value = Buffer.from(buffer.subarray(23 + keyLength));
  return { kind, key, value, flags: buffer.readUInt32LE(1), expiresAtMs: buffer.readDoubleLE(13), atMs };
}
