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
 *   crash pause: the same, but the first replica is killed (-9); window: the next second.
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
/** After a kill -9, calls are watched this long for the fail-over. */
const CRASH_WINDOW_MS = 1000;

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

/** A proactive hand-over of the first replica, or (`crash`) a kill -9 of it, under load. */
async function handoverRun(ring: StartedRing, event: 'handover' | 'crash'): Promise<HandoverResult> {
  const group = `bench-${event}`;
  const replicas: CounterReplica[] = [];
  for (const daemon of ring.daemons) {
    const replica = new CounterReplica(daemon, group, ['--style', handoverStyle, '--respawn']);
    replicas.push(replica);
    await replica.synced();
  }
  const load = await IncrementLoad.start(ring.daemons, group);
  await load.advance(calls);
  const signalAt = performance.now();
  const victim = replicas[0]!;
  if (event === 'crash') {
    victim.kill();
    await new Promise((resolve) => setTimeout(resolve, CRASH_WINDOW_MS));
  } else {
    victim.tool.child.kill('SIGUSR2');
    await victim.tool.exited;
    await victim.synced(2);
  }
  const doneAt = performance.now();
  await load.advance(calls / 10);
  await load.stop();
  const windowMs = doneAt - signalAt;
  const latenciesIn = (from: number, to: number) => load.latencies.filter(([start, latency]) => start + latency >= from && start <= to).map(([, latency]) => latency);
  const steady = latenciesIn(0, signalAt);
  const replacementPid = victim.lines().find((line) => line.msg === 'replacement started')?.replacementPid;
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
const crashResults: HandoverResult[] = [];
for (let run = 0; run < runs; run++) {
  const ring = await startRingRetrying();
  try {
    callResults.push(await callRun(ring));
    handoverResults.push(await handoverRun(ring, 'handover'));
    crashResults.push(await handoverRun(ring, 'crash'));
  } finally {
    await ring.stop();
  }
  console.log(`run ${run + 1}:`, JSON.stringify({ ...callResults.at(-1), handover: handoverResults.at(-1), crash: crashResults.at(-1) }));
}

const med = (values: number[]) => median(values).toFixed(0);
const baseline = median(callResults.map((result) => result.baseline));
const active = median(callResults.map((result) => result.active));
const passive = median(callResults.map((result) => result.passive));
console.log(`baseline agreed round trip (first of 3 echoes) p50: ${baseline.toFixed(0)} µs`);
console.log(`active call p50: ${active.toFixed(0)} µs (p99 ${med(callResults.map((result) => result.activeP99))} µs), ${(active / baseline).toFixed(2)}× baseline`);
console.log(`warm passive call p50: ${passive.toFixed(0)} µs (p99 ${med(callResults.map((result) => result.passiveP99))} µs), ${(passive / baseline).toFixed(2)}× baseline`);
for (const [name, results] of [[`hand-over (${handoverStyle})`, handoverResults], [`crash of the first replica (${handoverStyle}, kill -9)`, crashResults]] as const) {
  const of = (pick: (result: HandoverResult) => number) => median(results.map(pick)).toFixed(1);
  console.log(
    `${name}: pause ${of((result) => result.pause)} ms (longest call in the ${of((result) => result.windowMs)} ms from the event until the replacement is in sync and ` +
      `the old replica left, or ${CRASH_WINDOW_MS} ms after a crash); longest call in as long a window before: ${of((result) => result.steadyMax)} ms; ` +
      `steady p50 ${of((result) => result.steadyP50)} ms; failed calls ${results.reduce((sum, result) => sum + result.errors, 0)}`,
  );
}
process.exit(0);
