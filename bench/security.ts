/**
 * What security costs (docs/security.md), plain and secured measured in the same run and
 * alternated run by run (the host is shared and noisy; medians and ratios are reported,
 * and the daemons' CPU per message, which noise moves less than msgs/s):
 *
 *   1. Ring sealing: three daemons on one host (d1 127.0.0.1, .2, .3), a `tspread flooder
 *      --wo` sender on d1 and `--ro` receivers on d2 and d3 (Unix sockets), 1000-byte AGREED
 *      messages; throughput is the slower receiver's msgs/s. Two such rings run side by
 *      side, one without and one with `RingKeyFile` (AES-256-GCM on every datagram, data,
 *      token and membership), and when the native sealing addon is built a third sealing
 *      through node:crypto instead (TSPREAD_NATIVE_SEAL=off); the floods alternate between them.
 *   2. TLS client links: one daemon, a sender and a receiver session in this process,
 *      1000-byte AGREED messages over plain TCP and over TLS (TLS 1.3, the daemon's certificate
 *      checked); throughput is the receiver's msgs/s.
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/security.js [--runs 5] [--scale 1] [--bytes 1000] [--datagram-bytes N] [--no-ring] [--no-tls]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { connect, type Session } from '../src/client/index.js';
import { freePort, ringAddress, soloConfig, startDaemon, startRing, type StartedDaemon, type StartedRing } from '../test/helpers/daemon.js';
import { gcmEngine } from '../src/security/gcm.js';
import { makeTestPki, ringKeyHex, writeRingKeys } from '../test/helpers/security-files.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';
import { type BenchDaemon, benchRingLines, datagramBytesLogged, floodRun, killLiveChildren, membersReached, untilRingFormed } from './ring-measure.js';
import { spawn } from 'node:child_process';

exitWithUsageIfAsked(import.meta.url);

const runs = Number(flag('runs', '5'));
const scale = Number(flag('scale', '1'));
const bytes = Number(flag('bytes', '1000'));
/** The rings' DatagramBytes (default: the daemon's, 32768 on loopback); 1472 is Ethernet's, one 1000-byte message a datagram. */
const datagramBytes = flag('datagram-bytes', '');
const ringMessages = Math.round(scale * 100_000);
const linkMessages = Math.round(scale * 50_000);

