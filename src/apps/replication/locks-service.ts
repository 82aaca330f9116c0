/**
 * LockService: named and byte-range locks replicated by the engine (locks-machine.ts holds the
 * rules). Every replica applies the same lock actions in the same order; each service settles
 * only the promises of requests made through it.
 *
 *   const locks = new LockService({ group: 'locks', name: 'r1', dataDir, connect });
 *   await locks.start();
 *   const lock = await locks.acquire({ object: 'invoices.db', range: [0, 4096], mode: 'exclusive', timeoutMs: 5000 });
 *   lock.lost.then((reason) => …);   // revoked: this replica left the primary component, or the lease ended
 *   await lock.release();
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ActionInDoubtError, ReplicationEngine, type EngineOptions, type EngineStatus, type StateMachine } from './engine.js';
import { LockTable, type LockAction, type LockEvent, type LockMode, type LockRequest, type LockResult } from './locks-machine.js';

/** The lock table as the engine's state machine; reports what happened to requests through `onEvent`. */
export class LockMachine implements StateMachine {
  readonly table = new LockTable();
  onEvent: (event: LockEvent) => void = () => {};

  applyBatch(actions: { position: number; action: Buffer }[]): Buffer[] {
    const results = actions.map(({ action }) => Buffer.from(JSON.stringify(this.#applyOne(action))));
    this.#flushEvents();
    return results;
  }

  membersChanged(members: string[]): void {
    this.table.membersChanged(members);
    this.#flushEvents();
  }

  snapshot(): Buffer {
    return this.table.snapshot();
  }

  restore(snapshot: Buffer): void {
    this.table.restore(snapshot);
  }

  #applyOne(action: Buffer): LockResult {
    let decoded: LockAction;
    try {
      decoded = JSON.parse(action.toString('utf8')) as LockAction;
    } catch {
      return { state: 'refused', reason: 'malformed lock action' };
    }
    if (typeof decoded !== 'object' || decoded === null || !['acquire', 'release', 'expire', 'reset'].includes(decoded.op)) {
      return { state: 'refused', reason: 'malformed lock action' };
    }
    return this.table.apply(decoded);
  }

  #flushEvents(): void {
    for (const event of this.table.takeEvents()) this.onEvent(event);
  }
}

export class LockTimeoutError extends Error {
  override name = 'LockTimeoutError';
}

export class LockRefusedError extends Error {
  override name = 'LockRefusedError';
}

export interface AcquireOptions {
  /** The object (or the lock's name). */
  object: string;
  /** Byte range [start, end); default the whole object. */
  range?: [number, number];
  mode?: LockMode;
  /** Give up waiting after this long (default: wait until granted or revoked). */
  timeoutMs?: number;
  /** Release by itself this long after the grant (default: held until released or revoked). */
  leaseMs?: number;
  /** false: refuse at once when the range is locked (default true: queue). */
  wait?: boolean;
}

/** A granted lock. */
export class Lock {
  readonly id: string;
  readonly object: string;
  readonly mode: LockMode;
  /** Resolves with the reason once the lock is no longer held (released, lease over, revoked). */
  readonly lost: Promise<string>;
  #markLost!: (reason: string) => void;
  readonly #service: LockService;

