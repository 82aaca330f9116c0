/**
 * Three real `tspread daemon` processes on one host (d1 127.0.0.1, d2 .2, d3 .3, one ring),
 * the layout of Spread's reference numbers: one `tspread flooder --wo` sender on d1 and a
 * `tspread flooder --ro` receiver on each of d2 and d3 (Unix sockets). Throughput is the
 * slower receiver's msgs/s (first to last delivery); each cell is the median of --runs runs.
 * Then self-delivery latency: a client on d1 sends one message, waits for it to come back,
 * sends the next (members of the group on d2 and d3 too), p50/p99 over --pings round trips
 * (--runs times; the median of the runs is reported),
 * with two baselines from the same run: the same client against one daemon alone (no ring),
 * and a bare UDP round trip between two Node processes (the floor under every ring hop).
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/ring-daemons.js [--sizes 100,1000,10000] [--services agreed,safe]
 *       [--rings regular,accelerated] [--datagram default|N] [--runs 3] [--scale 1]
 *       [--pings 3000] [--no-throughput] [--no-latency] [--prof-dir DIR] [--node-args '...'] [--conf 'Line;Line'] [--json FILE]
 *
 * --datagram N sets DatagramBytes in spread.conf; `default` (the default) leaves it out, so
 * the daemons pick their loopback size (the tables show the size they chose).
 * --prof-dir runs the daemons with `node --cpu-prof` (profiles written when they exit).
 * Prints a Markdown table per ring variant; also daemon CPU (user+system) per message.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type Service, type Session } from '../src/client/index.js';
import { CLI_PATH, startRing, type StartedDaemon, type StartedRing } from '../test/helpers/daemon.js';
import { flag, median, SPREAD_LAN_TIMEOUT_LINES } from './common.js';

if (process.argv.includes('--help')) {
  console.log(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0].replace(/^\/\*\*\n| \* ?/gm, ''));
  process.exit(0);
}


const sizes = flag('sizes', '100,1000,10000').split(',').map(Number);
const services = flag('services', 'agreed,safe').split(',') as Service[];
const rings = flag('rings', 'regular,accelerated').split(',');
const runs = Number(flag('runs', '3'));
const scale = Number(flag('scale', '1'));
const pings = Number(flag('pings', '3000'));
const profDir = flag('prof-dir', '');
/** Extra spread.conf lines, ';'-separated (e.g. 'PersonalWindow = 40;Window = 200'). */
const confLines = flag('conf', '').split(';').map((line) => line.trim()).filter((line) => line !== '');
const datagramFlag = flag('datagram', 'default');
const datagramLine = datagramFlag === 'default' ? [] : [`DatagramBytes = ${Number(datagramFlag)}`];
/** Extra node options for the daemons, space-separated (e.g. '--perf-basic-prof'). */
const nodeArgs = flag('node-args', '').split(' ').filter((arg) => arg !== '');
const jsonFile = flag('json', '');
const throughput = !process.argv.includes('--no-throughput');
const latency = !process.argv.includes('--no-latency');

/** The datagram size d1's ring uses, from its start-up log line ('ring datagram size'). */
function datagramInUse(daemon: StartedDaemon): number {
  const match = /"datagramBytes":(\d+)/.exec(daemon.output());
  if (match === null) throw new Error(`d1 did not log its ring datagram size:\n${daemon.output()}`);
  return Number(match[1]);
}

/** Messages per run: a few seconds at the expected rates. */
const messagesFor = (bytes: number) => Math.round(scale * (bytes <= 100 ? 200_000 : bytes <= 1000 ? 120_000 : 20_000));

interface FlooderJson {
  received: number;
  msgsPerSec: number;
  mbitPerSec: number;
  latencyMs: { p50: number; p99: number } | null;
}

function runFlooder(args: string[]): Promise<FlooderJson> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, 'flooder', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as FlooderJson);
      else reject(new Error(`flooder ${args.join(' ')} exited ${code}: ${err || out}`));
    });
  });
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };
/** A promise that never rejects (a receiver may fail while the sender is still being awaited). */
const settle = <T>(promise: Promise<T>): Promise<Settled<T>> =>
  promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