const running = new Set<StartedRing | StartedDaemon>();
process.on('exit', () => {
  killLiveChildren();
  for (const started of running) for (const daemon of 'daemons' in started ? started.daemons : [started]) daemon.process.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

const benchDaemon = (daemon: StartedDaemon, index: number): BenchDaemon => ({
  name: `d${index + 1}`,
  address: ringAddress(index),
  spawnNode: (args) => spawn(process.execPath, args, { stdio: 'pipe' }),
  port: daemon.port,
  socketDir: path.dirname(daemon.unixPath),
  pid: daemon.process.pid!,
});

/** Sealed rings seal through the native addon when built (src/security/gcm.ts), or through node:crypto. */
type RingVariant = 'plain' | 'sealed' | 'sealed-node-crypto';
const RING_VARIANT_NAMES: Record<RingVariant, string> = {
  plain: 'plain ring',
  sealed: `sealed ring (AES-256-GCM, ${gcmEngine().engine.name})`,
  'sealed-node-crypto': 'sealed ring (AES-256-GCM, node:crypto)',
};

/** Every ring stays up for the whole run (idle, a ring only rotates its token now and then); runs alternate between them. */
async function startBenchRing(variant: RingVariant, keyFile: string): Promise<{ ring: StartedRing; daemons: BenchDaemon[]; datagram: number }> {
  const ring = await startRing({
    count: 3,
    extraLines: benchRingLines([...(datagramBytes === '' ? [] : [`DatagramBytes = ${datagramBytes}`]), ...(variant === 'plain' ? [] : [`RingKeyFile = "${keyFile}"`])]),
    envFor: () => (variant === 'sealed-node-crypto' ? { TSPREAD_NATIVE_SEAL: 'off' } : {}),
  });
  running.add(ring);
  const daemons = ring.daemons.map(benchDaemon);
  await untilRingFormed(daemons);
  return { ring, daemons, datagram: datagramBytesLogged('d1', ring.daemons[0].output()) };
}

/** One flood run: msgs/s of the slower receiver, and the three daemons' CPU per message. */
async function ringRun(daemons: BenchDaemon[], tag: string): Promise<{ rate: number; cpuUs: number }> {
  const [d1, ...receivers] = daemons;
  const result = await floodRun({ senders: [d1], receivers, daemons, service: 'agreed', bytes, messages: ringMessages, tag });
  // CPU of the three daemons per message: steadier than msgs/s on a shared host.
  return { rate: Math.round(result.rate), cpuUs: result.cpu.reduce((sum, value) => sum + value, 0) };
}

/** Sender and receiver sessions over one transport: the receiver's msgs/s for `linkMessages` messages. */
async function linkRun(open: (name: string) => Promise<Session>, run: number): Promise<number> {
  const receiver = await open(`r${run}`);
  const sender = await open(`s${run}`);
  try {
    const group = `link${run}`;
    const joined = membersReached(receiver, group, 1);
    receiver.join(group);
    await joined;
    let received = 0;
    let firstAt = 0;
    const done = new Promise<number>((resolve) =>
      receiver.on('message', () => {
        if (received++ === 0) firstAt = performance.now();
        if (received === linkMessages) resolve(performance.now());
      }),
    );
    const payload = Buffer.alloc(bytes, 'x');
    for (let i = 0; i < linkMessages; i++) if (!sender.multicast(group, payload)) await sender.drained();
    const lastAt = await done;
    return Math.round((linkMessages - 1) / ((lastAt - firstAt) / 1000));
  } finally {
    await Promise.all([sender.disconnect(), receiver.disconnect()]);
  }
}

const percentLoss = (plain: number, secured: number) => ((1 - secured / plain) * 100).toFixed(1);

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'tspread-bench-security-'));
  const lines: string[] = [];
  try {
    if (!process.argv.includes('--no-ring')) {
      const keyFile = join(scratch, 'ring.key');
      writeRingKeys(keyFile, [`current 1 ${ringKeyHex()}`]);
      // With the addon built, the node:crypto engine is measured too (TSPREAD_NATIVE_SEAL=off in its daemons).
      const variants: RingVariant[] = gcmEngine().fallbackReason === null ? ['plain', 'sealed', 'sealed-node-crypto'] : ['plain', 'sealed'];
      const rates = new Map<RingVariant, number[]>(variants.map((variant) => [variant, []]));
      const cpu = new Map<RingVariant, number[]>(variants.map((variant) => [variant, []]));
      const rings = new Map<RingVariant, Awaited<ReturnType<typeof startBenchRing>>>();
      try {
        for (const variant of variants) rings.set(variant, await startBenchRing(variant, keyFile));
        for (let run = 0; run < runs; run++) {
          for (const variant of variants) {
            const ring = rings.get(variant)!;
            const result = await ringRun(ring.daemons, `${variant[0]}${variant.length}${run}`);
            rates.get(variant)!.push(result.rate);
            cpu.get(variant)!.push(result.cpuUs);
            console.error(`ring ${variant} run ${run}: ${result.rate} msgs/s, daemons' CPU ${result.cpuUs.toFixed(1)} µs/msg (ring packets of ${ring.datagram} B)`);
          }
        }
      } finally {
        for (const { ring } of rings.values()) {
          await ring.stop();
          running.delete(ring);
        }
      }
      const plainRate = median(rates.get('plain')!);
      const plainCpu = median(cpu.get('plain')!);
      lines.push(
        `| three daemons, ${bytes} B AGREED | msgs/s median (runs) | CPU of d1+d2+d3, µs/msg (median) | ring packet bytes | cost: throughput | cost: CPU |`,
        '|---|---|---|---|---|---|',
      );
      for (const variant of variants) {
        const rate = median(rates.get(variant)!);
        const cpuUs = median(cpu.get(variant)!);
        const sealedBytes = variant === 'plain' ? '' : ' + 38';
        const costs = variant === 'plain' ? '| |' : `| ${percentLoss(plainRate, rate)} % | +${((cpuUs / plainCpu - 1) * 100).toFixed(1)} % (+${(cpuUs - plainCpu).toFixed(1)} µs/msg) |`;
        lines.push(`| ${RING_VARIANT_NAMES[variant]} | ${rate.toLocaleString('en-US')} (${rates.get(variant)!.join(', ')}) | ${cpuUs.toFixed(1)} | ${rings.get(variant)!.datagram}${sealedBytes} ${costs}`);
      }
      lines.push('');
    }
    if (!process.argv.includes('--no-tls')) {
      const pki = makeTestPki(scratch);
      const port = await freePort();
      const tlsPort = await freePort();
      const daemon = await startDaemon({
        port,
        config: soloConfig(port, ['MaxSessionBytes = 999999999', `TlsPort = ${tlsPort}`, `TlsCertificateFile = "${pki.daemonCertFile}"`, `TlsKeyFile = "${pki.daemonKeyFile}"`]),
      });
      running.add(daemon);
      const ca = readFileSync(pki.caFile);
      const plain: number[] = [];
      const secure: number[] = [];
      try {
        for (let run = 0; run < runs; run++) {
          plain.push(await linkRun((name) => connect({ daemon: `${port}@127.0.0.1`, privateName: `p${name}` }), run));
          secure.push(await linkRun((name) => connect({ daemon: `${tlsPort}@127.0.0.1`, privateName: `t${name}`, tls: { ca } }), run));
          console.error(`client link run ${run}: plain TCP ${plain.at(-1)} msgs/s, TLS ${secure.at(-1)} msgs/s`);
        }
      } finally {
        await daemon.stop();
        running.delete(daemon);
      }
      lines.push(
        `| one daemon, ${bytes} B AGREED, sender and receiver sessions | msgs/s median (runs) |`,
        '|---|---|',
        `| plain TCP | ${median(plain).toLocaleString('en-US')} (${plain.join(', ')}) |`,
        `| TLS 1.3 | ${median(secure).toLocaleString('en-US')} (${secure.join(', ')}) |`,
        `| cost | ${percentLoss(median(plain), median(secure))} % |`,
      );
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(lines.join('\n'));
}

await main();
