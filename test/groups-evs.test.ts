// The group layer across configuration changes (§5.2, §5.3, §5.5, §7.3, §11.5), fed
// hand-written ring event streams for several daemons, checked byte for byte where
// Spread was observed and by the EVS checker everywhere.
import { describe, expect, it } from 'vitest';
import { checkEvs, formatViolations } from '../src/checker/index.js';
import type { MembershipMessage } from '../src/client/messages.js';
import { TRANSITIONAL_TIME_BIT } from '../src/groups/group-layer.js';
import { decodeRingMessage } from '../src/groups/ring-message.js';
import { decodeGroupsChunk, encodeGroupsReport, ReportAssembler, compareMembershipIds, type GroupsReport } from '../src/groups/state-exchange.js';
import { DaemonNode } from '../src/daemon/node.js';
import { decodeMessage } from '../src/client/messages.js';
import { encodeAuthChoice, encodeConnectRequest, encodeControlRequest, encodeHint, encodeMessage, Framer, ServiceType } from '../src/protocol/index.js';
import { SoloRing } from '../src/ring/solo.js';
import type { RingEvent, RingReady } from '../src/ring/types.js';
import { observed } from './fake-daemon/observed.js';
import { HandCluster } from './helpers/group-cluster.js';
import { ringTestConfig } from './sim/config.js';


const D1 = 1552775919; // VIDs of "d1", "d2" (§8.7)
const D2 = 348480928;

function memberships(cluster: HandCluster, client: string, group?: string): MembershipMessage[] {
  return cluster
    .client(client)
    .received.filter((m): m is MembershipMessage => m.kind === 'membership' && (group === undefined || m.group === group));
}

function dataIds(cluster: HandCluster, client: string): string[] {
  return cluster
    .client(client)
    .received.filter((m) => m.kind === 'data')
    .map((m) => Buffer.from((m as { data: Uint8Array }).data).toString().trim());
}

function expectClean(cluster: HandCluster, quiescent = true): void {
  const violations = checkEvs(cluster.logs.logs(), { expectQuiescent: quiescent });
  expect(violations, formatViolations(violations)).toEqual([]);
}

/** Each daemon alone in its first configuration. */
function startAlone(cluster: HandCluster, time = 1): void {
  cluster.daemons.forEach((daemon, i) => cluster.regular([i], { procId: daemon.vid, time }, [i]));
}

/** Clients, each on its daemon, joining `group` there (daemons still alone). */
function joinAlone(cluster: HandCluster, placement: [string, number][], group: string): void {
  for (const [client, daemon] of placement) cluster.connect(client, daemon);
  for (const [client, daemon] of placement) cluster.join([daemon], client, group);
}

/** One ring of `members` formed from the given previous sides (each side's transitional set). */
function form(cluster: HandCluster, sides: number[][], membId: { procId: number; time: number }, transTime = membId.time): void {
  for (const side of sides) for (const d of side) cluster.transitional([d], { procId: cluster.vid(side[0]), time: transTime }, side);
  const members = sides.flat().sort((a, b) => a - b);
  cluster.regular(members, membId, members);
  cluster.settle(members);
}

