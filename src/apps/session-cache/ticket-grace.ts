/**
 * Keeps the previous ticket key accepted for a grace period, although a Node
 * TLS context decrypts with one key only: connections whose ClientHello offers
 * a ticket sealed by the previous key are handed to a second TLS server that
 * holds that key (same certificate and options), and its secure connections are
 * passed back to the real server's listeners, so HTTP and the application see
 * nothing different. Everything else goes the ordinary way.
 */
import * as tls from 'node:tls';
import type { Socket } from 'node:net';
import { firstRecordLength, KEY_NAME_BYTES, offeredTicketKeyName } from './client-hello.js';

const HELLO_WAIT_MS = 10_000;
/** Events of the spare server that the real server's listeners must see. */
const FORWARDED_EVENTS = ['secureConnection', 'tlsClientError', 'newSession', 'resumeSession', 'keylog'] as const;

export class TicketGrace {
  readonly #server: tls.Server;
  readonly #spare: tls.Server;
  readonly #ordinary: ((socket: Socket) => void)[];
  readonly #route = (socket: Socket) => this.#onConnection(socket);
  #previousName: Buffer | null = null;
  #graceUntilMs = 0;
  /** Connections handed to the spare server, for tests and logs. */
  routed = 0;

  constructor(server: tls.Server, contextOptions: tls.TlsOptions) {
    this.#server = server;
    this.#spare = tls.createServer(contextOptions);
    for (const event of FORWARDED_EVENTS) {
      this.#spare.on(event, (...args: unknown[]) => server.emit(event, ...args));
    }
    this.#ordinary = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', this.#route);
  }

  /** From now until `untilMs`, tickets sealed by `key` are still accepted. */
  acceptPrevious(key: Buffer, untilMs: number): void {
    this.#spare.setTicketKeys(key);
    this.#previousName = Buffer.from(key.subarray(0, KEY_NAME_BYTES));
    this.#graceUntilMs = untilMs;
  }

  stop(): void {
    this.#server.off('connection', this.#route);
    for (const listener of this.#ordinary) this.#server.on('connection', listener);
  }

  #onConnection(socket: Socket): void {
    if (this.#previousName === null || Date.now() >= this.#graceUntilMs) {
      this.#handOrdinary(socket);
      return;
    }
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), HELLO_WAIT_MS);
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      const head = Buffer.concat(chunks);
      const needed = firstRecordLength(head);
      if (needed !== null && head.length < needed) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      socket.unshift(head);
      const name = needed === null ? null : offeredTicketKeyName(head);
      const previous = this.#previousName;
      if (name !== null && previous !== null && name.equals(previous) && Date.now() < this.#graceUntilMs) {
        this.routed += 1;
        this.#spare.emit('connection', socket);
      } else this.#handOrdinary(socket);
    };
    socket.on('data', onData);
    socket.once('close', () => clearTimeout(timer));
  }

  #handOrdinary(socket: Socket): void {
    for (const listener of this.#ordinary) listener.call(this.#server, socket);
  }
}
