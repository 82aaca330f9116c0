/**
 * The sealed ring with real daemons on loopback (docs/security.md): a daemon with the
 * wrong key never joins and never disturbs the ring; keys roll over (SIGHUP, then the file
 * watch) under AGREED load with no restart, no membership change and nothing lost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Session } from '../src/client/index.js';
import { parseConfig } from '../src/config/parser.js';
import { UdpRingLink } from '../src/daemon/udp.js';
import { loadUdpBatching } from '../src/daemon/udp-native.js';
import { parseRingKeys } from '../src/security/ring-keys.js';
import { RING_SEAL_OVERHEAD_BYTES, RingSealer } from '../src/security/ring-seal.js';
import type { DaemonStatusSnapshot } from '../src/daemon/status-types.js';
import { freePort, SPREAD_LAN_TIMEOUTS, startRing, type StartedRing } from './helpers/daemon.js';
import { ringKeyHex, writeRingKeys } from './helpers/security-files.js';
import { startAgreedLoad, waitForMembers } from './helpers/security-load.js';

let ring: StartedRing | null = null;
let scratch: string | null = null;
const sessions: Session[] = [];

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((session) => session.disconnect().catch(() => undefined)));
  await ring?.stop();
  ring = null;
  if (scratch !== null) rmSync(scratch, { recursive: true, force: true });
  scratch = null;
});

/** A sealed ring of `count` daemons, daemon i reading key file `keyFile(i)`, each serving /status on its own port. */
async function sealedRing(
  count: number,
  keyFile: (index: number) => string,
  envFor?: (index: number) => NodeJS.ProcessEnv,
): Promise<{ ring: StartedRing; status: (index: number) => Promise<DaemonStatusSnapshot> }> {
  const httpPorts: number[] = [];
  for (let index = 0; index < count; index++) httpPorts.push(await freePort({ from: 24900, to: 24999 }));
  ring = await startRing({
    count,
    extraLines: SPREAD_LAN_TIMEOUTS,
    configFor: (index, shared) => `RingKeyFile = "${keyFile(index)}"\n${shared}`,
    argsFor: (index) => ['--http', `127.0.0.1:${httpPorts[index]}`],
    envFor,
  });
  const status = async (index: number) => (await (await fetch(`http://127.0.0.1:${httpPorts[index]}/status`)).json()) as DaemonStatusSnapshot;
  return { ring, status };
}

