/**
 * ReplicatedMap<V>: a key/value map of JSON values replicated by the engine (the replicated hash
 * table of Spread's papers). Reads are local; set/delete/compareAndSet are actions that resolve
 * once green and applied here, with their result. Values are held as their JSON text, so that
 * compare-and-set compares the same bytes at every replica.
 *
 * Not to be confused with src/apps/shared/replicated-map.ts (the session cache's byte-capped,
 * AGREED-ordered memcached map).
 */
import { EventEmitter } from 'node:events';
import { ReplicationEngine, type EngineOptions, type EngineStatus, type StateMachine } from './engine.js';

type MapAction =
  | { op: 'set'; key: string; value: string }
  | { op: 'delete'; key: string }
  /** `expected`/`value` null = absent (compare-and-set can create or delete). */
  | { op: 'cas'; key: string; expected: string | null; value: string | null };

interface MapResult {
  ok: boolean;
  error?: string;
}

export interface MapChange<V> {
  key: string;
  /** undefined when deleted. */
  value: V | undefined;
  previous: V | undefined;
  position: number;
}

export interface ReplicatedMapEvents<V> {
  change: [MapChange<V>];
  status: [EngineStatus];
}

export type ReplicatedMapOptions = Omit<EngineOptions, 'machine'>;

/** The deterministic machine under the map: JSON text per key. */
class MapMachine implements StateMachine {
  entries = new Map<string, string>();
  onChange: (key: string, value: string | undefined, previous: string | undefined, position: number) => void = () => {};

  applyBatch(actions: { position: number; action: Buffer }[]): Buffer[] {
    return actions.map(({ position, action }) => encodeResult(this.#applyOne(position, action)));
  }

  #applyOne(position: number, bytes: Buffer): MapResult {
    let action: MapAction;
    try {
      action = JSON.parse(bytes.toString('utf8')) as MapAction;
    } catch {
      return { ok: false, error: 'malformed action' };
    }
    if (typeof action !== 'object' || action === null || typeof action.key !== 'string') return { ok: false, error: 'malformed action' };
    const previous = this.entries.get(action.key);
    let next: string | undefined;
    if (action.op === 'set' && typeof action.value === 'string') next = action.value;
    else if (action.op === 'delete') {
      if (previous === undefined) return { ok: false };
      next = undefined;
    } else if (action.op === 'cas') {
      if ((previous ?? null) !== action.expected) return { ok: false };
      next = action.value ?? undefined;
    } else return { ok: false, error: 'malformed action' };
    if (next === undefined) this.entries.delete(action.key);
    else this.entries.set(action.key, next);
    this.onChange(action.key, next, previous, position);
    return { ok: true };
  }

  snapshot(): Buffer {
    return Buffer.from(JSON.stringify([...this.entries]));
  }

  restore(snapshot: Buffer): void {
    this.entries = new Map(JSON.parse(snapshot.toString('utf8')) as [string, string][]);
  }
}

const OK = Buffer.from(JSON.stringify({ ok: true }));
const NOT_OK = Buffer.from(JSON.stringify({ ok: false }));
const encodeResult = (result: MapResult): Buffer => (result.error !== undefined ? Buffer.from(JSON.stringify(result)) : result.ok ? OK : NOT_OK);

const parse = <V>(text: string | undefined): V | undefined => (text === undefined ? undefined : (JSON.parse(text) as V));

export class ReplicatedMap<V> extends EventEmitter<ReplicatedMapEvents<V>> {
  readonly engine: ReplicationEngine;
  readonly #machine = new MapMachine();

  constructor(options: ReplicatedMapOptions) {
    super();
    this.engine = new ReplicationEngine({ ...options, machine: this.#machine });
    this.#machine.onChange = (key, value, previous, position) => {
      if (this.listenerCount('change') > 0) this.emit('change', { key, value: parse<V>(value), previous: parse<V>(previous), position });
    };
    this.engine.on('status', (status) => this.emit('status', status));
  }

  start(): Promise<void> {
    return this.engine.start();
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  status(): EngineStatus {
    return this.engine.status();
  }

  /** The local value: what this replica's green actions made it. */
  get(key: string): V | undefined {
    return parse<V>(this.#machine.entries.get(key));
  }

  has(key: string): boolean {
    return this.#machine.entries.has(key);
  }

  get size(): number {
    return this.#machine.entries.size;
  }

  keys(): string[] {
    return [...this.#machine.entries.keys()];
  }

  entries(): [string, V][] {
    return [...this.#machine.entries].map(([key, text]) => [key, JSON.parse(text) as V]);
  }

  /** Resolves with the action's global position once it is green here. */
  async set(key: string, value: V): Promise<number> {
    return (await this.#submit({ op: 'set', key, value: toJson(value) })).position;
  }

  /** Resolves true when the key existed (and is now gone). */
  async delete(key: string): Promise<boolean> {
    return (await this.#submit({ op: 'delete', key })).ok;
  }

  /** Sets `key` to `value` only if it holds `expected` (undefined = absent / delete); resolves whether it did. */
  async compareAndSet(key: string, expected: V | undefined, value: V | undefined): Promise<boolean> {
    const action: MapAction = { op: 'cas', key, expected: expected === undefined ? null : toJson(expected), value: value === undefined ? null : toJson(value) };
    return (await this.#submit(action)).ok;
  }

  /** The whole map as bytes (the engine's snapshot format). */
  snapshot(): Buffer {
    return this.#machine.snapshot();
  }

  async #submit(action: MapAction): Promise<MapResult & { position: number }> {
    const { position, result } = await this.engine.submit(Buffer.from(JSON.stringify(action)));
    return { ...(JSON.parse(result.toString('utf8')) as MapResult), position };
  }
}

function toJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('ReplicatedMap values must be JSON values');
  return text;
}
