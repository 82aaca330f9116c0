/**
 * ReplicatedMap replicas as processes (test/fixtures/replication-map-replica.ts), one per daemon
 * of a three-daemon loopback ring, all writing at once: a replica killed with kill -9 mid-stream
 * and restarted from its dataDir catches up; every daemon killed and restarted, then every replica,
 * and the group recovers from the replicas' logs with every acknowledged write.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, startRing, type StartedRing } from './helpers/daemon.js';
import { checkAcknowledgedWrites, killReplicas, ReplicaProcess, untilConverged } from './helpers/replication-replicas.js';
import { waitUntil } from './helpers/log-collectors.js';
import { ensureBuilt } from './fake-daemon/processes.js';

let ring: StartedRing;
let scratch: string;
let replicas: ReplicaProcess[] = [];

beforeAll(async () => {
  ensureBuilt();
  ring = await startRing({ count: 3 });
  scratch = mkdtempSync(join(tmpdir(), 'tspread-replication-process-'));
}, 60_000);

afterAll(async () => {
  await killReplicas(replicas);
  await ring?.stop();
  rmSync(scratch, { recursive: true, force: true });
}, 30_000);

const totalAcks = () => replicas.reduce((sum, replica) => sum + replica.acknowledged().size, 0);

async function moreAcks(count: number, timeoutMs = 60_000): Promise<void> {
  const target = totalAcks() + count;
  try {
    await waitUntil(() => totalAcks() >= target, `${count} more acknowledged writes`, timeoutMs);
  } catch (error) {
    const tails = replicas.map((replica) => `${replica.spec.name}: ${replica.process.stdout.slice(-300)}\n${replica.process.stderr.slice(-2000)}`);
    throw new Error(`${String(error)}\n${tails.join('\n')}`);
  }
}

async function stopAndCheck(): Promise<void> {
  await Promise.all(replicas.map((replica) => replica.ask('stop', 'stopped')));
  await untilConverged(replicas);
  const { acknowledged, dumps, verified } = await checkAcknowledgedWrites(replicas, scratch);
  expect(acknowledged).toBeGreaterThan(0);
  expect(new Set(dumps).size, dumps.join('\n')).toBe(1);
  expect(verified).toEqual(replicas.map(() => 'verified 0 0'));
}

describe('replicated map processes on a loopback ring', () => {
  it('keeps every acknowledged write through kill -9 of a replica, of every daemon, of every replica', async () => {
    const names = ['r1', 'r2', 'r3'];
    replicas = names.map(
      (name, index) =>
        new ReplicaProcess({
          name,
          dataDir: join(scratch, name),
          daemonArgs: ['--daemon', `${ring.daemons[index]!.port}@127.0.0.1`],
          replicas: names,
          group: 'accounts',
        }),
    );
    await Promise.all(replicas.map((replica) => replica.ready()));
    await untilConverged(replicas);
    replicas.forEach((replica, index) => replica.process.send(`stream w${index}a 4`));
    await moreAcks(300);

    // One replica killed mid-stream; the other two keep committing; it comes back from its dataDir.
    await replicas[1]!.restart();
    await moreAcks(200);
    replicas[1]!.process.send('stream w1b 4');
    await waitUntil(async () => (await replicas[1]!.status()).primary, 'the restarted replica is back in the primary', 60_000);
    await moreAcks(200);
    await stopAndCheck();

    // Every daemon killed and restarted while the replicas write.
    replicas.forEach((replica, index) => replica.process.send(`stream w${index}c 4`));
    await moreAcks(200);
    for (const daemon of ring.daemons) daemon.process.kill('SIGKILL');
    await Promise.all(ring.daemons.map((daemon) => daemon.stop()));
    ring.daemons = await Promise.all(ring.daemons.map((daemon, index) => startDaemon({ port: daemon.port, config: ring.config, args: ['-n', `d${index + 1}`] })));
    await moreAcks(200, 90_000);
    await stopAndCheck();

    // Every replica killed at once mid-stream: recovery from each one's own log.
    replicas.forEach((replica, index) => replica.process.send(`stream w${index}d 4`));
    await moreAcks(200);
    for (const replica of replicas) replica.kill();
    await Promise.all(replicas.map((replica) => replica.restart()));
    await stopAndCheck();
  }, 240_000);
});
