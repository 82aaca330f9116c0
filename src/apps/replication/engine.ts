/**
 * ReplicationEngine: the adapter that runs EngineCore (core.ts) over a public-API Session and
 * the file log (log.ts). Every batch of the core's effects goes through one queue: its log
 * records are appended and fdatasync'ed together (group commit), and only then are its
 * multicasts sent and its green actions applied and acknowledged, in order.
 */
import { EventEmitter } from 'node:events';
import type { DataMessage, MembershipMessage, Session } from '../../client/index.js';
import { errorText, nextRetryMs, silentLogger, type Logger } from '../shared/logger.js';
import { SYSTEM_ORIGIN, type GreenAction } from './action.js';
import { CHUNK_BYTES, EngineCore, MessageType, snapshotMessages, type Effect } from './core.js';
import { ActionLog, encodeRecord } from './log.js';
import { recover } from './records.js';

/** A deterministic state machine replicated by the engine. Same actions in the same order => same state. */
export interface StateMachine {
  /** Applies green actions in order (`position` is equal at every replica); one result per action, never a throw. */
  applyBatch(actions: { position: number; action: Buffer }[]): Buffer[];
  /** The members of the primary component changed, at this point of the green order. */
  membersChanged?(members: string[], position: number): void;
  /** Whole state, for a replica too far behind, and for the engine's own compaction. */
  snapshot(): Buffer;
  restore(snapshot: Buffer, position: number): void;
  /** Position of the last action durably applied in the machine's own storage; 0 if none. */
  appliedPosition?(): number;
}

export interface EngineOptions {
  /** Spread group of the replicas. */
  group: string;
  /** This replica's unique name (the fixed order of names breaks voting ties). */
  name: string;
  /** Durable action log and checkpoints of this replica. */
  dataDir: string;
  machine: StateMachine;
  /** Opens a session (again after each loss). */
  connect: () => Promise<Session>;
  /** Writes outside a primary component: refuse at once (default) or hold them red until a primary orders them. */
  outsidePrimary?: 'refuse' | 'queue';
  logger?: Logger;
  /** The replica set's names: the first primary needs a majority of them. Default: whatever component forms first. */
  replicas?: string[];
  /** Green actions between checkpoints (log compaction); default 50 000. */
  checkpointEvery?: number;
}

export interface EngineStatus {
  primary: boolean;
  lastGreen: number;
  red: number;
  members: string[];
  name: string;
}

export interface AppliedEvent {
  position: number;
  action: Buffer;
  result: Buffer;
  /** Submitted through this engine. */
  local: boolean;
}

export interface ReplicationEngineEvents {
  status: [EngineStatus];
  applied: [AppliedEvent];
}

export class NotPrimaryError extends Error {
  override name = 'NotPrimaryError';
  constructor(message = 'this replica is outside a primary component') {
    super(message);
  }
}

/**
 * Policy 'refuse': the replica left the primary component (or lost its daemon) before this
 * action was ordered. It is held red and may still be ordered (green) later, once.
 */
export class ActionInDoubtError extends NotPrimaryError {
  override name = 'ActionInDoubtError';
  constructor() {
    super('this replica left the primary component before the action was ordered; it may still be ordered later');
  }
}

/** One action must fit one Spread message (143 152 bytes) with its header. */
export const ACTION_BYTES_MAX = CHUNK_BYTES;
/** Names travel in a one-byte length field with the incarnation appended. */
const NAME_BYTES_MAX = 200;

interface Waiter {
  resolve: (value: { position: number; result: Buffer }) => void;
  reject: (error: Error) => void;
}

export class ReplicationEngine extends EventEmitter<ReplicationEngineEvents> {
  readonly #options: EngineOptions;
  readonly #log: Logger;
  #core: EngineCore | null = null;
  #file: ActionLog | null = null;
  #session: Session | null = null;
  #stopped = false;
  #retryMs = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  readonly #waiters = new Map<number, Waiter>();
  #outbox: Buffer[] = [];
  #outboxScheduled = false;
  /** The effects not yet carried out, as a chain of batches (see #enqueue). */
  #chain: Promise<void> = Promise.resolve();
  /** Effects of the current tick, queued together at its end. */
  readonly #tickEffects: Effect[] = [];
  /** Batches behind a checkpoint, whose records are written only when their turn comes. */
  #deferred = 0;
  #lastStatus = '';
  #lastStatusApplied = -1;
  #failed: Error | null = null;
  /** The last green position applied to the machine (the core may be ahead, waiting for a flush). */
  #applied = 0;

