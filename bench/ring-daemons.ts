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
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Service } from '../src/client/index.js';
import { ringAddress, startRing, type StartedDaemon, type StartedRing } from '../test/helpers/daemon.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';
import {
  type BenchDaemon,
  type BenchHost,
  benchRingLines,
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

/** Messages per run: a few seconds at the expected rates. */
const messagesFor = (bytes: number) => Math.round(scale * (bytes <= 100 ? 200_000 : bytes <= 1000 ? 120_000 : 20_000));

/** Daemon `index`'s address on this host; its client processes run here too. */
const loopbackHost = (index: number): BenchHost => ({
  name: `d${index + 1}`,
  address: ringAddress(index),
  spawnNode: (args) => spawn(process.execPath, args, { stdio: 'pipe' }),
});

/** A loopback daemon as the shared measurements see it. */
const benchDaemon = (daemon: StartedDaemon, index: number): BenchDaemon => ({
  ...loopbackHost(index),
  port: daemon.port,
  socketDir: path.dirname(daemon.unixPath),
  pid: daemon.process.pid!,
});

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

interface LatencyCell extends RepeatedLatency {
  ring: string;
  /** null for the baselines (no ring). */
  datagram: number | null;
  /** A Spread service, or 'udp' for the bare round-trip baseline. */
  service: Service | 'udp';
}

async function latencyCell(ring: string, datagram: number | null, service: Service | 'udp', measure: () => Promise<Percentiles>): Promise<LatencyCell> {
  return { ring, datagram, service, ...(await repeatLatency(runs, `${ring} ${datagram ?? ''} ${service} round trip`, measure)) };
}

/** Daemons of the ring being measured: killed if this process exits without stopping them. */
const running = new Set<StartedRing>();
process.on('exit', () => {
  killLiveChildren();
  for (const ring of running) for (const daemon of ring.daemons) daemon.process.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

async function main(): Promise<void> {
  const cells: ThroughputCell[] = [];
  const latencies: LatencyCell[] = [];
  for (const variant of rings) {
    const accelerated = variant === 'accelerated';
    const extraLines = benchRingLines([`AcceleratedRing = ${accelerated ? 'true' : 'false'}`, ...datagramLine, ...confLines]);
    const ring = await startRing({
      count: 3,
      extraLines,
      nodeArgs: [...nodeArgs, ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])],
    });
    running.add(ring);
    try {
      const daemons = ring.daemons.map(benchDaemon);
      await untilRingFormed(daemons);
      const datagram = datagramBytesLogged('d1', ring.daemons[0].output());
      if (throughput) {
        for (const service of services) {
          for (const bytes of sizes) {
            const results: FloodResult[] = [];
            for (let run = 0; run < runs; run++) {
              try {
                const [d1, ...receivers] = daemons;
                results.push(await floodRun({ senders: [d1], receivers, daemons, service, bytes, messages: messagesFor(bytes), tag: String(run) }));
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
        for (const service of services) latencies.push(await latencyCell(variant, datagram, service, () => selfDelivery(daemons, service, pings)));
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
      const daemons = alone.daemons.map(benchDaemon);
      for (const service of services) latencies.push(await latencyCell('baseline: one daemon, no ring', null, service, () => selfDelivery(daemons, service, pings)));
    } finally {
      await alone.stop();
      running.delete(alone);
    }
    latencies.push(await latencyCell('baseline: UDP round trip, two Node processes', null, 'udp', () => udpRoundTrip(loopbackHost(0), loopbackHost(1), pings)));
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
