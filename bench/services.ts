/**
 * Replicated services (tspread/services) on three daemons (127.0.0.1, .2, .3), one
 * `tspread svc counter` replica process on each, measured against a baseline in the same run:
 *
 *   baseline: plain Spread round trip through the same daemons: an AGREED multicast from a
 *             client on d1 to a group with an echo member on every daemon
 *             (bench/ring-echo-client.ts), until the first echo comes back (p50, µs);
 *   active:   `echo` calls one at a time, first reply of three active replicas (p50, p99, µs);
 *   passive:  the same in warm passive style (the primary executes, multicasts the state
 *             update and replies once it is delivered);
 *   hand-over pause: three clients (one per daemon) calling `increment` back to back while the
 *             passive primary (or, with --handover-style active, any replica) retires on
 *             SIGUSR2 and starts a replacement: the longest call latency from the signal until
 *             the replacement is in sync and the old replica has left, against the p50 before
 *             the signal, and against the longest call in a window as long just before the signal
 *             (what this shared machine's scheduling costs anyway) (ms). Failed calls are counted
 *             (there should be none).
 * Each figure is the median of --runs runs (a fresh ring each run).
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/services.js [--runs 3] [--calls 3000] [--handover-style passive|active]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Session } from '../src/client/index.js';
import { ServiceClient, switchStyle } from '../src/apps/services/index.js';
import { startRing, type StartedRing } from '../test/helpers/daemon.js';
import { CounterReplica, daemonName, IncrementLoad } from '../test/helpers/service-replicas.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';

exitWithUsageIfAsked(import.meta.url);

const runs = Number(flag('runs', '3'));
const calls = Number(flag('calls', '3000'));
const handoverStyle = flag('handover-style', 'passive');
const ECHO_CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'ring-echo-client.js');
const PAYLOAD = { text: 'x'.repeat(64) };

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

async function startEcho(ring: StartedRing, index: number, group: string): Promise<ChildProcess> {
  const daemon = ring.daemons[index]!;
  const child = spawn(process.execPath, [ECHO_CLIENT, String(daemon.port), dirname(daemon.unixPath), `echo${index}`, group], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.on('data', (text: Buffer) => text.toString().includes('ready') && resolve()));
  return child;
}

/** Round trips of an AGREED multicast to `group` until the first echo (µs). */
async function baselineRoundTrips(session: Session, group: string): Promise<number[]> {
  const samples: number[] = [];
  const body = Buffer.from(JSON.stringify(PAYLOAD));
  let waiting: (() => void) | null = null;
  session.on('message', () => waiting?.());
  for (let index = 0; index < calls; index++) {
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      waiting = resolve;
      session.multicast(group, body, { service: 'agreed' });
    });
    waiting = null;
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  return samples;
}