  constructor(options: EngineOptions) {
    super();
    const nameBytes = Buffer.byteLength(options.name);
    if (nameBytes === 0 || nameBytes > NAME_BYTES_MAX) throw new RangeError(`a replica name takes 1 to ${NAME_BYTES_MAX} bytes, not ${nameBytes}`);
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
  }

  /** Recovers from dataDir (replaying logged greens the machine lacks), then connects and joins. */
  async start(): Promise<void> {
    const initial = this.#options.replicas === undefined ? null : { index: 0, members: [...this.#options.replicas].sort() };
    const { log, loaded } = ActionLog.open(this.#options.dataDir, initial);
    this.#file = log;
    const durable = recover(loaded.checkpoint, loaded.records);
    const machine = this.#options.machine;
    const applied = machine.appliedPosition?.() ?? -1;
    if (applied < loaded.checkpoint.position && loaded.checkpoint.position > 0) machine.restore(loaded.snapshot, loaded.checkpoint.position);
    const from = Math.max(applied, loaded.checkpoint.position);
    this.#applied = from;
    this.#apply(durable.greens.filter((action) => action.position > from), false);
    this.#core = new EngineCore(
      {
        name: this.#options.name,
        origin: `${this.#options.name}.${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`,
        outsidePrimary: this.#options.outsidePrimary ?? 'refuse',
        checkpointEvery: this.#options.checkpointEvery ?? 50_000,
      },
      durable,
    );
    this.#log.info({ name: this.#options.name, lastGreen: this.#core.lastGreen, red: this.#core.redCount }, 'replica recovered');
    await this.#reconnect();
  }

