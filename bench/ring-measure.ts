/**
 * Measurements on a running ring of real daemons, shared by the loopback benchmark
 * (ring-daemons.ts) and the network-namespace one (ring-lan.ts): `tspread flooder`
 * throughput runs, self-delivery and round-trip latency, per-process CPU.
 *
 * A benchmark describes each daemon as a BenchDaemon: where its clients connect, and how
 * to start a client process on its host (in its namespace on the LAN layout).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Service, type Session } from '../src/client/index.js';
import { CLI_PATH, SPREAD_LAN_TIMEOUTS } from '../test/helpers/daemon.js';
import { median } from './common.js';

/** Where benchmark processes run: a host (a namespace on the LAN layout) and its ring address. */
export interface BenchHost {
  name: string;
  address: string;
  /** Starts `node <args>` on this host (stdio piped). */
  spawnNode(args: string[]): ChildProcess;
}

/** A daemon of the ring, on its host. */
export interface BenchDaemon extends BenchHost {
  /** Client port: the Unix socket is `<socketDir>/<port>`. */
  port: number;
  socketDir: string;
  pid: number;
}

/**
 * spread.conf lines of a benchmark ring, before `extra`. A `--ro` receiver on another daemon
 * cannot slow a `--wo` sender down (no flow control across daemons, as in Spread), and on
 * this 2-vCPU host it may fall more than MaxSessionBytes (64 MiB) behind a 60 MB run: room
 * for that. MaxSessionMessages keeps its default (it cuts only readers that stopped).
 * Spread's LAN timeouts (tspread's defaults are shorter): a loaded 2-vCPU host must not turn
 * a stalled daemon into a membership change in the middle of a measurement.
 */
export function benchRingLines(extra: string[]): string[] {
  return [
    'MaxSessionBytes = 999999999',
    ...SPREAD_LAN_TIMEOUTS,
    ...extra,
  ];
}

/** The datagram size a daemon's ring uses, from its start-up log line ('ring datagram size'). */
export function datagramBytesLogged(name: string, output: string): number {
  const match = /"datagramBytes":(\d+)/.exec(output);
  if (match === null) throw new Error(`${name} did not log its ring datagram size:\n${output}`);
  return Number(match[1]);
}

export interface FlooderJson {
  received: number;
  msgsPerSec: number;
  mbitPerSec: number;
  latencyMs: { p50: number; p99: number } | null;
  orderDigest: string | null;
}

/** The compiled benchmark scripts (dist/bench) that run as separate processes. */
const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

/** How long one flooder may run before it is killed (a stuck ring must not hang the benchmark). */
const FLOODER_TIMEOUT_MS = 300_000;

/** Children started by this module and not yet exited (killed by pid if the benchmark exits early). */
export const liveChildren = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

/** Kills every child process still running (exit handlers). */
export function killLiveChildren(): void {
  for (const child of liveChildren) if (child.pid !== undefined) child.kill('SIGKILL');
}

/** Runs `tspread flooder --json <args>` beside `daemon`, against it. */
export function runFlooder(daemon: BenchDaemon, args: string[]): Promise<FlooderJson> {
  return new Promise((resolve, reject) => {
    const child = track(
      daemon.spawnNode([CLI_PATH, 'flooder', '--json', '-s', String(daemon.port), '--socket-dir', daemon.socketDir, ...args]),
    );
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => (out += text));
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (err += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), FLOODER_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as FlooderJson);
      else reject(new Error(`flooder on ${daemon.name} ${args.join(' ')} exited ${code}: ${err || out}`));
    });
  });
}

export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
/** A promise that never rejects (a receiver may fail while the sender is still being awaited). */
export const settle = <T>(promise: Promise<T>): Promise<Settled<T>> =>
  promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
export const unwrap = <T>(settled: Settled<T>): T => {
  if (!settled.ok) throw settled.error;
  return settled.value;
};

/** User + system CPU seconds of a process so far (Linux /proc). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resolves when `session` sees a view of `group` with at least `count` members. */
export function membersReached(session: Session, group: string, count: number): Promise<void> {
  return new Promise((resolve) => {
    const listener = (message: { group: string; members: string[] }) => {
      if (message.group === group && message.members.length >= count) {
        session.off('membership', listener);
        resolve();
      }
    };
    session.on('membership', listener);
  });
}

/** A session of the benchmark process itself on `daemon`. */
export const connectTo = (daemon: BenchDaemon, privateName: string): Promise<Session> =>
  connect({ daemon: String(daemon.port), unixSocketDir: daemon.socketDir, privateName });

