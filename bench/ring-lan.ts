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
 * Each cell is the median of --runs runs. With `--batching on,off` the daemons run with and
 * without the native UDP batching addon (TSPREAD_UDP_BATCHING=off), a fresh ring for each
 * run of each, alternating, so that both see the same host. Prints Markdown tables (Spread
 * 5.0.1's figures for this layout beside them); --json FILE writes every run.
 *
 * Options:
 *   --mtu 1500,9000          layouts to measure, in order
 *   --runs 3                 runs per cell
 *   --sizes 100,1000,10000   message sizes of the single-sender cells
 *   --services agreed,safe   services of the single-sender and latency cells
 *   --scale 1                multiplies messages per run (150 000 / 60 000 / 10 000 by size)
 *   --pings 3000             round trips per latency run (after a warm-up; at most 30 s a run)
 *   --batching on            on: the daemons use the native addon if built; off: TSPREAD_UDP_BATCHING=off; on,off: both
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
  selfDelivery,
  summarizeLatency,
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
const batchingVariants = flag('batching', 'on').split(',') as Batching[];
const accelerated = process.argv.includes('--accelerated');
const datagramFlag = flag('datagram', 'default');
const confLines = flag('conf', '').split(';').map((line) => line.trim()).filter((line) => line !== '');
const profDir = flag('prof-dir', '');
const nodeArgs = flag('node-args', '').split(' ').filter((arg) => arg !== '');
const jsonFile = flag('json', '');
const throughput = !process.argv.includes('--no-throughput');
const concurrent = !process.argv.includes('--no-concurrent');
const latency = !process.argv.includes('--no-latency');

type Batching = 'on' | 'off';

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

type LatencyKind = 'self-delivery at d1' | 'round trip d1 → d2 → d1' | 'UDP round trip d1 ↔ d2, two Node processes';

/** One ring configuration (MTU × batching) and every run measured on it. */
interface Layout {
  mtu: number;
  batching: Batching;
  datagramBytes: number;
  /** What d1 logged about UDP batching. */
  batchingLogged: string;
  throughput: { service: Service; bytes: number; runs: FloodResult[] }[];
  concurrent: { runs: FloodResult[]; failures: string[] };
  latency: { what: LatencyKind; service: Service | 'udp'; runs: Percentiles[] }[];
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

const oneOrder = (result: FloodResult) => result.digests.every((digest) => digest !== null && digest === result.digests[0]);

/** One flood; a failure is reported and recorded, not thrown (the other cells still run). */
async function attempt(label: string, failures: string[] | null, flood: () => Promise<FloodResult>): Promise<FloodResult | null> {
  try {
    const result = await flood();
    console.error(`${label}: ${Math.round(result.rate)} msgs/s; cpu µs/msg ${result.cpu.map((value) => value.toFixed(1)).join(' ')}`);
    return result;
  } catch (error) {
    console.error(`${label} failed: ${(error as Error).message}`);
    failures?.push((error as Error).message);
    return null;
  }
}

function cellOf<T extends object>(cells: T[], matches: (cell: T) => boolean, create: () => T): T {
  let cell = cells.find(matches);
  if (cell === undefined) cells.push((cell = create()));
  return cell;
}

/** One run of every cell on a fresh ring of this layout. */
async function measureRun(layout: Layout, run: number): Promise<void> {
  const lines = benchRingLines([
    `AcceleratedRing = ${accelerated}`,
    ...(datagramFlag === 'default' ? [] : [`DatagramBytes = ${Number(datagramFlag)}`]),
    ...confLines,
  ]);
  const lab = await SpreadLab.start(3, lines, {
    net: { mtu: layout.mtu, prefix: 'tsl' },
    nodeArgs: [...nodeArgs, ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])],
    env: layout.batching === 'off' ? { TSPREAD_UDP_BATCHING: 'off' } : {},
  });
  labs.add(lab);
  const tag = `${layout.mtu}${layout.batching}${run}`;
  const label = `MTU ${layout.mtu} batching ${layout.batching} run ${run}`;
  try {
    const daemons = benchDaemons(lab);
    await untilRingFormed(daemons);
    layout.datagramBytes = datagramBytesLogged('d1', lab.daemons[0].output);
    layout.batchingLogged = /"msg":"(ring UDP batching [^"]*)"/.exec(lab.daemons[0].output)?.[1] ?? 'not logged';
    const [d1, d2, d3] = daemons;
    if (throughput) {
      for (const service of services) {
        for (const bytes of sizes) {
          const result = await attempt(`${label} ${service} ${bytes} B`, null, () =>
            floodRun({ senders: [d1], receivers: [d2, d3], daemons, service, bytes, messages: messagesFor(bytes), tag: `${service}${bytes}x${tag}` }),
          );
          const cell = cellOf(layout.throughput, (c) => c.service === service && c.bytes === bytes, () => ({ service, bytes, runs: [] }));
          if (result !== null) cell.runs.push(result);
        }
      }
    }
    if (concurrent) {
      const result = await attempt(`${label} three senders`, layout.concurrent.failures, async () => {
        const flood = await floodRun({ senders: daemons, receivers: daemons, daemons, service: 'agreed', bytes: CONCURRENT_BYTES, messages: CONCURRENT_MESSAGES, tag: `c${tag}` });
        if (!oneOrder(flood)) throw new Error(`receivers saw different orders: ${flood.digests.join(' ')}`);
        return flood;
      });
      if (result !== null) layout.concurrent.runs.push(result);
    }
    if (latency) {
      const measure = async (what: LatencyKind, service: Service | 'udp', once: () => Promise<Percentiles>) => {
        const result = await once();
        console.error(`${label} ${what} ${service}: p50 ${Math.round(result.p50)} µs (${result.count} round trips)`);
        cellOf(layout.latency, (c) => c.what === what && c.service === service, () => ({ what, service, runs: [] })).runs.push(result);
      };
      for (const service of services) await measure('self-delivery at d1', service, () => selfDelivery(daemons, service, pings));
      for (const service of services) await measure('round trip d1 → d2 → d1', service, () => clientRoundTrip(d1, d2, service, pings));
      await measure('UDP round trip d1 ↔ d2, two Node processes', 'udp', () => udpRoundTrip(d1, d2, pings));
    }
  } finally {
    await lab.stopDaemons();
    lab.destroyNow();
    labs.delete(lab);
  }
}

