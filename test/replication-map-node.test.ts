/**
 * ReplicatedMap in one process against a real daemon: ordered writes from several replicas,
 * compare-and-set, change events, refusal outside a primary, restart from the dataDir and a
 * replica so far behind (its peers compacted their logs) that it needs a snapshot.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/client/index.js';
import { NotPrimaryError, ReplicatedMap, type MapChange } from '../src/apps/replication/index.js';
import { encodeActions } from '../src/apps/replication/action.js';
import { freePort, soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';

let daemon: StartedDaemon;
let scratch: string;
const open: ReplicatedMap<unknown>[] = [];

beforeAll(async () => {
  const port = await freePort();
  daemon = await startDaemon({ port, config: soloConfig(port) });
  scratch = mkdtempSync(join(tmpdir(), 'tspread-replication-'));
}, 30_000);

afterAll(async () => {
  await Promise.all(open.map((map) => map.close()));
  await daemon?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function replica<V>(group: string, name: string, extra: { replicas?: string[]; checkpointEvery?: number } = {}): Promise<ReplicatedMap<V>> {
  const map = new ReplicatedMap<V>({
    group,
    name,
    dataDir: join(scratch, group, name),
    connect: () => connect({ daemon: `${daemon.port}@127.0.0.1` }),
    ...extra,
  });
  open.push(map as ReplicatedMap<unknown>);
  await map.start();
  return map;
}

async function until(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function close(map: ReplicatedMap<unknown>): Promise<void> {
  await map.close();
  open.splice(open.indexOf(map), 1);
}

describe('ReplicatedMap on one daemon', () => {
  it('orders writes from every replica into one history', async () => {
    const names = ['r1', 'r2', 'r3'];
    const maps = await Promise.all(names.map((name) => replica<number>('orders', name, { replicas: names })));
    await until(() => maps.every((map) => map.status().primary && map.status().members.length === 3));
    const changes: MapChange<number>[] = [];
    maps[1]!.on('change', (change) => changes.push(change));
    const writes = maps.flatMap((map, index) => Array.from({ length: 50 }, (_, n) => map.set(`k${n % 10}`, index * 1000 + n)));
    const positions = await Promise.all(writes);
    expect(new Set(positions).size).toBe(150);
    await until(() => maps.every((map) => map.status().lastGreen === maps[0]!.status().lastGreen));
    for (const map of maps) expect(map.entries()).toEqual(maps[0]!.entries());
    expect(changes.length).toBe(150);
    expect(await maps[0]!.compareAndSet('k0', maps[0]!.get('k0'), -1)).toBe(true);
    expect(await maps[2]!.compareAndSet('k0', 12345, -2)).toBe(false);
    expect(await maps[1]!.delete('k0')).toBe(true);
    expect(await maps[1]!.delete('k0')).toBe(false);
    expect(await maps[2]!.compareAndSet('k0', undefined, 7)).toBe(true);
    await until(() => maps.every((map) => map.get('k0') === 7));
  }, 60_000);

  it('refuses writes outside a primary and recovers from its dataDir', async () => {
    const names = ['a', 'b', 'c'];
    const [a, b, c] = await Promise.all(names.map((name) => replica<string>('refuse', name, { replicas: names })));
    await until(() => [a, b, c].every((map) => map.status().primary && map.status().members.length === 3));
    await c.set('x', 'one');
    await close(c as ReplicatedMap<unknown>);
    await until(() => a.status().primary && a.status().members.length === 2);
    await b.set('y', 'two');
    await close(a as ReplicatedMap<unknown>);
    // b alone holds half of the last primary {a, b} without its first name: no quorum.
    await until(() => !b.status().primary);
    await expect(b.set('z', 'refused')).rejects.toBeInstanceOf(NotPrimaryError);
    const a2 = await replica<string>('refuse', 'a', { replicas: names });
    expect(a2.get('y')).toBe('two');
    await until(() => a2.status().primary && b.status().primary);
    await a2.set('z', 'three');
    const c2 = await replica<string>('refuse', 'c', { replicas: names });
    await until(() => c2.get('z') === 'three');
    expect(c2.entries()).toEqual(b.entries());
    expect(b.get('x')).toBe('one');
  }, 60_000);

  it('drops malformed messages from a stranger and keeps ordering', async () => {
    const names = ['g1', 'g2'];
    const maps = await Promise.all(names.map((name) => replica<number | string>('garbage', name, { replicas: names })));
    await until(() => maps.every((map) => map.status().primary && map.status().members.length === 2));
    const stranger = await connect({ daemon: `${daemon.port}@127.0.0.1` });
    const garbage = [Buffer.from('{'), Buffer.from('null'), Buffer.from('{"view":7}'), Buffer.alloc(40, 0xff), Buffer.from([5, 1, 2]), Buffer.alloc(0)];
    for (let messType = 0; messType <= 7; messType++) for (const data of garbage) stranger.multicast('garbage', data, { service: 'safe', messType });
    // Well-formed messages from a non-member are not the replicas' business either.
    stranger.multicast('garbage', encodeActions([{ origin: 'intruder', seq: 1, body: Buffer.from('{"op":"set","key":"intruder","value":"1"}'), position: 1 }]), { service: 'safe', messType: 1 });
    stranger.multicast('garbage', encodeActions([{ origin: 'intruder', seq: 2, body: Buffer.from('{}'), position: maps[0]!.status().lastGreen + 1 }]), { service: 'safe', messType: 4 });
    await maps[0]!.set('after', 1);
    await until(() => maps[1]!.get('after') === 1);
    // Oversized actions are refused at the submitter; the largest allowed ones go through.
    await expect(maps[1]!.set('huge', 'x'.repeat(200_000))).rejects.toBeInstanceOf(RangeError);
    await maps[1]!.set('large', 'y'.repeat(90_000));
    await until(() => maps[0]!.get('large') !== undefined);
    await stranger.disconnect();
    expect(maps.map((map) => map.status().primary)).toEqual([true, true]);
    expect(maps.map((map) => map.has('intruder'))).toEqual([false, false]);
    expect(maps[0]!.status().lastGreen).toBe(maps[1]!.status().lastGreen);
  }, 60_000);

  it('sends a snapshot to a replica its peers compacted past', async () => {
    const names = ['p', 'q'];
    const p = await replica<number>('snap', 'p', { replicas: ['p'], checkpointEvery: 20 });
    await until(() => p.status().primary);
    for (let n = 0; n < 100; n++) await p.set(`n${n}`, n);
    const q = await replica<number>('snap', 'q', { replicas: names, checkpointEvery: 20 });
    await until(() => q.size === 100 && q.status().primary);
    await q.set('from-q', 1);
    await until(() => p.get('from-q') === 1);
    expect(q.entries()).toEqual(p.entries());
  }, 60_000);
});
