/**
 * The lock service on real daemons, each in its own network namespace, one LockService
 * replica per daemon: FIFO hand-over, a waiter's timeout, a lease, and a holder whose daemon
 * is cut off by a partition or killed — its lock passes to the next waiter.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/client/index.js';
import { LockService, LockTimeoutError } from '../src/apps/replication/index.js';
import { CLIENT_PORT, SpreadLab } from './helpers/netns-spread.js';

const NAMES = ['l1', 'l2', 'l3'];
let lab: SpreadLab;
let scratch: string;
let services: LockService[] = [];

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms\n${lab.tails(5)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function startService(index: number, group: string): LockService {
  return new LockService({
    group,
    name: NAMES[index]!,
    dataDir: join(scratch, group, NAMES[index]!),
    replicas: NAMES,
    connect: () => connect({ daemon: String(CLIENT_PORT), unixSocketDir: lab.daemons[index]!.unixDir, timeoutMs: 2000 }),
  });
}

async function startGroup(group: string): Promise<LockService[]> {
  const started = NAMES.map((_, index) => startService(index, group));
  services.push(...started);
  await Promise.all(started.map((service) => service.start()));
  await until(() => started.every((service) => service.engine.status().primary && service.engine.status().members.length === 3), 'a primary of three');
  return started;
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'tspread-locks-'));
  lab = await SpreadLab.start(3);
}, 60_000);

afterAll(async () => {
  await Promise.all(services.map((service) => service.close().catch(() => {})));
  await lab?.destroy();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

describe('lock service, three daemons in network namespaces', () => {
  it('hands a lock over in FIFO order, times a waiter out, ends a lease, and shares byte ranges', async () => {
    const [a, b, c] = await startGroup('fifo');
    const first = await a!.acquire({ object: 'file', mode: 'exclusive' });
    const order: string[] = [];
    const second = b!.acquire({ object: 'file', mode: 'shared' }).then((lock) => (order.push('b'), lock));
    const third = c!.acquire({ object: 'file', mode: 'shared' }).then((lock) => (order.push('c'), lock));
    await expect(a!.acquire({ object: 'file', mode: 'exclusive', timeoutMs: 300 })).rejects.toThrow(LockTimeoutError);
    expect(order).toEqual([]);
    await first.release();
    expect(await first.lost).toBe('released');
    const [secondLock, thirdLock] = await Promise.all([second, third]);
    expect(order.sort()).toEqual(['b', 'c']);
    await Promise.all([secondLock.release(), thirdLock.release()]);

    const leased = await a!.acquire({ object: 'lease', leaseMs: 200 });
    const next = b!.acquire({ object: 'lease' });
    expect(await leased.lost).toBe('lease ended');
    await (await next).release();

    const low = await a!.acquire({ object: 'blob', range: [0, 100] });
    const high = await b!.acquire({ object: 'blob', range: [100, 200] });
    const overlapping = c!.acquire({ object: 'blob', range: [50, 150], mode: 'shared', timeoutMs: 300 });
    await expect(overlapping).rejects.toThrow(LockTimeoutError);
    await Promise.all([low.release(), high.release()]);
  }, 120_000);

  it("a holder cut off by a partition, then one whose daemon is killed: each time the lock passes to the next waiter", async () => {
    const [a, b, c] = await startGroup('failover');
    const held = await c!.acquire({ object: 'leader' });
    const waiting = a!.acquire({ object: 'leader' });
    lab.partition([[0, 1], [2]]);
    const taken = await waiting;
    expect(taken.object).toBe('leader');
    lab.heal();
    // The cut-off holder learns of the revocation when it merges back.
    expect(await held.lost).toMatch(/revoked/);
    await until(() => [a, b, c].every((service) => service!.engine.status().primary && service!.engine.status().members.length === 3), 'the merged primary');

    const waitingOnB = b!.acquire({ object: 'leader' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    lab.kill(0);
    const takenByB = await waitingOnB;
    expect(takenByB.object).toBe('leader');
    await lab.restart(0);
    expect(await taken.lost).toMatch(/revoked/);
    await takenByB.release();
  }, 180_000);
});
