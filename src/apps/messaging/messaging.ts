/**
 * The messaging client: one daemon session for sending to queues and topics,
 * asking (request/reply), consuming queues and subscribing to topics.
 *
 *   const mq = await Messaging.connect({ daemon: '4803' });
 *   mq.send('jobs', { n: 1 });
 *   await mq.consume('jobs', (message) => console.log(message.body));
 *   const answer = await mq.ask('rpc', 'ping', { timeoutMs: 500 });
 */
import { connect, type DataMessage, type Session } from '../../client/index.js';
import { OPERATION_TYPE } from '../shared/replicated-group.js';
import { errorText, silentLogger, type Logger } from '../shared/logger.js';
import { Batcher, MARK_TYPE } from './batcher.js';
import { Consumer, type ConsumeOptions } from './consumer.js';
import { decodeRecord, encodeRecord, forEachRecord, type Body, type Headers } from './envelope.js';
import { AskTimeoutError, checkName, MessagingClosedError, queueGroup, topicGroup, type Handler, type ReceivedMessage } from './message.js';
import { PUBLISH } from './operations.js';

export interface MessagingOptions {
  /** Spread name of the daemon: "4803" (Unix socket) or "4803@host" (default "4803"). */
  daemon?: string;
  unixSocketDir?: string;
  logger?: Logger;
}

export interface SendOptions {
  headers?: Headers;
  /** Producer retries with the same key are queued once (while the queue remembers the key). */
  idempotencyKey?: string;
}

export interface AskOptions {
  timeoutMs?: number;
  headers?: Headers;
}

/** A reply to ask(). */
export interface Reply {
  body: Body;
  headers: Headers;
}

const REPLY_TYPE = 41;
const TOPIC_TYPE = 42;
const DEFAULT_ASK_TIMEOUT_MS = 5000;

interface PendingAsk {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class Messaging {
  readonly session: Session;
  readonly #batcher: Batcher;
  readonly #log: Logger;
  readonly #asks = new Map<number, PendingAsk>();
  readonly #subscriptions = new Map<string, Set<Handler>>();
  readonly #consumers = new Set<Consumer>();
  #nextCorrelation = Math.floor(Math.random() * 2 ** 40);
  /** Replies that came after their ask timed out (dropped). */
  lateReplies = 0;

  static async connect(options: MessagingOptions = {}): Promise<Messaging> {
    const session = await connect({ daemon: options.daemon ?? '4803', unixSocketDir: options.unixSocketDir, timeoutMs: 10_000 });
    return new Messaging(session, options.logger);
  }

