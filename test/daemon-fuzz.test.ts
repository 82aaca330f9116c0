// Hostile input against a running daemon: malformed, truncated and oversized headers (and
// random handshakes) from one session while two other sessions keep exchanging messages.
// The daemon must stay up, and the calm sessions must see exactly their own traffic.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ServiceType, encodeHint, encodeMessage, frameData } from '../src/protocol/index.js';
import { freePort, startDaemon, type StartedDaemon } from './helpers/daemon.js';
import { RawClient } from './helpers/raw-client.js';

let PORT = 0;

/** A header built from fuzzed fields, optionally big-endian, followed by a (possibly truncated) body. */
const hostileFrame = fc
  .record({
    type: fc.oneof(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.constantFrom(0x10, 0x20, 0x30, 0x10010, 0x80010, 0x400010, 0x100010, 0x40, 0x10000, 0x20000, 0x40000, 0x50),
    ),
    ownSender: fc.boolean(),
    sender: fc.string({ maxLength: 40 }),
    numGroups: fc.oneof(fc.integer({ min: -3, max: 102 }), fc.integer({ min: -0x80000000, max: 0x7fffffff })),
    hint: fc.oneof(fc.constant(0x80000080), fc.integer({ min: 0, max: 0xffffffff })),
    dataLen: fc.oneof(fc.integer({ min: -3, max: 2000 }), fc.integer({ min: 143_000, max: 150_000 }), fc.integer({ min: -0x80000000, max: 0x7fffffff })),
    littleEndian: fc.boolean(),
    markerMode: fc.constantFrom('right', 'mixed', 'none'),
    bodyBytes: fc.integer({ min: 0, max: 4000 }),
    groupName: fc.oneof(fc.constant('calm'), fc.constant('fuzz'), fc.string({ maxLength: 40 })),
  })
  .map((f) => (privateGroup: string) => {
    const header = Buffer.alloc(48);
    const type = f.markerMode === 'right' && f.littleEndian ? (f.type | 0x80000080) >>> 0 : f.markerMode === 'mixed' ? ((f.type & ~0x80000080) | 0x80) >>> 0 : (f.type & ~0x80000080) >>> 0;
    if (f.littleEndian) header.writeUInt32LE(type, 0);
    else header.writeUInt32BE(type, 0);
    header.write((f.ownSender ? privateGroup : f.sender).slice(0, 32), 4, 'latin1');
    if (f.littleEndian) {
      header.writeInt32LE(f.numGroups, 36);
      header.writeInt32LE(f.dataLen, 44);
    } else {
      header.writeInt32BE(f.numGroups, 36);
      header.writeInt32BE(f.dataLen, 44);
    }
    header.writeUInt32LE(f.hint >>> 0, 40);
    const body = Buffer.alloc(f.bodyBytes, 0x61);
    if (f.bodyBytes >= 32) {
      body.fill(0, 0, 32);
      body.write(f.groupName.slice(0, 32), 0, 'latin1');
    }
    return Buffer.concat([header, body]);
  });

const hostileInput = fc.oneof(
  hostileFrame.map((make) => ({ handshake: true, make })),
  fc.uint8Array({ minLength: 1, maxLength: 600 }).map((bytes) => ({ handshake: true, make: () => Buffer.from(bytes) })),
  fc.uint8Array({ minLength: 1, maxLength: 200 }).map((bytes) => ({ handshake: false, make: () => Buffer.from(bytes) })),
);

describe('daemon under hostile input', () => {
  let daemon: StartedDaemon;
  let calmA: RawClient;
  let calmB: RawClient;
  let sequence = 0;

  /** calmA multicasts to 'calm'; both calm sessions must receive exactly that next. */
  async function checkCalm(): Promise<void> {
    sequence += 1;
    const text = `calm-${sequence}`;
    calmA.multicast(ServiceType.AGREED_MESS, ['calm'], text);
    for (const client of [calmA, calmB]) {
      const message = await client.message(5000);
      expect(message.header.sender).toBe('#calmA#localhost');
      expect(Buffer.from(frameData(message)).toString()).toBe(text);
    }
  }

  beforeAll(async () => {
    PORT = await freePort();
    daemon = await startDaemon({ port: PORT, args: ['--handshake-timeout-ms', '300'] });
    calmA = await RawClient.join({ port: PORT }, 'calmA');
    calmB = await RawClient.join({ path: daemon.unixPath }, 'calmB');
    calmA.joinGroup('calm');
    await calmA.message();
    calmB.joinGroup('calm');
    await calmA.message();
    await calmB.message();
  }, 30_000);

  afterAll(async () => {
    calmA?.close();
    calmB?.close();
    await daemon?.stop();
  }, 30_000);

  it('stays up and leaves other sessions untouched', async () => {
    let counter = 0;
    await fc.assert(
      fc.asyncProperty(hostileInput, async (input) => {
        counter += 1;
        const attacker = await RawClient.connect(counter % 2 === 0 ? { port: PORT } : { path: daemon.unixPath });
        try {
          if (input.handshake) await attacker.handshake(`f${counter % 100000}`, true);
          attacker.write(input.make(attacker.privateGroup));
          // Let the daemon chew on it while the calm sessions talk.
          await checkCalm();
        } finally {
          attacker.close();
        }
        await checkCalm();
      }),
      { numRuns: 300, seed: Number(process.env.FUZZ_SEED ?? 20261127) },
    );
    expect(daemon.process.exitCode).toBeNull();
    expect(await calmA.quietFor(50)).toBe(true);
    expect(await calmB.quietFor(50)).toBe(true);
  }, 60_000);

  it('kills an oversized header at once, without waiting for the body', async () => {
    const attacker = await RawClient.join({ port: PORT }, 'big');
    const header = encodeMessage({
      type: ServiceType.AGREED_MESS,
      sender: '#big#localhost',
      groups: ['calm'],
      hintRaw: encodeHint(0),
      data: Buffer.alloc(0),
    });
    Buffer.from(header.buffer, header.byteOffset).writeInt32LE(10_000_000, 44);
    attacker.write(header);
    await attacker.readToEnd(2000);
    await checkCalm();
  });

  it('survives a storm of sessions that connect and vanish mid-handshake', async () => {
    const clients = await Promise.all(Array.from({ length: 40 }, (_, i) => RawClient.connect(i % 2 ? { port: PORT } : { path: daemon.unixPath })));
    clients.forEach((client, i) => client.write(Buffer.from([5, 0, 1, 1, 4, 0x61, 0x62].slice(0, i % 8))));
    await checkCalm();
    for (const client of clients) client.close();
    await checkCalm();
  });
});