describe('merge (§5.3, §5.5: REG|NETWORK only, vs sets by previous membership)', () => {
  it('builds the observed merge message byte for byte', () => {
    const c = new HandCluster(['d1', 'd2'], [D1, D2]);
    startAlone(c);
    joinAlone(c, [['al2', 0], ['bo2', 1], ['cy2', 1]], 'K');
    const before = c.daemons[0].outputs.length;
    form(c, [[0], [1]], { procId: D1, time: 1795789630 });
    const writes = c.daemons[0].outputs.slice(before).filter((o) => o.kind === 'write');
    expect(writes).toHaveLength(1);
    expect(Buffer.from((writes[0] as { bytes: Uint8Array }).bytes)).toEqual(observed.merge);
    // bo2 and cy2 get the same bytes except local_vs_set_offset = 0.
    const bo2 = memberships(c, 'bo2', 'K').at(-1)!;
    expect(bo2.cause).toBe('network');
    expect(bo2.mySet).toEqual(['#bo2#d2', '#cy2#d2']);
    expect(c.daemons[0].layer.replicatedState()).toEqual(c.daemons[1].layer.replicatedState());
    expect(c.daemons[0].layer.syncedSet()).toEqual([D1, D2]);
    expect(c.daemons[0].layer.state).toBe('gop');
    expectClean(c);
  });

  it('a group on one side only keeps its gid and sends nothing; an empty side report still counts', () => {
    const c = new HandCluster(['d1', 'd2', 'd3']);
    startAlone(c);
    c.connect('a', 0);
    c.join([0], 'a', 'only');
    const gid = c.daemons[0].layer.group('only')!.gid;
    const before = memberships(c, 'a').length;
    form(c, [[0], [1], [2]], { procId: c.vid(0), time: 5 });
    expect(memberships(c, 'a')).toHaveLength(before);
    for (const d of c.daemons) expect(d.layer.group('only')?.gid).toEqual(gid);
    expect(c.daemons[1].layer.group('only')?.members.map((m) => m.name)).toEqual(['#a#d1']);
    expect(c.daemons.map((d) => d.layer.exchangesCompleted)).toEqual([1, 1, 1]);
    expectClean(c);
  });

  it('orders vs sets by membership id with the 32-bit signed difference, daemons in configuration order', () => {
    expect(compareMembershipIds({ procId: 0xf0000000, time: 1 }, { procId: 0x10000000, time: 1 })).toBeLessThan(0);
    expect(compareMembershipIds({ procId: 5, time: 0xfffffff0 }, { procId: 5, time: 3 })).toBeLessThan(0);
    const c = new HandCluster(['d1', 'd2', 'd3']);
    startAlone(c);
    c.connect('z', 0);
    c.connect('y', 1);
    c.connect('x', 2);
    for (const [client, d] of [['z', 0], ['y', 1], ['x', 2]] as const) c.join([d], client, 'g');
    // d1 and d3 merge first (ring id led by d1), then d2 joins them.
    form(c, [[0], [2]], { procId: c.vid(0), time: 10 });
    form(c, [[0, 2], [1]], { procId: c.vid(0), time: 11 }, 11);
    const z = memberships(c, 'z', 'g').at(-1)!;
    expect(z.members).toEqual(['#z#d1', '#y#d2', '#x#d3']);
    // (vid d1, 10) < (vid d2, 1) since vid d1 < vid d2: d1 and d3 together, first.
    expect(z.vsSets).toEqual([['#z#d1', '#x#d3'], ['#y#d2']]);
    expect(z.mySet).toEqual(['#z#d1', '#x#d3']);
    expect(memberships(c, 'y', 'g').at(-1)!.mySet).toEqual(['#y#d2']);
    expectClean(c);
  });
});

