/**
 * What sealing and opening one ring datagram costs in this process (src/security/ring-seal.ts),
 * without daemons or sockets, so host noise moves it much less than bench/security.ts:
 * a sender's RingSealer seals ring packets and a receiver's opens them, timed apart, for a
 * 1000-byte packet (one message per datagram) and a 32730-byte one (the loopback ring's
 * full datagram, 32768 bytes sealed). Both engines of src/security/gcm.ts (node:crypto, and
 * the native addon when built) are measured in the same run, rounds alternated; medians of
 * the rounds in µs per datagram.
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/ring-seal.js [--rounds 9] [--ms 300] [--sizes 1000,32730]
 */
import { randomBytes } from 'node:crypto';
import { gcmEngine, nodeCryptoGcm, type GcmEngine } from '../src/security/gcm.js';
import { parseRingKeys } from '../src/security/ring-keys.js';
import { RingSealer } from '../src/security/ring-seal.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';

exitWithUsageIfAsked(import.meta.url);

const rounds = Number(flag('rounds', '9'));
const roundMs = Number(flag('ms', '300'));
const sizes = flag('sizes', '1000,32730').split(',').map(Number);
const SENDER = 0x0a000001;
const RECEIVER = 0x0a000002;
const keys = parseRingKeys(`current 1 ${randomBytes(32).toString('hex')}`, 'bench');

interface Timing {
  sealUs: number;
  openUs: number;
}

/** Seals then opens fresh datagrams for about `roundMs`: µs per seal and per open. */
function round(engine: GcmEngine, size: number): Timing {
  const sender = new RingSealer(keys, SENDER, Date.now, engine);
  const receiver = new RingSealer(keys, RECEIVER, Date.now, engine);
  const packet = randomBytes(size);
  packet.writeUInt32BE(SENDER, 4);
  const batch = 64;
  let count = 0;
  let sealNs = 0n;
  let openNs = 0n;
  const until = performance.now() + roundMs;
  while (performance.now() < until) {
    const sealed: Buffer[] = [];
    const sealStart = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sealed.push(sender.seal(packet, false));
    const openStart = process.hrtime.bigint();
    for (const datagram of sealed) if (!receiver.open(datagram, false).ok) throw new Error('a sealed datagram did not open');
    const end = process.hrtime.bigint();
    sealNs += openStart - sealStart;
    openNs += end - openStart;
    count += batch;
  }
  return { sealUs: Number(sealNs) / 1000 / count, openUs: Number(openNs) / 1000 / count };
}

const format = (us: number): string => us.toFixed(2);
const available = gcmEngine();
const engines = available.fallbackReason === null ? [nodeCryptoGcm, available.engine] : [nodeCryptoGcm];
if (available.fallbackReason !== null) console.log(`native engine not measured: ${available.fallbackReason}`);
console.log(`${rounds} rounds of ${roundMs} ms per engine and size, alternated; medians, µs per datagram`);
console.log('engine | packet bytes | seal µs | open µs | seal+open µs | MB/s (seal+open)');
for (const size of sizes) {
  for (const engine of engines) round(engine, size); // warm-up
  const timings = new Map<GcmEngine, Timing[]>(engines.map((engine) => [engine, []]));
  for (let i = 0; i < rounds; i++) for (const engine of engines) timings.get(engine)!.push(round(engine, size));
  for (const [engine, runs] of timings) {
    const both = median(runs.map((t) => t.sealUs + t.openUs));
    const columns = [engine.name, size, format(median(runs.map((t) => t.sealUs))), format(median(runs.map((t) => t.openUs))), format(both), Math.round(size / both)];
    console.log(columns.join(' | '));
  }
}
