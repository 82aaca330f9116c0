/**
 * Replicated services across a real partition: three daemons in network namespaces
 * (test/helpers/netns-spread.ts), a counter replica and a retrying client on each.
 * One daemon is cut off mid-load, then the network heals. Only the primary component
 * (the two connected daemons) acknowledges calls; the cut-off replica answers
 * 'not-primary' and its client keeps retrying (a caller with a short timeout gets that
 * error). Afterwards every acknowledged increment
 * is counted exactly once and the replicas are equal.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../src/client/index.js';
import { counterHandlers, counterInitialState, serve, ServiceClient, ServiceError, type ServiceReplica } from '../src/apps/services/index.js';
import type { CounterState } from '../src/apps/services/counter.js';
import { waitUntil } from './helpers/log-collectors.js';
import { netnsAvailable } from './helpers/netns.js';
import { SpreadLab } from './helpers/netns-spread.js';
import { IncrementLoad } from './helpers/service-replicas.js';

const noNetns = netnsAvailable();

describe.skipIf(noNetns !== null).each(['active', 'passive'] as const)('%s service across a partition and its heal', (style) => {
  let lab: SpreadLab | undefined;
  let load: IncrementLoad | undefined;
  const replicas: ServiceReplica<CounterState>[] = [];
  afterAll(async () => {
    await load?.stop();
    for (const replica of replicas) await replica.stop();
    await lab?.destroy();
  }, 30_000);

  it('only the primary side acknowledges; every acknowledged increment is counted once; replicas end equal', async () => {
    lab = await SpreadLab.start(3);
    const group = `ctr-part-${style}`;
    const connects = lab.daemons.map((daemon) => () => connect({ daemon: '4803', unixSocketDir: daemon.unixDir }));
    for (const open of connects) replicas.push(serve(group, counterHandlers, { initialState: counterInitialState(), connect: open, style }));
    const [cutOff, ...majority] = replicas as [ServiceReplica<CounterState>, ...ServiceReplica<CounterState>[]];
    const views = () => replicas.map((replica) => `${replica.group.members.length}${replica.core.acknowledges ? 'P' : '-'}`).join(' ');
    await waitUntil(() => replicas.every((replica) => replica.group.members.length === 3 && replica.group.transfer.synced && replica.core.acknowledges), () => `replicas not in one primary view: ${views()}`, 30_000);

    load = await IncrementLoad.startWith(connects, group);
    await load.advance(60);
    lab.partition([[0], [1, 2]]);
    await waitUntil(() => cutOff.group.members.length === 1 && majority.every((replica) => replica.group.members.length === 2 && replica.core.acknowledges), () => `partition not seen: ${views()}`, 30_000);
    expect(cutOff.core.acknowledges).toBe(false);
    const cutOffValue = cutOff.core.state.value;
    await load.advance(60);
    expect(cutOff.core.state.value).toBe(cutOffValue); // the minority changed nothing
    // A caller that can reach only the cut-off replica gets a clear error once its time is up.
    const stranded = await ServiceClient.open({ group, connect: connects[0]! });
    const refused = await stranded.call('get', null, { timeoutMs: 1500 }).then(() => null, (error: unknown) => error);
    await stranded.close();
    expect(refused).toBeInstanceOf(ServiceError);
    expect((refused as ServiceError).code).toBe('not-primary');
    expect(load.errors).toEqual([]);

    lab.heal();
    await waitUntil(() => replicas.every((replica) => replica.group.members.length === 3 && replica.core.acknowledges), () => `heal not seen: ${views()}`, 30_000);
    await load.advance(60);
    await load.stop();
    expect(load.errors).toEqual([]);
    const n = load.results.length;
    expect([...load.results].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, index) => index + 1));
    await waitUntil(() => replicas.every((replica) => replica.core.state.value === n), () => `replicas differ: ${replicas.map((replica) => replica.core.state.value).join(' ')} (acknowledged ${n})`, 30_000);
  }, 150_000);
});
