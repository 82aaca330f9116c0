/**
 * Replicated SQLite and lock service: three daemons on 127.0.0.1, .2, .3 (one ring, defaults).
 *
 * sql: a `tspread sql` process per daemon (database and fsync'd action log in a temporary
 * directory), --writers concurrent writers in all (spread over the three replicas), each
 * sending single-row INSERTs one after another through the replica's stdin for --seconds.
 * A write counts once its `ok N` came back (green and applied at its replica); latency is
 * from writing the line to reading the answer. Baseline in the same run: the same writers
 * against ONE `tspread sql` replica (a group of one on the first daemon): what the second
 * and third copy cost.
 *
 * locks: a LockService replica per daemon (in this process), --lockers concurrent clients
 * each acquiring and releasing its own exclusive lock in a loop: round trips (acquire +
 * release, each green and applied) per second and the p50 of one acquire + release.
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/replication-sql.js [--runs 3] [--seconds 5] [--writers 30] [--lockers 30]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../src/client/index.js';
import { LockService } from '../src/apps/replication/index.js';
import { startRing, type StartedRing } from '../test/helpers/daemon.js';
import { SqlReplicaProcess } from '../test/helpers/sql-replicas.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';

exitWithUsageIfAsked(import.meta.url);

const runs = Number(flag('runs', '3'));
const seconds = Number(flag('seconds', '5'));
const writers = Number(flag('writers', '30'));
const lockers = Number(flag('lockers', '30'));

interface Figures {
  perSecond: number;
  p50Us: number;
  p99Us: number;
}

function figures(count: number, latenciesUs: number[]): Figures {
  latenciesUs.sort((a, b) => a - b);
  return {
    perSecond: count / seconds,
    p50Us: latenciesUs[Math.floor(latenciesUs.length / 2)] ?? 0,
    p99Us: latenciesUs[Math.floor(latenciesUs.length * 0.99)] ?? 0,
  };
}

/** Runs `work` in `concurrency` loops for --seconds; returns how many finished and their latencies. */
async function loops(concurrency: number, work: (loop: number, n: number) => Promise<void>): Promise<Figures> {
  const latencies: number[] = [];
  const stopAt = Date.now() + seconds * 1000;
  const outcomes = await Promise.allSettled(
    Array.from({ length: concurrency }, async (_, loop) => {
      for (let n = 0; Date.now() < stopAt; n++) {
        const started = process.hrtime.bigint();
        await work(loop, n);
        latencies.push(Number(process.hrtime.bigint() - started) / 1000);
      }
    }),
  );
  const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return figures(latencies.length, latencies);
}

async function sqlRun(ring: StartedRing, run: number, replicaCount: number): Promise<Figures> {
  const scratch = mkdtempSync(join(tmpdir(), 'tspread-bench-sql-'));
  const names = Array.from({ length: replicaCount }, (_, index) => `r${index + 1}`);
  const group = `bench-sql-${run}-${replicaCount}`;
  const replicas = names.map((name, index) =>
    SqlReplicaProcess.start({ db: join(scratch, `${name}.db`), group, name, spread: `${ring.daemons[index]!.port}@127.0.0.1`, replicas: names }),
  );
  try {
    await Promise.all(replicas.map((replica) => replica.untilPrimary(60_000)));
    const created = await replicas[0]!.write('CREATE TABLE t (writer INTEGER, n INTEGER, payload TEXT)');
    if (!created.startsWith('ok ')) throw new Error(created);
    await Promise.all(replicas.map((replica) => replica.untilPrimary(60_000, Number(created.slice(3)))));
    return await loops(writers, async (loop, n) => {
      const answer = await replicas[loop % replicas.length]!.write(`INSERT INTO t VALUES (${loop}, ${n}, 'some text of an order line')`);
      if (!answer.startsWith('ok ')) throw new Error(answer);
    });
  } finally {
    for (const replica of replicas) replica.kill();
    await Promise.all(replicas.map((replica) => replica.tool.exited));
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function lockRun(ring: StartedRing, run: number): Promise<Figures> {
  const scratch = mkdtempSync(join(tmpdir(), 'tspread-bench-locks-'));
  const names = ['l1', 'l2', 'l3'];
  const services = names.map(
    (name, index) =>
      new LockService({
        group: `bench-locks-${run}`,
        name,
        dataDir: join(scratch, name),
        replicas: names,
        connect: () => connect({ daemon: `${ring.daemons[index]!.port}@127.0.0.1` }),
      }),
  );
  try {
    await Promise.all(services.map((service) => service.start()));
    while (!services.every((service) => service.engine.status().primary && service.engine.status().members.length === 3)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return await loops(lockers, async (loop) => {
      const lock = await services[loop % services.length]!.acquire({ object: `object-${loop}` });
      await lock.release();
    });
  } finally {
    await Promise.all(services.map((service) => service.close()));
    rmSync(scratch, { recursive: true, force: true });
  }
}

const ring = await startRing({ count: 3 });
const replicated: Figures[] = [];
const single: Figures[] = [];
const locks: Figures[] = [];
const show = (f: Figures) => `${f.perSecond.toFixed(0)}/s p50 ${(f.p50Us / 1000).toFixed(2)} ms p99 ${(f.p99Us / 1000).toFixed(2)} ms`;
try {
  for (let run = 0; run < runs; run++) {
    single.push(await sqlRun(ring, run, 1));
    replicated.push(await sqlRun(ring, run, 3));
    locks.push(await lockRun(ring, run));
    console.log(`run ${run + 1}: sql x3 ${show(replicated.at(-1)!)} | sql x1 ${show(single.at(-1)!)} | lock round trips ${show(locks.at(-1)!)}`);
  }
} finally {
  await ring.stop();
}
const summary = (list: Figures[]): Figures => ({
  perSecond: median(list.map((f) => f.perSecond)),
  p50Us: median(list.map((f) => f.p50Us)),
  p99Us: median(list.map((f) => f.p99Us)),
});
const [r, s, l] = [summary(replicated), summary(single), summary(locks)];
console.log(
  `median of ${runs}: sql three replicas ${show(r)}; one replica ${show(s)}; three/one ${(r.perSecond / s.perSecond).toFixed(2)}; lock acquire+release ${show(l)}`,
);
