/**
 * The caller's side of a replicated service. A call is multicast (AGREED) to the
 * service group, which needs no membership; replicas reply to this session's
 * private group. A call keeps its number over retries (and over reconnections,
 * which change the reply address), so the replicas' reply cache runs it once;
 * each call also tells them which replies this client no longer needs.
 * A 'not-primary' answer (the replica is cut off from the primary component by a
 * partition) is not final: the call keeps being retried until a primary replica
 * answers, and fails with that error only when its time is up.
 */
import { randomUUID } from 'node:crypto';
import type { DataMessage, Session } from '../../client/index.js';
import { errorText, nextRetryMs, silentLogger, type Logger } from '../shared/logger.js';
import { OPERATION_TYPE } from '../shared/replicated-group.js';
import { decodeReply, encode, PAYLOAD_BYTES_MAX, ServiceError, type Reply, type Request } from './protocol.js';

/** 'first': the first reply; 'majority': in active style, replies from more than half the replicas. */
export type ReplyQuorum = 'first' | 'majority';

export interface ServiceClientOptions {
  group: string;
  connect: () => Promise<Session>;
  /** A call fails with a 'timeout' ServiceError after this long (default 10 s). */
  timeoutMs?: number;
  /** An unanswered call is sent again after this long (default 500 ms). */
  retryMs?: number;
  replies?: ReplyQuorum;
  logger?: Logger;
}

export interface CallOptions {
  timeoutMs?: number;
  replies?: ReplyQuorum;
}

interface Call {
  request: Request;
  replies: ReplyQuorum;
  from: Set<string>;
  /** The latest 'not-primary' answer: the error to give if no primary replica answers in time. */
  refusal: ServiceError | null;
  resolve(result: unknown): void;
  reject(error: Error): void;
  timers: NodeJS.Timeout[];
}

export class ServiceClient {
  readonly group: string;
  readonly #options: ServiceClientOptions;
  readonly #log: Logger;
  readonly #clientId = randomUUID();
  /** In call-number order, so the first is the oldest unanswered. */
  readonly #calls = new Map<number, Call>();
  #session: Session | null = null;
  #sequence = 0;
  #closed = false;
  #retryMs = 0;

  private constructor(options: ServiceClientOptions) {
    this.group = options.group;
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
  }

  /** Opens a client once its first session is up. */
  static async open(options: ServiceClientOptions): Promise<ServiceClient> {
    const client = new ServiceClient(options);
    client.#attach(await options.connect());
    return client;
  }

  /** Calls `method` with JSON `args`; resolves with its JSON result or rejects with a ServiceError. */
  call(method: string, args: unknown = null, options: CallOptions = {}): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('the service client is closed'));
    const sequence = ++this.#sequence;
    const request: Request = { k: 'q', c: this.#clientId, n: sequence, d: sequence, to: '', m: method, a: args ?? null };
    const size = Buffer.byteLength(JSON.stringify(request));
    if (size > PAYLOAD_BYTES_MAX) {
      return Promise.reject(new ServiceError('payload-too-large', `the call '${method}' is ${size} bytes; at most ${PAYLOAD_BYTES_MAX} are allowed`));
    }
    return new Promise((resolve, reject) => {
      const call: Call = { request, replies: options.replies ?? this.#options.replies ?? 'first', from: new Set(), refusal: null, resolve, reject, timers: [] };
      const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? 10_000;
      call.timers.push(
        setTimeout(() => this.#finish(call, call.refusal ?? new ServiceError('timeout', `no reply to '${method}' from service '${this.group}' within ${timeoutMs} ms`)), timeoutMs),
        setInterval(() => this.#send(call), this.#options.retryMs ?? 500),
      );
      this.#calls.set(sequence, call);
      this.#send(call);
    });
  }

  get inFlight(): number {
    return this.#calls.size;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const call of this.#calls.values()) this.#finish(call, new Error('the service client is closed'));
    await this.#session?.disconnect();
  }

  #attach(session: Session): void {
    this.#session = session;
    this.#retryMs = 0;
    session.on('message', (message: DataMessage) => this.#onMessage(message));
    session.once('close', () => {
      this.#session = null;
      if (!this.#closed) void this.#reconnect();
    });
    for (const call of this.#calls.values()) this.#send(call);
  }

  async #reconnect(): Promise<void> {
    while (!this.#closed && this.#session === null) {
      this.#retryMs = nextRetryMs(this.#retryMs);
      await new Promise((resolve) => setTimeout(resolve, this.#retryMs));
      try {
        const session = await this.#options.connect();
        if (this.#closed) await session.disconnect();
        else this.#attach(session);
      } catch (error) {
        this.#log.warn({ group: this.group, error: errorText(error) }, 'no daemon; calls wait');
      }
    }
  }

  #send(call: Call): void {
    const session = this.#session;
    if (session === null) return;
    call.request.to = session.privateGroup;
    call.request.d = this.#calls.keys().next().value ?? call.request.n;
    try {
      // SAFE, like the replicas' own operations: the whole group orders calls and updates one way.
      session.multicast(this.group, encode(call.request), { service: 'safe', messType: OPERATION_TYPE });
    } catch (error) {
      this.#log.warn({ group: this.group, error: errorText(error) }, 'could not send a call; retrying');
    }
  }

  #onMessage(message: DataMessage): void {
    const reply = decodeReply(message.data);
    const call = reply === null ? undefined : this.#calls.get(reply.n);
    if (reply === null || call === undefined) return; // a late or duplicate reply
    if (!reply.r.ok && reply.r.error.code === 'not-primary') {
      call.refusal = new ServiceError('not-primary', `${reply.r.error.message} (service '${this.group}', no primary replica answered in time)`);
      return;
    }
    call.from.add(reply.from);
    if (!reply.r.ok) this.#finish(call, new ServiceError(reply.r.error.code, reply.r.error.message));
    else if (call.from.size >= needed(call.replies, reply)) this.#finish(call, undefined, reply.r.result);
  }

  #finish(call: Call, error: Error | undefined, result?: unknown): void {
    for (const timer of call.timers) clearTimeout(timer);
    this.#calls.delete(call.request.n);
    if (error === undefined) call.resolve(result);
    else call.reject(error);
  }
}

/** Replies a call waits for: in passive style only the primary answers, after the backups have the update. */
function needed(quorum: ReplyQuorum, reply: Reply): number {
  return quorum === 'majority' && reply.style === 'active' ? Math.floor(reply.replicas / 2) + 1 : 1;
}
