/**
 * ReplicatedMap throughput and acknowledgement latency: three daemons on 127.0.0.1, .2, .3 (one
 * ring, defaults), a replica process on each (test/fixtures/replication-map-replica.ts, fsync'd
 * log in a temporary dataDir), every replica running --writers concurrent setters for --seconds
 * (small JSON values, 1 000 keys). A set is acknowledged once green and applied at its replica.
 * Baseline in the same run: three plain clients of the same daemons multicasting SAFE messages
 * of the same size with the same number in flight, a message counted when delivered back to
 * its sender (what ordering alone costs, without the engine and its log).
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/replication-map.js [--runs 3] [--seconds 5] [--writers 300]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Session } from '../src/client/index.js';
import { startRing, type StartedRing } from '../test/helpers/daemon.js';
import { killReplicas, ReplicaProcess, untilConverged } from '../test/helpers/replication-replicas.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';

exitWithUsageIfAsked(import.meta.url);

const runs = Number(flag('runs', '3'));
const seconds = Number(flag('seconds', '5'));
const writers = Number(flag('writers', '300'));
/** About the size of a set action on the wire (origin, seq, JSON body). */
const PAYLOAD = Buffer.alloc(80, 'x');

interface Figures {
  perSecond: number;
  p50Us: number;
  p99Us: number;
}

async function mapRun(ring: StartedRing, run: number): Promise<Figures> {
  const scratch = mkdtempSync(join(tmpdir(), 'tspread-bench-replication-'));
  const names = ['r1', 'r2', 'r3'];
  const replicas = names.map(
    (name, index) =>
      new ReplicaProcess({ name, dataDir: join(scratch, name), daemonArgs: ['--daemon', `${ring.daemons[index]!.port}@127.0.0.1`], replicas: names, group: `bench-map-${run}` }),
  );
  try {
    await Promise.all(replicas.map((replica) => replica.ready()));
    await untilConverged(replicas);
    const lines = await Promise.all(replicas.map((replica) => replica.ask(`bench ${seconds} ${writers}`, 'bench ', (seconds + 60) * 1000)));
    const figures = lines.map((line) => line.split(' ').slice(1).map(Number));
    return {
      perSecond: figures.reduce((sum, [sets]) => sum + sets!, 0) / seconds,
      p50Us: median(figures.map(([, p50]) => p50!)),
      p99Us: median(figures.map(([, , p99]) => p99!)),
    };
  } finally {
    await killReplicas(replicas);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** One plain client per daemon keeping `writers` SAFE messages in flight; counts self-deliveries. */
async function baselineRun(ring: StartedRing, run: number): Promise<Figures> {
  const group = `bench-safe-${run}`;
  const sessions: Session[] = await Promise.all(ring.daemons.map((daemon) => connect({ daemon: `${daemon.port}@127.0.0.1` })));
  for (const session of sessions) session.join(group);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const latencies: number[] = [];
  let delivered = 0;
  let stopAt = 0;
  await Promise.all(
    sessions.map(
      (session) =>
        new Promise<void>((resolve) => {
          const sentAt: bigint[] = [];
          const send = () => {
            sentAt.push(process.hrtime.bigint());
            session.multicast(group, PAYLOAD, { service: 'safe' });
          };
          session.on('message', (message) => {
            if (message.sender !== session.privateGroup) return;
            delivered++;
            latencies.push(Number(process.hrtime.bigint() - sentAt.shift()!) / 1000);
            if (Date.now() < stopAt) send();
            else if (sentAt.length === 0) resolve();
          });
          stopAt = Date.now() + seconds * 1000;
          for (let k = 0; k < writers; k++) send();
        }),
    ),
  );
  await Promise.all(sessions.map((session) => session.disconnect()));
  latencies.sort((a, b) => a - b);
  return { perSecond: delivered / seconds, p50Us: latencies[Math.floor(latencies.length / 2)]!, p99Us: latencies[Math.floor(latencies.length * 0.99)]! };
}

const ring = await startRing({ count: 3 });
const map: Figures[] = [];
const baseline: Figures[] = [];
try {
  for (let run = 0; run < runs; run++) {
    baseline.push(await baselineRun(ring, run));
    map.push(await mapRun(ring, run));
    const [b, m] = [baseline.at(-1)!, map.at(-1)!];
    console.log(`run ${run + 1}: map ${m.perSecond.toFixed(0)} sets/s p50 ${m.p50Us} µs p99 ${m.p99Us} µs | SAFE baseline ${b.perSecond.toFixed(0)} msgs/s p50 ${b.p50Us.toFixed(0)} µs`);
  }
} finally {
  await ring.stop();
}
const summary = (figures: Figures[]) => ({
  perSecond: Math.round(median(figures.map((f) => f.perSecond))),
  p50Us: Math.round(median(figures.map((f) => f.p50Us))),
  p99Us: Math.round(median(figures.map((f) => f.p99Us))),
});
const [m, b] = [summary(map), summary(baseline)];
console.log(`median of ${runs}: map ${m.perSecond} sets/s, p50 ${m.p50Us} µs, p99 ${m.p99Us} µs; SAFE baseline ${b.perSecond} msgs/s, p50 ${b.p50Us} µs, p99 ${b.p99Us} µs; map/baseline ${(m.perSecond / b.perSecond).toFixed(2)}`);