describe('partition, transitional period and heal', () => {
  function threeJoined(): HandCluster {
    const c = new HandCluster(['d1', 'd2', 'd3']);
    startAlone(c);
    form(c, [[0], [1], [2]], { procId: c.vid(0), time: 2 });
    c.connect('a', 0);
    c.connect('b', 1);
    c.connect('c', 2);
    for (const client of ['a', 'b', 'c']) c.join([0, 1, 2], client, 'g');
    c.join([0, 1, 2], 'a', 'left-alone');
    return c;
  }

  it('subtractive: TRANSITION (old gid), clean-up, one REG|NETWORK; heal: REG|NETWORK with two vs sets', () => {
    const c = threeJoined();
    const old = c.daemons[0].layer.group('g')!.gid;
    expect(old.index).toBe(3);
    c.transitional([0, 1], { procId: c.vid(0), time: 3 }, [0, 1]);
    c.transitional([2], { procId: c.vid(2), time: 3 }, [2]);
    // clean-up: a message of b's still in flight reaches b's side only
    c.multicast([0, 1], 'b', ['g']);
    c.regular([0, 1], { procId: c.vid(0), time: 4 }, [0, 1]);
    c.regular([2], { procId: c.vid(2), time: 4 }, [2]);
    const a = memberships(c, 'a', 'g');
    expect(a.at(-2)).toMatchObject({ cause: 'transition', gid: old });
    expect(a.at(-1)).toMatchObject({ cause: 'network', gid: { procId: c.vid(0), time: 4, index: 1 }, members: ['#a#d1', '#b#d2'], vsSets: [['#a#d1', '#b#d2']] });
    expect(memberships(c, 'c', 'g').at(-1)).toMatchObject({ cause: 'network', members: ['#c#d3'], vsSets: [['#c#d3']] });
    expect(dataIds(c, 'a')).toHaveLength(1);
    // left-alone lost nothing: no message, same gid.
    expect(memberships(c, 'a', 'left-alone')).toHaveLength(1);
    // heal
    form(c, [[0, 1], [2]], { procId: c.vid(0), time: 6 });
    const healed = memberships(c, 'b', 'g').at(-1)!;
    expect(healed).toMatchObject({ cause: 'network', gid: { procId: c.vid(0), time: 6, index: 1 }, members: ['#a#d1', '#b#d2', '#c#d3'] });
    expect(healed.vsSets).toEqual([['#a#d1', '#b#d2'], ['#c#d3']]);
    expect(memberships(c, 'c', 'g').at(-1)!.mySet).toEqual(['#c#d3']);
    for (const d of c.daemons) expect(d.layer.replicatedState()).toEqual(c.daemons[0].layer.replicatedState());
    c.multicast([0, 1, 2], 'c', ['g'], 'safe');
    expectClean(c);
  });

  it('join while changed: REG|NETWORK (transitional id, 2) with the partitioned daemon alone and the joiner last, then TRANSITION', () => {
    const c = threeJoined();
    c.connect('n', 0);
    const transId = { procId: c.vid(0), time: (3 | TRANSITIONAL_TIME_BIT) >>> 0 };
    c.transitional([0, 1], transId, [0, 1]);
    c.transitional([2], { procId: c.vid(2), time: 3 }, [2]);
    c.join([0, 1], 'n', 'g');
    const a = memberships(c, 'a', 'g');
    const reg = a.at(-2)!;
    expect(reg.cause).toBe('network');
    expect(reg.gid).toEqual({ ...transId, index: 2 });
    expect(reg.members).toEqual(['#a#d1', '#n#d1', '#b#d2', '#c#d3']);
    expect(reg.vsSets).toEqual([['#a#d1', '#b#d2'], ['#c#d3'], ['#n#d1']]);
    expect(reg.mySet).toEqual(['#a#d1', '#b#d2']);
    expect(a.at(-1)).toMatchObject({ cause: 'transition', gid: { ...transId, index: 2 } });
    const n = memberships(c, 'n', 'g');
    expect(n).toHaveLength(2);
    expect(n[0].mySet).toEqual(['#n#d1']);
    expect(n[1].cause).toBe('transition');
    // a leave in the same period: self-leave, then the pair again with index 3
    c.leave([0, 1], 'b', 'g');
    expect(memberships(c, 'b', 'g').at(-1)!.cause).toBe('self-leave');
    const afterLeave = memberships(c, 'a', 'g');
    expect(afterLeave.at(-2)).toMatchObject({ cause: 'network', gid: { ...transId, index: 3 }, members: ['#a#d1', '#n#d1', '#c#d3'] });
    expect(afterLeave.at(-2)!.vsSets).toEqual([['#a#d1', '#n#d1'], ['#c#d3']]);
    expect(afterLeave.at(-1)!.cause).toBe('transition');
    // a disconnect too
    c.kill([0, 1], 'n');
    expect(memberships(c, 'a', 'g').at(-2)).toMatchObject({ cause: 'network', gid: { ...transId, index: 4 }, members: ['#a#d1', '#c#d3'] });
    c.regular([0, 1], { procId: c.vid(0), time: 4 }, [0, 1]);
    c.regular([2], { procId: c.vid(2), time: 4 }, [2]);
    expect(memberships(c, 'a', 'g').at(-1)).toMatchObject({ cause: 'network', gid: { procId: c.vid(0), time: 4, index: 1 }, members: ['#a#d1'], vsSets: [['#a#d1']] });
    form(c, [[0, 1], [2]], { procId: c.vid(0), time: 6 });
    expectClean(c);
  });

  it('a crash: its clients close, the rest see TRANSITION then one REG|NETWORK; a restart merges back', () => {
    const c = threeJoined();
    c.crash(2);
    c.transitional([0, 1], { procId: c.vid(0), time: 3 }, [0, 1]);
    c.regular([0, 1], { procId: c.vid(0), time: 4 }, [0, 1]);
    expect(memberships(c, 'b', 'g').at(-1)).toMatchObject({ cause: 'network', members: ['#a#d1', '#b#d2'] });
    // d3 restarts with nothing: a fresh layer
    const fresh = new HandCluster(['d1', 'd2', 'd3']);
    c.daemons[2].layer = fresh.daemons[2].layer;
    c.daemons[2].sessions = fresh.daemons[2].sessions;
    c.regular([2], { procId: c.vid(2), time: 5 }, [2]);
    c.connect('c2', 2);
    c.join([2], 'c2', 'g');
    form(c, [[0, 1], [2]], { procId: c.vid(0), time: 7 });
    const merged = memberships(c, 'c2', 'g').at(-1)!;
    expect(merged.members).toEqual(['#a#d1', '#b#d2', '#c2#d3']);
    expect(merged.vsSets).toEqual([['#a#d1', '#b#d2'], ['#c2#d3']]);
    expectClean(c);
  });
});

