// Real daemons, each in its own network namespace (test/helpers/netns-spread.ts), with
// clients over the daemons' Unix sockets recording JSON Lines logs: partitions by moving
// links between bridges, heals, kill -9 and restart; the EVS checker over every log.
// Needs root and iproute2; every process is killed by pid and every namespace deleted in
// afterAll, whatever happened.
import { afterAll, describe, expect, it } from 'vitest';
import type { Service } from '../src/client/index.js';
import { netnsAvailable } from './helpers/netns.js';
import { type LabClient, SpreadLab } from './helpers/netns-spread.js';

const noNetns = netnsAvailable();
const SERVICES: Service[] = ['reliable', 'fifo', 'causal', 'agreed', 'safe'];

/** Each client sends `count` messages to `group`, all services in turn; returns the ids. */
function burst(clients: LabClient[], group: string, count: number): string[] {
  const ids: string[] = [];
  for (let k = 0; k < count; k++) for (const client of clients) ids.push(client.send([group], SERVICES[(k + ids.length) % SERVICES.length]));
  return ids;
}

async function allSee(clients: LabClient[], group: string, members: LabClient[], timeoutMs = 20_000): Promise<void> {
  const names = members.map((member) => member.name);
  await Promise.all(clients.map((client) => client.untilMembers(group, names, timeoutMs)));
}

async function allDeliver(clients: LabClient[], ids: string[]): Promise<void> {
  await Promise.all(clients.map((client) => client.untilDelivered(ids)));
}

describe('EVS with real daemons in network namespaces', () => {
  it('has root and iproute2 (CI runs as root; .ci/run installs iproute2)', () => {
    expect(noNetns, noNetns ?? '').toBeNull();
  });

  const labs: SpreadLab[] = [];
  afterAll(async () => {
    for (const lab of labs) await lab.destroy();
  }, 30_000);

  /** `daemons` daemons; clients [daemon, name] all in `group`, seen complete, with traffic delivered. */
  async function groupOf(daemons: number, placement: [number, string][], group: string): Promise<{ lab: SpreadLab; clients: LabClient[] }> {
    const lab = await SpreadLab.start(daemons);
    labs.push(lab);
    const clients: LabClient[] = [];
    for (const [daemon, name] of placement) clients.push(await lab.client(daemon, name));
    for (const client of clients) client.join(group);
    await allSee(clients, group, clients, 30_000);
    await allDeliver(clients, burst(clients, group, 4));
    return { lab, clients };
  }

  it('partition and heal: TRANSITION then one vs set per side, then the merge with two', async () => {
    const { lab, clients: everyone } = await groupOf(3, [[0, 'a'], [0, 'a2'], [1, 'b'], [2, 'c']], 'g');
    const [a, a2, b, c] = everyone;

    lab.partition([[0], [1, 2]]);
    burst(everyone, 'g', 2); // in flight across the cut: clean-up or lost with the other side
    await allSee([a, a2], 'g', [a, a2]);
    await allSee([b, c], 'g', [b, c]);
    for (const client of everyone) {
      const views = client.views.get('g')!;
      const last = views.at(-1)!;
      expect(last.cause).toBe('network');
      expect(views.at(-2)?.cause === 'transition' || views.slice(0, -1).some((view) => view.cause === 'transition')).toBe(true);
      expect(last.vsSets).toHaveLength(1);
    }
    await allDeliver([a, a2], burst([a, a2], 'g', 3));
    await allDeliver([b, c], burst([b, c], 'g', 3));

    lab.heal();
    await allSee(everyone, 'g', everyone, 30_000);
    const merged = a.view('g')!;
    expect(merged.cause).toBe('network');
    expect(merged.vsSets.map((set) => [...set].sort())).toEqual(expect.arrayContaining([[a.name, a2.name].sort(), [b.name, c.name].sort()]));
    expect(merged.mySet).toEqual(expect.arrayContaining([a.name, a2.name]));
    await allDeliver(everyone, burst(everyone, 'g', 5));
    lab.check();
  }, 60_000);

  it('kill -9 and restart: the dead daemon’s clients see the close, the rest one view without them, then the merge', async () => {
    const { lab, clients: everyone } = await groupOf(3, [[0, 'x'], [1, 'y'], [2, 'z'], [2, 'z2']], 'h');
    const [x, y, z, z2] = everyone;

    lab.kill(2);
    await Promise.all([z, z2].map((client) => client.until(() => client.closed, 'connection closed', 10_000)));
    burst([x, y], 'h', 2);
    await allSee([x, y], 'h', [x, y]);
    expect(x.views.get('h')!.some((view) => view.cause === 'transition')).toBe(true);

    // Restart it cut off, so that its new client is in the group before the merge.
    lab.partition([[0, 1], [2]]);
    await lab.restart(2);
    const z3 = await lab.client(2, 'z');
    z3.join('h');
    await allSee([z3], 'h', [z3]);
    lab.heal();
    await allSee([x, y, z3], 'h', [x, y, z3], 30_000);
    const merged = z3.view('h')!;
    expect(merged.cause).toBe('network');
    expect(merged.mySet).toEqual([z3.name]);
    await allDeliver([x, y, z3], burst([x, y, z3], 'h', 4));
    lab.check();
  }, 60_000);

  it('five daemons: a three-way split, a kill inside one side, merges back in two steps', async () => {
    const { lab, clients } = await groupOf(5, [0, 1, 2, 3, 4].map((d) => [d, `m${d}`] as [number, string]), 'k');

    lab.partition([[0, 1], [2, 3], [4]]);
    const [m0, m1, m2, m3, m4] = clients;
    await allSee([m0, m1], 'k', [m0, m1]);
    await allSee([m2, m3], 'k', [m2, m3]);
    await allSee([m4], 'k', [m4]);
    lab.kill(3);
    await m3.until(() => m3.closed, 'connection closed', 10_000);
    await allSee([m2], 'k', [m2]);

    lab.partition([[0, 1, 4], [2, 3]]);
    await allSee([m0, m1, m4], 'k', [m0, m1, m4], 30_000);
    await lab.restart(3);
    const again = await lab.client(3, 'm3');
    again.join('k');
    lab.heal();
    const survivors = [m0, m1, m2, again, m4];
    await allSee(survivors, 'k', survivors, 40_000);
    await allDeliver(survivors, burst(survivors, 'k', 3));
    lab.check();
  }, 60_000);
});
