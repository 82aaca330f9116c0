/**
 * ReplicatedMap replicas with real daemons in network namespaces (test/helpers/netns-spread.ts),
 * one replica process per daemon over its Unix socket, all writing at once. One daemon is
 * partitioned away: its replica refuses while the other two keep committing; after the heal all
 * three maps are identical and hold every acknowledged write. Then one daemon is killed with -9
 * and restarted: the others keep committing and its replica catches up. Needs root and iproute2.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { netnsAvailable } from './helpers/netns.js';
import { SpreadLab } from './helpers/netns-spread.js';
import { checkAcknowledgedWrites, killReplicas, ReplicaProcess, untilConverged } from './helpers/replication-replicas.js';
import { waitUntil } from './helpers/log-collectors.js';
import { ensureBuilt } from './fake-daemon/processes.js';

const noNetns = netnsAvailable();
let lab: SpreadLab | null = null;
let replicas: ReplicaProcess[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'tspread-replication-netns-'));

afterAll(async () => {
  await killReplicas(replicas);
  await lab?.destroy();
  rmSync(scratch, { recursive: true, force: true });
}, 30_000);

describe('replicated map across network namespaces', () => {
  it('has root and iproute2 (CI runs as root; .ci/run installs iproute2)', () => {
    expect(noNetns, noNetns ?? '').toBeNull();
  });

  it('refuses outside the primary during a partition and converges after the heal', async () => {
    ensureBuilt();
    lab = await SpreadLab.start(3);
    const names = ['r1', 'r2', 'r3'];
    replicas = names.map(
      (name, index) =>
        new ReplicaProcess({ name, dataDir: join(scratch, name), daemonArgs: ['--daemon', '4803', '--unix-dir', lab!.daemons[index]!.unixDir], replicas: names, group: 'accounts' }),
    );
    await Promise.all(replicas.map((replica) => replica.ready()));
    await untilConverged(replicas);
    replicas.forEach((replica, index) => replica.process.send(`stream w${index} 4`));
    const acks = (replica: ReplicaProcess) => replica.acknowledged().size;
    await waitUntil(() => replicas.every((replica) => acks(replica) >= 100), 'every replica commits', 60_000);

    lab.partition([[0], [1, 2]]);
    await waitUntil(async () => !(await replicas[0]!.status()).primary, 'the cut-off replica leaves the primary', 30_000);
    const refusedBefore = replicas[0]!.refusals();
    const committedBefore = acks(replicas[1]!) + acks(replicas[2]!);
    const isolatedBefore = acks(replicas[0]!);
    await waitUntil(() => acks(replicas[1]!) + acks(replicas[2]!) >= committedBefore + 300, 'the majority keeps committing', 60_000);
    await waitUntil(() => replicas[0]!.refusals() > refusedBefore + 5, 'the cut-off replica refuses', 30_000);
    // Nothing new is acknowledged outside the primary (at most writes that were already in flight).
    expect(acks(replicas[0]!) - isolatedBefore).toBeLessThanOrEqual(4);

    lab.heal();
    await waitUntil(async () => (await replicas[0]!.status()).primary, 'the healed replica rejoins the primary', 60_000);
    await waitUntil(() => acks(replicas[0]!) >= isolatedBefore + 50, 'the healed replica commits again', 60_000);
    await Promise.all(replicas.map((replica) => replica.ask('stop', 'stopped')));
    await untilConverged(replicas);
    const { acknowledged, dumps, verified } = await checkAcknowledgedWrites(replicas, scratch);
    expect(acknowledged).toBeGreaterThan(500);
    expect(new Set(dumps).size, dumps.join('\n')).toBe(1);
    expect(verified).toEqual(['verified 0 0', 'verified 0 0', 'verified 0 0']);
  }, 240_000);

  it('keeps committing when a daemon is killed with -9 and catches its replica up after the restart', async () => {
    replicas.forEach((replica, index) => replica.process.send(`stream k${index} 4`));
    const acks = () => replicas.reduce((sum, replica) => sum + replica.acknowledged().size, 0);
    let before = acks();
    await waitUntil(() => acks() >= before + 200, 'every replica commits', 60_000);
    lab!.kill(2);
    before = acks();
    await waitUntil(() => replicas[0]!.acknowledged().size + replicas[1]!.acknowledged().size >= before + 300, 'the two others keep committing', 60_000);
    await lab!.restart(2);
    await waitUntil(async () => (await replicas[2]!.status()).primary, 'the replica of the restarted daemon rejoins the primary', 60_000);
    await Promise.all(replicas.map((replica) => replica.ask('stop', 'stopped')));
    await untilConverged(replicas);
    const { dumps, verified } = await checkAcknowledgedWrites(replicas, scratch);
    expect(new Set(dumps).size, dumps.join('\n')).toBe(1);
    expect(verified).toEqual(['verified 0 0', 'verified 0 0', 'verified 0 0']);
  }, 240_000);
});