  submit(action: Buffer): Promise<{ position: number; result: Buffer }> {
    const core = this.#core;
    if (core === null || this.#stopped) return Promise.reject(new Error('the engine is not running'));
    if (this.#failed !== null) return Promise.reject(this.#failed);
    if (action.length > ACTION_BYTES_MAX) return Promise.reject(new RangeError(`an action takes at most ${ACTION_BYTES_MAX} bytes, not ${action.length}`));
    const submitted = core.submit(action);
    if (submitted === null) return Promise.reject(new NotPrimaryError());
    const promise = new Promise<{ position: number; result: Buffer }>((resolve, reject) => this.#waiters.set(submitted.action.seq, { resolve, reject }));
    if (submitted.payload !== null) this.#send(submitted.payload);
    this.#takeEffects();
    return promise;
  }

  status(): EngineStatus {
    const core = this.#core;
    return {
      primary: core?.primary ?? false,
      lastGreen: this.#applied,
      red: core?.redCount ?? 0,
      members: core?.members ?? [],
      name: this.#options.name,
    };
  }

  /** Leaves the group, finishes the durable work already started and closes the log. */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    const session = this.#session;
    this.#session = null;
    if (session !== null) await session.disconnect().catch(() => {});
    await this.#chain;
    this.#file?.close();
    for (const waiter of this.#waiters.values()) waiter.reject(new Error('the engine closed before the action was ordered'));
    this.#waiters.clear();
  }

  async #reconnect(): Promise<void> {
    if (this.#stopped) return;
    try {
      const session = await this.#options.connect();
      if (this.#stopped) {
        await session.disconnect();
        return;
      }
      this.#retryMs = 0;
      this.#attach(session);
    } catch (error) {
      this.#retryMs = nextRetryMs(this.#retryMs);
      this.#log.warn({ group: this.#options.group, error: errorText(error), retryMs: this.#retryMs }, 'no daemon; retrying');
      this.#retryTimer = setTimeout(() => void this.#reconnect(), this.#retryMs);
    }
  }

  #attach(session: Session): void {
    const core = this.#core!;
    this.#session = session;
    core.connected(session.privateGroup);
    session.on('message', (message: DataMessage) => {
      if (this.#session !== session || !message.groups.includes(this.#options.group)) return;
      core.message(message.sender, message.messType, Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength));
      this.#takeEffects();
    });
    session.on('membership', (message: MembershipMessage) => this.#onMembership(session, message));
    session.once('close', () => {
      if (this.#session !== session) return;
      this.#session = null;
      core.disconnected();
      this.#takeEffects();
      this.#log.warn({ group: this.#options.group }, 'daemon session lost');
      if (this.#stopped) return;
      this.#retryMs = nextRetryMs(this.#retryMs);
      this.#retryTimer = setTimeout(() => void this.#reconnect(), this.#retryMs);
    });
    session.join(this.#options.group);
  }

  #onMembership(session: Session, message: MembershipMessage): void {
    if (this.#session !== session || message.group !== this.#options.group || message.cause === 'self-leave') return;
    const core = this.#core!;
    if (message.transitional) core.transitional();
    else {
      const { procId, time, index } = message.gid;
      core.view(`${procId}.${time}.${index}`, message.members);
    }
    this.#takeEffects();
  }

  /** Submits go out at once (they need nothing durable first), coalesced per tick into few messages. */
  #send(payload: Buffer): void {
    this.#outbox.push(payload);
    if (this.#outboxScheduled) return;
    this.#outboxScheduled = true;
    setImmediate(() => {
      this.#outboxScheduled = false;
      const payloads = this.#outbox;
      this.#outbox = [];
      let batch: Buffer[] = [];
      let bytes = 0;
      const flush = () => {
        if (batch.length > 0) this.#multicast(MessageType.actions, Buffer.concat(batch));
        batch = [];
        bytes = 0;
      };
      for (const payload of payloads) {
        if (bytes + payload.length > CHUNK_BYTES) flush();
        batch.push(payload);
        bytes += payload.length;
      }
      flush();
    });
  }

  #multicast(messType: number, payload: Buffer): void {
    const session = this.#session;
    if (session === null) return;
    try {
      session.multicast(this.#options.group, payload, { service: 'safe', messType });
    } catch (error) {
      this.#log.warn({ group: this.#options.group, error: errorText(error) }, 'could not multicast');
    }
  }

  #takeEffects(): void {
    const core = this.#core!;
    const effects = core.takeEffects();
    if (effects.length > 0) {
      // Everything delivered by one socket read becomes one batch: one write, one fdatasync.
      if (this.#tickEffects.length === 0) queueMicrotask(() => this.#enqueue(this.#tickEffects.splice(0)));
      this.#tickEffects.push(...effects);
    }
    if ((core.phase === 'non-prim' || core.phase === 'disconnected') && this.#options.outsidePrimary !== 'queue' && this.#waiters.size > 0) {
      // Refusing means answering now: the caller must not wait for a partition to heal.
      for (const waiter of this.#waiters.values()) waiter.reject(new ActionInDoubtError());
      this.#waiters.clear();
    }
    this.#emitStatusIfChanged();
  }

  /**
   * Queues a batch of effects. Log records are written at once (in order, to the page cache) and
   * their fdatasync starts at once, so the flushes of consecutive batches overlap; the batch's
   * other effects run when its flush is done and every earlier batch's effects have run. Behind a
   * checkpoint (which replaces the log file) later batches wait to write until it is done.
   */
  #enqueue(effects: Effect[]): void {
    let start = 0;
    while (start < effects.length) {
      let end = effects.findIndex((effect, index) => index >= start && (effect.kind === 'checkpoint' || effect.kind === 'restore'));
      if (end === -1) end = effects.length - 1;
      this.#enqueueSegment(effects.slice(start, end + 1));
      start = end + 1;
    }
  }

  #enqueueSegment(segment: Effect[]): void {
    const records = segment.flatMap((effect) => (effect.kind === 'log' ? [encodeRecord(effect.record)] : []));
    const replacesLog = segment.some((effect) => effect.kind === 'checkpoint' || effect.kind === 'restore');
    let run: () => Promise<void>;
    if (this.#deferred === 0 && !replacesLog) {
      const durable = records.length > 0 ? this.#file!.append(records) : null;
      run = async () => {
        await durable;
        this.#perform(segment);
      };
    } else {
      this.#deferred++;
      run = async () => {
        this.#deferred--;
        if (records.length > 0) await this.#file!.append(records);
        this.#perform(segment);
      };
    }
    this.#chain = this.#chain.then(run).catch((error: unknown) => this.#fail(error));
  }

  /** Without a durable log the replica must not acknowledge anything more. */
  #fail(error: unknown): void {
    if (this.#failed !== null) return;
    this.#failed = error instanceof Error ? error : new Error(String(error));
    this.#log.error({ error: errorText(error) }, 'replication log failed; the replica stops');
    for (const waiter of this.#waiters.values()) waiter.reject(this.#failed);
    this.#waiters.clear();
    this.#session?.disconnect().catch(() => {});
    this.#session = null;
    this.#stopped = true;
  }

  #perform(effects: Effect[]): void {
    if (this.#failed !== null) return;
    let applies: GreenAction[] = [];
    for (const effect of effects) {
      if (effect.kind === 'log') continue;
      if (effect.kind === 'apply') {
        applies.push(effect.action);
        continue;
      }
      if (applies.length > 0) this.#apply(applies, true);
      applies = [];
      const machine = this.#options.machine;
      if (effect.kind === 'multicast') this.#multicast(effect.messType, effect.payload);
      else if (effect.kind === 'checkpoint') this.#file!.writeCheckpoint(effect.checkpoint, machine.snapshot());
      else if (effect.kind === 'restore') {
        machine.restore(effect.snapshot, effect.checkpoint.position);
        this.#applied = effect.checkpoint.position;
        this.#file!.writeCheckpoint(effect.checkpoint, effect.snapshot);
        this.#log.info({ position: effect.checkpoint.position, bytes: effect.snapshot.length }, 'state restored from a snapshot');
      } else if (effect.kind === 'send-snapshot') {
        for (const message of snapshotMessages(effect.view, effect.position, effect.greenIds, machine.snapshot())) this.#multicast(MessageType.snapshot, message);
      }
    }
    if (applies.length > 0) this.#apply(applies, true);
    this.#emitStatusIfChanged();
  }

  /** Applies greens in order: user actions in batches, primary changes through membersChanged. */
  #apply(actions: GreenAction[], live: boolean): void {
    const machine = this.#options.machine;
    if (actions.length > 0) this.#applied = actions.at(-1)!.position;
    let start = 0;
    while (start < actions.length) {
      const first = actions[start]!;
      if (first.origin === SYSTEM_ORIGIN) {
        machine.membersChanged?.(JSON.parse(first.body.toString('utf8')) as string[], first.position);
        start++;
        continue;
      }
      let end = start;
      while (end < actions.length && actions[end]!.origin !== SYSTEM_ORIGIN) end++;
      const slice = actions.slice(start, end);
      const results = machine.applyBatch(slice.map((action) => ({ position: action.position, action: action.body })));
      if (live) this.#acknowledge(slice, results);
      start = end;
    }
  }

  #acknowledge(actions: GreenAction[], results: Buffer[]): void {
    const origin = this.#core!.origin;
    actions.forEach((action, index) => {
      const result = results[index] ?? Buffer.alloc(0);
      const local = action.origin === origin;
      if (local) {
        const waiter = this.#waiters.get(action.seq);
        this.#waiters.delete(action.seq);
        waiter?.resolve({ position: action.position, result });
      }
      this.emit('applied', { position: action.position, action: action.body, result, local });
    });
  }

  /** Emits 'status' when what status() reports changed; a green position moving on counts only with a listener. */
  #emitStatusIfChanged(): void {
    const core = this.#core;
    const members = core?.members ?? [];
    const key = `${core?.primary ?? false} ${core?.redCount ?? 0} ${members.join(',')}`;
    if (key === this.#lastStatus && (this.listenerCount('status') === 0 || this.#applied === this.#lastStatusApplied)) return;
    this.#lastStatus = key;
    this.#lastStatusApplied = this.#applied;
    this.emit('status', this.status());
  }
}
