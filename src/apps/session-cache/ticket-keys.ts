/**
 * TLS session-ticket keys shared by a farm, as a replicated state: each key is
 * announced with the absolute time at which every member starts using it, so
 * the farm switches together. The member first in the group's view generates
 * the keys (crypto random, 48 bytes: name, HMAC secret, AES key, as Node's
 * setTicketKeys() takes them) ahead of their activation by `leadMs`.
 *
 * Keys are secrets: they live in memory only, travel only inside the group, and
 * nothing here logs them.
 */
import { randomBytes } from 'node:crypto';
import type { Replica } from '../shared/replicated-group.js';

export const TICKET_KEY_BYTES = 48;
/** Keys kept: the current one, the one before it and one announced ahead. */
const KEYS_KEPT = 3;

export interface TicketKey {
  key: Buffer;
  activateAtMs: number;
}

export class TicketKeyRing implements Replica {
  #keys: TicketKey[] = [];

  get keys(): readonly TicketKey[] {
    return this.#keys;
  }

  /** The key in force at `nowMs`: the latest one whose activation time has come. */
  current(nowMs: number): TicketKey | undefined {
    let found: TicketKey | undefined;
    for (const key of this.#keys) if (key.activateAtMs <= nowMs) found = key;
    return found;
  }

  /** The next activation after `nowMs`, if one is announced. */
  nextActivationMs(nowMs: number): number | undefined {
    return this.#keys.find((key) => key.activateAtMs > nowMs)?.activateAtMs;
  }

  latestActivationMs(): number | undefined {
    return this.#keys[this.#keys.length - 1]?.activateAtMs;
  }

  apply(operation: Uint8Array): void {
    const bytes = Buffer.from(operation.buffer, operation.byteOffset, operation.byteLength);
    if (bytes.length !== 8 + TICKET_KEY_BYTES) throw new Error('ticket key announcement of the wrong size');
    const activateAtMs = bytes.readDoubleLE(0);
    const latest = this.latestActivationMs();
    // Announcements only move forward, so two racing generators cannot roll the farm back.
    if (latest !== undefined && activateAtMs <= latest) return;
    this.#keys.push({ activateAtMs, key: Buffer.from(bytes.subarray(8)) });
    if (this.#keys.length > KEYS_KEPT) this.#keys.shift();
  }

  snapshot(): Buffer {
    return Buffer.concat(this.#keys.map((key) => encodeTicketKey(key)));
  }

  restore(snapshot: Buffer): void {
    this.#keys = [];
    for (let offset = 0; offset + 8 + TICKET_KEY_BYTES <= snapshot.length; offset += 8 + TICKET_KEY_BYTES) {
      this.apply(snapshot.subarray(offset, offset + 8 + TICKET_KEY_BYTES));
    }
  }
}

export function encodeTicketKey(key: TicketKey): Buffer {
  const head = Buffer.alloc(8);
  head.writeDoubleLE(key.activateAtMs, 0);
  return Buffer.concat([head, key.key]);
}

export function newTicketKey(activateAtMs: number): Buffer {
  return encodeTicketKey({ activateAtMs, key: randomBytes(TICKET_KEY_BYTES) });
}