describe('during the state exchange (§7.3, §11.5 GGATHER/GGT)', () => {
  function twoSides(): HandCluster {
    const c = new HandCluster(['d1', 'd2', 'd3']);
    startAlone(c);
    joinAlone(c, [['a', 0], ['b', 1], ['c', 2]], 'g');
    return c;
  }

  /** The three lone daemons form one ring; the exchange starts (reports pending). */
  function startMerge(c: HandCluster): number[] {
    const all = [0, 1, 2];
    for (const d of all) c.transitional([d], { procId: c.vid(d), time: 3 }, [d]);
    c.regular(all, { procId: c.vid(0), time: 4 }, all);
    return all;
  }

  it('holds messages ordered before the reports complete and delivers them after REG|NETWORK', () => {
    const c = twoSides();
    const all = startMerge(c);
    expect(c.daemons.map((d) => d.layer.state)).toEqual(['ggather', 'ggather', 'ggather']);
    c.multicast(all, 'c', ['g']); // sent before its daemon suspended input
    c.connect('late', 1);
    c.join(all, 'late', 'g');
    c.settle(all);
    const a = c.client('a').received.slice(-3);
    expect(a[0]).toMatchObject({ kind: 'membership', cause: 'network', members: ['#a#d1', '#b#d2', '#c#d3'] });
    expect(a[1]).toMatchObject({ kind: 'data', sender: '#c#d3' });
    expect(a[2]).toMatchObject({ kind: 'membership', cause: 'join', changedMember: '#late#d2', gid: { procId: c.vid(0), time: 4, index: 2 } });
    expectClean(c);
  });

  it('a new configuration before the reports complete: held messages go to the old views (after any TRANSITION), the exchange starts over', () => {
    const c = twoSides();
    const all = startMerge(c);
    // d1's report and a message of a's are ordered; then d3 partitions away.
    const d1Report = c.daemons[0].pending.splice(0);
    for (const payload of d1Report) c.deliver(all, c.vid(0), payload);
    c.multicast(all, 'a', ['g']);
    c.daemons[1].pending.length = 0; // lost with the ring
    c.daemons[2].pending.length = 0;
    c.transitional([0, 1], { procId: c.vid(0), time: 5 }, [0, 1]);
    c.transitional([2], { procId: c.vid(2), time: 5 }, [2]);
    expect(c.daemons[0].layer.state).toBe('ggt');
    c.regular([0, 1], { procId: c.vid(0), time: 6 }, [0, 1]);
    c.regular([2], { procId: c.vid(2), time: 6 }, [2]);
    expect(c.daemons[0].layer.exchangesAbandoned).toBe(1);
    expect(dataIds(c, 'a')).toHaveLength(1);
    expect(dataIds(c, 'b')).toHaveLength(1); // ordered at d2 too: b is a member of g there (open group)
    expect(c.daemons[2].layer.state).toBe('gop');
    c.settle([0, 1]);
    expect(memberships(c, 'b', 'g').at(-1)).toMatchObject({ cause: 'network', members: ['#a#d1', '#b#d2'], gid: { procId: c.vid(0), time: 6, index: 1 } });
    form(c, [[0, 1], [2]], { procId: c.vid(0), time: 8 });
    for (const d of c.daemons) expect(d.layer.replicatedState()).toEqual(c.daemons[0].layer.replicatedState());
    expectClean(c);
  });

  it('reports completed inside the transitional period still install the merged views, then TRANSITION', () => {
    const c = twoSides();
    const all = startMerge(c);
    for (const payload of c.daemons[0].pending.splice(0)) c.deliver(all, c.vid(0), payload);
    for (const payload of c.daemons[1].pending.splice(0)) c.deliver(all, c.vid(1), payload);
    // d3 leaves (transitional {d1,d2}), d3's report still ordered for d1 and d2 in that period
    c.transitional([0, 1], { procId: c.vid(0), time: 5 }, [0, 1]);
    c.transitional([2], { procId: c.vid(2), time: 5 }, [2]);
    const d3Report = c.daemons[2].pending.splice(0);
    for (const payload of d3Report) c.deliver([0, 1, 2], c.vid(2), payload);
    const a = memberships(c, 'a', 'g');
    expect(a.at(-2)).toMatchObject({ cause: 'network', members: ['#a#d1', '#b#d2', '#c#d3'] });
    expect(a.at(-1)).toMatchObject({ cause: 'transition', gid: { procId: c.vid(0), time: 4, index: 1 } });
    c.regular([0, 1], { procId: c.vid(0), time: 6 }, [0, 1]);
    c.regular([2], { procId: c.vid(2), time: 6 }, [2]);
    expect(memberships(c, 'a', 'g').at(-1)).toMatchObject({ cause: 'network', members: ['#a#d1', '#b#d2'], vsSets: [['#a#d1', '#b#d2']] });
    expect(memberships(c, 'c', 'g').at(-1)).toMatchObject({ cause: 'network', members: ['#c#d3'] });
    form(c, [[0, 1], [2]], { procId: c.vid(0), time: 8 });
    expectClean(c);
  });

  it('after an abandoned exchange, one transitional set may hold two group states: their vs sets stay apart', () => {
    const c = new HandCluster(['d1', 'd2', 'd3', 'd4']);
    startAlone(c);
    form(c, [[0], [2]], { procId: c.vid(0), time: 5 });
    form(c, [[1], [3]], { procId: c.vid(1), time: 5 });
    for (const [client, d] of [['a', 0], ['b', 1], ['c', 2], ['e', 3]] as const) c.connect(client, d);
    c.join([0, 2], 'a', 'g');
    c.join([0, 2], 'c', 'g');
    c.join([1, 3], 'b', 'g');
    c.join([1, 3], 'e', 'g');
    const all = [0, 1, 2, 3];
    c.transitional([0, 2], { procId: c.vid(0), time: 6 }, [0, 2]);
    c.transitional([1, 3], { procId: c.vid(0), time: 6 }, [1, 3]);
    c.regular(all, { procId: c.vid(0), time: 6 }, all);
    for (const d of c.daemons) d.pending.length = 0; // the ring broke before any report
    c.transitional([0, 1], { procId: c.vid(0), time: 7 }, [0, 1]);
    c.transitional([2, 3], { procId: c.vid(2), time: 7 }, [2, 3]);
    c.regular([0, 1], { procId: c.vid(0), time: 7 }, [0, 1]);
    c.regular([2, 3], { procId: c.vid(2), time: 7 }, [2, 3]);
    c.settle([0, 1]);
    c.settle([2, 3]);
    const a = memberships(c, 'a', 'g').at(-1)!;
    expect(a.members).toEqual(['#a#d1', '#b#d2']);
    expect(a.vsSets).toEqual([['#a#d1'], ['#b#d2']]);
    expect(memberships(c, 'e', 'g').at(-1)!.vsSets).toEqual([['#c#d3'], ['#e#d4']]);
    form(c, [[0, 1], [2, 3]], { procId: c.vid(0), time: 9 });
    expectClean(c);
  });

  it('a group created by held joins of an abandoned exchange gets an id of each synced set', () => {
    const c = new HandCluster(['d1', 'd2']);
    startAlone(c);
    c.connect('a', 0);
    c.connect('b', 1);
    const both = [0, 1];
    for (const d of both) c.transitional([d], { procId: c.vid(d), time: 3 }, [d]);
    c.regular(both, { procId: c.vid(0), time: 3 }, both);
    c.join(both, 'a', 'g');
    c.join(both, 'b', 'g');
    for (const d of c.daemons) d.pending.length = 0;
    c.transitional(both, { procId: c.vid(0), time: 4 }, both);
    c.regular(both, { procId: c.vid(0), time: 4 }, both);
    // Each side applied only its own member's join: two groups g, each its own id.
    const gidA = memberships(c, 'a', 'g')[0].gid;
    const gidB = memberships(c, 'b', 'g')[0].gid;
    expect(gidA.procId).toBe(c.vid(0));
    expect(gidB.procId).toBe(c.vid(1));
    c.settle(both);
    expect(memberships(c, 'a', 'g').at(-1)!.vsSets).toEqual([['#a#d1'], ['#b#d2']]);
    expectClean(c);
  });

  it('an exchange abandoned here but completed elsewhere: what it held comes after the old views\' TRANSITION', () => {
    const c = new HandCluster(['d1', 'd2', 'd3', 'd4']);
    startAlone(c);
    form(c, [[0], [1], [2]], { procId: c.vid(0), time: 3 });
    joinAlone(c, [['a', 0]], 'g');
    c.connect('b', 1);
    c.join([0, 1, 2], 'b', 'g');
    c.join([0, 1, 2], 'a', 'g');
    // d4 merges in; d1's report is ordered, then a SAFE message of b's (held everywhere).
    c.transitional([0, 1, 2], { procId: c.vid(0), time: 4 }, [0, 1, 2]);
    c.transitional([3], { procId: c.vid(3), time: 4 }, [3]);
    const all = [0, 1, 2, 3];
    c.regular(all, { procId: c.vid(0), time: 4 }, all);
    for (const payload of c.daemons[0].pending.splice(0)) c.deliver(all, c.vid(0), payload);
    c.multicast(all, 'b', ['g'], 'safe');
    // d1 is cut off before d4's report; d2–d4 still get it in their transitional period.
    c.transitional([0], { procId: c.vid(0), time: 5 }, [0]);
    c.transitional([1, 2, 3], { procId: c.vid(1), time: 5 }, [1, 2, 3]);
    for (const payload of c.daemons[3].pending.splice(0)) c.deliver([1, 2, 3], c.vid(3), payload);
    expect(c.daemons[1].layer.exchangesCompleted).toBe(2);
    c.regular([0], { procId: c.vid(0), time: 5 }, [0]);
    c.regular([1, 2, 3], { procId: c.vid(1), time: 5 }, [1, 2, 3]);
    expect(c.daemons[0].layer.exchangesAbandoned).toBe(1);
    const a = c.client('a').received;
    const signal = a.findIndex((m) => m.kind === 'membership' && m.cause === 'transition');
    const data = a.findIndex((m) => m.kind === 'data');
    expect(signal).toBeGreaterThan(0);
    expect(data).toBeGreaterThan(signal);
    c.settle([1, 2, 3]);
    form(c, [[0], [1, 2, 3]], { procId: c.vid(0), time: 7 });
    expectClean(c);
  });

  it('ignores a report made for another configuration', () => {
    const c = twoSides();
    const all = startMerge(c);
    const stale = encodeGroupsReport({ membId: { procId: c.vid(0), time: 99 }, synced: c.vids(all), groups: [] });
    for (const payload of stale) c.deliver(all, c.vid(0), payload);
    expect(c.daemons[0].layer.state).toBe('ggather');
    c.settle(all);
    expect(c.daemons[0].layer.state).toBe('gop');
    expectClean(c);
  });
});

