/**
 * A client session with a Spread daemon: connect + handshake, requests
 * (join/leave/multicast/disconnect) and the receive side, which delivers to an
 * async iterator, to event listeners, or both.
 *
 * Receive back-pressure: messages wait in a bounded queue (`queueMax`) until the
 * consumer takes them; when it is full the socket is paused, so TCP pushes back
 * on the daemon (which, like Spread, eventually drops a session that lags more
 * than its MaxSessionMessages). The queue is used while an iterator is active or
 * while no message listener is attached; with listeners only, messages are
 * emitted as they are parsed and kinds without a listener are dropped.
 *
 * We always write little-endian with the marker, as x86 C clients do.
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import {
  DAEMON_NAME_LENGTH_MAX,
  ErrorCode,
  GROUP_NAME_BYTES,
  GROUPS_PER_MESSAGE_MAX,
  MESSAGE_BYTES_MAX,
  PRIVATE_NAME_LENGTH_MAX,
  SESSIONS_PER_DAEMON_MAX,
  ServiceType,
} from '../protocol/constants.js';
import { Framer } from '../protocol/framer.js';
import { encodeHint } from '../protocol/header.js';
import type { LibraryVersion } from '../protocol/handshake.js';
import { encodeControlRequest, encodedMessageBytes, encodeMessageInto, type MessageFields } from '../protocol/message.js';
import { OutputBatch } from './output.js';
import { isLegalGroupName } from '../protocol/names.js';
import { parseSpreadName, type DaemonAddress } from './address.js';
import { ConnectionClosedError, spreadError, SpreadError } from './errors.js';
import { runHandshake } from './handshake.js';
import {
  decodeMessage,
  SERVICE_BITS,
  type DataMessage,
  type MembershipMessage,
  type Message,
  type RejectMessage,
  type Service,
} from './messages.js';

/** Options of connect(); every field is optional. */
export interface ConnectOptions {
  /** Spread name: "4803" (Unix socket), "4803@host" (TCP), "" = "4803". */
  daemon?: string;
  /** Private name, 0–10 bytes (longer names are truncated like the C library); "" lets the daemon pick one. */
  privateName?: string;
  /** Receive membership messages (default true). */
  membership?: boolean;
  /** Priority flag (0 or 1); Spread stores it but never uses it. */
  priority?: number;
  /** Overall limit for connect + handshake in ms; 0 = none (default 10 000). */
  timeoutMs?: number;
  /** Directory of the daemon's Unix socket (default /tmp). */
  unixSocketDir?: string;
  /** Auth methods to request, at most 2 without client-side exchange (default ['NULL']). */
  authMethods?: string[];
  /** User name and password for the PWORD method (tspread daemons; docs/security.md). Adds PWORD to authMethods. */
  password?: { user: string; password: string };
  /**
   * Connect over TLS (a tspread daemon's TlsPort; "<TlsPort>@host"). `ca`: the CA that signed
   * the daemon's certificate; `cert`/`key`: this client's certificate, whose subject CN the
   * daemon takes as the client's identity. The daemon's name is checked against `servername`
   * (default: the host).
   */
  tls?: Pick<tls.ConnectionOptions, 'ca' | 'cert' | 'key' | 'servername' | 'rejectUnauthorized' | 'minVersion'>;
  /** Received messages held for a slow consumer before the socket is paused (default 1024). */
  queueMax?: number;
}

/** Options of Session.multicast(). */
export interface MulticastOptions {
  /** Default 'agreed'. */
  service?: Service;
  /** Application message type, an int16 (default 0). */
  messType?: number;
  /** Do not deliver the message back to this session. */
  selfDiscard?: boolean;
}

/** Events of a session; `close` carries the error that ended it, if any. */
export interface SessionEvents {
  message: [DataMessage];
  membership: [MembershipMessage];
  reject: [RejectMessage];
  close: [Error | undefined];
}

/**
 * Receive bounds. Data is capped by the daemon at 143 152 bytes, but membership
 * messages list every member: up to 997 sessions on each of 128 daemons, and the
 * body lists them again in vs sets.
 */
const MEMBERS_MAX = SESSIONS_PER_DAEMON_MAX * 128;
const RECEIVE_LIMITS = {
  groupsMax: MEMBERS_MAX,
  dataBytesMax: 20 + 128 * 4 + MEMBERS_MAX * GROUP_NAME_BYTES,
  bodyBytesMax: 20 + 128 * 4 + 2 * MEMBERS_MAX * GROUP_NAME_BYTES,
  rejectCarriesOldType: true,
};
const QUEUE_MAX_DEFAULT = 1024;
const TIMEOUT_MS_DEFAULT = 10_000;
const PRIVATE_GROUP_LENGTH_MAX = 2 + PRIVATE_NAME_LENGTH_MAX + DAEMON_NAME_LENGTH_MAX;

