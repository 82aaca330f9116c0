/**
 * Three real `tspread daemon` processes on a LAN: three network namespaces (hosts) joined
 * by a Linux bridge over veth links, one daemon per namespace on its own address (one ring
 * over UDP, the datagram size the daemons choose off loopback), as one daemon per host on an
 * Ethernet segment. Needs root and iproute2. Every client runs in its daemon's namespace
 * (flooders, the echo client) or reaches it over its Unix socket (this process's sessions).
 *
 *   npm run build && node dist/bench/ring-lan.js
 *
 * For each MTU (1500, then 9000 jumbo frames):
 *   throughput  `tspread flooder --wo` on d1, `--ro` receivers on d2 and d3, for every size ×
 *               service; msgs/s of the slower receiver (first to last delivery); the receivers
 *               must agree on the order.
 *   concurrent  a sender on every daemon (10 000 × 1000-byte AGREED each), a receiver on every
 *               daemon: all 30 000 delivered everywhere, in one order; msgs/s of the slowest.
 *   latency     on an idle ring: self-delivery at d1 (a 100-byte message sent, waited for, the
 *               next sent; members on d2 and d3 too), and the client round trip d1 → d2 → d1
 *               (a client on d2 echoes to the sender, like Spread's spping); with a bare UDP
 *               round trip between Node processes in d1's and d2's namespaces as the floor.
 * Each cell is the median of --runs runs. Prints Markdown tables (Spread 5.0.1's figures for
 * this layout beside them); --json FILE writes every run.
 *
 * Options:
 *   --mtu 1500,9000          layouts to measure, in order
 *   --runs 3                 runs per cell
 *   --sizes 100,1000,10000   message sizes of the single-sender cells
 *   --services agreed,safe   services of the single-sender and latency cells
 *   --scale 1                multiplies messages per run (150 000 / 60 000 / 10 000 by size)
 *   --pings 3000             round trips per latency run (after a warm-up; at most 30 s a run)
 *   --accelerated            AcceleratedRing = true (default: the regular ring)
 *   --datagram N             DatagramBytes = N (default: the daemons' own choice)
 *   --conf 'Line;Line'       more spread.conf lines
 *   --no-throughput, --no-concurrent, --no-latency
 *   --prof-dir DIR           daemons run with `node --cpu-prof` (profiles written at exit)
 *   --node-args '...'        more node options for the daemons
 *   --json FILE
 *
 * The namespaces (prefix `tsl`) and every process started here are removed on exit, on
 * failure and on SIGINT/SIGTERM.
 */
import { writeFileSync } from 'node:fs';
import type { Service } from '../src/client/index.js';
import { CLIENT_PORT, SpreadLab } from '../test/helpers/netns-spread.js';
import { netnsAvailable } from '../test/helpers/netns.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';
import {
  type BenchDaemon,
  benchRingLines,
  clientRoundTrip,
  datagramBytesLogged,
  type FloodResult,
  floodRun,
  killLiveChildren,
  type Percentiles,
  repeatLatency,
  type RepeatedLatency,
  selfDelivery,
  udpRoundTrip,
  untilRingFormed,
} from './ring-measure.js';

exitWithUsageIfAsked(import.meta.url);

const mtus = flag('mtu', '1500,9000').split(',').map(Number);
const runs = Number(flag('runs', '3'));
const sizes = flag('sizes', '100,1000,10000').split(',').map(Number);
const services = flag('services', 'agreed,safe').split(',') as Service[];
const scale = Number(flag('scale', '1'));
const pings = Number(flag('pings', '3000'));
const accelerated = process.argv.includes('--accelerated');
const datagramFlag = flag('datagram', 'default');
const confLines = flag('conf', '').split(';').map((line) => line.trim()).filter((line) => line !== '');
const profDir = flag('prof-dir', '');
const nodeArgs = flag('node-args', '').split(' ').filter((arg) => arg !== '');
const jsonFile = flag('json', '');
const throughput = !process.argv.includes('--no-throughput');
const concurrent = !process.argv.includes('--no-concurrent');
const latency = !process.argv.includes('--no-latency');

/** Messages per run: about five seconds each at this layout's rates. */
const messagesFor = (bytes: number) => Math.round(scale * (bytes <= 100 ? 150_000 : bytes <= 1000 ? 60_000 : 10_000));
const CONCURRENT_MESSAGES = 10_000;
const CONCURRENT_BYTES = 1000;

/**
 * Spread 5.0.1 on this layout and machine kind (C daemons and clients, sender on d1, receivers
 * on d2 and d3, median of 3; issue #10): msgs/s ranges; p50 of the spping round trip in µs.
 */
const SPREAD_MSGS_PER_SEC: Record<string, [number, number]> = { 'agreed 100': [19_000, 21_100], 'agreed 1000': [11_200, 12_400] };
const SPREAD_ROUND_TRIP_P50_US: [number, number] = [660, 740];