/** Resolves once a client of the last daemon sees one of the first: the ring has formed. */
export async function untilRingFormed(daemons: BenchDaemon[]): Promise<void> {
  const probeA = await connectTo(daemons[0], 'pa');
  const probeB = await connectTo(daemons[daemons.length - 1], 'pb');
  const formed = membersReached(probeB, 'up', 2);
  probeA.join('up');
  probeB.join('up');
  await formed;
  await Promise.all([probeA.disconnect(), probeB.disconnect()]);
}

export interface FloodResult {
  /** The slowest receiver's msgs/s (its messages ÷ first to last delivery). */
  rate: number;
  mbit: number;
  /** That receiver's delivery latency p50 (ms; sender and receiver share a clock). */
  p50: number | null;
  /** User+system µs per message of each daemon during the run. */
  cpu: number[];
  /** Every receiver's order digest (all equal when they saw one order). */
  digests: (string | null)[];
}

export interface FloodPlan {
  /** Daemons with a `flooder --wo` sender each (all start together). */
  senders: BenchDaemon[];
  /** Daemons with a `flooder --ro` receiver each. */
  receivers: BenchDaemon[];
  /** Every daemon of the ring (CPU is measured on each). */
  daemons: BenchDaemon[];
  service: Service;
  bytes: number;
  /** Messages per sender. */
  messages: number;
  /** Distinguishes this run's private names from earlier runs' (which may still be leaving). */
  tag: string;
}

/**
 * One throughput run: the receivers join `flooder`; a watcher on the first sender's daemon
 * sees them all before the senders start; every receiver must get every message.
 */
export async function floodRun(plan: FloodPlan): Promise<FloodResult> {
  const { senders, receivers, daemons, service, bytes, messages, tag } = plan;
  const group = 'flooder';
  const common = ['-m', String(messages), '-b', String(bytes), '--service', service];
  const watcher = await connectTo(senders[0], `w${tag}`);
  const ready = membersReached(watcher, group, receivers.length + 1);
  watcher.join(group);
  const receiving = receivers.map((daemon, index) =>
    settle(runFlooder(daemon, ['--ro', '-u', `r${index}x${tag}`, '--senders', String(senders.length), ...common])),
  );
  await ready;
  watcher.leave(group);
  await watcher.disconnect();
  const cpuBefore = daemons.map((daemon) => cpuSeconds(daemon.pid));
  const sending = senders.map((daemon, index) => settle(runFlooder(daemon, ['--wo', '-u', `s${index}x${tag}`, ...common])));
  for (const sender of sending) unwrap(await sender);
  const reports = await Promise.all(receiving.map((receiver) => receiver.then(unwrap)));
  const total = messages * senders.length;
  const cpu = daemons.map((daemon, index) => ((cpuSeconds(daemon.pid) - cpuBefore[index]) / total) * 1e6);
  for (const report of reports) if (report.received !== total) throw new Error(`a receiver got ${report.received} of ${total}`);
  const slower = reports.reduce((a, b) => (a.msgsPerSec <= b.msgsPerSec ? a : b));
  return { rate: slower.msgsPerSec, mbit: slower.mbitPerSec, p50: slower.latencyMs?.p50 ?? null, cpu, digests: reports.map((report) => report.orderDigest) };
}

export interface Percentiles {
  p50: number;
  p99: number;
  mean: number;
  /** Samples taken (fewer than asked when the run hit its time bound). */
  count: number;
}

export function percentiles(samples: number[]): Percentiles {
  samples.sort((a, b) => a - b);
  const at = (fraction: number) => samples[Math.min(samples.length - 1, Math.floor(fraction * samples.length))];
  return { p50: at(0.5), p99: at(0.99), mean: samples.reduce((a, b) => a + b, 0) / samples.length, count: samples.length };
}

/** Latency over several runs: medians of the runs' p50, p99 and mean, and every run's p50. */
export interface RepeatedLatency {
  p50Us: number;
  p50sUs: number[];
  p99Us: number;
  meanUs: number;
  /** Fewest samples in one run. */
  samplesMin: number;
}

/** Several runs of one latency measurement, summarised. */
export function summarizeLatency(results: Percentiles[]): RepeatedLatency {
  const p50s = results.map((result) => Math.round(result.p50));
  return {
    p50Us: median(p50s),
    p50sUs: p50s,
    p99Us: median(results.map((result) => result.p99)),
    meanUs: median(results.map((result) => result.mean)),
    samplesMin: Math.min(...results.map((result) => result.count)),
  };
}

/** `runs` repeats of one latency measurement (it swings with the host from run to run). */
export async function repeatLatency(runs: number, label: string, measure: () => Promise<Percentiles>): Promise<RepeatedLatency> {
  const results: Percentiles[] = [];
  for (let run = 0; run < runs; run++) results.push(await measure());
  const repeated = summarizeLatency(results);
  console.error(`${label}: p50 ${repeated.p50sUs.join(' / ')} µs, median ${repeated.p50Us}`);
  return repeated;
}

