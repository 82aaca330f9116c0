/** The ring over real UDP: three daemons on 127.0.0.1/.2/.3 sharing one port, plus a ring of one. */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { UdpRingTransport, type UdpLinkOptions } from '../src/daemon/udp.js';
import { loadUdpBatching } from '../src/daemon/udp-native.js';
import { encodeHello } from '../src/ring/packet.js';
import { createRingFromConfig } from '../src/ring/from-config.js';
import type { RingEvent } from '../src/ring/types.js';
import type { SpreadConfig } from '../src/config/types.js';
import { ringTestConfig } from './sim/config.js';

const PORT = 41_000 + (process.pid % 500) * 4;
let open: UdpRingTransport[] = [];

afterEach(async () => {
  await Promise.all(open.map((t) => t.close()));
  open = [];
});

function startAll(
  config: SpreadConfig,
  mode: 'unicast' | 'segment' = 'unicast',
  link: Pick<UdpLinkOptions, 'batching'> = {},
): { transports: UdpRingTransport[]; events: RingEvent[][] } {
  const events: RingEvent[][] = config.daemons.map(() => []);
  const transports = config.daemons.map((me, i) => {
    const t = new UdpRingTransport({ config, myVid: me.vid, ring: createRingFromConfig(config, me, Date.now()), mode, ...link });
    t.onEvents((batch) => events[i].push(...batch));
    open.push(t);
    return t;
  });
  return { transports, events };
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function deliveries(events: RingEvent[]): string[] {
  return events.filter((e) => e.kind === 'deliver').map((e) => (e.kind === 'deliver' ? `${e.origin}:${Buffer.from(e.payload).toString()}:${e.safe}` : ''));
}

describe('UDP ring', () => {
  it('three daemons on one host agree on one order', async () => {
    const config = ringTestConfig(['127.0.0.1', '127.0.0.2', '127.0.0.3'], PORT, { acceleratedRing: true });
    const { transports, events } = startAll(config);
    await Promise.all(transports.map((t) => t.start()));
    await until(() => events.every((e) => e.some((x) => x.kind === 'regular')), 5_000);
    const sent = 3 * 200;
    for (let i = 0; i < 200; i++) {
      transports.forEach((t, n) => expect(t.submit(Buffer.from(`m${n}-${i}-${'x'.repeat(i * 10)}`), i % 7 === 0)).toBe(true));
    }
    await until(() => events.every((e) => deliveries(e).length === sent), 10_000);
    const order = deliveries(events[0]);
    expect(deliveries(events[1])).toEqual(order);
    expect(deliveries(events[2])).toEqual(order);
    for (let n = 0; n < 3; n++) {
      const mine = order.filter((d) => d.startsWith(`${config.daemons[n].vid}:`)).map((d) => d.split(':')[1].split('-').slice(0, 2).join('-'));
      expect(mine).toEqual(Array.from({ length: 200 }, (_, i) => `m${n}-${i}`));
    }
    const regular = events.map((e) => e.find((x) => x.kind === 'regular'));
    expect(new Set(regular.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(regular[0]).toMatchObject({ kind: 'regular', members: config.daemons.map((d) => d.vid) });
    // Idle afterwards: the leader parks the token and only lets it round once per heartbeat (HurryTimeout).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = transports.reduce((n, t) => n + t.link.stats().datagramsOut, 0);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const idle = transports.reduce((n, t) => n + t.link.stats().datagramsOut, 0) - before;
    const heartbeats = 1_000 / config.params.timeouts.hurryMs;
    expect(idle).toBeGreaterThan(heartbeats / 2);
    expect(idle).toBeLessThan((heartbeats + 2) * 3 * 3);
  });

  it('segment mode: one broadcast per packet to the segment address', async () => {
    const config = ringTestConfig(['127.0.0.1', '127.0.0.2', '127.0.0.3'], PORT);
    const { transports, events } = startAll(config, 'segment');
    await Promise.all(transports.map((t) => t.start()));
    await until(() => events.every((e) => e.some((x) => x.kind === 'regular')), 5_000);
    for (let i = 0; i < 100; i++) transports[i % 3].submit(Buffer.from(`b${i}`), false);
    await until(() => events.every((e) => deliveries(e).length === 100), 10_000);
    expect(deliveries(events[1])).toEqual(deliveries(events[0]));
    expect(deliveries(events[2])).toEqual(deliveries(events[0]));
    const stats = transports.map((t) => t.link.stats());
    expect(stats.every((s) => s.droppedSource === 0)).toBe(true);
    // Each broadcast reaches both peers: more datagrams in than out.
    const totalIn = stats.reduce((a, s) => a + s.datagramsIn, 0);
    const totalOut = stats.reduce((a, s) => a + s.datagramsOut, 0);
    expect(totalIn).toBeGreaterThan(totalOut);
  });

  const addon = loadUdpBatching({}).batching;
  for (const batched of [false, true]) {
    it.skipIf(batched && addon === null)(`bursts of packets ${batched ? 'as GSO sends and GRO reads (native addon)' : 'one datagram each (no addon)'}`, async () => {
      const config = ringTestConfig(['127.0.0.1', '127.0.0.2', '127.0.0.3'], PORT);
      const { transports, events } = startAll(config, 'unicast', { batching: batched ? addon : null });
      await Promise.all(transports.map((t) => t.start()));
      await until(() => events.every((e) => e.some((x) => x.kind === 'regular')), 5_000);
      // Equal-sized messages, one per 1472-byte packet: every token visit sends a run of them.
      for (let i = 0; i < 300; i++) transports[i % 3].submit(Buffer.from(`${String(i).padStart(4, '0')}${'y'.repeat(996)}`), i % 5 === 0);
      await until(() => events.every((e) => deliveries(e).length === 300), 10_000);
      expect(deliveries(events[1])).toEqual(deliveries(events[0]));
      expect(deliveries(events[2])).toEqual(deliveries(events[0]));
      const stats = transports.map((t) => t.link.stats());
      const status = transports.map((t) => t.link.batching());
      if (batched) {
        expect(status.every((s) => s.gsoSends && s.groReads && s.reason === null)).toBe(true);
        expect(stats.reduce((n, s) => n + s.segmentedSends, 0)).toBeGreaterThan(0);
        expect(stats.reduce((n, s) => n + s.coalescedReads, 0)).toBeGreaterThan(0);
      } else {
        expect(status.every((s) => !s.gsoSends && !s.groReads && s.reason !== null)).toBe(true);
        expect(stats.every((s) => s.segmentedSends === 0 && s.coalescedReads === 0)).toBe(true);
      }
      // GRO reads are split back into the datagrams that were sent (UDP may lose a few).
      const datagramsIn = stats.reduce((n, s) => n + s.datagramsIn, 0);
      const datagramsOut = stats.reduce((n, s) => n + s.datagramsOut, 0);
      expect(datagramsIn).toBeLessThanOrEqual(datagramsOut);
      expect(datagramsIn).toBeGreaterThan(datagramsOut * 0.95);
    });
  }

  it('drops datagrams whose source is not the sender VID address', async () => {
    const config = ringTestConfig(['127.0.0.1', '127.0.0.2'], PORT);
    const { transports } = startAll(config);
    await transports[0].start();
    const liar = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => liar.bind(0, '127.0.0.9', resolve));
    const forged = encodeHello({ sender: config.daemons[1].vid, membId: { procId: 0, time: 0 }, configHash: config.hash });
    await new Promise<void>((resolve) => liar.send(forged, PORT, '127.0.0.1', () => resolve()));
    await until(() => transports[0].link.stats().droppedSource === 1, 2_000);
    liar.close();
    expect(transports[0].ring.status().state).toBe('gather');
  });

  it('a ring of one delivers through the transport without sockets traffic', async () => {
    const config = ringTestConfig(['127.0.0.1'], PORT);
    const { transports, events } = startAll(config);
    await transports[0].start();
    transports[0].submit(Buffer.from('solo'), false);
    await until(() => deliveries(events[0]).length === 1, 2_000);
    expect(events[0][0].kind).toBe('regular');
    expect(transports[0].link.stats().datagramsOut).toBe(0);
  });

  it('reports a port in use as a start error', async () => {
    const config = ringTestConfig(['127.0.0.1', '127.0.0.2'], PORT);
    const a = startAll(config).transports[0];
    await a.start();
    const b = startAll(config).transports[0];
    await expect(b.start()).rejects.toThrow(/EADDRINUSE/);
  });
});