const thousands = (value: number) => Math.round(value).toLocaleString('en-US');
const range = ([low, high]: [number, number]) => `${thousands(low)}–${thousands(high)}`;
const rates = (results: FloodResult[]) => results.map((result) => Math.round(result.rate));
const cpuMedians = (results: FloodResult[]) =>
  results.length === 0 ? '–' : results[0].cpu.map((_, index) => median(results.map((result) => result.cpu[index])).toFixed(1)).join(' / ');
const batchingLabel = (layout: Layout) => (layout.batching === 'off' ? 'off' : layout.batchingLogged.replace(/^ring UDP batching /, '').replace(/:.*$/, ''));

/** The same cell measured without batching in this run, for the ratio column. */
function withoutBatching(layouts: Layout[], layout: Layout): Layout | undefined {
  return layout.batching === 'on' ? layouts.find((other) => other.mtu === layout.mtu && other.batching === 'off') : undefined;
}

function tables(layouts: Layout[]): string {
  const lines: string[] = [];
  if (layouts.some((layout) => layout.throughput.length > 0)) {
    lines.push(
      '| MTU | DatagramBytes | batching | service | bytes | msgs/s (median) | runs | Mbit/s | Spread msgs/s | ratio to Spread (top) | ratio to batching off | daemon CPU µs/msg d1 / d2 / d3 | one order |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const layout of layouts) {
      for (const cell of layout.throughput) {
        if (cell.runs.length === 0) continue;
        const rate = median(rates(cell.runs));
        const spread = SPREAD_MSGS_PER_SEC[`${cell.service} ${cell.bytes}`];
        const off = withoutBatching(layouts, layout)?.throughput.find((other) => other.service === cell.service && other.bytes === cell.bytes);
        const offRatio = off && off.runs.length > 0 ? `${(rate / median(rates(off.runs))).toFixed(2)}×` : '–';
        const mbit = median(cell.runs.map((result) => result.mbit));
        lines.push(
          `| ${layout.mtu} | ${layout.datagramBytes} | ${batchingLabel(layout)} | ${cell.service.toUpperCase()} | ${cell.bytes} | ${thousands(rate)} | ${rates(cell.runs).join(', ')} | ${mbit.toFixed(0)} | ${spread ? range(spread) : '–'} | ${spread ? `${(rate / spread[1]).toFixed(2)}×` : '–'} | ${offRatio} | ${cpuMedians(cell.runs)} | ${cell.runs.every(oneOrder) ? 'yes' : 'NO'} |`,
        );
      }
    }
  }
  if (concurrent) {
    lines.push(
      '',
      '| MTU | batching | senders × 1000 B AGREED | msgs/s, all senders (median) | runs | complete runs (all delivered, one order) | daemon CPU µs/msg d1 / d2 / d3 |',
      '|---|---|---|---|---|---|---|',
    );
    for (const layout of layouts) {
      const cell = layout.concurrent;
      const rate = cell.runs.length > 0 ? thousands(median(rates(cell.runs))) : '–';
      lines.push(
        `| ${layout.mtu} | ${batchingLabel(layout)} | 3 × ${thousands(CONCURRENT_MESSAGES)} | ${rate} | ${rates(cell.runs).join(', ')} | ${cell.runs.length} of ${cell.runs.length + cell.failures.length} | ${cpuMedians(cell.runs)} |`,
      );
    }
  }
  if (layouts.some((layout) => layout.latency.length > 0)) {
    lines.push(
      '',
      '| MTU | batching | what | service | p50 µs (median) | p50 per run | p99 µs | mean µs | round trips per run | Spread p50 µs |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const layout of layouts) {
      for (const cell of layout.latency) {
        const summary = summarizeLatency(cell.runs);
        const spread = cell.what === 'round trip d1 → d2 → d1' && cell.service === 'agreed' ? range(SPREAD_ROUND_TRIP_P50_US) : '–';
        const count = summary.samplesMin < pings ? `${summary.samplesMin} (time bound)` : String(pings);
        lines.push(
          `| ${layout.mtu} | ${batchingLabel(layout)} | ${cell.what} | ${cell.service.toUpperCase()} | ${summary.p50Us} | ${summary.p50sUs.join(', ')} | ${summary.p99Us.toFixed(0)} | ${summary.meanUs.toFixed(0)} | ${count} | ${spread} |`,
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
  for (const mtu of mtus) {
    const ofThisMtu = batchingVariants.map(
      (batching): Layout => ({ mtu, batching, datagramBytes: 0, batchingLogged: '', throughput: [], concurrent: { runs: [], failures: [] }, latency: [] }),
    );
    layouts.push(...ofThisMtu);
    // Alternate the variants run by run: both see the same host.
    for (let run = 0; run < runs; run++) for (const layout of ofThisMtu) await measureRun(layout, run);
  }
  console.log(tables(layouts));
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ accelerated, runs, layouts }, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