async function callLatencies(client: ServiceClient): Promise<number[]> {
  const samples: number[] = [];
  for (let index = 0; index < calls; index++) {
    const start = process.hrtime.bigint();
    await client.call('echo', PAYLOAD);
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  return samples;
}

async function callRun(ring: StartedRing): Promise<{ baseline: number; active: number; activeP99: number; passive: number; passiveP99: number }> {
  const echoes = await Promise.all([0, 1, 2].map((index) => startEcho(ring, index, 'bench-echo')));
  const session = await connect({ daemon: daemonName(ring.daemons[0]!) });
  await baselineRoundTrips(session, 'bench-echo'); // warm-up
  const baseline = await baselineRoundTrips(session, 'bench-echo');
  await session.disconnect();
  for (const echo of echoes) echo.stdin!.end();
  const replicas: CounterReplica[] = [];
  for (const daemon of ring.daemons) {
    const replica = new CounterReplica(daemon, 'bench-svc', ['--style', 'active']);
    replicas.push(replica);
    await replica.synced();
  }
  const client = await ServiceClient.open({ group: 'bench-svc', connect: () => connect({ daemon: daemonName(ring.daemons[0]!) }), timeoutMs: 30_000 });
  await callLatencies(client); // warm-up, and every replica in sync
  const active = await callLatencies(client);
  const switcher = await connect({ daemon: daemonName(ring.daemons[0]!) });
  switchStyle(switcher, 'bench-svc', 'passive');
  await switcher.disconnect();
  await callLatencies(client);
  const passive = await callLatencies(client);
  await client.close();
  for (const replica of replicas) replica.kill();
  return {
    baseline: percentile(baseline, 0.5),
    active: percentile(active, 0.5),
    activeP99: percentile(active, 0.99),
    passive: percentile(passive, 0.5),
    passiveP99: percentile(passive, 0.99),
  };
}

interface HandoverResult {
  steadyP50: number;
  /** Longest call in a window as long as the hand-over's, just before it: what the machine does anyway. */
  steadyMax: number;
  pause: number;
  windowMs: number;
  errors: number;
}

async function handoverRun(ring: StartedRing): Promise<HandoverResult> {
  const replicas: CounterReplica[] = [];
  for (const daemon of ring.daemons) {
    const replica = new CounterReplica(daemon, 'bench-handover', ['--style', handoverStyle, '--respawn']);
    replicas.push(replica);
    await replica.synced();
  }
  const load = await IncrementLoad.start(ring.daemons, 'bench-handover');
  await load.advance(calls);
  const signalAt = performance.now();
  const retiring = replicas[0]!;
  retiring.tool.child.kill('SIGUSR2');
  await retiring.tool.exited;
  await retiring.synced(2);
  const doneAt = performance.now();
  await load.advance(calls / 10);
  await load.stop();
  const windowMs = doneAt - signalAt;
  const latenciesIn = (from: number, to: number) => load.latencies.filter(([start, latency]) => start + latency >= from && start <= to).map(([, latency]) => latency);
  const steady = latenciesIn(0, signalAt);
  const replacementPid = retiring.lines().find((line) => line.msg === 'replacement started')?.replacementPid;
  if (replacementPid !== undefined) process.kill(replacementPid, 'SIGKILL');
  for (const replica of replicas) replica.kill();
  return {
    steadyP50: percentile(steady, 0.5),
    steadyMax: Math.max(...latenciesIn(signalAt - windowMs, signalAt)),
    pause: Math.max(...latenciesIn(signalAt, doneAt)),
    windowMs,
    errors: load.errors.length,
  };
}

/** Other runs on this machine may take a free port before a daemon binds it: try again then. */
async function startRingRetrying(): Promise<StartedRing> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRing({ count: 3 });
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

const callResults = [];
const handoverResults: HandoverResult[] = [];
for (let run = 0; run < runs; run++) {
  const ring = await startRingRetrying();
  try {
    callResults.push(await callRun(ring));
    handoverResults.push(await handoverRun(ring));
  } finally {
    await ring.stop();
  }
  console.log(`run ${run + 1}:`, JSON.stringify({ ...callResults.at(-1), ...handoverResults.at(-1) }));
}

const med = (values: number[]) => median(values).toFixed(0);
const baseline = median(callResults.map((result) => result.baseline));
const active = median(callResults.map((result) => result.active));
const passive = median(callResults.map((result) => result.passive));
console.log(`baseline agreed round trip (first of 3 echoes) p50: ${baseline.toFixed(0)} µs`);
console.log(`active call p50: ${active.toFixed(0)} µs (p99 ${med(callResults.map((result) => result.activeP99))} µs), ${(active / baseline).toFixed(2)}× baseline`);
console.log(`warm passive call p50: ${passive.toFixed(0)} µs (p99 ${med(callResults.map((result) => result.passiveP99))} µs), ${(passive / baseline).toFixed(2)}× baseline`);
const handoverMedian = (pick: (result: HandoverResult) => number) => median(handoverResults.map(pick)).toFixed(1);
console.log(
  `hand-over (${handoverStyle}): pause ${handoverMedian((result) => result.pause)} ms (longest call from SIGUSR2 until the replacement is in sync and the old replica left, ` +
    `${handoverMedian((result) => result.windowMs)} ms); longest call in as long a window before: ${handoverMedian((result) => result.steadyMax)} ms; ` +
    `steady p50 ${median(handoverResults.map((result) => result.steadyP50)).toFixed(2)} ms; failed calls ${handoverResults.reduce((sum, result) => sum + result.errors, 0)}`,
);
process.exit(0);
