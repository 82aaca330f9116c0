/**
 * LockMachine: the lock table of the lock service (Oasis style) as a deterministic state
 * machine. A lock covers a byte range [start, end) of a named object (a named lock is the
 * whole object: end = null, unbounded), shared or exclusive.
 *
 * - FIFO-fair: a waiter is granted only when it conflicts with no holder AND no earlier
 *   waiter, so a stream of shared requests cannot starve an exclusive one.
 * - No clock inside apply: a waiter's timeout and a holder's lease end are `expire` actions
 *   the requester's replica submits when its own timer fires; the green order decides whether
 *   the grant or the expiry came first, the same everywhere.
 * - A replica that leaves the primary component (disconnect, daemon crash, partition) loses
 *   its locks and its place in the queues at that point of the green order (membersChanged).
 *   A restarted replica says `reset` with its new incarnation: what an older incarnation of the
 *   same name still held (e.g. after every replica restarted from its log) is released.
 */
export type LockMode = 'shared' | 'exclusive';

export interface LockRequest {
  /** Unique: owner, incarnation and a per-incarnation counter. */
  id: string;
  /** Replica name (engine name) that asked. */
  owner: string;
  incarnation: string;
  object: string;
  start: number;
  /** Exclusive end; null = to the end of the object. */
  end: number | null;
  mode: LockMode;
}

export type LockAction =
  | ({ op: 'acquire'; wait: boolean } & LockRequest)
  | { op: 'release'; id: string }
  /** A waiter's timeout (`held` false: only if still waiting) or a holder's lease end (`held` true: only if granted). */
  | { op: 'expire'; id: string; held: boolean }
  | { op: 'reset'; owner: string; incarnation: string };

export type LockResult = { state: 'granted' } | { state: 'queued' } | { state: 'released' } | { state: 'refused'; reason: string } | { state: 'none' };

/** What happened to a request later than its own action: granted off the queue, or ended. */
export interface LockEvent {
  kind: 'granted' | 'expired' | 'revoked' | 'released';
  request: LockRequest;
  /** Was it holding the lock (for expired/revoked)? */
  held: boolean;
}

/** Bounds so a misbehaving client cannot grow every replica's table without limit. */
export const LOCK_REQUESTS_MAX = 100_000;
const NAME_CHARS_MAX = 1024;

interface ObjectLocks {
  holders: LockRequest[];
  waiters: LockRequest[];
}

interface LockTableSnapshot {
  members: string[] | null;
  objects: [string, ObjectLocks][];
}

function overlaps(a: LockRequest, b: LockRequest): boolean {
  return (a.end === null || b.start < a.end) && (b.end === null || a.start < b.end);
}

export function conflicts(a: LockRequest, b: LockRequest): boolean {
  return overlaps(a, b) && (a.mode === 'exclusive' || b.mode === 'exclusive');
}

function invalidity(action: LockRequest): string | null {
  if (typeof action.id !== 'string' || typeof action.owner !== 'string' || typeof action.incarnation !== 'string') return 'malformed lock request';
  if (typeof action.object !== 'string' || action.object.length === 0 || action.object.length > NAME_CHARS_MAX) return `object names are 1–${NAME_CHARS_MAX} characters`;
  if (action.mode !== 'shared' && action.mode !== 'exclusive') return 'mode must be shared or exclusive';
  if (!Number.isSafeInteger(action.start) || action.start < 0) return 'range start must be a non-negative integer';
  if (action.end !== null && (!Number.isSafeInteger(action.end) || action.end <= action.start)) return 'range end must be an integer after its start (or none)';
  return null;
}

export class LockTable {
  #objects = new Map<string, ObjectLocks>();
  readonly #byId = new Map<string, LockRequest>();
  /** Members of the current primary (null before the first one is known). */
  #members: Set<string> | null = null;
  #events: LockEvent[] = [];