/** An open session. Create one with connect(). */
export class Session extends EventEmitter<SessionEvents> implements AsyncIterable<Message> {
  /** This session's private group, `#name#daemon`. */
  readonly privateGroup: string;
  /** The daemon's version from the accept message. */
  readonly daemonVersion: LibraryVersion;

  readonly #socket: net.Socket;
  readonly #framer = new Framer(RECEIVE_LIMITS);
  readonly #output: OutputBatch;
  readonly #queueMax: number;
  #queue: (Message | undefined)[] = [];
  #queueHead = 0;
  #iterators = 0;
  #waiters: (() => void)[] = [];
  #paused = false;
  #state: 'open' | 'disconnected' | 'failed' = 'open';
  #error: Error | undefined;
  #closed = false;
  readonly #closedPromise: Promise<void | Error>;
  #resolveClosed!: (value: void | Error) => void;

  /** @internal Use connect(). */
  constructor(socket: net.Socket, privateGroup: string, daemonVersion: LibraryVersion, leftover: Buffer, queueMax: number) {
    super();
    this.#socket = socket;
    this.#output = new OutputBatch(socket);
    this.privateGroup = privateGroup;
    this.daemonVersion = daemonVersion;
    this.#queueMax = queueMax;
    this.#closedPromise = new Promise((resolve) => (this.#resolveClosed = resolve));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) => this.#fail(spreadError(ErrorCode.CONNECTION_CLOSED, error.message, error)));
    socket.on('end', () => this.#fail(spreadError(ErrorCode.CONNECTION_CLOSED, 'daemon closed the connection')));
    socket.on('close', () => this.#onClose());
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message' || event === 'membership' || event === 'reject') queueMicrotask(() => this.#flushToListeners());
    });
    if (leftover.length > 0) this.#onData(leftover);
  }

  /** Joins `group` (1–31 bytes of `$`…`~`, else ILLEGAL_GROUP). */
  join(group: string): void {
    this.#control('join', group);
  }

  /** Leaves `group`; this session then receives a 'self-leave' membership message. */
  leave(group: string): void {
    this.#control('leave', group);
  }

  /**
   * Sends `data` to one group or up to 100 groups (public or private). Returns
   * false when the socket's write buffer is full: await drained() before sending much more.
   */
  multicast(groups: string | readonly string[], data: Uint8Array | string, options: MulticastOptions = {}): boolean {
    this.#assertOpen();
    const list = typeof groups === 'string' ? [groups] : groups;
    const service = options.service ?? 'agreed';
    const serviceBit = SERVICE_BITS[service];
    if (serviceBit === undefined) throw spreadError(ErrorCode.ILLEGAL_SERVICE, `unknown service ${String(service)}`);
    const messType = options.messType ?? 0;
    if (!Number.isInteger(messType) || messType < -0x8000 || messType > 0x7fff) {
      throw new RangeError(`messType ${messType} is not an int16`);
    }
    const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (list.length > GROUPS_PER_MESSAGE_MAX || list.length * GROUP_NAME_BYTES + payload.length > MESSAGE_BYTES_MAX) {
      throw spreadError(
        ErrorCode.MESSAGE_TOO_LONG,
        `${list.length} groups and ${payload.length} bytes exceed ${GROUPS_PER_MESSAGE_MAX} groups or ${MESSAGE_BYTES_MAX} bytes`,
      );
    }
    for (const group of list) {
      if (group.length === 0 || group.length >= GROUP_NAME_BYTES || /[^\x01-\xff]/.test(group)) {
        throw spreadError(ErrorCode.ILLEGAL_GROUP, `illegal group name ${JSON.stringify(group)}`);
      }
    }
    const type = serviceBit | (options.selfDiscard ? ServiceType.SELF_DISCARD : 0);
    this.#write({ type, sender: this.privateGroup, groups: list, hintRaw: encodeHint(messType), data: payload });
    return !this.#output.full;
  }

  /** Resolves once the socket's write buffer has drained (at once if it is not full or the session is closed). */
  drained(): Promise<void> {
    this.#output.flush();
    if (!this.#socket.writableNeedDrain || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        resolve();
      };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
  }