describe('GROUPS messages (state-exchange.ts)', () => {
  it('round-trip through chunks, a group split across chunks included', () => {
    const members = Array.from({ length: 400 }, (_, i) => `#m${i}#d1`);
    const report: GroupsReport = {
      membId: { procId: 0xfffffff0, time: 7 },
      synced: [1, 2],
      groups: [
        { name: 'big', gid: { procId: 1, time: 2, index: 9 }, changed: true, daemons: [{ vid: 1, membId: { procId: 3, time: 4 }, members }] },
        { name: 'small', gid: { procId: 1, time: 2, index: 1 }, changed: false, daemons: [{ vid: 2, membId: { procId: 1, time: 2 }, members: ['#x#d2'] }] },
      ],
    };
    const chunks = encodeGroupsReport(report, 1000);
    expect(chunks.length).toBeGreaterThan(3);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(1000);
    const assembler = new ReportAssembler();
    let result: GroupsReport | null = null;
    for (const chunk of chunks) {
      const message = decodeRingMessage(chunk);
      expect(message.kind).toBe('groups');
      result = assembler.add(decodeGroupsChunk(chunk));
    }
    expect(result).toEqual(report);
    expect(() => decodeGroupsChunk(chunks[0].subarray(0, chunks[0].length - 1))).toThrow();
    const broken = new ReportAssembler();
    expect(broken.add(decodeGroupsChunk(chunks[1]))).toBeNull();
    expect(broken.broken).toBe(true);
  });
});

