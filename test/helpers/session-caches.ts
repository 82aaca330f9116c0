/**
 * `tspread session-cache` processes and a small memcached text-protocol client
 * for the session-cache tests and benchmark (they talk to memcached itself too).
 */
import * as net from 'node:net';
import { ToolProcess } from '../fake-daemon/processes.js';
import { stopTool } from './log-collectors.js';
import type { StartedDaemon } from './daemon.js';

export interface RunningCache {
  tool: ToolProcess;
  port: number;
  stop(): Promise<number | null>;
}

/**
 * Starts a cache on 127.0.0.1:`port` replicating over `group` through the daemon's
 * TCP port (so a restarted daemon on the same port is found again).
 */
export async function startSessionCache(daemon: Pick<StartedDaemon, 'port'>, group: string, port: number, extraArgs: string[] = []): Promise<RunningCache> {
  const tool = new ToolProcess(['session-cache', '--listen', `127.0.0.1:${port}`, '-g', group, '-s', `${daemon.port}@127.0.0.1`, ...extraArgs]);
  try {
    await tool.waitFor('"msg":"session cache listening"', 15_000);
  } catch (error) {
    tool.kill();
    throw error;
  }
  return { tool, port, stop: () => stopTool(tool) };
}

/** Resolves once the cache logged being in sync `times` times. */
export async function waitForSync(cache: RunningCache, times = 1, timeoutMs = 20_000): Promise<void> {
  const pattern = new RegExp(`("msg":"in sync with the group"[\\s\\S]*){${times}}`);
  await cache.tool.waitFor(pattern, timeoutMs);
}

/** A memcached text-protocol client: one connection, replies read in order. */
export class MemcacheClient {
  readonly #socket: net.Socket;
  #received: Buffer = Buffer.alloc(0);
  #waiter: (() => void) | null = null;
  closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#received = this.#received.length === 0 ? chunk : Buffer.concat([this.#received, chunk]);
      this.#waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#waiter?.();
    });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<MemcacheClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => resolve(new MemcacheClient(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: string | Buffer): void {
    this.#socket.write(bytes);
  }

  /** Waits until the bytes received so far satisfy `complete` (a byte count or a predicate), then takes them. */
  async read(complete: number | ((received: Buffer) => number), timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const length = typeof complete === 'number' ? (this.#received.length >= complete ? complete : -1) : complete(this.#received);
      if (length >= 0) {
        const taken = this.#received.subarray(0, length);
        this.#received = this.#received.subarray(length);
        return taken;
      }
      if (this.closed) throw new Error(`connection closed; received ${JSON.stringify(this.#received.toString('latin1'))}`);
      if (Date.now() > deadline) throw new Error(`timed out; received ${JSON.stringify(this.#received.toString('latin1'))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiter = () => {
          clearTimeout(timer);
          this.#waiter = null;
          resolve();
        };
      });
    }
  }

  /** Sends a command and reads one reply line. */
  async command(text: string | Buffer): Promise<string> {
    this.write(text);
    return (await this.read(lineLength)).toString('latin1').trimEnd();
  }

  async set(key: string, value: string | Buffer, exptime = 0, mode = 'set'): Promise<string> {
    const bytes = Buffer.from(value);
    return this.command(Buffer.concat([Buffer.from(`${mode} ${key} 0 ${exptime} ${bytes.length}\r\n`), bytes, Buffer.from('\r\n')]));
  }

  async get(key: string): Promise<string | null> {
    this.write(`get ${key}\r\n`);
    const reply = (await this.read(endOfRetrieval)).toString('latin1');
    const match = /^VALUE \S+ \d+ (\d+)\r\n/.exec(reply);
    return match === null ? null : reply.slice(match[0].length, match[0].length + Number(match[1]));
  }

  async stats(): Promise<Map<string, string>> {
    this.write('stats\r\n');
    const reply = (await this.read(endOfRetrieval)).toString('latin1');
    return new Map([...reply.matchAll(/^STAT (\S+) (.*)\r$/gm)].map((match) => [match[1]!, match[2]!]));
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** Length of the first line with its CRLF, or -1. */
export function lineLength(received: Buffer): number {
  const newline = received.indexOf('\n');
  return newline < 0 ? -1 : newline + 1;
}

/** Length of a get/stats reply through its END line, or -1 (walks VALUE blocks by their byte counts). */
export function endOfRetrieval(received: Buffer): number {
  let offset = 0;
  for (;;) {
    const newline = received.indexOf('\n', offset);
    if (newline < 0) return -1;
    const header = received.toString('latin1', offset, newline);
    if (header.startsWith('END')) return newline + 1;
    const value = /^VALUE \S+ \d+ (\d+)/.exec(header);
    offset = value === null ? newline + 1 : newline + 1 + Number(value[1]) + 2;
  }
}
