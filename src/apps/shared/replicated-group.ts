/**
 * ReplicatedGroup: a state machine replicated over one Spread group, on the
 * public client API only. Operations go out as AGREED messages and every member
 * applies them in the one total order; a member that joins (or comes back after
 * its daemon was away) gets the live state by transfer (state-transfer.ts).
 *
 * Without a session the replica keeps serving what it holds: propose() returns
 * false and the caller applies the change locally; the next session catches up
 * by transfer. With `connect`, lost sessions are replaced after a back-off.
 *
 * After a partition heals one side's state wins the transfer; a replica can say its
 * state must not win (authoritative) or carry its side's contributions over into
 * the winner's state (carryOver).
 */
import { EventEmitter } from 'node:events';
import type { DataMessage, MembershipCause, MembershipMessage, Session } from '../../client/index.js';
import { errorText, nextRetryMs, silentLogger, type Logger } from './logger.js';
import { StateTransfer, type Standing } from './state-transfer.js';

/** What a replicated state provides. apply() must be deterministic: same operations, same order, same state. */
export interface Replica {
  apply(operation: Uint8Array, fromSelf: boolean): void;
  snapshot(): Buffer;
  restore(snapshot: Buffer): void;
  /**
   * False when this member's state must not win a merge (e.g. it was outside the primary
   * component): its HELLO then claims at most standing 1, so a member that answers true wins.
   * Asked as a view arrives, before the 'view' event: it answers for the view before.
   */
  authoritative?(): boolean;
  /**
   * Operations that add again what this member holds. When a merge replaces this side's
   * state with the other side's, one member of this side proposes them after the transfer,
   * so the merged state holds both sides' contributions (apply() must take repeats).
   */
  carryOver?(): Uint8Array[];
}

export interface ReplicatedGroupOptions {
  group: string;
  replica: Replica;
  /** An open session to use (not replaced when it closes)… */
  session?: Session;
  /** …or how to open one, again after each loss. */
  connect?: () => Promise<Session>;
  logger?: Logger;
  /** How operations are ordered: 'agreed' (default), or 'safe' when a member acts on being sure every other one has the operation too. */
  operationService?: 'agreed' | 'safe';
}

export interface ReplicatedGroupEvents {
  /** This member's state is the group's: after a transfer, or at once when none was needed. */
  synced: [];
  /** A regular view of the group: its members in order, and why it changed. */
  view: [string[], MembershipCause];
  /** The transitional signal: the view is about to change after a network event; what follows may not reach every member. */
  transitional: [];
  /** The session closed; proposals now return false until the next one. */
  disconnected: [];
  /** An operation was applied (delivered in order, or replayed after a transfer). */
  operation: [];
}

/** Message type of operations: a sender outside the group may multicast them too (producers, a service's clients). */
export const OPERATION_TYPE = 1;
const HELLO_TYPE = 2;
const SNAPSHOT_TYPE = 3;
/** Snapshot chunks stay well under Spread's 143 152-byte message limit. */
export const SNAPSHOT_CHUNK_BYTES = 100_000;

export class ReplicatedGroup extends EventEmitter<ReplicatedGroupEvents> {
  readonly group: string;
  readonly transfer = new StateTransfer();
  readonly #replica: Replica;
  readonly #connect: (() => Promise<Session>) | undefined;
  readonly #log: Logger;
  readonly #operationService: 'agreed' | 'safe';
  #session: Session | null = null;
  /** Removes this group's listeners from its session (which the caller may share with others). */
  #detach: () => void = () => {};
  #members: string[] = [];
  /** This member's side in the latest view, when that view merged partitions (else empty). */
  #mySide: string[] = [];
  /** The transfer under way replaces the state of a side this member speaks for: carry it over. */
  #carrying = false;
  #stopped = false;
  #retryMs = 0;
  #retryTimer: NodeJS.Timeout | null = null;