  /** Disconnects: sends KILL with the private group, closes the socket and resolves once it is closed. */
  async disconnect(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'disconnected';
      this.#queue = [];
      this.#queueHead = 0;
      if (!this.#socket.destroyed) {
        this.#output.flush();
        this.#socket.write(encodeControlRequest('kill', this.privateGroup, this.privateGroup));
        this.#socket.end();
        // Like SP_disconnect, do not wait for the daemon: close once our bytes are out.
        this.#socket.once('finish', () => this.#socket.destroy());
      }
      this.#wakeAll();
    }
    await this.#closedPromise;
  }

  /** Resolves (never rejects) when the session has closed: undefined after disconnect(), else the error. */
  closed(): Promise<void | Error> {
    return this.#closedPromise;
  }

  /** Received messages waiting for the consumer (at most about queueMax plus one socket read). */
  get pendingMessages(): number {
    return this.#queue.length - this.#queueHead;
  }

  /** True once the socket has closed. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Received messages of every kind, in order; ends when the session closes (see closed() for why). */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    this.#iterators++;
    try {
      for (;;) {
        const message = this.#dequeue();
        if (message !== undefined) {
          yield message;
          continue;
        }
        if (this.#closed || this.#state === 'disconnected') return;
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
      }
    } finally {
      this.#iterators--;
    }
  }

  #control(kind: 'join' | 'leave', group: string): void {
    this.#assertOpen();
    if (!isLegalGroupName(group)) throw spreadError(ErrorCode.ILLEGAL_GROUP, `illegal group name ${JSON.stringify(group)}`);
    const bytes = encodeControlRequest(kind, this.privateGroup, group);
    const offset = this.#output.reserve(bytes.length); // first: it may switch buffers
    this.#output.buffer.set(bytes, offset);
  }

  #assertOpen(): void {
    if (this.#state === 'disconnected') throw spreadError(ErrorCode.ILLEGAL_SESSION, 'session disconnected');
    if (this.#state === 'failed' || this.#closed) {
      throw spreadError(ErrorCode.NET_ERROR_ON_SESSION, 'session failed', this.#error);
    }
  }

  /** Encodes a message into the output batch, which goes out as one write at the end of this tick. */
  #write(fields: MessageFields): void {
    const offset = this.#output.reserve(encodedMessageBytes(fields));
    encodeMessageInto(this.#output.buffer, offset, fields);
  }

  #onData(chunk: Buffer): void {
    if (this.#state !== 'open') return;
    const messages: Message[] = [];
    try {
      for (const frame of this.#framer.push(chunk)) {
        const message = decodeMessage(frame, this.privateGroup);
        if (message !== null) messages.push(message);
      }
    } catch (error) {
      // Any decoding failure (ProtocolError, or a RangeError from a short field) means a corrupt stream.
      // Deliver what was whole before the bad message, then end the session.
      this.#fail(spreadError(ErrorCode.ILLEGAL_MESSAGE, error instanceof Error ? error.message : String(error), error));
      this.#socket.destroy();
    }
    for (const message of messages) this.#deliver(message);
  }

  #hasListeners(): boolean {
    return this.listenerCount('message') + this.listenerCount('membership') + this.listenerCount('reject') > 0;
  }

  #deliver(message: Message): void {
    if (this.#iterators > 0 || !this.#hasListeners()) {
      this.#queue.push(message);
      if (!this.#paused && this.#queue.length - this.#queueHead >= this.#queueMax) {
        this.#paused = true;
        this.#socket.pause();
      }
      this.#wakeAll();
    }
    this.#emitMessage(message);
  }

  #emitMessage(message: Message): void {
    if (message.kind === 'data') this.emit('message', message);
    else if (message.kind === 'membership') this.emit('membership', message);
    else this.emit('reject', message);
  }

  #dequeue(): Message | undefined {
    if (this.#queueHead >= this.#queue.length) return undefined;
    const message = this.#queue[this.#queueHead];
    this.#queue[this.#queueHead++] = undefined;
    const length = this.#queue.length - this.#queueHead;
    if (length === 0) {
      this.#queue = [];
      this.#queueHead = 0;
    } else if (this.#queueHead > 4096 && this.#queueHead > length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    if (this.#paused && length <= this.#queueMax >> 1) {
      this.#paused = false;
      this.#socket.resume();
    }
    return message;
  }

  /** Hands messages queued before the first listener was attached to the listeners. */
  #flushToListeners(): void {
    if (this.#iterators > 0 || !this.#hasListeners()) return;
    for (let message = this.#dequeue(); message !== undefined; message = this.#dequeue()) this.#emitMessage(message);
  }

  #wakeAll(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  #fail(error: SpreadError): void {
    if (this.#state === 'open') {
      this.#state = 'failed';
      this.#error = error;
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#fail(spreadError(ErrorCode.CONNECTION_CLOSED, 'connection closed'));
    this.#closed = true;
    // A queued message must still reach an iterator, so keep reading state but resume nothing.
    this.#wakeAll();
    const error = this.#state === 'disconnected' ? undefined : this.#error;
    this.#resolveClosed(error);
    this.emit('close', error);
  }
}