interface ThroughputCell {
  service: Service;
  bytes: number;
  msgsPerSec: number[];
  mbitPerSec: number;
  cpuUsPerMessage: number[];
  /** Every run's receivers reported the same order digest. */
  oneOrder: boolean;
}

interface ConcurrentCell {
  senders: number;
  messagesPerSender: number;
  msgsPerSec: number[];
  cpuUsPerMessage: number[];
  /** Runs that delivered everything to every receiver, in one order. */
  complete: number;
  failures: string[];
}

interface LatencyCell extends RepeatedLatency {
  what: 'self-delivery at d1' | 'round trip d1 → d2 → d1' | 'UDP round trip d1 ↔ d2, two Node processes';
  service: Service | 'udp';
}

interface Layout {
  mtu: number;
  datagramBytes: number;
  throughput: ThroughputCell[];
  concurrent: ConcurrentCell | null;
  latency: LatencyCell[];
}

/** Labs still standing: torn down synchronously if this process exits early. */
const labs = new Set<SpreadLab>();
process.on('exit', () => {
  killLiveChildren();
  for (const lab of labs) lab.destroyNow();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

function benchDaemons(lab: SpreadLab): BenchDaemon[] {
  return lab.daemons.map((daemon, index) => ({
    name: daemon.name,
    address: lab.net.address(index),
    port: CLIENT_PORT,
    socketDir: daemon.unixDir,
    pid: daemon.process!.pid!,
    spawnNode: (args) => lab.net.spawn(index, process.execPath, args, { stdio: 'pipe' }),
  }));
}

/** `runs` attempts of one flood; failed runs are reported and left out of the medians. */
async function floodRuns(label: string, attempt: (run: number) => Promise<FloodResult>): Promise<{ results: FloodResult[]; failures: string[] }> {
  const results: FloodResult[] = [];
  const failures: string[] = [];
  for (let run = 0; run < runs; run++) {
    try {
      results.push(await attempt(run));
    } catch (error) {
      failures.push((error as Error).message);
      console.error(`${label} run ${run} failed: ${(error as Error).message}`);
    }
  }
  return { results, failures };
}

const oneOrder = (result: FloodResult) => result.digests.every((digest) => digest !== null && digest === result.digests[0]);
const cpuMedians = (results: FloodResult[], daemons: number) =>
  Array.from({ length: daemons }, (_, index) => median(results.map((result) => result.cpu[index])));

async function measureLayout(mtu: number): Promise<Layout> {
  const lines = benchRingLines([
    `AcceleratedRing = ${accelerated}`,
    ...(datagramFlag === 'default' ? [] : [`DatagramBytes = ${Number(datagramFlag)}`]),
    ...confLines,
  ]);
  const lab = await SpreadLab.start(3, lines, {
    net: { mtu, prefix: 'tsl' },
    nodeArgs: [...nodeArgs, ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])],
  });
  labs.add(lab);
  try {
    const daemons = benchDaemons(lab);
    await untilRingFormed(daemons);
    const layout: Layout = { mtu, datagramBytes: datagramBytesLogged('d1', lab.daemons[0].output), throughput: [], concurrent: null, latency: [] };
    const [d1, d2, d3] = daemons;
    if (throughput) {
      for (const service of services) {
        for (const bytes of sizes) {
          const label = `MTU ${mtu} ${service} ${bytes} B`;
          const { results } = await floodRuns(label, (run) =>
            floodRun({ senders: [d1], receivers: [d2, d3], daemons, service, bytes, messages: messagesFor(bytes), tag: `${service}${bytes}x${run}` }),
          );
          if (results.length === 0) continue;
          const cell: ThroughputCell = {
            service,
            bytes,
            msgsPerSec: results.map((result) => Math.round(result.rate)),
            mbitPerSec: median(results.map((result) => result.mbit)),
            cpuUsPerMessage: cpuMedians(results, daemons.length),
            oneOrder: results.every(oneOrder),
          };
          layout.throughput.push(cell);
          console.error(`${label}: ${cell.msgsPerSec.join(' / ')} msgs/s; cpu µs/msg ${cell.cpuUsPerMessage.map((value) => value.toFixed(1)).join(' ')}`);
        }
      }
    }
    if (concurrent) {
      const label = `MTU ${mtu} three senders`;
      const { results, failures } = await floodRuns(label, async (run) => {
        const result = await floodRun({
          senders: daemons,
          receivers: daemons,
          daemons,
          service: 'agreed',
          bytes: CONCURRENT_BYTES,
          messages: CONCURRENT_MESSAGES,
          tag: `c${run}`,
        });
        if (!oneOrder(result)) throw new Error(`receivers saw different orders: ${result.digests.join(' ')}`);
        return result;
      });
      layout.concurrent = {
        senders: daemons.length,
        messagesPerSender: CONCURRENT_MESSAGES,
        msgsPerSec: results.map((result) => Math.round(result.rate)),
        cpuUsPerMessage: results.length > 0 ? cpuMedians(results, daemons.length) : [],
        complete: results.length,
        failures,
      };
      console.error(`${label}: ${layout.concurrent.msgsPerSec.join(' / ')} msgs/s, ${results.length} of ${runs} runs complete`);
    }
    if (latency) {
      const cell = async (what: LatencyCell['what'], service: LatencyCell['service'], measure: () => Promise<Percentiles>) =>
        layout.latency.push({ what, service, ...(await repeatLatency(runs, `MTU ${mtu} ${what} ${service}`, measure)) });
      for (const service of services) await cell('self-delivery at d1', service, () => selfDelivery(daemons, service, pings));
      for (const service of services) await cell('round trip d1 → d2 → d1', service, () => clientRoundTrip(d1, d2, service, pings));
      await cell('UDP round trip d1 ↔ d2, two Node processes', 'udp', () => udpRoundTrip(d1, d2, pings));
    }
    return layout;
  } finally {
    await lab.stopDaemons();
    lab.destroyNow();
    labs.delete(lab);
  }
}