  constructor(session: Session, logger: Logger = silentLogger) {
    this.session = session;
    this.#log = logger;
    this.#batcher = new Batcher(session);
    session.on('message', (message) => this.#onMessage(message));
    void session.closed().then(() => {
      for (const [correlation, ask] of this.#asks) {
        clearTimeout(ask.timer);
        ask.reject(new MessagingClosedError('the daemon session closed before the reply came'));
        this.#asks.delete(correlation);
      }
    });
  }

  /** Queues a message; false means the socket is full or the producer is far ahead of the ring: await drained() before sending much more. */
  send(queue: string, body: Body, options: SendOptions = {}): boolean {
    checkName('queue', queue);
    this.#assertOpen();
    const record = encodeRecord({ body, headers: options.headers, idempotencyKey: options.idempotencyKey });
    return this.#batcher.add(queueGroup(queue), OPERATION_TYPE, PUBLISH, record);
  }

  /** Sends a message to every current subscriber of `topic`. */
  publish(topic: string, body: Body, options: { headers?: Headers } = {}): boolean {
    checkName('topic', topic);
    this.#assertOpen();
    return this.#batcher.add(topicGroup(topic), TOPIC_TYPE, PUBLISH, encodeRecord({ body, headers: options.headers }));
  }

  /** Sends what is batched and resolves once the daemon has taken it. */
  async drained(): Promise<void> {
    await this.#batcher.drained();
  }

  /** Sends a request to `queue`; resolves with the first reply, rejects with AskTimeoutError after timeoutMs. */
  ask(queue: string, body: Body, options: AskOptions = {}): Promise<Reply> {
    checkName('queue', queue);
    const timeoutMs = options.timeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) return Promise.reject(new RangeError(`timeoutMs must be a positive number, not ${timeoutMs}`));
    try {
      this.#assertOpen();
      const correlation = ++this.#nextCorrelation;
      const record = encodeRecord({ body, headers: options.headers, replyTo: this.session.privateGroup, correlation });
      return new Promise<Reply>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#asks.delete(correlation);
          reject(new AskTimeoutError(queue, timeoutMs));
        }, timeoutMs);
        this.#asks.set(correlation, { resolve, reject, timer });
        this.#batcher.add(queueGroup(queue), OPERATION_TYPE, PUBLISH, record);
      });
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** Joins `queue` as a competing consumer; resolves once this consumer is registered in the queue's state. */
  async consume(queue: string, handler: Handler, options: ConsumeOptions = {}): Promise<Consumer> {
    checkName('queue', queue);
    this.#assertOpen();
    const consumer = new Consumer(this.session, queueGroup(queue), queue, handler, (replyTo, correlation, body, headers) => this.#reply(replyTo, correlation, body, headers), {
      logger: this.#log,
      ...options,
    });
    this.#consumers.add(consumer);
    await consumer.ready;
    return consumer;
  }

  /** Receives every message published to `topic` from now on; returns the unsubscribe function. */
  subscribe(topic: string, handler: Handler): () => void {
    checkName('topic', topic);
    this.#assertOpen();
    const group = topicGroup(topic);
    let handlers = this.#subscriptions.get(group);
    if (handlers === undefined) {
      handlers = new Set();
      this.#subscriptions.set(group, handlers);
      this.session.join(group);
    }
    handlers.add(handler);
    return () => {
      handlers.delete(handler);
      if (handlers.size === 0 && this.#subscriptions.delete(group) && !this.session.isClosed) this.session.leave(group);
    };
  }

  /** Stops consuming, sends what is batched and disconnects. */
  async close(): Promise<void> {
    for (const consumer of this.#consumers) await consumer.stop();
    this.#consumers.clear();
    if (!this.session.isClosed) {
      this.#batcher.flush();
      await this.session.disconnect();
    }
  }

  #assertOpen(): void {
    if (this.session.isClosed) throw new MessagingClosedError('the messaging client is closed');
  }

  #reply(replyTo: string, correlation: number, body: Body, headers: Headers | undefined): void {
    const record = encodeRecord({ body, headers });
    const bytes = Buffer.allocUnsafe(8 + record.length);
    bytes.writeDoubleLE(correlation, 0);
    record.copy(bytes, 8);
    if (!this.session.isClosed) this.session.multicast(replyTo, bytes, { service: 'fifo', messType: REPLY_TYPE });
  }

  #onMessage(message: DataMessage): void {
    if (message.messType === REPLY_TYPE) this.#onReply(message.data);
    else if (message.messType === TOPIC_TYPE) this.#onTopicMessage(message);
    else if (message.messType === MARK_TYPE && message.sender === this.session.privateGroup) this.#batcher.markReturned();
  }

  #onReply(data: Uint8Array): void {
    if (data.length < 8) return;
    const correlation = Buffer.from(data.buffer, data.byteOffset, data.byteLength).readDoubleLE(0);
    const ask = this.#asks.get(correlation);
    if (ask === undefined) {
      this.lateReplies++;
      return;
    }
    this.#asks.delete(correlation);
    clearTimeout(ask.timer);
    try {
      const { body, headers } = decodeRecord(data.subarray(8));
      ask.resolve({ body, headers });
    } catch (error) {
      ask.reject(error as Error);
    }
  }

  #onTopicMessage(message: DataMessage): void {
    const group = message.groups[0];
    const handlers = group === undefined ? undefined : this.#subscriptions.get(group);
    if (handlers === undefined || message.data[0] !== PUBLISH) return;
    const topic = group!.slice(3);
    forEachRecord(message.data, 1, (offset, length) => {
      let received: ReceivedMessage;
      try {
        const decoded = decodeRecord(message.data.subarray(offset, offset + length));
        received = { source: topic, id: 0, body: decoded.body, headers: decoded.headers, idempotencyKey: decoded.idempotencyKey, deliveryCount: 1, isRequest: false, reply() {} };
      } catch (error) {
        this.#log.warn({ topic, error: errorText(error) }, 'dropped a topic message that does not decode');
        return;
      }
      for (const handler of handlers) {
        try {
          void Promise.resolve(handler(received)).catch((error: unknown) => this.#log.warn({ topic, error: errorText(error) }, 'topic handler failed'));
        } catch (error) {
          this.#log.warn({ topic, error: errorText(error) }, 'topic handler failed');
        }
      }
    });
  }
}
