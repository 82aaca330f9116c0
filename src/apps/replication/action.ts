/**
 * Actions and their byte encodings, shared by the engine's wire messages and its log.
 *
 * An action is named by its origin (replica name plus an incarnation, so a restarted replica
 * never reuses an id) and a sequence number within that origin; the name is what lets a
 * replica tell "already ordered" from "new" when actions come back through retransmission.
 */
export interface Action {
  origin: string;
  seq: number;
  body: Buffer;
}

export interface GreenAction extends Action {
  position: number;
}

export const actionKey = (action: { origin: string; seq: number }): string => `${action.origin}:${action.seq}`;

/** Origins that are not replicas: actions the engine itself puts in the green order. */
export const SYSTEM_ORIGIN = '#primary';

/** Orders red actions when a primary makes them green: by origin, then sequence (keeps each origin's FIFO). */
export function compareActions(a: { origin: string; seq: number }, b: { origin: string; seq: number }): number {
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  return a.seq - b.seq;
}

/**
 * The sequence numbers of one origin already in the green order: everything up to `floor`,
 * plus the few above it that came out of order (red actions ordered after later ones).
 */
export class SeqSet {
  floor = 0;
  readonly above = new Set<number>();

  has(seq: number): boolean {
    return seq <= this.floor || this.above.has(seq);
  }

  add(seq: number): void {
    if (seq <= this.floor) return;
    this.above.add(seq);
    while (this.above.delete(this.floor + 1)) this.floor++;
  }

  toJSON(): [number, number[]] {
    return [this.floor, [...this.above]];
  }

  static fromJSON(value: [number, number[]]): SeqSet {
    const set = new SeqSet();
    if (!Array.isArray(value) || !Number.isSafeInteger(value[0]) || !Array.isArray(value[1])) throw new MalformedError('malformed sequence set');
    set.floor = value[0];
    for (const seq of value[1]) set.above.add(seq);
    return set;
  }
}

/** Which actions are green, per origin. */
export class GreenIds {
  readonly #origins = new Map<string, SeqSet>();

  has(action: { origin: string; seq: number }): boolean {
    return this.#origins.get(action.origin)?.has(action.seq) ?? false;
  }

  add(action: { origin: string; seq: number }): void {
    let set = this.#origins.get(action.origin);
    if (set === undefined) this.#origins.set(action.origin, (set = new SeqSet()));
    set.add(action.seq);
  }

  toJSON(): Record<string, [number, number[]]> {
    return Object.fromEntries([...this.#origins].map(([origin, set]) => [origin, set.toJSON()]));
  }

  static fromJSON(value: Record<string, [number, number[]]>): GreenIds {
    const ids = new GreenIds();
    if (typeof value !== 'object' || value === null) throw new MalformedError('malformed green ids');
    for (const [origin, set] of Object.entries(value)) ids.#origins.set(origin, SeqSet.fromJSON(set));
    return ids;
  }
}

/** Actions as bytes: [u8 origin length][origin][f64 seq][f64 position][u32 body length][body]. */
export function encodedActionBytes(action: Action): number {
  return 1 + Buffer.byteLength(action.origin) + 8 + 8 + 4 + action.body.length;
}

export function encodeActionInto(target: Buffer, offset: number, action: Action, position: number): number {
  const originLength = target.write(action.origin, offset + 1, 'utf8');
  target.writeUInt8(originLength, offset);
  let at = offset + 1 + originLength;
  target.writeDoubleLE(action.seq, at);
  target.writeDoubleLE(position, at + 8);
  target.writeUInt32LE(action.body.length, at + 16);
  at += 20;
  action.body.copy(target, at);
  return at + action.body.length;
}

export function encodeActions(actions: readonly (Action & { position?: number })[], prefix?: Buffer): Buffer {
  const head = prefix?.length ?? 0;
  let bytes = head;
  for (const action of actions) bytes += encodedActionBytes(action);
  const target = Buffer.allocUnsafe(bytes);
  prefix?.copy(target, 0);
  let at = head;
  for (const action of actions) at = encodeActionInto(target, at, action, action.position ?? 0);
  return target;
}

export class MalformedError extends Error {
  override name = 'MalformedError';
}

/** Decodes what encodeActions wrote after `offset`; throws MalformedError on truncated or bad bytes. */
export function decodeActions(source: Buffer, offset = 0): GreenAction[] {
  const actions: GreenAction[] = [];
  let at = offset;
  while (at < source.length) {
    const originLength = source.readUInt8(at);
    if (at + 1 + originLength + 20 > source.length) throw new MalformedError('truncated action header');
    const origin = source.toString('utf8', at + 1, at + 1 + originLength);
    at += 1 + originLength;
    const seq = source.readDoubleLE(at);
    const position = source.readDoubleLE(at + 8);
    const bodyLength = source.readUInt32LE(at + 16);
    at += 20;
    if (at + bodyLength > source.length || !Number.isSafeInteger(seq)) throw new MalformedError('truncated action body');
    actions.push({ origin, seq, position, body: Buffer.from(source.subarray(at, at + bodyLength)) });
    at += bodyLength;
  }
  return actions;
}
