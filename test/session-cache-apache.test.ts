/**
 * Two real Apache httpd servers (mod_ssl, SSLSessionCache memcache: through
 * mod_socache_memcache), each with its own daemon and `tspread session-cache`:
 * a session that openssl s_client starts on one resumes on the other, for TLS 1.2
 * and TLS 1.3 (SSLSessionTickets off, so TLS 1.3 resumes from the cache too).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './fake-daemon/processes.js';
import { freePort, ringAddress, startDaemon, startRing, type StartedRing } from './helpers/daemon.js';
import { MemcacheClient, startSessionCache, waitForSync, type RunningCache } from './helpers/session-caches.js';
import { makeTestCertificate, sClient, sessionLine } from './helpers/tls-tools.js';
import { APACHE_BINARY, startApache, type WebServer } from './helpers/web-servers.js';

const hasApacheTls = existsSync(APACHE_BINARY) && existsSync('/usr/lib/apache2/modules/mod_socache_memcache.so');
let ring: StartedRing;
let dir: string;
let port: number;
const caches: RunningCache[] = [];
const apaches: WebServer[] = [];

beforeAll(async () => {
  if (!hasApacheTls) return;
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'tspread-splash-apache-'));
  const certificate = makeTestCertificate(dir);
  ring = await startRing({ count: 2 });
  port = await freePort({ from: 25200, to: 25299 });
  for (const [index, daemon] of ring.daemons.entries()) {
    const cache = await startSessionCache(daemon, 'splash-web', await freePort({ from: 25100, to: 25199 }));
    caches.push(cache);
    await waitForSync(cache);
    apaches.push(
      await startApache({ port, address: ringAddress(index), tls: { ...certificate, sessionCache: `memcache:127.0.0.1:${cache.port}` } }),
    );
  }
}, 90_000);

afterAll(async () => {
  await Promise.all(apaches.map((apache) => apache.stop()));
  await Promise.all(caches.map((cache) => cache.stop()));
  await ring?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasApacheTls)('two Apache httpd servers sharing sessions through tspread', () => {
  for (const [version, label] of [['tls1_2', 'TLSv1.2'], ['tls1_3', 'TLSv1.3']] as const) {
    it(`a ${label} session started on A is Reused on B`, async () => {
      const sessionFile = join(dir, `${version}.sess`);
      const first = await sClient({ connect: `127.0.0.1:${port}`, version, sessOut: sessionFile });
      expect(sessionLine(first)).toMatch(new RegExp(`^New, ${label}`));
      expect(first).toContain('hello from the farm');
      const second = await sClient({ connect: `127.0.0.2:${port}`, version, sessIn: sessionFile });
      expect(sessionLine(second), apaches[1]!.errorLog()).toMatch(new RegExp(`^Reused, ${label}`));
      expect(second).toContain('hello from the farm');
      // And back: B's cache served it, A's still has it.
      const third = await sClient({ connect: `127.0.0.1:${port}`, version, sessIn: sessionFile });
      expect(sessionLine(third)).toMatch(new RegExp(`^Reused, ${label}`));
    });
  }

  it("the sessions went through tspread: A's cache stored them, B's served them", async () => {
    const [statsA, statsB] = await Promise.all(
      caches.map(async (cache) => {
        const client = await MemcacheClient.connect(cache.port);
        const stats = await client.stats();
        client.close();
        return stats;
      }),
    );
    expect(Number(statsA!.get('cmd_set'))).toBeGreaterThanOrEqual(2);
    expect(Number(statsB!.get('get_hits'))).toBeGreaterThanOrEqual(2);
    expect(statsB!.get('curr_items')).toBe(statsA!.get('curr_items'));
  });

  it("B's daemon killed: B keeps answering and resumes what its cache holds; after the restart it catches up", async () => {
    const held = join(dir, 'held.sess');
    await sClient({ connect: `127.0.0.1:${port}`, version: 'tls1_2', sessOut: held });
    expect(sessionLine(await sClient({ connect: `127.0.0.2:${port}`, version: 'tls1_2', sessIn: held }))).toMatch(/^Reused/);
    const d2 = ring.daemons[1]!;
    d2.process.kill('SIGKILL');
    await d2.stop();
    await caches[1]!.tool.waitFor('"msg":"daemon session lost; serving local state"', 10_000);
    const during = await sClient({ connect: `127.0.0.2:${port}`, version: 'tls1_2', sessIn: held });
    expect(sessionLine(during)).toMatch(/^Reused, TLSv1.2/);
    expect(during).toContain('hello from the farm');
    const missed = join(dir, 'missed.sess');
    await sClient({ connect: `127.0.0.1:${port}`, version: 'tls1_2', sessOut: missed });
    const full = await sClient({ connect: `127.0.0.2:${port}`, version: 'tls1_2', sessIn: missed });
    expect(sessionLine(full)).toMatch(/^New, TLSv1.2/);
    expect(full).toContain('hello from the farm');
    ring.daemons[1] = await startDaemon({ port: d2.port, config: ring.config, args: ['-n', 'd2'] });
    await waitForSync(caches[1]!, 2, 30_000);
    let caughtUp = '';
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && !caughtUp.startsWith('Reused'); ) {
      caughtUp = sessionLine(await sClient({ connect: `127.0.0.2:${port}`, version: 'tls1_2', sessIn: missed }));
      if (!caughtUp.startsWith('Reused')) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(caughtUp).toMatch(/^Reused, TLSv1.2/);
  }, 60_000);
});