async function until<T>(what: string, probe: () => Promise<T | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function client(started: StartedRing, index: number, name: string): Promise<Session> {
  const session = await connect({ daemon: `${started.daemons[index].port}@127.0.0.1`, privateName: name, timeoutMs: 10_000 });
  sessions.push(session);
  return session;
}

describe('sealed UDP link', () => {
  const built = loadUdpBatching({}).batching;
  for (const batched of [true, false]) {
    // The addon is optional (npm ci builds it where a compiler is): as in udp-batch.test.ts.
    it.skipIf(batched && built === null)(`carries sealed data packets ${batched ? 'in GSO sends and GRO reads (native addon)' : 'one datagram per call'}, opened intact and in order`, async () => {
      const addon = batched ? built : null;
      const port = await freePort({ udp: ['127.0.0.1', '127.0.0.2'] });
      const config = parseConfig(`Spread_Segment 127.0.0.255:${port} {\n a 127.0.0.1\n b 127.0.0.2\n}\n`, 'f');
      const [a, b] = config.daemons;
      const keys = parseRingKeys(`current 1 ${ringKeyHex()}`, 'k');
      const sender = new UdpRingLink({ config, myVid: a.vid, batching: addon, sealer: new RingSealer(keys, a.vid) });
      const receiverSealer = new RingSealer(keys, b.vid);
      const receiver = new UdpRingLink({ config, myVid: b.vid, batching: addon, sealer: receiverSealer });
      const got: Buffer[] = [];
      receiver.onDatagram((bytes) => got.push(Buffer.from(bytes)));
      await sender.start();
      await receiver.start();
      try {
        // Ring-looking data packets of one length (one GSO run), the last one shorter.
        const packets = Array.from({ length: 40 }, (_, index) => {
          const packet = Buffer.alloc(index === 39 ? 700 : 1400, index);
          packet.writeUInt32BE(a.vid >>> 0, 4);
          return packet;
        });
        for (const bytes of packets) sender.send({ to: 'all', bytes });
        sender.flush();
        await until('every packet', async () => got.length >= packets.length, 10_000);
        expect(got).toEqual(packets);
        expect(sender.stats().bytesOut).toBe(packets.reduce((sum, packet) => sum + packet.length + RING_SEAL_OVERHEAD_BYTES, 0));
        if (batched) {
          expect(sender.stats().segmentedSends).toBeGreaterThan(0);
          expect(receiver.stats().coalescedReads).toBeGreaterThan(0);
        }
        expect(receiverSealer.rejected()).toBe(0);
      } finally {
        await sender.close();
        await receiver.close();
      }
    });
  }
});

describe('sealed ring', () => {
  it('a daemon with the wrong key never joins and never disturbs the ring', async () => {
    scratch = mkdtempSync(join(tmpdir(), 'tspread-sealed-'));
    const good = join(scratch, 'good.key');
    const bad = join(scratch, 'bad.key');
    const goodKey = ringKeyHex();
    writeRingKeys(good, [`current 1 ${goodKey}`]);
    writeRingKeys(bad, [`current 1 ${ringKeyHex()}`, `next 2 ${ringKeyHex()}`]);
    const { ring: started, status } = await sealedRing(3, (index) => (index === 2 ? bad : good));
    await until('d1 and d2 in one ring', async () => (await status(0)).ring.members.length === 2 && (await status(1)).ring.members.length === 2);
    const before = await status(0);
    await until('d1 refusing d3', async () => (await status(0)).security!.ringDatagramsRejected.authentication > 0);

    const a = await client(started, 0, 'a');
    const b = await client(started, 1, 'b');
    const joined = Promise.all([waitForMembers(a, 'g', 2), waitForMembers(b, 'g', 2)]);
    a.join('g');
    b.join('g');
    await joined;
    const load = startAgreedLoad([a, b], [a, b], 'g', { count: 1500, bytes: 1000 });
    await load.sent;
    await load.delivered(60_000);
    expect(load.check()).toEqual([]);

    const after = await status(0);
    const outsider = await status(2);
    expect(after.ring.members).toHaveLength(2);
    expect(after.ring.membershipChanges).toBe(before.ring.membershipChanges);
    expect(after.ring.membId).toEqual(before.ring.membId);
    expect(outsider.ring.members).toEqual([outsider.daemon.vid]);
    expect(outsider.security!.ringDatagramsRejected.authentication).toBeGreaterThan(0);
    expect(started.daemons[2].output()).toContain('ring datagrams refused');
  }, 120_000);

  it('keys roll over under load without a restart, a membership change or a lost message (d2 sealing through node:crypto)', async () => {
    scratch = mkdtempSync(join(tmpdir(), 'tspread-sealed-'));
    const files = [0, 1, 2].map((index) => join(scratch!, `d${index + 1}.key`));
    const oldKey = ringKeyHex();
    const newKey = ringKeyHex();
    for (const file of files) writeRingKeys(file, [`current 1 ${oldKey}`]);
    // d2 takes the node:crypto engine, d1 and d3 the native one: the same bytes on the wire (security-seal-engines.test.ts).
    const { ring: started, status } = await sealedRing(3, (index) => files[index], (index) => (index === 1 ? { TSPREAD_NATIVE_SEAL: 'off' } : {}));
    expect(started.daemons[0].output()).toContain('"engine":"native"');
    expect(started.daemons[1].output()).toContain('"engine":"node:crypto"');
    expect(started.daemons[1].output()).toContain('ring sealing through node:crypto');
    await until('one ring of three', async () => (await status(0)).ring.members.length === 3 && (await status(2)).ring.members.length === 3);
    const senders = [await client(started, 0, 's1'), await client(started, 1, 's2')];
    const receivers = [await client(started, 1, 'r2'), await client(started, 2, 'r3')];
    const everyone = [...senders, ...receivers];
    const joined = Promise.all(everyone.map((session) => waitForMembers(session, 'roll', 4)));
    for (const session of everyone) session.join('roll');
    await joined;
    const before = await status(0);
    const load = startAgreedLoad(senders, [...senders, ...receivers], 'roll', { count: 6000, bytes: 1000, burst: 10, pauseMs: 5 });

    const reloaded = async (index: number, step: number) => {
      const daemon = started.daemons[index];
      await until(`d${index + 1} reload ${step}`, async () => daemon.output().split('"msg":"ring keys reloaded"').length - 1 >= step);
    };
    // 1. every daemon learns the new key (accepted, not yet used): SIGHUP.
    for (const file of files) writeRingKeys(file, [`current 1 ${oldKey}`, `next 2 ${newKey}`]);
    for (const daemon of started.daemons) daemon.process.kill('SIGHUP');
    for (const index of [0, 1, 2]) await reloaded(index, 1);
    // 2. one daemon at a time seals with the new key, keeping the old one accepted.
    for (const [index, file] of files.entries()) {
      writeRingKeys(file, [`current 2 ${newKey}`, `previous 1 ${oldKey}`]);
      started.daemons[index].process.kill('SIGHUP');
      await reloaded(index, 2);
    }
    // The rollover happened while the load ran.
    expect(load.received[0].length).toBeLessThan(2 * 6000);
    // 3. the old key is dropped; this time the file watch notices (no signal).
    for (const file of files) writeRingKeys(file, [`current 2 ${newKey}`]);
    for (const index of [0, 1, 2]) await reloaded(index, 3);

    await load.sent;
    await load.delivered(120_000);
    expect(load.check()).toEqual([]);
    for (const index of [0, 1, 2]) {
      const now = await status(index);
      expect(now.security!.ringKeyIds).toEqual({ sealing: 2, accepted: [2] });
      const rejected = now.security!.ringDatagramsRejected;
      expect(rejected['unknown-key'] + rejected.authentication).toBe(0);
      expect(now.ring.members).toHaveLength(3);
    }
    const after = await status(0);
    expect(after.ring.membId).toEqual(before.ring.membId);
    expect(after.ring.membershipChanges).toBe(before.ring.membershipChanges);
    for (const daemon of started.daemons) expect(daemon.process.exitCode).toBeNull();
  }, 180_000);
});
