/**
 * A competing consumer of one queue: a member of the queue's group that keeps
 * the queue's replicated state (so it can take over a leaver's messages) and
 * handles the messages the state assigns to it. Acknowledgements of one turn of
 * the event loop go out as one AGREED operation.
 */
import type { Session } from '../../client/index.js';
import { ReplicatedGroup, type Replica } from '../shared/replicated-group.js';
import { errorText, silentLogger, type Logger } from '../shared/logger.js';
import { BATCH_BYTES_MAX, decodeRecord, type Body, type Headers } from './envelope.js';
import { MessagingClosedError, type Handler, type ReceivedMessage } from './message.js';
import { applyOperation, encodeAcks, encodeRegister } from './operations.js';
import { QueueState, recordOf, type QueueEntry, type QueueLimits } from './queue-state.js';

export interface ConsumeOptions {
  /** Most unacknowledged messages this consumer holds at once (default 1000). */
  prefetch?: number;
  /** Queue bounds every member applies (all members must use the same). */
  limits?: Partial<QueueLimits>;
  logger?: Logger;
}

export type ReplySender = (replyTo: string, correlation: number, body: Body, headers: Headers | undefined) => void;

export const DEFAULT_PREFETCH = 1000;
const ACK_BATCH_MAX = 8000;
/**
 * Acknowledgements wait this long for company (one timer per batch, not per message),
 * unless a quarter of the prefetch window is waiting: every ack is an AGREED message
 * that every member applies, and one per socket read was thousands a second.
 */
const ACK_LINGER_MS = 2;

export class Consumer {
  readonly queue: string;
  readonly state: QueueState;
  readonly #group: ReplicatedGroup;
  readonly #session: Session;
  readonly #handler: Handler;
  readonly #prefetch: number;
  readonly #ackThreshold: number;
  readonly #sendReply: ReplySender;
  readonly #log: Logger;
  /** Handed to the handler and not yet settled in the replicated state. */
  readonly #handed = new Set<number>();
  #acks: number[] = [];
  #nacks: number[] = [];
  #flushScheduled = false;
  /** Raised when the state is replaced: a handler finishing after that must not settle a new record with its old id. */
  #generation = 0;
  #stopped = false;
  /** Resolves once this consumer is registered in the queue's state. */
  readonly ready: Promise<void>;
  #resolveReady: (() => void) | null = null;

  constructor(session: Session, group: string, queue: string, handler: Handler, sendReply: ReplySender, options: ConsumeOptions = {}) {
    this.queue = queue;
    this.#session = session;
    this.#handler = handler;
    this.#sendReply = sendReply;
    this.#prefetch = options.prefetch ?? DEFAULT_PREFETCH;
    if (!Number.isInteger(this.#prefetch) || this.#prefetch < 1) throw new RangeError(`prefetch must be a positive integer, not ${this.#prefetch}`);
    this.#ackThreshold = Math.max(1, Math.floor(this.#prefetch / 4));
    this.#log = options.logger ?? silentLogger;
    this.state = new QueueState(options.limits);
    this.state.onAssign = (entry) => {
      if (entry.owner === session.privateGroup && this.#live()) this.#hand(entry);
    };
    const replica: Replica = {
      apply: (operation) => this.#apply(operation),
      snapshot: () => this.state.snapshot(),
      restore: (snapshot) => this.#restore(snapshot),
      carryOver: () => this.state.republishBatches(BATCH_BYTES_MAX),
    };
    this.#group = new ReplicatedGroup({ group, replica, session, logger: this.#log });
    this.#group.on('view', (members) => this.state.setMembers(members));
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      void session.closed().then(() => {
        if (this.#resolveReady !== null) reject(new MessagingClosedError(`the daemon session closed before the consumer of ${queue} was registered`));
      });
    });
    // consume() awaits it; a consumer made otherwise must not leave an unhandled rejection.
    this.ready.catch(() => {});
    this.#group.on('synced', () => this.#onSynced());
  }

  /** Leaves the queue: what this consumer has not acknowledged goes to the others. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#flushSettled();
    this.#stopped = true;
    await this.#group.stop();
  }

  #restore(snapshot: Buffer): void {
    this.state.restore(snapshot);
    this.#generation++;
    this.#handed.clear();
    this.#acks = [];
    this.#nacks = [];
  }

  #live(): boolean {
    return !this.#stopped && this.#group.transfer.synced && !this.#group.transfer.receiving;
  }

  #apply(operation: Uint8Array): void {
    const applied = applyOperation(this.state, operation);
    const me = this.#session.privateGroup;
    if (applied.settledBy === me) for (const id of applied.settled) this.#handed.delete(id);
    if (this.#resolveReady !== null && applied.registered === me) {
      this.#resolveReady();
      this.#resolveReady = null;
    }
  }

  #onSynced(): void {
    const me = this.#session.privateGroup;
    if (!this.state.consumers.includes(me)) this.#group.propose(encodeRegister(me, this.#prefetch));
    for (const entry of this.state.ownedBy(me)) if (!this.#handed.has(entry.id)) this.#hand(entry);
  }

  #hand(entry: QueueEntry): void {
    this.#handed.add(entry.id);
    const generation = this.#generation;
    let message: ReceivedMessage;
    try {
      message = this.#message(entry);
    } catch (error) {
      this.#log.warn({ queue: this.queue, id: entry.id, error: errorText(error) }, 'dropped a message that does not decode');
      this.#settle(entry.id, true, generation);
      return;
    }
    try {
      const result = this.#handler(message);
      if (result instanceof Promise) {
        result.then(
          () => this.#settle(entry.id, true, generation),
          (error: unknown) => this.#failed(entry.id, error, generation),
        );
      } else this.#settle(entry.id, true, generation);
    } catch (error) {
      this.#failed(entry.id, error, generation);
    }
  }

  #message(entry: QueueEntry): ReceivedMessage {
    const decoded = decodeRecord(recordOf(entry));
    const sendReply = this.#sendReply;
    return {
      source: this.queue,
      id: entry.id,
      body: decoded.body,
      headers: decoded.headers,
      idempotencyKey: decoded.idempotencyKey,
      deliveryCount: entry.deliveries,
      isRequest: decoded.replyTo !== undefined,
      reply(body, options) {
        if (decoded.replyTo !== undefined) sendReply(decoded.replyTo, decoded.correlation ?? 0, body, options?.headers);
      },
    };
  }

  #failed(id: number, error: unknown, generation: number): void {
    this.#log.warn({ queue: this.queue, id, error: errorText(error) }, 'handler failed; message given back');
    this.#settle(id, false, generation);
  }

  #settle(id: number, ok: boolean, generation: number): void {
    if (this.#stopped || generation !== this.#generation) return;
    (ok ? this.#acks : this.#nacks).push(id);
    const waiting = this.#acks.length + this.#nacks.length;
    if (waiting >= ACK_BATCH_MAX || waiting >= this.#ackThreshold) this.#flushSettled();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setTimeout(() => this.#flushSettled(), ACK_LINGER_MS);
    }
  }

  #flushSettled(): void {
    this.#flushScheduled = false;
    if (this.#stopped || this.#session.isClosed) return;
    const me = this.#session.privateGroup;
    if (this.#acks.length > 0) this.#group.propose(encodeAcks(me, this.#acks));
    if (this.#nacks.length > 0) this.#group.propose(encodeAcks(me, this.#nacks, true));
    this.#acks = [];
    this.#nacks = [];
  }
}