function socketFor(address: DaemonAddress, tlsOptions: ConnectOptions['tls']): net.Socket {
  if (address.kind === 'unix') {
    if (tlsOptions !== undefined) throw spreadError(ErrorCode.ILLEGAL_SPREAD, 'TLS needs a TCP daemon name ("<TlsPort>@host")');
    return net.connect({ path: address.path });
  }
  const socket =
    tlsOptions === undefined
      ? net.connect({ host: address.host, port: address.port })
      : tls.connect({ servername: net.isIP(address.host) === 0 ? address.host : undefined, ...tlsOptions, host: address.host, port: address.port });
  socket.setNoDelay(true);
  socket.setKeepAlive(true);
  return socket;
}

function connectFailure(address: DaemonAddress, error: NodeJS.ErrnoException): SpreadError {
  const where = address.kind === 'unix' ? address.path : `${address.host}:${address.port}`;
  // An unresolvable host is ILLEGAL_SPREAD in the C library; other failures COULD_NOT_CONNECT (§1.1).
  const code = error.code === 'ENOTFOUND' ? ErrorCode.ILLEGAL_SPREAD : ErrorCode.COULD_NOT_CONNECT;
  return spreadError(code, `could not connect to ${where}: ${error.message}`, error);
}

/** The methods to request: as given (default NULL), with PWORD when a password is given. */
function authMethodsOf(options: ConnectOptions): string[] {
  const methods = options.authMethods ?? (options.password === undefined ? ['NULL'] : []);
  return options.password === undefined || methods.includes('PWORD') ? methods : [...methods, 'PWORD'];
}

/** Connects to a daemon and runs the handshake; rejects with a SpreadError subclass. */
export async function connect(nameOrOptions: string | ConnectOptions = {}): Promise<Session> {
  const options: ConnectOptions = typeof nameOrOptions === 'string' ? { daemon: nameOrOptions } : nameOrOptions;
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS_DEFAULT;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw spreadError(ErrorCode.ILLEGAL_TIME, `illegal timeout ${timeoutMs}`);
  const queueMax = options.queueMax ?? QUEUE_MAX_DEFAULT;
  if (!Number.isInteger(queueMax) || queueMax < 1) throw new RangeError(`queueMax ${queueMax} must be a positive integer`);
  const address = parseSpreadName(options.daemon ?? '', options.unixSocketDir);
  const socket = socketFor(address, options.tls);
  let timer: NodeJS.Timeout | undefined;
  let failHandshake: ((error: Error) => void) | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        const error = spreadError(ErrorCode.COULD_NOT_CONNECT, `connect timed out after ${timeoutMs} ms`);
        failHandshake?.(error);
        reject(error);
      }, timeoutMs);
    }
  });
  timedOut.catch(() => undefined);
  try {
    await Promise.race([
      new Promise<void>((resolve, reject) => {
        // A TLS link is usable once its handshake is done (the daemon's certificate checked).
        socket.once(options.tls === undefined ? 'connect' : 'secureConnect', resolve);
        socket.once('error', (error) => reject(connectFailure(address, error)));
      }),
      timedOut,
    ]);
    socket.removeAllListeners('error');
    const result = await runHandshake(
      socket,
      {
        privateName: (options.privateName ?? '').slice(0, PRIVATE_NAME_LENGTH_MAX),
        membership: options.membership ?? true,
        priority: options.priority ?? 0,
        authMethods: authMethodsOf(options),
        password: options.password,
      },
      (fail) => (failHandshake = fail),
    );
    if (result.privateGroup.length > PRIVATE_GROUP_LENGTH_MAX) {
      throw spreadError(ErrorCode.CONNECTION_CLOSED, 'private group name too long');
    }
    return new Session(socket, result.privateGroup, result.daemonVersion, result.leftover, queueMax);
  } catch (error) {
    socket.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
