/**
 * The memcached text protocol's commands that a session cache needs, parsed
 * incrementally from a connection's bytes. Bad input becomes an `error` command
 * carrying memcached's own reply; only a line that never ends closes the
 * connection (as memcached does), and an oversized value is read and dropped so
 * the stream stays in step.
 */
export type StorageName = 'set' | 'add' | 'replace';

export type MemcacheCommand =
  | { name: 'get' | 'gets'; keys: string[] }
  | { name: StorageName; key: string; flags: number; exptime: number; value: Buffer; noreply: boolean }
  | { name: 'delete'; key: string; noreply: boolean }
  | { name: 'version' | 'stats' | 'quit' }
  | { name: 'error'; reply: string; close: boolean };

/** memcached's key limit. */
export const KEY_BYTES_MAX = 250;
/** A command line longer than this without a newline is refused (memcached allows 2048 for keys ≤ 250). */
export const LINE_BYTES_MAX = 2048;

const CRLF = '\r\n';
const BAD_FORMAT = 'CLIENT_ERROR bad command line format';
const STORAGE_NAMES = new Set(['set', 'add', 'replace']);

function isKey(token: string | undefined): token is string {
  return token !== undefined && token.length > 0 && token.length <= KEY_BYTES_MAX && !/[\x00-\x20\x7f]/.test(token);
}

function unsigned32(token: string | undefined): number | null {
  if (token === undefined || !/^\d{1,10}$/.test(token)) return null;
  const value = Number(token);
  return value <= 0xffffffff ? value : null;
}

function signedInteger(token: string | undefined): number | null {
  if (token === undefined || !/^-?\d{1,12}$/.test(token)) return null;
  return Number(token);
}

export class MemcacheParser {
  readonly valueBytesMax: number;
  #buffer: Buffer = Buffer.alloc(0);
  /** Bytes of a refused value still to drop. */
  #discard = 0;

  constructor(valueBytesMax: number) {
    this.valueBytesMax = valueBytesMax;
  }

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
  }

  /** The next complete command, or null when more bytes are needed. */
  next(): MemcacheCommand | null {
    if (this.#discard > 0) {
      const dropped = Math.min(this.#discard, this.#buffer.length);
      this.#discard -= dropped;
      this.#buffer = this.#buffer.subarray(dropped);
      if (this.#discard > 0) return null;
    }
    const newline = this.#buffer.indexOf(0x0a);
    if (newline < 0) {
      if (this.#buffer.length > LINE_BYTES_MAX) {
        this.#buffer = Buffer.alloc(0);
        return { name: 'error', reply: 'CLIENT_ERROR line too long', close: true };
      }
      return null;
    }
    const lineEnd = newline > 0 && this.#buffer[newline - 1] === 0x0d ? newline - 1 : newline;
    const line = this.#buffer.toString('latin1', 0, lineEnd);
    const tokens = line.split(' ').filter((token) => token.length > 0);
    const name = tokens[0] ?? '';
    if (STORAGE_NAMES.has(name)) return this.#storage(name as StorageName, tokens, newline + 1);
    this.#buffer = this.#buffer.subarray(newline + 1);
    return parseSimple(name, tokens);
  }

  #storage(name: StorageName, tokens: string[], dataStart: number): MemcacheCommand | null {
    const key = tokens[1];
    const flags = unsigned32(tokens[2]);
    const exptime = signedInteger(tokens[3]);
    const length = signedInteger(tokens[4]);
    const noreplyToken = tokens[5];
    const wellFormed =
      (tokens.length === 5 || (tokens.length === 6 && noreplyToken === 'noreply')) && isKey(key) && flags !== null && exptime !== null && length !== null && length >= 0;
    if (!wellFormed) {
      this.#buffer = this.#buffer.subarray(dataStart);
      return { name: 'error', reply: BAD_FORMAT, close: false };
    }
    if (length > this.valueBytesMax) {
      this.#buffer = this.#buffer.subarray(dataStart);
      this.#discard = length + 2;
      return { name: 'error', reply: 'SERVER_ERROR object too large for cache', close: false };
    }
    if (this.#buffer.length < dataStart + length + 2) return null;
    const value = Buffer.from(this.#buffer.subarray(dataStart, dataStart + length));
    const terminated = this.#buffer[dataStart + length] === 0x0d && this.#buffer[dataStart + length + 1] === 0x0a;
    if (!terminated) {
      // The length was wrong: drop the rest of that line so the next command starts clean.
      const lineEnd = this.#buffer.indexOf(0x0a, dataStart + length);
      if (lineEnd < 0) return null;
      this.#buffer = this.#buffer.subarray(lineEnd + 1);
      return { name: 'error', reply: 'CLIENT_ERROR bad data chunk', close: false };
    }
    this.#buffer = this.#buffer.subarray(dataStart + length + 2);
    return { name, key, flags, exptime, value, noreply: tokens.length === 6 };
  }
}

function parseSimple(name: string, tokens: string[]): MemcacheCommand {
  switch (name) {
    case 'get':
    case 'gets': {
      const keys = tokens.slice(1);
      if (keys.length === 0) return { name: 'error', reply: 'ERROR', close: false };
      if (!keys.every(isKey)) return { name: 'error', reply: BAD_FORMAT, close: false };
      return { name, keys };
    }
    case 'delete': {
      // apr_memcache (Apache's mod_socache_memcache) sends "delete <key> 0".
      const rest = tokens.slice(2);
      const noreply = rest[rest.length - 1] === 'noreply';
      const options = noreply ? rest.slice(0, -1) : rest;
      if (!isKey(tokens[1]) || options.length > 1 || (options.length === 1 && options[0] !== '0')) {
        return { name: 'error', reply: `${BAD_FORMAT}.  Usage: delete <key> [noreply]`, close: false };
      }
      return { name: 'delete', key: tokens[1], noreply };
    }
    case 'version':
    case 'stats':
    case 'quit':
      return { name };
    default:
      return { name: 'error', reply: 'ERROR', close: false };
  }
}

/** memcached's exptime: 0 never, negative already expired, up to 30 days relative seconds, beyond that a Unix time. */
export function absoluteExpiryMs(exptime: number, nowMs: number): number {
  if (exptime === 0) return 0;
  if (exptime < 0) return 1;
  if (exptime <= 30 * 24 * 3600) return nowMs + exptime * 1000;
  return exptime * 1000;
}

export function line(text: string): Buffer {
  return Buffer.from(text + CRLF, 'latin1');
}
