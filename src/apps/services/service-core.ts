/**
 * The replicated service's state machine, free of I/O: every replica feeds it
 * the same operations and views in the same order and so reaches the same
 * state and the same decisions, with no coordinator and no extra round.
 *
 * - active: each replica executes each request where it is delivered;
 * - warm passive: the primary (first of the seniority list: members in the
 *   order they joined, leaving ones last) executes on a working copy and
 *   multicasts the state after it with the reply; every replica (the primary
 *   too) commits that update when it is delivered. Requests delivered but not
 *   yet committed are `pending`; when the primary fails, the next one
 *   re-executes exactly those;
 * - hand-over (`x`): the announced member drops to the end of the seniority
 *   list at that point of the order; its updates still in flight are awaited
 *   (the `barrier`) before the new primary executes, so nothing runs twice;
 * - switch (`w`): to active, every replica executes the pending requests at
 *   the switch point (the old primary's late updates then find them answered);
 *   to passive, the primary starts from the committed state.
 *
 * A reply cache (reply-cache.ts, identical everywhere) answers a retried
 * request without executing it again.
 *
 * Partitions: only a primary component executes and acknowledges calls
 * (primary-component.ts); replicas outside it answer 'not-primary' and change
 * nothing, so a merge that keeps the primary side's state drops no acknowledged call.
 */
import { EventEmitter } from 'node:events';
import type { MembershipCause } from '../../client/index.js';
import { PrimaryComponent, type PrimarySnapshot } from './primary-component.js';
import {
  callKey,
  failure,
  PAYLOAD_BYTES_MAX,
  UPDATE_BYTES_MAX,
  type Operation,
  type Outcome,
  type Request,
  type StateUpdate,
  type Style,
} from './protocol.js';
import { ReplyCache, type CachedReply } from './reply-cache.js';

/** A deterministic handler: same state and arguments, same result and changes, on every replica. */
export type Handler<S> = (state: S, args: unknown) => unknown;
export type Handlers<S> = Record<string, Handler<S>>;

/** What the core asks of its surroundings. */
export interface CoreEffects {
  /** This replica's name in the group, or null while it has no session. */
  me(): string | null;
  /** False while this replica's state is not yet the group's (a joiner before its transfer): it then stays silent. */
  inSync(): boolean;
  reply(to: string, sequence: number, outcome: Outcome): void;
  multicast(operation: Operation): void;
}

export interface CoreEvents {
  /** `member` announced that it holds the group's state. */
  ready: [string];
  /** A request's effect (client, call number) is now part of the committed state here. */
  committed: [string, number];
}

/** Replies kept at most; clients release theirs as they go (reply-cache.ts), so this is for vanished ones. */
export const REPLY_CACHE_ENTRIES = 4096;
/** Replies held back at most between a view and its transfer decision (beyond that, callers' retries find the reply cache). */
const WITHHELD_REPLIES_MAX = 4096;

interface Snapshot {
  style: Style;
  state: unknown;
  cache: CachedReply[];
  pending: Request[];
  seniority: string[];
  retiring: string[];
  barrier: string[];
  barrierFrom: string | null;
  primary?: PrimarySnapshot;
}

export class ServiceCore<S> extends EventEmitter<CoreEvents> {
  readonly #handlers: Handlers<S>;
  readonly #effects: CoreEffects;
  #style: Style;
  #state: S;
  readonly #cache: ReplyCache;
  #pending: Request[] = [];
  #seniority: string[] = [];
  #retiring = new Set<string>();
  /** Requests the previous primary executed before handing over, whose updates are still to come. */
  #barrier = new Set<string>();
  #barrierFrom: string | null = null;
  /** This replica as primary: the state after the requests it executed, ahead of the committed one. */
  #working: S | null = null;
  #executed = new Set<string>();
  readonly #component = new PrimaryComponent();
  /** Replies held back while this replica was not in sync (a view's transfer undecided): sent once it is, dropped if its state is replaced. */
  #withheld: [string, number, Outcome][] = [];
  /** Requests executed by this replica (a figure for logs and tests). */
  executions = 0;

  constructor(handlers: Handlers<S>, initialState: S, style: Style, effects: CoreEffects, cacheEntries = REPLY_CACHE_ENTRIES) {
    super();
    this.#handlers = handlers;
    this.#state = initialState;
    this.#style = style;
    this.#effects = effects;
    this.#cache = new ReplyCache(cacheEntries);
  }

  get style(): Style {
    return this.#style;
  }

  /** The committed state (a backup's view of the service). */
  get state(): S {
    return this.#state;
  }

  get primary(): string | null {
    return this.#seniority.find((member) => !this.#retiring.has(member)) ?? this.#seniority[0] ?? null;
  }

  get seniority(): readonly string[] {
    return this.#seniority;
  }

  get cachedReplies(): number {
    return this.#cache.size;
  }

  get pendingCount(): number {
    return this.#pending.length;
  }