  constructor(options: ReplicatedGroupOptions) {
    super();
    if (options.session === undefined && options.connect === undefined) throw new Error('ReplicatedGroup needs a session or connect');
    this.group = options.group;
    this.#replica = options.replica;
    this.#connect = options.connect;
    this.#log = options.logger ?? silentLogger;
    this.#operationService = options.operationService ?? 'agreed';
    if (options.session !== undefined) this.#attach(options.session);
    else void this.#reconnect();
  }

  get connected(): boolean {
    return this.#session !== null;
  }

  /** The session in use, or null between sessions. */
  get session(): Session | null {
    return this.#session;
  }

  /** This member's private group while connected. */
  get me(): string | null {
    return this.#session?.privateGroup ?? null;
  }

  /** The latest regular view's members, in the daemons' order. */
  get members(): readonly string[] {
    return this.#members;
  }

  /** Multicasts an operation; false when there is no session (apply it locally then). */
  propose(operation: Uint8Array): boolean {
    if (this.#session === null) return false;
    try {
      this.#session.multicast(this.group, operation, { service: this.#operationService, messType: OPERATION_TYPE });
      return true;
    } catch (error) {
      this.#log.warn({ group: this.group, error: errorText(error) }, 'could not multicast an operation');
      return false;
    }
  }

  /** Leaves the group and stops reconnecting; a session handed in by the caller stays open. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    const session = this.#session;
    this.#session = null;
    if (session === null) return;
    this.#detach();
    if (this.#connect !== undefined) await session.disconnect();
    else {
      try {
        session.leave(this.group);
      } catch {
        // Already closed: nothing to leave.
      }
    }
  }

  async #reconnect(): Promise<void> {
    if (this.#stopped || this.#connect === undefined) return;
    try {
      const session = await this.#connect();
      if (this.#stopped) {
        await session.disconnect();
        return;
      }
      this.#retryMs = 0;
      this.#attach(session);
      this.#log.info({ group: this.group, member: session.privateGroup }, 'joined the replication group');
    } catch (error) {
      this.#retryMs = nextRetryMs(this.#retryMs);
      this.#log.warn({ group: this.group, error: errorText(error), retryMs: this.#retryMs }, 'no daemon; serving local state');
      this.#retryTimer = setTimeout(() => void this.#reconnect(), this.#retryMs);
    }
  }

  #attach(session: Session): void {
    this.#session = session;
    const onMessage = (message: DataMessage) => this.#onMessage(session, message);
    const onMembership = (message: MembershipMessage) => this.#onMembership(session, message);
    session.on('message', onMessage);
    session.on('membership', onMembership);
    this.#detach = () => {
      session.off('message', onMessage);
      session.off('membership', onMembership);
    };
    session.once('close', () => {
      if (this.#session !== session) return;
      this.#session = null;
      this.#members = [];
      this.transfer.onDisconnect();
      this.emit('disconnected');
      this.#log.warn({ group: this.group }, 'daemon session lost; serving local state');
      this.#retryMs = nextRetryMs(this.#retryMs);
      if (!this.#stopped && this.#connect !== undefined) this.#retryTimer = setTimeout(() => void this.#reconnect(), this.#retryMs);
    });
    session.join(this.group);
  }

  #onMembership(session: Session, message: MembershipMessage): void {
    if (message.group !== this.group || message.cause === 'self-leave') return;
    if (message.transitional) {
      this.emit('transitional');
      return;
    }
    const { procId, time, index } = message.gid;
    const viewKey = `${procId}.${time}.${index}`;
    this.#members = message.members;
    const mergedPartitions = message.cause === 'network' && message.vsSets.length > 1;
    this.#mySide = mergedPartitions ? [...message.mySet].sort() : [];
    this.#carrying = false;
    const held = this.transfer.onView(viewKey, message.members, mergedPartitions);
    const standing = this.#replica.authoritative?.() === false ? (Math.min(held, 1) as Standing) : held;
    const hello = Buffer.concat([Buffer.from([standing]), Buffer.from(viewKey, 'latin1')]);
    try {
      session.multicast(this.group, hello, { service: 'agreed', messType: HELLO_TYPE });
    } catch (error) {
      this.#log.warn({ group: this.group, error: errorText(error) }, 'could not multicast a hello');
    }
    this.emit('view', message.members, message.cause);
  }

  #onMessage(session: Session, message: DataMessage): void {
    if (!message.groups.includes(this.group)) return;
    const data = message.data;
    if (message.messType === OPERATION_TYPE) {
      this.transfer.onOperation(data);
      this.#applySafely(data, message.sender === session.privateGroup);
    } else if (message.messType === HELLO_TYPE && data.length >= 1) {
      const viewKey = Buffer.from(data.buffer, data.byteOffset + 1, data.byteLength - 1).toString('latin1');
      const standing = Math.min(data[0]!, 2) as Standing;
      const decision = this.transfer.onHello(viewKey, message.sender, standing, session.privateGroup);
      if (decision.kind === 'in-sync') this.emit('synced');
      else if (decision.kind === 'send-snapshot') {
        this.emit('synced');
        void this.#sendSnapshot(session, viewKey, this.#replica.snapshot());
      } else if (decision.kind === 'receive-snapshot') {
        this.#carrying = this.#mySide[0] === session.privateGroup && !this.#mySide.includes(decision.donor);
        this.#log.info({ group: this.group, donor: decision.donor, carrying: this.#carrying }, 'receiving state');
      }
    } else if (message.messType === SNAPSHOT_TYPE) {
      this.#onSnapshotChunk(session, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    }
  }

  #onSnapshotChunk(session: Session, chunk: Buffer): void {
    if (chunk.length < 9) return;
    const index = chunk.readUInt32LE(0);
    const count = chunk.readUInt32LE(4);
    const keyLength = chunk.readUInt8(8);
    const viewKey = chunk.toString('latin1', 9, 9 + keyLength);
    const done = this.transfer.onSnapshotChunk(viewKey, index, count, chunk.subarray(9 + keyLength));
    if (done === null) return;
    const carried = this.#carrying ? (this.#replica.carryOver?.() ?? []) : [];
    this.#carrying = false;
    this.#replica.restore(done.snapshot);
    for (const operation of done.replay) this.#applySafely(operation, false);
    // Proposed after the snapshot point, so every member applies them to the merged state alike.
    for (const operation of carried) this.propose(operation);
    if (carried.length > 0) this.#log.info({ group: this.group, operations: carried.length }, 'carried this side\'s state over into the merge');
    this.#log.info({ group: this.group, bytes: done.snapshot.length, replayed: done.replay.length, member: session.privateGroup }, 'state received');
    this.emit('synced');
  }

  async #sendSnapshot(session: Session, viewKey: string, snapshot: Buffer): Promise<void> {
    const count = Math.max(1, Math.ceil(snapshot.length / SNAPSHOT_CHUNK_BYTES));
    const keyBytes = Buffer.from(viewKey, 'latin1');
    try {
      for (let index = 0; index < count; index++) {
        if (this.transfer.viewKey !== viewKey || this.#session !== session) return;
        const head = Buffer.alloc(9);
        head.writeUInt32LE(index, 0);
        head.writeUInt32LE(count, 4);
        head.writeUInt8(keyBytes.length, 8);
        const body = snapshot.subarray(index * SNAPSHOT_CHUNK_BYTES, (index + 1) * SNAPSHOT_CHUNK_BYTES);
        if (!session.multicast(this.group, Buffer.concat([head, keyBytes, body]), { service: 'agreed', messType: SNAPSHOT_TYPE })) await session.drained();
      }
      this.#log.info({ group: this.group, bytes: snapshot.length, chunks: count }, 'state sent');
    } catch (error) {
      this.#log.warn({ group: this.group, error: errorText(error) }, 'state transfer interrupted');
    }
  }

  #applySafely(operation: Uint8Array, fromSelf: boolean): void {
    try {
      this.#replica.apply(operation, fromSelf);
      this.emit('operation');
    } catch (error) {
      // A malformed operation from another member must not stop this one.
      this.#log.warn({ group: this.group, error: errorText(error) }, 'skipped an operation that does not decode');
    }
  }
}
