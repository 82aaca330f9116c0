/**
 * `tspread session-cache` as processes on a ring of real daemons: replication,
 * memcached semantics, bad input, state transfer to a restarted cache, and a
 * daemon's outage (the cache keeps serving, then catches up).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ToolProcess } from './fake-daemon/processes.js';
import { freePort, startDaemon, startRing, type StartedDaemon, type StartedRing } from './helpers/daemon.js';
import { waitUntil } from './helpers/log-collectors.js';
import { endOfRetrieval, MemcacheClient, startSessionCache, waitForSync, type RunningCache } from './helpers/session-caches.js';

const GROUP = 'splash';
let ring: StartedRing;
const caches: RunningCache[] = [];
const clients: MemcacheClient[] = [];

async function cacheOn(daemon: Pick<StartedDaemon, 'port'>, group = GROUP, extraArgs: string[] = []): Promise<{ cache: RunningCache; client: MemcacheClient }> {
  const cache = await startSessionCache(daemon, group, await freePort({ from: 25100, to: 25199 }), extraArgs);
  caches.push(cache);
  await waitForSync(cache);
  const client = await MemcacheClient.connect(cache.port);
  clients.push(client);
  return { cache, client };
}

async function eventually(client: MemcacheClient, key: string, expected: string | null, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen: string | null = null;
  while (Date.now() < deadline) {
    seen = await client.get(key);
    if (seen === expected) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(seen).toBe(expected);
}

beforeAll(async () => {
  ensureBuilt();
  ring = await startRing({ count: 2 });
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all(caches.map((cache) => cache.stop()));
  await ring?.stop();
});

describe('session-cache processes', () => {
  it('replicates set, add, replace and delete; expired entries are never served', async () => {
    const { client: a } = await cacheOn(ring.daemons[0]);
    const { client: b } = await cacheOn(ring.daemons[1]);
    expect(await a.set('mod_ssl-sess-0001', 'session one')).toBe('STORED');
    await eventually(b, 'mod_ssl-sess-0001', 'session one');
    expect(await b.set('mod_ssl-sess-0001', 'other', 0, 'add')).toBe('NOT_STORED');
    expect(await b.set('mod_ssl-sess-0002', 'two', 0, 'replace')).toBe('NOT_STORED');
    expect(await b.set('mod_ssl-sess-0001', 'replaced', 0, 'replace')).toBe('STORED');
    await eventually(a, 'mod_ssl-sess-0001', 'replaced');
    expect(await a.command('delete mod_ssl-sess-0001 0\r\n')).toBe('DELETED');
    expect(await a.command('delete mod_ssl-sess-0001\r\n')).toBe('NOT_FOUND');
    await eventually(b, 'mod_ssl-sess-0001', null);
    expect(await a.set('short-lived', 'x', 1)).toBe('STORED');
    await eventually(b, 'short-lived', 'x');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await a.get('short-lived')).toBeNull();
    expect(await b.get('short-lived')).toBeNull();
    expect(await a.set('already-gone', 'x', -1)).toBe('STORED');
    expect(await a.get('already-gone')).toBeNull();
    // gets carries the same cas on both replicas.
    expect(await a.set('with-cas', 'v')).toBe('STORED');
    await eventually(b, 'with-cas', 'v');
    a.write('gets with-cas\r\n');
    b.write('gets with-cas\r\n');
    const [fromA, fromB] = [(await a.read(endOfRetrieval)).toString(), (await b.read(endOfRetrieval)).toString()];
    expect(fromA).toMatch(/^VALUE with-cas 0 1 \d+\r\nv\r\nEND\r\n$/);
    expect(fromB).toBe(fromA);
    expect(await a.command('version\r\n')).toMatch(/^VERSION /);
    const stats = await b.stats();
    expect(stats.get('limit_maxbytes')).toBe(String(64 * 1024 * 1024));
    expect(stats.get('replication_synced')).toBe('1');
    expect(stats.get('replication_members')).toBe('2');
  });

  it('evicts the least recently stored entries at the byte cap, the same on every replica', async () => {
    const { client: a } = await cacheOn(ring.daemons[0], 'splash-small', ['--max-bytes', '4k']);
    const { client: b } = await cacheOn(ring.daemons[1], 'splash-small', ['--max-bytes', '4k']);
    const value = 'v'.repeat(900);
    for (let index = 0; index < 8; index++) expect(await a.set(`k${index}`, value)).toBe('STORED');
    await eventually(b, 'k7', value);
    for (const client of [a, b]) {
      const stats = await client.stats();
      expect(Number(stats.get('bytes'))).toBeLessThanOrEqual(4096);
      expect(stats.get('limit_maxbytes')).toBe('4096');
      expect(Number(stats.get('evictions'))).toBeGreaterThan(0);
      expect(await client.get('k0')).toBeNull();
      expect(await client.get('k7')).toBe(value);
    }
  });

  it('answers bad input with memcached errors and stays up', async () => {
    const { cache, client } = await cacheOn(ring.daemons[0], 'splash-bad');
    expect(await client.command('bogus command\r\n')).toBe('ERROR');
    expect(await client.command('\r\n')).toBe('ERROR');
    expect(await client.command('get\r\n')).toBe('ERROR');
    expect(await client.command('set k 0 0 notanumber\r\n')).toBe('CLIENT_ERROR bad command line format');
    expect(await client.command('set k 0 0\r\n')).toBe('CLIENT_ERROR bad command line format');
    expect(await client.command(`get ${'k'.repeat(251)}\r\n`)).toBe('CLIENT_ERROR bad command line format');
    expect(await client.command('set k 0 0 3\r\nabcdef\r\n')).toBe('CLIENT_ERROR bad data chunk');
    expect(await client.command('delete k 5\r\n')).toMatch(/^CLIENT_ERROR bad command line format/);
    // An oversized value is refused and its bytes skipped: the next command still parses.
    const big = 'x'.repeat(2 * 1024 * 1024);
    expect(await client.command(`set big 0 0 ${big.length}\r\n${big}\r\n`)).toBe('SERVER_ERROR object too large for cache');
    expect(await client.set('after', 'ok')).toBe('STORED');
    expect(await client.get('after')).toBe('ok');
    // A line that never ends closes that connection only.
    client.write('g'.repeat(5000));
    expect((await client.read((received) => (received.includes('\n') ? received.indexOf('\n') + 1 : -1))).toString()).toBe('CLIENT_ERROR line too long\r\n');
    await waitUntil(() => client.closed, () => 'connection still open');
    const again = await MemcacheClient.connect(cache.port);
    clients.push(again);
    expect(await again.get('after')).toBe('ok');
    expect(await again.command('quit\r\n').catch(() => 'closed')).toBe('closed');
  });

  it('a restarted cache gets the live entries by state transfer', async () => {
    const { client: a } = await cacheOn(ring.daemons[0], 'splash-restart');
    const first = await cacheOn(ring.daemons[1], 'splash-restart');
    for (let index = 0; index < 300; index++) expect(await a.set(`sess-${index}`, `value-${index}`.repeat(40))).toBe('STORED');
    await first.cache.stop();
    expect(await a.set('while-away', 'written while b was down')).toBe('STORED');
    const { client: b } = await cacheOn(ring.daemons[1], 'splash-restart');
    expect(await b.get('while-away')).toBe('written while b was down');
    expect(await b.get('sess-0')).toBe('value-0'.repeat(40));
    expect(await b.get('sess-299')).toBe('value-299'.repeat(40));
    expect((await b.stats()).get('curr_items')).toBe('301');
  });

  it("keeps serving through its daemon's outage and catches up after", async () => {
    const { client: a } = await cacheOn(ring.daemons[0], 'splash-outage');
    const { cache: cacheB, client: b } = await cacheOn(ring.daemons[1], 'splash-outage');
    expect(await a.set('before', 'held')).toBe('STORED');
    await eventually(b, 'before', 'held');
    const d2 = ring.daemons[1];
    d2.process.kill('SIGKILL');
    await d2.stop();
    await cacheB.tool.waitFor('"msg":"daemon session lost; serving local state"', 10_000);
    expect(await b.get('before')).toBe('held');
    expect(await b.set('local-only', 'kept here')).toBe('STORED');
    expect(await b.get('local-only')).toBe('kept here');
    expect(await a.set('during', 'missed by b')).toBe('STORED');
    const restarted = await startDaemon({ port: d2.port, config: ring.config, args: ['-n', 'd2'] });
    ring.daemons[1] = restarted;
    await waitForSync(cacheB, 2, 30_000);
    await eventually(b, 'during', 'missed by b');
    expect(await b.get('before')).toBe('held');
    expect(await a.set('after', 'seen by both')).toBe('STORED');
    await eventually(b, 'after', 'seen by both');
  }, 60_000);

  it('has --help with the issue\'s flags, and refuses a bad --listen', async () => {
    const help = new ToolProcess(['session-cache', '--help']);
    expect(await help.exited).toBe(0);
    for (const flag of ['--listen', '-g, --group', '-s, --spread', '--max-bytes']) expect(help.stdout).toContain(flag);
    const bad = new ToolProcess(['session-cache', '--listen', 'nowhere', '-g', GROUP]);
    expect(await bad.exited).not.toBe(0);
    expect(bad.stderr).toContain('HOST:PORT');
  });
});
