/**
 * A raw Spread client for process tests: speaks exact bytes over TCP or a Unix socket,
 * with no client library in between. Reads are bounded by timeouts.
 */
import net from 'node:net';
import {
  ENDIAN_MARKER,
  Framer,
  ServiceType,
  encodeAuthChoice,
  encodeConnectRequest,
  encodeControlRequest,
  encodeHint,
  encodeMessage,
  type Frame,
} from '../../src/protocol/index.js';

export type Endpoint = { port: number; host?: string } | { path: string };

export class RawClient {
  readonly socket: net.Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private ended = false;
  private framer = new Framer({ groupsMax: 1000, dataBytesMax: 1 << 24, bodyBytesMax: 1 << 24, rejectCarriesOldType: true });
  privateGroup = '';

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  static connect(endpoint: Endpoint): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket =
        'path' in endpoint ? net.connect({ path: endpoint.path }) : net.connect({ port: endpoint.port, host: endpoint.host ?? '127.0.0.1' });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Connect and complete a 5.0.1 handshake with the NULL method. */
  static async join(endpoint: Endpoint, name: string, membership = true): Promise<RawClient> {
    const client = await RawClient.connect(endpoint);
    await client.handshake(name, membership);
    return client;
  }

  async handshake(name: string, membership = true): Promise<string> {
    this.write(encodeConnectRequest({ version: { major: 5, minor: 0, patch: 1 }, membership, priority: 0, privateName: name }));
    const length = (await this.read(1))[0];
    if (length >= 0x80) throw new Error(`rejected: ${length - 256}`);
    await this.read(length);
    this.write(encodeAuthChoice(['NULL']));
    const head = await this.read(5);
    if (head[0] !== 1) throw new Error(`rejected: ${head[0] - 256}`);
    this.privateGroup = (await this.read(head[4])).toString('latin1');
    return this.privateGroup;
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  joinGroup(group: string): void {
    this.write(encodeControlRequest('join', this.privateGroup, group));
  }

  leaveGroup(group: string): void {
    this.write(encodeControlRequest('leave', this.privateGroup, group));
  }

  disconnect(): void {
    this.write(encodeControlRequest('kill', this.privateGroup, this.privateGroup));
    this.socket.end();
  }

  multicast(service: number, groups: string[], data: Uint8Array | string, messType = 0, littleEndian = true): void {
    const payload = typeof data === 'string' ? Buffer.from(data) : data;
    this.write(
      encodeMessage(
        { type: service, sender: this.privateGroup, groups, hintRaw: encodeHint(messType, littleEndian), data: payload },
        littleEndian,
      ),
    );
  }

  /** Exactly `count` bytes, or throws after `timeoutMs` / on EOF. */
  async read(count: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length < count) {
      if (this.ended) throw new Error(`EOF after ${this.buffer.length} of ${count} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${count} bytes (have ${this.buffer.length})`);
      await this.waitForInput(left);
    }
    const out = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return Buffer.from(out);
  }

  /** Everything received until EOF (or timeout). */
  async readToEnd(timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timeout waiting for EOF');
      await this.waitForInput(left);
    }
    const out = this.buffer;
    this.buffer = Buffer.alloc(0);
    return out;
  }

  /** The next whole message from the daemon. */
  async message(timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buffer.length > 0) {
        const chunk = this.buffer;
        this.buffer = Buffer.alloc(0);
        this.pendingFrames.push(...this.framer.push(chunk));
      }
      const frame = this.pendingFrames.shift();
      if (frame) return frame;
      if (this.ended) throw new Error('EOF while waiting for a message');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timeout waiting for a message');
      await this.waitForInput(left);
    }
  }

  /** Resolves true if no message arrives within `ms`. */
  async quietFor(ms: number): Promise<boolean> {
    try {
      await this.message(ms);
      return false;
    } catch (error) {
      if (String(error).includes('timeout')) return true;
      throw error;
    }
  }

  isEnded(): boolean {
    return this.ended;
  }

  close(): void {
    this.socket.destroy();
  }

  private pendingFrames: Frame[] = [];

  private waitForInput(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

export const LE_MARKER = ENDIAN_MARKER;
export { ServiceType };
