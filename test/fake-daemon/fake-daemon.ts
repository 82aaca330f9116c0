/**
 * A scripted fake Spread daemon for client tests: an in-process net server whose
 * test script reads exactly what the client sends and writes exact bytes back
 * (the byte streams a Spread 5.0.1 daemon produces, spread-protocol.md §2–§5).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { GROUP_NAME_BYTES, HEADER_BYTES, ServiceType } from '../../src/protocol/constants.js';

import { hex, name32 } from '../helpers/bytes.js';

export { hex, name32 };

/** One accepted client connection, driven by the test. */
export class FakeConnection {
  private buffered = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private ended = false;
  /** Every chunk as it arrived, to check write boundaries. */
  readonly chunks: Buffer[] = [];
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      }),
    );
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** Exactly `count` bytes from the client; rejects if it closes first. */
  async read(count: number): Promise<Buffer> {
    while (this.buffered.length < count) {
      if (this.ended) throw new Error(`client closed with ${this.buffered.length}/${count} bytes`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    const out = this.buffered.subarray(0, count);
    this.buffered = this.buffered.subarray(count);
    return Buffer.from(out);
  }

  /** One whole client message (LE header assumed, as our client writes). */
  async readMessage(): Promise<Buffer> {
    const header = await this.read(HEADER_BYTES);
    const numGroups = header.readInt32LE(36);
    const dataLen = header.readInt32LE(44);
    const rest = await this.read(numGroups * GROUP_NAME_BYTES + dataLen);
    return Buffer.concat([header, rest]);
  }

  /** Resolves when the client has sent EOF or closed. */
  async eof(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => (this.waiter = resolve));
  }

  /** Bytes received and not yet read. */
  get pending(): number {
    return this.buffered.length;
  }

  write(bytes: Uint8Array): boolean {
    return this.socket.write(bytes);
  }

  /** Writes one byte per macrotask, so the client sees the stream split everywhere. */
  async writeByteByByte(bytes: Uint8Array): Promise<void> {
    for (const byte of bytes) {
      this.socket.write(Buffer.of(byte));
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  end(bytes: Uint8Array = new Uint8Array(0)): void {
    this.socket.end(bytes);
  }

  /**
   * Plays the daemon side of a successful handshake (§2.8) and returns what the
   * client sent: the connect request (5+L bytes) and the 90-byte auth choice.
   */
  async acceptSession(
    daemonName = 'localhost',
    authList = 'NULL ',
  ): Promise<{ request: Buffer; choice: Buffer; privateGroup: string }> {
    const head = await this.read(5);
    const request = Buffer.concat([head, await this.read(head[4])]);
    const privateName = request.subarray(5).toString('latin1') || 'r1234-5';
    this.write(Buffer.concat([Buffer.of(authList.length), Buffer.from(authList, 'latin1')]));
    const choice = await this.read(90);
    const privateGroup = `#${privateName}#${daemonName}`;
    this.write(Buffer.concat([hex('01 05 00 01'), Buffer.of(privateGroup.length), Buffer.from(privateGroup, 'latin1')]));
    return { request, choice, privateGroup };
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}

/** Where the fake listens, as a Spread name plus the options connect() needs for it. */
export interface FakeEndpoint {
  daemon: string;
  unixSocketDir?: string;
}

/** The server. Create with FakeDaemon.tcp() or FakeDaemon.unix(). */
export class FakeDaemon {
  private readonly connections: FakeConnection[] = [];
  private waiters: ((connection: FakeConnection) => void)[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly endpoint: FakeEndpoint,
    private readonly cleanupDir?: string,
  ) {
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      const connection = new FakeConnection(socket);
      const waiter = this.waiters.shift();
      if (waiter) waiter(connection);
      else this.connections.push(connection);
    });
  }

  /** Listens on an ephemeral loopback TCP port (IPv4 unless `host` says otherwise). */
  static async tcp(host = '127.0.0.1'): Promise<FakeDaemon> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    const { port } = server.address() as net.AddressInfo;
    return new FakeDaemon(server, { daemon: `${port}@${host}` });
  }

  /** Listens on a Unix socket <tmpdir>/<port> like a daemon on port `port`. */
  static async unix(port = 4803): Promise<FakeDaemon> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tspread-fake-'));
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(dir, String(port)), resolve));
    return new FakeDaemon(server, { daemon: String(port), unixSocketDir: dir }, dir);
  }

  /** The next client connection. */
  accept(): Promise<FakeConnection> {
    const ready = this.connections.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.cleanupDir) fs.rmSync(this.cleanupDir, { recursive: true, force: true });
  }
}

/** Type bits, re-exported for test scripts. */
export { ServiceType };