const thousands = (value: number) => Math.round(value).toLocaleString('en-US');
const range = ([low, high]: [number, number]) => `${thousands(low)}–${thousands(high)}`;

function tables(layouts: Layout[]): string {
  const lines: string[] = [];
  if (layouts.some((layout) => layout.throughput.length > 0)) {
    lines.push(
      '| MTU | DatagramBytes | service | bytes | msgs/s (median) | runs | Mbit/s | Spread msgs/s | ratio to Spread (top) | daemon CPU µs/msg d1 / d2 / d3 | one order |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const layout of layouts) {
      for (const cell of layout.throughput) {
        const rate = median(cell.msgsPerSec);
        const spread = SPREAD_MSGS_PER_SEC[`${cell.service} ${cell.bytes}`];
        lines.push(
          `| ${layout.mtu} | ${layout.datagramBytes} | ${cell.service.toUpperCase()} | ${cell.bytes} | ${thousands(rate)} | ${cell.msgsPerSec.join(', ')} | ${cell.mbitPerSec.toFixed(0)} | ${spread ? range(spread) : '–'} | ${spread ? `${(rate / spread[1]).toFixed(2)}×` : '–'} | ${cell.cpuUsPerMessage.map((value) => value.toFixed(1)).join(' / ')} | ${cell.oneOrder ? 'yes' : 'NO'} |`,
        );
      }
    }
  }
  const withConcurrent = layouts.filter((layout) => layout.concurrent !== null);
  if (withConcurrent.length > 0) {
    lines.push('', '| MTU | senders × 1000 B AGREED | msgs/s, all senders (median) | runs | complete runs (all delivered, one order) | daemon CPU µs/msg d1 / d2 / d3 |', '|---|---|---|---|---|---|');
    for (const layout of withConcurrent) {
      const cell = layout.concurrent!;
      const rate = cell.msgsPerSec.length > 0 ? thousands(median(cell.msgsPerSec)) : '–';
      lines.push(
        `| ${layout.mtu} | ${cell.senders} × ${thousands(cell.messagesPerSender)} | ${rate} | ${cell.msgsPerSec.join(', ')} | ${cell.complete} of ${cell.complete + cell.failures.length} | ${cell.cpuUsPerMessage.map((value) => value.toFixed(1)).join(' / ')} |`,
      );
    }
  }
  if (layouts.some((layout) => layout.latency.length > 0)) {
    lines.push('', '| MTU | what | service | p50 µs (median) | p50 per run | p99 µs | mean µs | round trips per run | Spread p50 µs |', '|---|---|---|---|---|---|---|---|---|');
    for (const layout of layouts) {
      for (const cell of layout.latency) {
        const spread = cell.what === 'round trip d1 → d2 → d1' && cell.service === 'agreed' ? range(SPREAD_ROUND_TRIP_P50_US) : '–';
        lines.push(
          `| ${layout.mtu} | ${cell.what} | ${cell.service.toUpperCase()} | ${cell.p50Us} | ${cell.p50sUs.join(', ')} | ${cell.p99Us.toFixed(0)} | ${cell.meanUs.toFixed(0)} | ${cell.samplesMin < pings ? `${cell.samplesMin} (time bound)` : pings} | ${spread} |`,
        );
      }
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const unavailable = netnsAvailable();
  if (unavailable !== null) throw new Error(unavailable);
  const layouts: Layout[] = [];
  for (const mtu of mtus) layouts.push(await measureLayout(mtu));
  console.log(tables(layouts));
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ accelerated, runs, layouts }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
