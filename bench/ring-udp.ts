/**
 * Ring throughput over real UDP: N daemon processes on 127.0.0.1, .2, .3 … (one port),
 * each submitting fixed-size AGREED messages as fast as back-pressure allows.
 * Reports messages ordered per second (every daemon delivers every message).
 *
 *   npx tsc -p . && node dist/bench/ring-udp.js [--daemons 3] [--seconds 5] [--size 1000]
 *       [--accelerated] [--datagram 1472] [--window 160] [--personal 20] [--safe] [--senders N]
 *       [--segment]   (send to the segment broadcast address 127.255.255.255 instead of unicasts)
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UdpRingTransport } from '../src/daemon/udp.js';
import { createRingFromConfig } from '../src/ring/from-config.js';
import type { TotemRing } from '../src/ring/totem.js';
import { ringTestConfig } from '../test/sim/config.js';

interface BenchOptions {
  daemons: number;
  seconds: number;
  size: number;
  accelerated: boolean;
  datagram: number;
  window: number;
  personal: number;
  safe: boolean;
  senders: number;
  port: number;
  segment: boolean;
}

function parseArgs(argv: string[]): BenchOptions {
  const get = (name: string, fallback: number): number => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? Number(argv[i + 1]) : fallback;
  };
  const daemons = get('daemons', 3);
  return {
    daemons,
    seconds: get('seconds', 5),
    size: get('size', 1000),
    accelerated: argv.includes('--accelerated'),
    datagram: get('datagram', 1472),
    window: get('window', 160),
    personal: get('personal', 20),
    safe: argv.includes('--safe'),
    senders: get('senders', daemons),
    port: get('port', 47_000),
    segment: argv.includes('--segment'),
  };
}

interface Report {
  index: number;
  delivered: number;
  elapsedMs: number;
  status: ReturnType<TotemRing['status']>;
  counters: Record<string, number>;
  link: object;
  /** Process CPU time (user + system) per ordered message, in microseconds. */
  cpuUsPerMessage: number;
}

async function daemon(index: number, o: BenchOptions): Promise<void> {
  const addresses = Array.from({ length: o.daemons }, (_, i) => `127.0.0.${i + 1}`);
  const config = ringTestConfig(addresses, o.port, {
    acceleratedRing: o.accelerated,
    acceleratedWindow: Math.min(15, o.personal),
    window: o.window,
    personalWindow: o.personal,
    datagramBytes: o.datagram,
  });
  const me = config.daemons[index];
  const ring = createRingFromConfig(config, me, Date.now());
  const t = new UdpRingTransport({ config, myVid: me.vid, ring, mode: o.segment ? 'segment' : 'unicast' });
  const payload = new Uint8Array(o.size).fill(index + 1);
  let delivered = 0;
  let measuring = false;
  let startMs = 0;
  let cpuStart = process.cpuUsage();
  let formed = false;
  const sender = index < o.senders;
  const pump = (): void => {
    if (!sender || !formed) return;
    while (t.submit(payload, o.safe)) {}
  };
  t.onEvents((events) => {
    for (const e of events) {
      if (e.kind === 'regular') {
        formed = true;
        process.send!({ kind: 'formed' });
      } else if (measuring) delivered++;
    }
    pump();
  });
  process.on('message', (m: { kind: string }) => {
    if (m.kind === 'go') {
      pump();
      setTimeout(() => {
        measuring = true;
        startMs = performance.now();
        cpuStart = process.cpuUsage();
        setTimeout(() => {
          const report: Report = {
            index,
            delivered,
            elapsedMs: performance.now() - startMs,
            status: ring.status(),
            counters: ring.diagnostics().counters,
            link: { ...t.link.stats(), timerFires: t.timerFires },
            cpuUsPerMessage: 0,
          };
          const cpu = process.cpuUsage(cpuStart);
          report.cpuUsPerMessage = (cpu.user + cpu.system) / Math.max(1, delivered);
          measuring = false;
          process.send!({ kind: 'report', report });
        }, o.seconds * 1000);
      }, 1000);
    } else if (m.kind === 'exit') {
      void t.close().then(() => process.exit(0));
    }
  });
  await t.start();
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv);
  const role = process.argv.indexOf('--role-daemon');
  if (role >= 0) {
    await daemon(Number(process.argv[role + 1]), o);
    return;
  }
  const self = fileURLToPath(import.meta.url);
  // BENCH_PROFILE=<dir>: each daemon writes a .cpuprofile there (summarise with bench/profile-summary.mjs).
  const profileDir = process.env.BENCH_PROFILE;
  const execArgv = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const children = Array.from({ length: o.daemons }, (_, i) => fork(self, [...process.argv.slice(2), '--role-daemon', String(i)], { execArgv }));
  let formed = 0;
  const reports: Report[] = [];
  await new Promise<void>((resolve) => {
    for (const child of children) {
      child.on('message', (m: { kind: string; report?: Report }) => {
        if (m.kind === 'formed' && ++formed === o.daemons) for (const c of children) c.send({ kind: 'go' });
        if (m.kind === 'report') {
          reports.push(m.report!);
          if (reports.length === o.daemons) resolve();
        }
      });
    }
  });
  for (const c of children) c.send({ kind: 'exit' });
  reports.sort((a, b) => a.index - b.index);
  const rates = reports.map((r) => (r.delivered * 1000) / r.elapsedMs);
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
  console.log(
    `ring-udp daemons=${o.daemons} senders=${o.senders} size=${o.size} ${o.safe ? 'SAFE' : 'AGREED'} ` +
      `${o.accelerated ? 'accelerated' : 'original'} datagram=${o.datagram} W=${o.window} PW=${o.personal} ${o.segment ? 'broadcast' : 'unicast'}`,
  );
  console.log(`  ordered: ${Math.round(mean)} msgs/s (${((mean * o.size) / 1e6).toFixed(1)} MB/s) per daemon: ${rates.map((r) => Math.round(r)).join(' ')}`);
  for (const r of reports) {
    const c = Object.entries(r.counters).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(' ');
    console.log(`  d${r.index + 1}: cpu=${r.cpuUsPerMessage.toFixed(1)}us/msg rounds=${r.status.tokenRounds} retrans=${r.status.retransmissions} sent=${r.status.packetsSent} recv=${r.status.packetsReceived} ${c} link=${JSON.stringify(r.link)}`);
  }
}

void main();