/** A ring whose order the test writes: submissions are recorded, events are what the test queues. */
class ScriptedRing extends SoloRing {
  readonly submitted: Uint8Array[] = [];
  readonly queued: RingEvent[] = [];
  private order = 0;

  override submit(payload: Uint8Array): boolean {
    this.submitted.push(payload);
    return true;
  }

  deliver(origin: number, payload: Uint8Array): void {
    this.queued.push({ kind: 'deliver', seq: ++this.order, origin, safe: false, payload });
  }

  override ready(): RingReady {
    return { packets: [], events: this.queued.splice(0) };
  }
}

describe('DaemonNode during the state exchange (§6.4, §7.3)', () => {
  it('stops reading clients, holds requests already read, sends its report first, then releases them in order', () => {
    const config = ringTestConfig(['10.0.0.1', '10.0.0.2'], 4803);
    const [d1, d2] = config.daemons.map((daemon) => daemon.vid);
    const ring = new ScriptedRing(d1, 0);
    const node = new DaemonNode({ config, me: config.daemons[0], ring, nowMs: 0, random: () => 0.5 });
    const framer = new Framer({ groupsMax: 100, dataBytesMax: 1 << 20, bodyBytesMax: 1 << 20, rejectCarriesOldType: true });
    let handshake = 6 + 5 + '#a#d1'.length;
    const received = () => {
      const out: ReturnType<typeof decodeMessage>[] = [];
      for (const write of node.ready().writes) {
        let bytes = write.bytes;
        if (handshake > 0) {
          const skip = Math.min(handshake, bytes.length);
          handshake -= skip;
          bytes = bytes.subarray(skip);
        }
        for (const frame of framer.push(bytes)) out.push(decodeMessage(frame, '#a#d1'));
      }
      return out;
    };
    ring.queued.push({ kind: 'regular', membId: { procId: d1, time: 1 }, members: [d1] });
    node.sessionAccepted(1, { kind: 'unix' }, 0);
    node.sessionData(1, Buffer.concat([encodeConnectRequest({ version: { major: 5, minor: 0, patch: 1 }, membership: true, priority: 0, privateName: 'a' }), encodeAuthChoice(['NULL'])]));
    node.sessionData(1, encodeControlRequest('join', '#a#d1', 'g'));
    received();
    for (const payload of ring.submitted.splice(0)) ring.deliver(d1, payload);
    expect(received()).toMatchObject([{ kind: 'membership', cause: 'join' }]);

    // A merge with d2: the exchange starts; this daemon's report goes to the ring.
    ring.queued.push({ kind: 'transitional', membId: { procId: d1, time: 2 }, members: [d1] });
    ring.queued.push({ kind: 'regular', membId: { procId: d1, time: 2 }, members: [d1, d2] });
    expect(received()).toEqual([]);
    expect(node.groups.exchanging).toBe(true);
    expect(node.inputThrottled()).toBe(true);
    const report = ring.submitted.splice(0);
    expect(report.map((payload) => decodeRingMessage(payload).kind)).toEqual(['groups']);
    // Bytes the adapter had already read still arrive: held in the node, not ordered.
    const data = encodeMessage({ type: ServiceType.AGREED_MESS, sender: '#a#d1', groups: ['g'], hintRaw: encodeHint(0), data: Buffer.from('x') });
    node.sessionData(1, data);
    node.ready();
    expect(ring.submitted).toEqual([]);

    for (const payload of report) ring.deliver(d1, payload);
    const other = { membId: { procId: d1, time: 2 }, synced: [d2], groups: [{ name: 'g', gid: { procId: d2, time: 1, index: 1 }, changed: false, daemons: [{ vid: d2, membId: { procId: d2, time: 1 }, members: ['#b#d2'] }] }] };
    for (const payload of encodeGroupsReport(other)) ring.deliver(d2, payload);
    const merged = received();
    expect(merged).toMatchObject([{ kind: 'membership', cause: 'network', members: ['#a#d1', '#b#d2'], vsSets: [['#a#d1'], ['#b#d2']] }]);
    expect(node.groups.exchanging).toBe(false);
    expect(node.inputThrottled()).toBe(false);
    expect(ring.submitted.map((payload) => Buffer.from(payload))).toEqual([Buffer.from(data)]);
  });
});
