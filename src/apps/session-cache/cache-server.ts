/**
 * The memcached-protocol front of a SharedMap: local clients (Apache's
 * mod_socache_memcache, any memcached client) read from this host's memory and
 * write through the group. Replies go out in command order even though writes
 * are answered only once the group has ordered them; the replies a burst of
 * reads produces leave in one write.
 */
import * as net from 'node:net';
import { SharedMap } from '../shared/shared-map.js';
import type { ApplyResult } from '../shared/replicated-map.js';
import { absoluteExpiryMs, line, MemcacheParser, type MemcacheCommand } from './memcache-protocol.js';

export const CACHE_VERSION = '1.6.0-tspread';

const REPLIES: Record<ApplyResult, Buffer> = {
  stored: line('STORED'),
  'not-stored': line('NOT_STORED'),
  deleted: line('DELETED'),
  'not-found': line('NOT_FOUND'),
  'too-large': line('SERVER_ERROR object too large for cache'),
};
const END = line('END');
const CRLF = Buffer.from('\r\n');

export interface CacheCounters {
  currConnections: number;
  totalConnections: number;
  cmdGet: number;
  cmdSet: number;
  getHits: number;
  getMisses: number;
  deleteHits: number;
  deleteMisses: number;
  protocolErrors: number;
}

/** One reply in a connection's order: ready bytes, or a write still waiting for the group. */
interface ReplySlot {
  bytes: Buffer | null;
}

export class CacheServer {
  readonly map: SharedMap;
  readonly counters: CacheCounters = {
    currConnections: 0,
    totalConnections: 0,
    cmdGet: 0,
    cmdSet: 0,
    getHits: 0,
    getMisses: 0,
    deleteHits: 0,
    deleteMisses: 0,
    protocolErrors: 0,
  };
  readonly #server: net.Server;
  readonly #startedAtMs = Date.now();
  readonly #sockets = new Set<net.Socket>();

  constructor(map: SharedMap) {
    this.map = map;
    this.#server = net.createServer((socket) => this.#serve(socket));
  }

  listen(port: number, host: string): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ port, host }, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as net.AddressInfo);
      });
    });
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #serve(socket: net.Socket): void {
    this.counters.currConnections += 1;
    this.counters.totalConnections += 1;
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    const parser = new MemcacheParser(this.map.valueBytesMax);
    const slots: ReplySlot[] = [];
    let closing = false;
    const flush = () => {
      let ready = 0;
      while (ready < slots.length && slots[ready]!.bytes !== null) ready++;
      if (ready === 0) return;
      const out = slots.splice(0, ready).map((slot) => slot.bytes!);
      if (socket.destroyed) return;
      // A client that sends without reading stops being read until its replies drain.
      if (!socket.write(out.length === 1 ? out[0]! : Buffer.concat(out)) && !socket.isPaused()) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
      if (closing && slots.length === 0) socket.end();
    };
    socket.on('data', (chunk: Buffer) => {
      if (closing) return;
      parser.push(chunk);
      for (let command = parser.next(); command !== null; command = parser.next()) {
        if (command.name === 'quit' || (command.name === 'error' && command.close)) {
          if (command.name === 'error') slots.push({ bytes: line(command.reply) });
          closing = true;
          break;
        }
        this.#execute(command, slots, flush);
      }
      flush();
      if (closing && slots.length === 0) socket.end();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.counters.currConnections -= 1;
      this.#sockets.delete(socket);
    });
  }

  #execute(command: Exclude<MemcacheCommand, { name: 'quit' }>, slots: ReplySlot[], flush: () => void): void {
    switch (command.name) {
      case 'get':
      case 'gets':
        slots.push({ bytes: this.#read(command.keys, command.name === 'gets') });
        return;
      case 'set':
      case 'add':
      case 'replace': {
        this.counters.cmdSet += 1;
        const pending = this.map.store(command.name, command.key, command.value, command.flags, absoluteExpiryMs(command.exptime, Date.now()));
        this.#answerLater(pending, command.noreply, slots, flush);
        return;
      }
      case 'delete': {
        const pending = this.map.delete(command.key).then((result) => {
          if (result === 'deleted') this.counters.deleteHits += 1;
          else this.counters.deleteMisses += 1;
          return result;
        });
        this.#answerLater(pending, command.noreply, slots, flush);
        return;
      }
      case 'version':
        slots.push({ bytes: line(`VERSION ${CACHE_VERSION}`) });
        return;
      case 'stats':
        slots.push({ bytes: this.#stats() });
        return;
      case 'error':
        this.counters.protocolErrors += 1;
        slots.push({ bytes: line(command.reply) });
        return;
    }
  }

  #answerLater(pending: Promise<ApplyResult>, noreply: boolean, slots: ReplySlot[], flush: () => void): void {
    if (noreply) return;
    const slot: ReplySlot = { bytes: null };
    slots.push(slot);
    void pending.then((result) => {
      slot.bytes = REPLIES[result];
      flush();
    });
  }

  #read(keys: string[], withCas: boolean): Buffer {
    const parts: Buffer[] = [];
    const nowMs = Date.now();
    for (const key of keys) {
      this.counters.cmdGet += 1;
      const entry = this.map.get(key, nowMs);
      if (entry === undefined) {
        this.counters.getMisses += 1;
        continue;
      }
      this.counters.getHits += 1;
      const header = `VALUE ${key} ${entry.flags} ${entry.value.length}${withCas ? ` ${entry.cas}` : ''}`;
      parts.push(line(header), entry.value, CRLF);
    }
    parts.push(END);
    return parts.length === 1 ? END : Buffer.concat(parts);
  }

  #stats(): Buffer {
    const nowMs = Date.now();
    const map = this.map.stats;
    const counters = this.counters;
    const stats: [string, string | number][] = [
      ['pid', process.pid],
      ['uptime', Math.floor((nowMs - this.#startedAtMs) / 1000)],
      ['time', Math.floor(nowMs / 1000)],
      ['version', CACHE_VERSION],
      ['curr_connections', counters.currConnections],
      ['total_connections', counters.totalConnections],
      ['cmd_get', counters.cmdGet],
      ['cmd_set', counters.cmdSet],
      ['get_hits', counters.getHits],
      ['get_misses', counters.getMisses],
      ['delete_hits', counters.deleteHits],
      ['delete_misses', counters.deleteMisses],
      ['curr_items', map.entries],
      ['bytes', map.bytes],
      ['limit_maxbytes', map.limitBytes],
      ['item_size_max', this.map.valueBytesMax],
      ['evictions', map.evictions],
      ['expired_unfetched', map.expiredDropped],
      ['eviction_policy', 'least-recently-stored'],
      ['protocol_errors', counters.protocolErrors],
      ['replication_connected', map.connected ? 1 : 0],
      ['replication_synced', map.synced ? 1 : 0],
      ['replication_members', map.members],
      ['local_only_writes', map.localWrites],
    ];
    return Buffer.concat([...stats.map(([name, value]) => line(`STAT ${name} ${value}`)), END]);
  }
}
