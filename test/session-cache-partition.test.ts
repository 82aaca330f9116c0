/**
 * The replicated map across a real partition: two daemons in network namespaces
 * (test/helpers/netns-spread.ts), a SharedMap on each. Both sides keep writing
 * while apart; after the heal the state transfer leaves both with the same
 * entries (one side's state wins), and writes flow again.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../src/client/index.js';
import { SharedMap } from '../src/apps/shared/shared-map.js';
import { waitUntil } from './helpers/log-collectors.js';
import { netnsAvailable } from './helpers/netns.js';
import { SpreadLab } from './helpers/netns-spread.js';

const noNetns = netnsAvailable();
const KEYS = ['before', 'a-side', 'b-side', 'both'];

describe.skipIf(noNetns !== null)('SharedMap across a partition and its heal', () => {
  let lab: SpreadLab | undefined;
  const maps: SharedMap[] = [];
  afterAll(async () => {
    for (const map of maps) await map.stop();
    await lab?.destroy();
  }, 30_000);

  const value = (map: SharedMap, key: string) => map.get(key)?.value.toString() ?? null;
  const agree = () => KEYS.every((key) => value(maps[0]!, key) === value(maps[1]!, key));

  it('both sides serve and write while apart; after the heal they agree again', async () => {
    lab = await SpreadLab.start(2);
    for (const daemon of lab.daemons) {
      maps.push(new SharedMap({ group: 'splash-part', limitBytes: 1 << 20, connect: () => connect({ daemon: '4803', unixSocketDir: daemon.unixDir }) }));
    }
    const [a, b] = maps as [SharedMap, SharedMap];
    await waitUntil(() => maps.every((map) => map.stats.synced && map.stats.members === 2), () => 'not in sync', 30_000);
    expect(await a.store('set', 'before', Buffer.from('shared'), 0, 0)).toBe('stored');
    await waitUntil(() => value(b, 'before') === 'shared', () => 'not replicated');

    lab.partition([[0], [1]]);
    await waitUntil(() => maps.every((map) => map.stats.members === 1), () => 'partition not seen', 30_000);
    expect(await a.store('set', 'a-side', Buffer.from('from a'), 0, 0)).toBe('stored');
    expect(await b.store('set', 'b-side', Buffer.from('from b'), 0, 0)).toBe('stored');
    expect(await a.store('set', 'both', Buffer.from('a'), 0, 0)).toBe('stored');
    expect(await b.store('set', 'both', Buffer.from('b'), 0, 0)).toBe('stored');
    expect(value(a, 'b-side')).toBeNull();
    expect(value(b, 'before')).toBe('shared');

    lab.heal();
    await waitUntil(() => maps.every((map) => map.stats.members === 2 && map.stats.synced) && agree(), () => KEYS.map((key) => `${key}: ${value(a, key)} / ${value(b, key)}`).join(', '), 30_000);
    expect(value(a, 'before')).toBe('shared');
    // One side's state won as a whole.
    const winner = value(a, 'a-side') === 'from a' ? 'a' : 'b';
    expect(value(a, winner === 'a' ? 'b-side' : 'a-side')).toBeNull();
    expect(value(a, 'both')).toBe(winner);

    expect(await b.store('set', 'after', Buffer.from('again'), 0, 0)).toBe('stored');
    await waitUntil(() => value(a, 'after') === 'again', () => 'writes do not flow after the heal');
  }, 90_000);
});