  constructor(service: LockService, request: LockRequest) {
    this.#service = service;
    this.id = request.id;
    this.object = request.object;
    this.mode = request.mode;
    this.lost = new Promise((resolve) => (this.#markLost = resolve));
  }

  release(): Promise<void> {
    return this.#service.release(this.id);
  }

  /** @internal */
  ended(reason: string): void {
    this.#markLost(reason);
  }
}

interface PendingAcquire {
  request: LockRequest;
  leaseMs: number | undefined;
  resolve: (lock: Lock) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout | null;
}

export type LockServiceOptions = Omit<EngineOptions, 'machine'>;

export class LockService extends EventEmitter<{ status: [EngineStatus] }> {
  readonly engine: ReplicationEngine;
  readonly machine = new LockMachine();
  readonly #name: string;
  /** A new one per process: requests of an earlier run of this replica are told apart and released. */
  readonly #incarnation = randomBytes(6).toString('hex');
  #nextRequest = 1;
  readonly #pending = new Map<string, PendingAcquire>();
  readonly #held = new Map<string, { lock: Lock; leaseTimer: NodeJS.Timeout | null }>();
  #resetDone = false;
  /** Requests whose caller was told "in doubt": if they are ordered after all, they are withdrawn. */
  readonly #abandoned = new Set<string>();

  constructor(options: LockServiceOptions) {
    super();
    this.#name = options.name;
    this.engine = new ReplicationEngine({ ...options, machine: this.machine });
    this.machine.onEvent = (event) => this.#onEvent(event);
    this.engine.on('applied', (event) => {
      if (!event.local || this.#abandoned.size === 0) return;
      const action = JSON.parse(event.action.toString('utf8')) as LockAction;
      if (action.op === 'acquire' && this.#abandoned.delete(action.id)) void this.release(action.id).catch(() => {});
    });
    this.engine.on('status', (status) => {
      this.emit('status', status);
      if (status.primary) void this.#reset();
    });
  }

  async start(): Promise<void> {
    await this.engine.start();
  }

  /** Resolves with the lock once granted; rejects on timeout, refusal, or outside a primary component. */
  async acquire(options: AcquireOptions): Promise<Lock> {
    const request: LockRequest = {
      id: `${this.#name}/${this.#incarnation}/${this.#nextRequest++}`,
      owner: this.#name,
      incarnation: this.#incarnation,
      object: options.object,
      start: options.range?.[0] ?? 0,
      end: options.range?.[1] ?? null,
      mode: options.mode ?? 'exclusive',
    };
    const granted = new Promise<Lock>((resolve, reject) => {
      const pending: PendingAcquire = { request, leaseMs: options.leaseMs, resolve, reject, timer: null };
      if (options.timeoutMs !== undefined) pending.timer = setTimeout(() => void this.#expire(request.id, false), options.timeoutMs);
      this.#pending.set(request.id, pending);
    });
    const action: LockAction = { op: 'acquire', wait: options.wait ?? true, ...request };
    try {
      const { result } = await this.engine.submit(Buffer.from(JSON.stringify(action)));
      const outcome = JSON.parse(result.toString('utf8')) as LockResult;
      if (outcome.state === 'granted') this.#grant(request.id);
      else if (outcome.state === 'refused') this.#fail(request.id, new LockRefusedError(outcome.reason));
    } catch (error) {
      if (error instanceof ActionInDoubtError) this.#abandoned.add(request.id);
      this.#fail(request.id, error instanceof Error ? error : new Error(String(error)));
    }
    return granted;
  }

  /** Releases a held lock (or withdraws a waiting request). */
  async release(id: string): Promise<void> {
    await this.engine.submit(Buffer.from(JSON.stringify({ op: 'release', id } satisfies LockAction)));
  }

  async close(): Promise<void> {
    for (const id of [...this.#pending.keys()]) this.#fail(id, new Error('the lock service closed'));
    for (const [id, entry] of this.#held) {
      if (entry.leaseTimer !== null) clearTimeout(entry.leaseTimer);
      entry.lock.ended('the lock service closed');
      this.#held.delete(id);
    }
    await this.engine.close();
  }

  /** Once per process, in a primary: releases what an earlier run of this replica still holds. */
  async #reset(): Promise<void> {
    if (this.#resetDone) return;
    this.#resetDone = true;
    try {
      await this.engine.submit(Buffer.from(JSON.stringify({ op: 'reset', owner: this.#name, incarnation: this.#incarnation } satisfies LockAction)));
    } catch {
      this.#resetDone = false; // not primary after all: the next primary status tries again
    }
  }

  async #expire(id: string, held: boolean): Promise<void> {
    try {
      await this.engine.submit(Buffer.from(JSON.stringify({ op: 'expire', id, held } satisfies LockAction)));
    } catch {
      // Outside a primary: the primary revokes this replica's requests anyway.
    }
  }

  #onEvent(event: LockEvent): void {
    const { id } = event.request;
    if (event.kind === 'granted') {
      this.#grant(id);
      return;
    }
    if (this.#pending.has(id)) {
      const reason = event.kind === 'expired' ? new LockTimeoutError(`lock on ${event.request.object} not granted in time`) : new LockRefusedError(`request ${event.kind}`);
      this.#fail(id, reason);
    }
    const held = this.#held.get(id);
    if (held !== undefined) {
      if (held.leaseTimer !== null) clearTimeout(held.leaseTimer);
      this.#held.delete(id);
      held.lock.ended(event.kind === 'expired' ? 'lease ended' : event.kind === 'revoked' ? 'revoked: this replica left the primary component' : 'released');
    }
  }

  #grant(id: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    if (pending.timer !== null) clearTimeout(pending.timer);
    const lock = new Lock(this, pending.request);
    const leaseTimer = pending.leaseMs === undefined ? null : setTimeout(() => void this.#expire(id, true), pending.leaseMs);
    this.#held.set(id, { lock, leaseTimer });
    pending.resolve(lock);
  }

  #fail(id: string, error: Error): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    if (pending.timer !== null) clearTimeout(pending.timer);
    pending.reject(error);
  }
}
