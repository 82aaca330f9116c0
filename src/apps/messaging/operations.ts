/**
 * Operations on a queue's replicated state, as the bytes multicast (AGREED) to
 * its group. The first byte says which:
 *   PUBLISH  | records (envelope.ts batch)           — from producers
 *   REGISTER | u8 nameLength | name | u32 prefetch    — a consumer is ready
 *   ACK/NACK | u8 nameLength | name | u32 count | f64 ids…  — many at once
 */
import { forEachRecord, recordKey } from './envelope.js';
import type { QueueState } from './queue-state.js';

export const PUBLISH = 1;
const REGISTER = 2;
const ACK = 3;
const NACK = 4;

function named(code: number, name: string, extra: number): { bytes: Buffer; at: number } {
  const nameBytes = Buffer.from(name, 'latin1');
  const bytes = Buffer.allocUnsafe(2 + nameBytes.length + extra);
  bytes[0] = code;
  bytes[1] = nameBytes.length;
  nameBytes.copy(bytes, 2);
  return { bytes, at: 2 + nameBytes.length };
}

export function encodeRegister(name: string, prefetch: number): Buffer {
  const { bytes, at } = named(REGISTER, name, 4);
  bytes.writeUInt32LE(prefetch, at);
  return bytes;
}

export function encodeAcks(name: string, ids: readonly number[], negative = false): Buffer {
  const { bytes, at } = named(negative ? NACK : ACK, name, 4 + 8 * ids.length);
  bytes.writeUInt32LE(ids.length, at);
  for (let index = 0; index < ids.length; index++) bytes.writeDoubleLE(ids[index]!, at + 4 + 8 * index);
  return bytes;
}

/** What applying an operation did that the local member cares about. */
export interface Applied {
  /** Ids acknowledged or given back by `name` (null for other operations). */
  settledBy: string | null;
  settled: number[];
  /** The consumer a REGISTER operation registered. */
  registered: string | null;
}

const NOTHING: Applied = { settledBy: null, settled: [], registered: null };

/** Applies one operation; throws on bytes that do not decode (the caller skips them, as every member does). */
export function applyOperation(state: QueueState, operation: Uint8Array): Applied {
  const code = operation[0];
  if (code === PUBLISH) {
    const complete = forEachRecord(operation, 1, (offset, length) => state.publish(operation, recordKey(operation, offset), offset, length));
    if (!complete) throw new Error('a publish batch with a malformed tail');
    return NOTHING;
  }
  if (operation.length < 2 || operation.length < 2 + operation[1]!) throw new Error('a truncated queue operation');
  const view = Buffer.from(operation.buffer, operation.byteOffset, operation.byteLength);
  const name = view.toString('latin1', 2, 2 + view[1]!);
  const at = 2 + view[1]!;
  if (code === REGISTER) {
    if (view.length < at + 4) throw new Error('a truncated register operation');
    state.register(name, Math.max(1, view.readUInt32LE(at)));
    return { ...NOTHING, registered: name };
  }
  if (code === ACK || code === NACK) {
    const count = view.length >= at + 4 ? view.readUInt32LE(at) : -1;
    if (count < 0 || view.length !== at + 4 + 8 * count) throw new Error('a truncated ack operation');
    const ids = new Array<number>(count);
    for (let index = 0; index < count; index++) ids[index] = view.readDoubleLE(at + 4 + 8 * index);
    if (code === ACK) state.ack(name, ids);
    else state.nack(name, ids);
    return { settledBy: name, settled: ids, registered: null };
  }
  throw new Error(`unknown queue operation ${String(code)}`);
}