  /** Applies one action; events it caused for other requests are collected for takeEvents(). */
  apply(action: LockAction): LockResult {
    switch (action.op) {
      case 'acquire':
        return this.#acquire(action);
      case 'release':
      case 'expire': {
        const request = this.#byId.get(action.id);
        if (request === undefined) return { state: 'none' };
        if (action.op === 'expire' && this.#isHeld(request) !== action.held) return { state: 'none' };
        const held = this.#remove(request);
        this.#events.push({ kind: action.op === 'release' ? 'released' : 'expired', request, held });
        this.#promote(request.object);
        return { state: 'released' };
      }
      case 'reset':
        this.#removeWhere((request) => request.owner === action.owner && request.incarnation !== action.incarnation);
        return { state: 'released' };
    }
  }

  /** The primary's members changed: requests of replicas that left are gone. */
  membersChanged(members: string[]): void {
    this.#members = new Set(members);
    this.#removeWhere((request) => !this.#members!.has(request.owner));
  }

  takeEvents(): LockEvent[] {
    const events = this.#events;
    this.#events = [];
    return events;
  }

  holders(object: string): LockRequest[] {
    return [...(this.#objects.get(object)?.holders ?? [])];
  }

  waiters(object: string): LockRequest[] {
    return [...(this.#objects.get(object)?.waiters ?? [])];
  }

  get size(): number {
    return this.#byId.size;
  }

  snapshot(): Buffer {
    const state: LockTableSnapshot = { members: this.#members === null ? null : [...this.#members], objects: [...this.#objects] };
    return Buffer.from(JSON.stringify(state));
  }

  restore(snapshot: Buffer): void {
    const state = JSON.parse(snapshot.toString('utf8')) as LockTableSnapshot;
    this.#members = state.members === null ? null : new Set(state.members);
    this.#objects = new Map(state.objects);
    this.#byId.clear();
    for (const [, locks] of this.#objects) for (const request of [...locks.holders, ...locks.waiters]) this.#byId.set(request.id, request);
    this.#events = [];
  }

  #acquire(action: { wait: boolean } & LockRequest): LockResult {
    const invalid = invalidity(action);
    if (invalid !== null) return { state: 'refused', reason: invalid };
    if (this.#byId.has(action.id)) return { state: 'refused', reason: `request ${action.id} exists already` };
    if (this.#members !== null && !this.#members.has(action.owner)) return { state: 'refused', reason: `${action.owner} is not in the primary component` };
    if (this.#byId.size >= LOCK_REQUESTS_MAX) return { state: 'refused', reason: `the lock table is full (${LOCK_REQUESTS_MAX} requests)` };
    const request: LockRequest = {
      id: action.id,
      owner: action.owner,
      incarnation: action.incarnation,
      object: action.object,
      start: action.start,
      end: action.end,
      mode: action.mode,
    };
    let locks = this.#objects.get(request.object);
    const free = locks === undefined || (!locks.holders.some((held) => conflicts(held, request)) && !locks.waiters.some((waiter) => conflicts(waiter, request)));
    if (!free && !action.wait) return { state: 'refused', reason: 'the range is locked' };
    if (locks === undefined) {
      locks = { holders: [], waiters: [] };
      this.#objects.set(request.object, locks);
    }
    this.#byId.set(request.id, request);
    (free ? locks.holders : locks.waiters).push(request);
    return { state: free ? 'granted' : 'queued' };
  }

  #isHeld(request: LockRequest): boolean {
    return this.#objects.get(request.object)!.holders.includes(request);
  }

  /** Takes a request out of its object; returns whether it was a holder. */
  #remove(request: LockRequest): boolean {
    const locks = this.#objects.get(request.object)!;
    this.#byId.delete(request.id);
    const held = this.#isHeld(request);
    if (held) locks.holders = locks.holders.filter((other) => other !== request);
    else locks.waiters = locks.waiters.filter((other) => other !== request);
    return held;
  }

  #removeWhere(gone: (request: LockRequest) => boolean): void {
    const touched = new Set<string>();
    for (const request of [...this.#byId.values()].filter(gone)) {
      const held = this.#remove(request);
      this.#events.push({ kind: 'revoked', request, held });
      touched.add(request.object);
    }
    for (const object of [...touched].sort()) this.#promote(object);
  }

  /** Grants waiters, in order, that conflict with no holder and no earlier waiter still waiting. */
  #promote(object: string): void {
    const locks = this.#objects.get(object);
    if (locks === undefined) return;
    const stillWaiting: LockRequest[] = [];
    for (const waiter of locks.waiters) {
      const blocked = locks.holders.some((held) => conflicts(held, waiter)) || stillWaiting.some((earlier) => conflicts(earlier, waiter));
      if (blocked) stillWaiting.push(waiter);
      else {
        locks.holders.push(waiter);
        this.#events.push({ kind: 'granted', request: waiter, held: true });
      }
    }
    locks.waiters = stillWaiting;
    if (locks.holders.length === 0 && locks.waiters.length === 0) this.#objects.delete(object);
  }
}