const unwrap = <T>(settled: Settled<T>): T => {
  if (!settled.ok) throw settled.error;
  return settled.value;
};

/** User + system CPU seconds of a process so far (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}


const socketDir = (daemon: StartedDaemon) => path.dirname(daemon.unixPath);

/** Resolves when `session` sees a view of `group` with at least `count` members. */
function membersReached(session: Session, group: string, count: number): Promise<void> {
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

interface ThroughputCell {
  ring: string;
  datagram: number;
  service: Service;
  bytes: number;
  msgsPerSec: number[];
  mbitPerSec: number;
  floodLatencyP50Ms: number | null;
  cpuUsPerMessage: number[];
}

interface RunResult {
  rate: number;
  mbit: number;
  p50: number | null;
  cpu: number[];
}

async function throughputRun(ring: StartedRing, service: Service, bytes: number, run: number): Promise<RunResult> {
  const [d1, d2, d3] = ring.daemons;
  const messages = messagesFor(bytes);
  const group = 'flooder';
  // A watcher on d1 sees both receivers join before the sender starts, then leaves.
  const watcher = await connect({ daemon: String(d1.port), unixSocketDir: socketDir(d1), privateName: `w${run}` });
  const ready = membersReached(watcher, group, 3);
  watcher.join(group);
  const receivers = [d2, d3].map((daemon, index) =>
    settle(runFlooder(['--ro', '-u', `r${index}x${run}`, '-s', String(daemon.port), '--socket-dir', socketDir(daemon), '-m', String(messages), '-b', String(bytes), '--service', service])),
  );
  await ready;
  watcher.leave(group);
  await watcher.disconnect();
  const cpuBefore = ring.daemons.map((daemon) => cpuSeconds(daemon.process.pid!));
  await runFlooder(['--wo', '-u', `s${run}`, '-s', String(d1.port), '--socket-dir', socketDir(d1), '-m', String(messages), '-b', String(bytes), '--service', service]);
  const reports = await Promise.all(receivers.map((receiver) => receiver.then(unwrap)));
  const cpu = ring.daemons.map((daemon, index) => ((cpuSeconds(daemon.process.pid!) - cpuBefore[index]) / messages) * 1e6);
  for (const report of reports) if (report.received !== messages) throw new Error(`receiver got ${report.received} of ${messages}`);
  const slower = reports.reduce((a, b) => (a.msgsPerSec <= b.msgsPerSec ? a : b));
  return { rate: slower.msgsPerSec, mbit: slower.mbitPerSec, p50: slower.latencyMs?.p50 ?? null, cpu };
}

interface LatencyCell {
  ring: string;
  /** null for the baselines (no ring). */
  datagram: number | null;
  /** A Spread service, or 'udp' for the bare round-trip baseline. */
  service: Service | 'udp';
  /** Medians over --runs repeats; `p50sUs` lists each repeat's p50. */
  p50Us: number;
  p50sUs: number[];
  p99Us: number;
  meanUs: number;
}

/** `runs` repeats of one latency measurement (it swings with the host from run to run). */
async function repeated(ring: string, datagramBytes: number | null, service: Service | 'udp', measure: () => Promise<Percentiles>): Promise<LatencyCell> {
  const results: Percentiles[] = [];
  for (let run = 0; run < runs; run++) results.push(await measure());
  const p50s = results.map((result) => Math.round(result.p50));
  const cell = {
    ring,
    datagram: datagramBytes,
    service,
    p50Us: median(p50s),
    p50sUs: p50s,
    p99Us: median(results.map((result) => result.p99)),
    meanUs: median(results.map((result) => result.mean)),
  };
  console.error(`${ring} ${datagramBytes ?? ''} ${service} round trip: p50 ${p50s.join(' / ')} µs, median ${cell.p50Us}`);
  return cell;
}

interface Percentiles {
  p50: number;
  p99: number;
  mean: number;
}

function percentiles(samples: number[]): Percentiles {
  samples.sort((a, b) => a - b);
  const at = (fraction: number) => samples[Math.min(samples.length - 1, Math.floor(fraction * samples.length))];
  return { p50: at(0.5), p99: at(0.99), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

/** One message outstanding: send, wait for it to come back, repeat (members on every other daemon too). */
let latencyRun = 0;
async function selfDelivery(ring: StartedRing, service: Service): Promise<Percentiles> {
  const [d1, ...rest] = ring.daemons;
  // Fresh names each run: the last run's sessions may still be leaving.
  const run = latencyRun++;
  const group = 'latency';
  const others = await Promise.all(
    rest.map((daemon, index) => connect({ daemon: String(daemon.port), unixSocketDir: socketDir(daemon), privateName: `l${index}${service}${run}` })),
  );
  const pinger = await connect({ daemon: String(d1.port), unixSocketDir: socketDir(d1), privateName: `p${service}${run}` });
  const ready = membersReached(pinger, group, ring.daemons.length);
  for (const session of [...others, pinger]) session.join(group);
  await ready;
  for (const session of others) session.on('message', () => undefined);
  let wake: () => void = () => undefined;
  pinger.on('message', (message) => {
    if (message.sender === pinger.privateGroup) wake();
  });
  const payload = Buffer.alloc(100);
  const samples: number[] = [];
  const warmup = Math.min(500, Math.floor(pings / 5));
  for (let index = 0; index < warmup + pings; index++) {
    const back = new Promise<void>((resolve) => (wake = resolve));
    const start = process.hrtime.bigint();
    pinger.multicast(group, payload, { service });
    await back;
    if (index >= warmup) samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  await Promise.all([...others, pinger].map((session) => session.disconnect()));
  return percentiles(samples);
}

/** The floor under any ring hop here: a 100-byte UDP round trip between two Node processes on loopback. */
async function udpRoundTrip(): Promise<Percentiles> {
  const echo = spawn(process.execPath, ['-e', `
    const s = require('node:dgram').createSocket('udp4');
    s.on('message', (m, r) => s.send(m, r.port, r.address));
    s.bind(0, '127.0.0.2', () => console.log(s.address().port));`]);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      echo.stdout.once('data', (text: Buffer) => resolve(Number(text.toString().trim())));
      echo.once('exit', (code) => reject(new Error(`UDP echo exited ${code}`)));
    });
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const payload = Buffer.alloc(100);
    const samples: number[] = [];
    const warmup = Math.min(500, Math.floor(pings / 5));
    for (let index = 0; index < warmup + pings; index++) {
      const back = new Promise<void>((resolve) => socket.once('message', () => resolve()));
      const start = process.hrtime.bigint();
      socket.send(payload, port, '127.0.0.2');
      await back;
      if (index >= warmup) samples.push(Number(process.hrtime.bigint() - start) / 1000);
    }
    socket.close();
    return percentiles(samples);
  } finally {
    echo.kill();
  }
}

/** Daemons of the ring being measured: killed if this process exits without stopping them. */
const running = new Set<StartedRing>();
process.on('exit', () => {
  for (const ring of running) for (const daemon of ring.daemons) daemon.process.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

async function main(): Promise<void> {
  const cells: ThroughputCell[] = [];
  const latencies: LatencyCell[] = [];
  for (const variant of rings) {
    const accelerated = variant === 'accelerated';
    // A -ro receiver on another daemon cannot slow the -wo sender down (no flow control across
    // daemons, as in Spread): room for a burst instead of Spread's cut at 1000 queued messages.
    const extraLines = [
      `AcceleratedRing = ${accelerated ? 'true' : 'false'}`,
      ...datagramLine,
      'MaxSessionMessages = 1000000',
      'MaxSessionBytes = 999999999',
      // Spread's LAN timeouts (tspread's defaults are shorter): a loaded 2-vCPU host must not
      // turn a stalled daemon into a membership change in the middle of a measurement.
      ...SPREAD_LAN_TIMEOUT_LINES,
      ...confLines,
    ];
    const ring = await startRing({
      count: 3,
      extraLines,
      nodeArgs: [...nodeArgs, ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])],
    });
    running.add(ring);
    try {
      // The ring is up once a client on d3 sees one on d1 (forming takes a few HELLO periods).
      const probeA = await connect({ daemon: String(ring.daemons[0].port), unixSocketDir: socketDir(ring.daemons[0]), privateName: 'pa' });
      const probeB = await connect({ daemon: String(ring.daemons[2].port), unixSocketDir: socketDir(ring.daemons[2]), privateName: 'pb' });
      const formed = membersReached(probeB, 'up', 2);
      probeA.join('up');
      probeB.join('up');
      await formed;
      await Promise.all([probeA.disconnect(), probeB.disconnect()]);
      const datagram = datagramInUse(ring.daemons[0]);
      if (throughput) {
        for (const service of services) {
          for (const bytes of sizes) {
            const results: RunResult[] = [];
            for (let run = 0; run < runs; run++) {
              try {
                results.push(await throughputRun(ring, service, bytes, run));
              } catch (error) {
                console.error(`${variant} ${service} ${bytes} B run ${run} failed: ${(error as Error).message}`);
              }
            }
            if (results.length === 0) continue;
            const cell: ThroughputCell = {
              ring: variant,
              datagram,
              service,
              bytes,
              msgsPerSec: results.map((result) => Math.round(result.rate)),
              mbitPerSec: median(results.map((result) => result.mbit)),
              floodLatencyP50Ms: results[0].p50,
              cpuUsPerMessage: ring.daemons.map((_, index) => median(results.map((result) => result.cpu[index]))),
            };
            cells.push(cell);
            console.error(
              `${variant} ${datagram} ${service} ${bytes} B: ${cell.msgsPerSec.join(' / ')} msgs/s, median ${median(cell.msgsPerSec)}; cpu µs/msg ${cell.cpuUsPerMessage.map((value) => value.toFixed(1)).join(' ')}`,
            );
          }
        }
      }
      if (latency) {
        for (const service of services) latencies.push(await repeated(variant, datagram, service, () => selfDelivery(ring, service)));
      }
    } finally {
      await ring.stop();
      running.delete(ring);
    }
  }

  if (latency) {
    // Baselines measured in the same run: what the ring adds to a daemon's own round trip.
    const alone = await startRing({ count: 1, nodeArgs });
    running.add(alone);
    try {
      for (const service of services) latencies.push(await repeated('baseline: one daemon, no ring', null, service, () => selfDelivery(alone, service)));
    } finally {
      await alone.stop();
      running.delete(alone);
    }
    latencies.push(await repeated('baseline: UDP round trip, two Node processes', null, 'udp', udpRoundTrip));
  }

  const lines: string[] = [];
  if (cells.length > 0) {
    lines.push('| ring | DatagramBytes | service | bytes | msgs/s (median) | runs | Mbit/s | daemon CPU µs/msg d1 / d2 / d3 |');
    lines.push('|---|---|---|---|---|---|---|---|');
    for (const cell of cells) {
      lines.push(
        `| ${cell.ring} | ${cell.datagram} | ${cell.service.toUpperCase()} | ${cell.bytes} | ${median(cell.msgsPerSec).toLocaleString('en-US')} | ${cell.msgsPerSec.join(', ')} | ${cell.mbitPerSec.toFixed(0)} | ${cell.cpuUsPerMessage.map((value) => value.toFixed(1)).join(' / ')} |`,
      );
    }
  }
  if (latencies.length > 0) {
    lines.push('', '| ring | DatagramBytes | service | self-delivery p50 µs (median) | p50 per run | p99 µs | mean µs |', '|---|---|---|---|---|---|---|');
    for (const cell of latencies) {
      lines.push(
        `| ${cell.ring} | ${cell.datagram ?? '–'} | ${cell.service.toUpperCase()} | ${cell.p50Us} | ${cell.p50sUs.join(', ')} | ${cell.p99Us.toFixed(0)} | ${cell.meanUs.toFixed(0)} |`,
      );
    }
  }
  console.log(lines.join('\n'));
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ cells, latencies }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