/** A latency run stops after this long with the samples it has (a stuck path must not stall the benchmark). */
const ROUND_TRIPS_SECONDS_MAX = 30;

/**
 * Times `pings` round trips after a warm-up: `once` starts one and resolves when it is back.
 * Within ROUND_TRIPS_SECONDS_MAX: the warm-up ends after a tenth of it at the latest, the
 * timed part at the end of it (Percentiles.count says how many were timed).
 */
export async function timeRoundTrips(pings: number, once: () => Promise<void>): Promise<Percentiles> {
  const samples: number[] = [];
  const begin = process.hrtime.bigint();
  const warmupEnd = begin + BigInt(ROUND_TRIPS_SECONDS_MAX * 1e8);
  const deadline = begin + BigInt(ROUND_TRIPS_SECONDS_MAX * 1e9);
  let warmup = Math.min(500, Math.floor(pings / 5));
  while (samples.length < pings) {
    const start = process.hrtime.bigint();
    await once();
    const end = process.hrtime.bigint();
    if (warmup > 0 && end < warmupEnd) warmup--;
    else samples.push(Number(end - start) / 1000);
    if (end > deadline && samples.length > 0) break;
  }
  return percentiles(samples);
}

let latencyRun = 0;

/**
 * Self-delivery: a client of the first daemon sends one message, waits for it to come back,
 * sends the next; members of the group on every other daemon too.
 */
export async function selfDelivery(daemons: BenchDaemon[], service: Service, pings: number, bytes = 100): Promise<Percentiles> {
  const [first, ...rest] = daemons;
  // Fresh names each run: the last run's sessions may still be leaving.
  const run = latencyRun++;
  const group = 'latency';
  const others = await Promise.all(rest.map((daemon, index) => connectTo(daemon, `l${index}${service}${run}`)));
  const pinger = await connectTo(first, `p${service}${run}`);
  const ready = membersReached(pinger, group, daemons.length);
  for (const session of [...others, pinger]) session.join(group);
  await ready;
  for (const session of others) session.on('message', () => undefined);
  let wake: () => void = () => undefined;
  pinger.on('message', (message) => {
    if (message.sender === pinger.privateGroup) wake();
  });
  const payload = Buffer.alloc(bytes);
  const result = await timeRoundTrips(pings, () => {
    const back = new Promise<void>((resolve) => (wake = resolve));
    pinger.multicast(group, payload, { service });
    return back;
  });
  await Promise.all([...others, pinger].map((session) => session.disconnect()));
  return result;
}

/** Starts a benchmark helper process beside `daemon`; resolves with it and its first stdout line. */
function startHelper(host: BenchHost, script: string, args: string[]): Promise<{ child: ChildProcess; line: string }> {
  const child = track(host.spawnNode([path.join(BENCH_DIR, script), ...args]));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (err += text));
    const onData = (text: string) => {
      out += text;
      const end = out.indexOf('\n');
      if (end < 0) return;
      child.stdout!.off('data', onData);
      resolve({ child, line: out.slice(0, end).trim() });
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => reject(new Error(`${script} on ${host.name} exited ${code}: ${err}`)));
  });
}

/**
 * Client round trip (Spread's spping): a client of `from` sends a message to a group whose
 * only member, a client of `to`, sends it back; `pings` round trips, one at a time.
 */
export async function clientRoundTrip(from: BenchDaemon, to: BenchDaemon, service: Service, pings: number, bytes = 100): Promise<Percentiles> {
  const run = latencyRun++;
  const group = `echo${run}`;
  const echo = await startHelper(to, 'ring-echo-client.js', [String(to.port), to.socketDir, `e${run}`, group]);
  try {
    const pinger = await connectTo(from, `q${service}${run}`);
    let wake: () => void = () => undefined;
    pinger.on('message', () => wake());
    const payload = Buffer.alloc(bytes);
    const result = await timeRoundTrips(pings, () => {
      const back = new Promise<void>((resolve) => (wake = resolve));
      pinger.multicast(group, payload, { service });
      return back;
    });
    await pinger.disconnect();
    return result;
  } finally {
    echo.child.stdin!.end();
    echo.child.kill();
  }
}

/** A bare UDP round trip between a Node process on `from` and one on `to`, at their ring addresses. */
export async function udpRoundTrip(from: BenchHost, to: BenchHost, pings: number, bytes = 100): Promise<Percentiles> {
  const echo = await startHelper(to, 'udp-round-trip.js', ['echo', to.address]);
  try {
    const ping = await startHelper(from, 'udp-round-trip.js', ['ping', from.address, to.address, echo.line, String(pings), String(bytes)]);
    return JSON.parse(ping.line) as Percentiles;
  } finally {
    echo.child.kill();
  }
}
