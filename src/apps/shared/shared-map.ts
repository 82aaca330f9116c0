/**
 * SharedMap: a ReplicatedMap kept identical across a Spread group. Reads are
 * local (memory only); a write is multicast and answered when this member
 * applies it in the group's order, so the answer (stored, not stored, …) is the
 * one every replica computed. Without a daemon, writes apply locally at once.
 */
import type { Session } from '../../client/index.js';
import type { Logger } from './logger.js';
import { ReplicatedGroup } from './replicated-group.js';
import {
  decodeMapOperation,
  encodeMapOperation,
  entrySize,
  ReplicatedMap,
  type ApplyResult,
  type MapEntry,
  type MapOperation,
  type MapStats,
  type StoreMode,
} from './replicated-map.js';

export interface SharedMapOptions {
  group: string;
  /** Memory cap of keys and values (plus a small per-entry charge); least recently stored go first. */
  limitBytes: number;
  /** Largest value accepted (Spread messages carry at most 143 152 bytes). */
  valueBytesMax?: number;
  session?: Session;
  connect?: () => Promise<Session>;
  logger?: Logger;
}

/** Largest value by default: leaves room in one Spread message for the key and headers. */
export const VALUE_BYTES_MAX = 128 * 1024;
const SEQ_BYTES = 4;

export interface SharedMapStats extends MapStats {
  connected: boolean;
  synced: boolean;
  members: number;
  localWrites: number;
}

export class SharedMap {
  readonly replication: ReplicatedGroup;
  readonly valueBytesMax: number;
  readonly #map: ReplicatedMap;
  readonly #pending = new Map<number, { operation: MapOperation; resolve: (result: ApplyResult) => void }>();
  #nextSeq = 1;
  #localWrites = 0;

  constructor(options: SharedMapOptions) {
    this.#map = new ReplicatedMap(options.limitBytes);
    this.valueBytesMax = options.valueBytesMax ?? VALUE_BYTES_MAX;
    this.replication = new ReplicatedGroup({
      group: options.group,
      session: options.session,
      connect: options.connect,
      logger: options.logger,
      replica: {
        apply: (bytes, fromSelf) => this.#applyDelivered(bytes, fromSelf),
        snapshot: () => this.#map.snapshot(),
        restore: (snapshot) => this.#map.restore(snapshot),
      },
    });
    // Writes in flight when the session died may or may not have reached the group: apply them here.
    this.replication.on('disconnected', () => this.#settlePendingLocally());
  }

  get(key: string, nowMs = Date.now()): MapEntry | undefined {
    return this.#map.get(key, nowMs);
  }

  get stats(): SharedMapStats {
    return {
      ...this.#map.stats,
      connected: this.replication.connected,
      synced: this.replication.transfer.synced,
      members: this.replication.members.length,
      localWrites: this.#localWrites,
    };
  }

  store(mode: StoreMode, key: string, value: Buffer, flags: number, expiresAtMs: number): Promise<ApplyResult> {
    if (value.length > this.valueBytesMax || entrySize(key, value) > this.#map.limitBytes) return Promise.resolve('too-large');
    return this.#write({ kind: mode, key, value, flags, expiresAtMs, atMs: Date.now() });
  }

  delete(key: string): Promise<ApplyResult> {
    return this.#write({ kind: 'delete', key, atMs: Date.now() });
  }

  stop(): Promise<void> {
    return this.replication.stop();
  }

  #write(operation: MapOperation): Promise<ApplyResult> {
    const seq = this.#nextSeq;
    this.#nextSeq = (this.#nextSeq + 1) >>> 0 || 1;
    const encoded = encodeMapOperation(operation);
    const bytes = Buffer.allocUnsafe(SEQ_BYTES + encoded.length);
    bytes.writeUInt32LE(seq, 0);
    encoded.copy(bytes, SEQ_BYTES);
    return new Promise((resolve) => {
      this.#pending.set(seq, { operation, resolve });
      if (!this.replication.propose(bytes)) {
        this.#pending.delete(seq);
        this.#localWrites += 1;
        resolve(this.#map.apply(operation));
      }
    });
  }

  #applyDelivered(bytes: Uint8Array, fromSelf: boolean): void {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const result = this.#map.apply(decodeMapOperation(buffer.subarray(SEQ_BYTES)));
    if (!fromSelf) return;
    const seq = buffer.readUInt32LE(0);
    const pending = this.#pending.get(seq);
    if (pending === undefined) return;
    this.#pending.delete(seq);
    pending.resolve(result);
  }

  #settlePendingLocally(): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { operation, resolve } of pending) {
      this.#localWrites += 1;
      resolve(this.#map.apply(operation));
    }
  }
}