  /** Calls are executed and acknowledged here now (this replica is in the primary component). */
  get acknowledges(): boolean {
    return this.#component.acknowledges;
  }

  /** The latest regular view was primary: this replica's state is the one to keep on a merge. */
  get inPrimaryView(): boolean {
    return this.#component.primaryView;
  }

  /** Updates still awaited from a primary that handed over. */
  get barrierSize(): number {
    return this.#barrier.size;
  }

  /** A regular view of the group ('join' when the cause is not known: no network event). */
  onView(members: readonly string[], cause: MembershipCause = 'join'): void {
    this.#component.onView(members, cause);
    const present = new Set(members);
    const failedPrimary = this.primary !== null && !present.has(this.primary) && !this.#retiring.has(this.primary);
    this.#seniority = [...this.#seniority.filter((member) => present.has(member)), ...members.filter((member) => !this.#seniority.includes(member))];
    for (const member of this.#retiring) if (!present.has(member)) this.#retiring.delete(member);
    // A previous primary that is gone sends no more updates: its pending requests are the next one's.
    if (this.#barrierFrom !== null && !present.has(this.#barrierFrom)) this.#clearBarrier();
    if (this.primary !== this.#effects.me()) this.#working = null;
    else if (failedPrimary && this.#style === 'passive') this.#resendReplies();
    this.drive();
  }

  /** The transitional signal: until the next regular view, nothing is acknowledged. */
  onTransitional(): void {
    this.#component.onTransitional();
    this.#working = null;
    this.#withheld = [];
  }

  /** This replica's state is the group's again: the replies held back meanwhile go out. */
  releaseWithheld(): void {
    if (!this.#effects.inSync() || !this.#component.acknowledges) return;
    for (const [to, sequence, outcome] of this.#withheld) this.#effects.reply(to, sequence, outcome);
    this.#withheld = [];
  }

  /** The daemon session is lost. */
  onDisconnect(): void {
    this.#component.onDisconnect();
    this.#working = null;
    this.#withheld = [];
  }

  onOperation(operation: Operation): void {
    switch (operation.k) {
      case 'q':
        return this.#onRequest(operation);
      case 'u':
        return this.#onUpdate(operation);
      case 'w':
        return this.#onSwitch(operation.style);
      case 'x':
        return this.#onRetiring(operation.member);
      case 'y':
        this.emit('ready', operation.member);
        return;
    }
  }

  /** As primary in passive style, executes what is pending and not yet executed here. */
  drive(): void {
    const me = this.#effects.me();
    if (this.#style !== 'passive' || me === null || this.primary !== me || this.#barrier.size > 0 || !this.#effects.inSync() || !this.#component.acknowledges) return;
    if (this.#working === null) {
      this.#working = structuredClone(this.#state);
      this.#executed.clear();
    }
    for (const request of this.#pending) {
      if (this.#executed.has(callKey(request))) continue;
      this.#executed.add(callKey(request));
      this.#effects.multicast(this.#executeForUpdate(request));
    }
  }

  snapshot(): Buffer {
    const snapshot: Snapshot = {
      style: this.#style,
      state: this.#state,
      cache: this.#cache.entries(),
      pending: this.#pending,
      seniority: this.#seniority,
      retiring: [...this.#retiring],
      barrier: [...this.#barrier],
      barrierFrom: this.#barrierFrom,
      primary: this.#component.snapshot(),
    };
    return Buffer.from(JSON.stringify(snapshot));
  }

  restore(bytes: Buffer): void {
    const snapshot = JSON.parse(bytes.toString('utf8')) as Snapshot;
    this.#style = snapshot.style;
    this.#state = snapshot.state as S;
    this.#cache.restore(snapshot.cache);
    this.#pending = snapshot.pending;
    this.#seniority = snapshot.seniority;
    this.#retiring = new Set(snapshot.retiring);
    this.#barrier = new Set(snapshot.barrier);
    this.#barrierFrom = snapshot.barrierFrom;
    this.#component.restore(snapshot.primary);
    this.#working = null;
    this.#withheld = [];
    this.drive();
  }

  #onRequest(request: Request): void {
    if (!this.#component.applies) {
      // Outside the primary: nothing runs here, not even a cached reply (it may be from a transitional window the primary never saw).
      if (this.#effects.inSync()) this.#effects.reply(request.to, request.n, failure('not-primary', 'this replica is outside the primary component (a partition); retry, at another replica if one is reachable'));
      return;
    }
    this.#cache.forget(request.c, request.d);
    const cached = this.#cache.get(request.c, request.n);
    if (cached !== undefined) {
      if (this.#style === 'active' || this.primary === this.#effects.me()) this.#reply(request.to, request.n, cached);
      return;
    }
    if (this.#style === 'active') {
      const outcome = this.#execute(this.#state, request);
      this.#commit(request.c, request.n, outcome, request.to);
      this.#reply(request.to, request.n, outcome);
      return;
    }
    const key = callKey(request);
    const waiting = this.#pending.find((pending) => callKey(pending) === key);
    if (waiting !== undefined) {
      waiting.to = request.to; // a retry: answer where the caller listens now
      return;
    }
    this.#pending.push(request);
    this.drive();
  }

  #onUpdate(update: StateUpdate): void {
    // Only a pending call's update counts. Any other is late (a switch to active ran the call,
    // and its reply may be released from the cache by now): its state is stale everywhere.
    const key = callKey(update);
    const index = this.#pending.findIndex((pending) => callKey(pending) === key);
    if (index < 0) return;
    const to = this.#pending[index]!.to;
    this.#pending.splice(index, 1);
    this.#state = update.s as S;
    this.#commit(update.c, update.n, update.r, to);
    if (this.#barrier.delete(key) && this.#barrier.size === 0) this.#barrierFrom = null;
    if (this.primary === this.#effects.me()) this.#reply(to, update.n, update.r);
    this.drive();
  }

  #onSwitch(style: Style): void {
    if (style === this.#style) return;
    this.#style = style;
    this.#working = null;
    if (style === 'active') {
      for (const request of this.#pending) {
        const outcome = this.#execute(this.#state, request);
        this.#commit(request.c, request.n, outcome, request.to);
        this.#reply(request.to, request.n, outcome);
      }
      this.#pending = [];
      this.#clearBarrier();
    }
    this.drive();
  }

  #onRetiring(member: string): void {
    if (!this.#seniority.includes(member) || this.#retiring.has(member)) return;
    const before = this.primary;
    this.#retiring.add(member);
    this.#seniority = [...this.#seniority.filter((other) => other !== member), member];
    if (this.#style === 'passive' && before !== this.primary && this.#barrier.size === 0 && this.#pending.length > 0) {
      // The old primary was not held back, so it executed every pending request and their updates will follow.
      this.#barrier = new Set(this.#pending.map(callKey));
      this.#barrierFrom = before;
    }
    if (this.primary !== this.#effects.me()) this.#working = null;
    this.drive();
  }

  /**
   * A primary that failed may have committed calls it did not answer: the new one answers
   * every call its clients have not released yet (a caller drops replies it has).
   */
  #resendReplies(): void {
    for (const [, sequence, outcome, to] of this.#cache.entries()) this.#reply(to, sequence, outcome);
  }

  #clearBarrier(): void {
    this.#barrier.clear();
    this.#barrierFrom = null;
  }

  #executeForUpdate(request: Request): StateUpdate {
    const before = this.#working as S;
    const outcome = this.#execute(before, request);
    const update: StateUpdate = { k: 'u', c: request.c, n: request.n, to: request.to, s: this.#working, r: outcome };
    if (Buffer.byteLength(JSON.stringify(update)) <= UPDATE_BYTES_MAX) return update;
    // Too large to multicast: the request fails and the state stays as committed before it.
    this.#working = structuredClone(this.#state);
    this.#executed.clear();
    for (const earlier of this.#pending) {
      if (earlier === request) break;
      this.#executed.add(callKey(earlier));
      this.#execute(this.#working, earlier);
    }
    this.#executed.add(callKey(request));
    return { k: 'u', c: request.c, n: request.n, to: request.to, s: this.#working, r: failure('state-too-large', `the service state after '${request.m}' is over ${UPDATE_BYTES_MAX} bytes`) };
  }

  /** Runs a handler; every failure becomes the same error reply on every replica. */
  #execute(state: S, request: Request): Outcome {
    this.executions += 1;
    const handler = Object.hasOwn(this.#handlers, request.m) ? this.#handlers[request.m] : undefined;
    if (handler === undefined) return failure('unknown-method', `unknown method '${request.m}'`);
    if (Buffer.byteLength(JSON.stringify(request.a ?? null)) > PAYLOAD_BYTES_MAX) return failure('payload-too-large', `the arguments of '${request.m}' are over ${PAYLOAD_BYTES_MAX} bytes`);
    let json: string;
    try {
      json = JSON.stringify(handler(state, request.a) ?? null);
    } catch (error) {
      return failure('handler-error', error instanceof Error ? error.message : String(error));
    }
    if (Buffer.byteLength(json) > PAYLOAD_BYTES_MAX) return failure('reply-too-large', `the reply of '${request.m}' is over ${PAYLOAD_BYTES_MAX} bytes`);
    // A copy, so later requests changing the state cannot change a cached reply.
    return { ok: true, result: JSON.parse(json) as unknown };
  }

  #commit(client: string, sequence: number, outcome: Outcome, to: string): void {
    this.#cache.set(client, sequence, outcome, to);
    this.emit('committed', client, sequence);
  }

  /** Acknowledges only in the primary component's regular view: what is acknowledged is where the merge keeps it. */
  #reply(to: string, sequence: number, outcome: Outcome): void {
    if (!this.#component.acknowledges) return;
    if (this.#effects.inSync()) this.#effects.reply(to, sequence, outcome);
    else if (this.#withheld.length < WITHHELD_REPLIES_MAX) this.#withheld.push([to, sequence, outcome]);
  }
}
