/** Batched UDP sends: GSO runs, the fallbacks, and loading the optional native addon. */
import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { type BatchEndpoint, SegmentedSender, segmentRuns } from '../src/daemon/udp-batch.js';
import { loadUdpBatching, socketDescriptor, type UdpBatching } from '../src/daemon/udp-native.js';

const bytes = (length: number, fill = 0) => new Uint8Array(length).fill(fill);
const lengths = (runs: Uint8Array[][]) => runs.map((run) => run.map((packet) => packet.length));

describe('segmentRuns', () => {
  it('keeps equal lengths together; a shorter packet ends a run, a longer one starts the next', () => {
    const packets = [100, 100, 100, 60, 100, 120, 120, 120].map((n) => bytes(n));
    expect(lengths(segmentRuns(packets, 64))).toEqual([[100, 100, 100, 60], [100], [120, 120, 120]]);
  });

  it('cuts at the segment count and at the byte bound, in order', () => {
    const packets = Array.from({ length: 10 }, (_, i) => bytes(1000, i));
    const bySegments = segmentRuns(packets, 4);
    expect(lengths(bySegments)).toEqual([[1000, 1000, 1000, 1000], [1000, 1000, 1000, 1000], [1000, 1000]]);
    expect(bySegments.flat()).toEqual(packets);
    expect(lengths(segmentRuns(packets, 64, 3500))).toEqual([[1000, 1000, 1000], [1000, 1000, 1000], [1000, 1000, 1000], [1000]]);
  });

  it('sends nothing for nothing', () => {
    expect(segmentRuns([], 64)).toEqual([]);
  });
});

/** An addon double: records GSO sends and answers with `results` in turn (bytes, or -errno). */
function fakeAddon(results: number[]): UdpBatching & { sends: { fd: number; lengths: number[]; segment: number; to: string }[] } {
  const sends: { fd: number; lengths: number[]; segment: number; to: string }[] = [];
  return {
    sends,
    segmentsMax: 64,
    sendSegments(fd, buffers, segmentBytes, address, port) {
      sends.push({ fd, lengths: buffers.map((b) => b.length), segment: segmentBytes, to: `${address}:${port}` });
      return results.shift() ?? buffers.reduce((n, b) => n + b.length, 0);
    },
    enableGro: () => 0,
    nextDatagramBytes: () => 0,
  };
}

function sender(addon: UdpBatching) {
  const targets: BatchEndpoint[] = [
    { address: '10.0.0.2', port: 4803 },
    { address: '10.0.0.3', port: 4803 },
  ];
  const single: string[] = [];
  const lost: string[] = [];
  let counted = 0;
  const segmented = new SegmentedSender({
    batching: addon,
    fd: 7,
    targets,
    sendOne: (packet, target) => single.push(`${packet.length}@${target.address}`),
    counted: (datagrams) => (counted += datagrams),
    onUnavailable: (reason) => lost.push(reason),
  });
  return { segmented, single, lost, counted: () => counted };
}

describe('SegmentedSender', () => {
  it('sends each run to every target in one call; a run of one as a plain datagram', () => {
    const addon = fakeAddon([]);
    const { segmented, single, counted } = sender(addon);
    for (const n of [500, 500, 300, 200]) segmented.queue(bytes(n));
    expect(addon.sends).toEqual([]);
    segmented.flush();
    expect(addon.sends).toEqual([
      { fd: 7, lengths: [500, 500, 300], segment: 500, to: '10.0.0.2:4803' },
      { fd: 7, lengths: [500, 500, 300], segment: 500, to: '10.0.0.3:4803' },
    ]);
    expect(single).toEqual(['200@10.0.0.2', '200@10.0.0.3']);
    expect(counted()).toBe(6);
    expect(segmented.segmentedSends).toBe(2);
  });

  it('a full socket buffer (EAGAIN) sends that run datagram by datagram and keeps batching', () => {
    const addon = fakeAddon([-11]);
    const { segmented, single, lost } = sender(addon);
    segmented.queue(bytes(400));
    segmented.queue(bytes(400));
    segmented.flush();
    expect(single).toEqual(['400@10.0.0.2', '400@10.0.0.2']);
    expect(addon.sends).toHaveLength(2);
    expect(lost).toEqual([]);
    expect(segmented.active).toBe(true);
  });

  it('a route that cannot segment (EIO) stops batching for good, and says why', () => {
    const addon = fakeAddon([-5]);
    const { segmented, single, lost } = sender(addon);
    segmented.queue(bytes(400));
    segmented.queue(bytes(400));
    segmented.flush();
    expect(segmented.active).toBe(false);
    expect(lost).toEqual(['GSO send to 10.0.0.2:4803 failed with errno 5']);
    expect(single).toEqual(['400@10.0.0.2', '400@10.0.0.2', '400@10.0.0.3', '400@10.0.0.3']);
    segmented.queue(bytes(400));
    expect(single).toHaveLength(6);
    expect(addon.sends).toHaveLength(1);
  });

  it('packets nobody flushed leave when the JavaScript turn ends', async () => {
    const addon = fakeAddon([]);
    const { segmented } = sender(addon);
    segmented.queue(bytes(100));
    segmented.queue(bytes(100));
    await Promise.resolve();
    expect(addon.sends).toHaveLength(2);
  });
});

describe('loading the addon', () => {
  it('TSPREAD_UDP_BATCHING=off turns it off, with the reason', () => {
    expect(loadUdpBatching({ TSPREAD_UDP_BATCHING: 'off' })).toEqual({ batching: null, reason: 'TSPREAD_UDP_BATCHING=off' });
  });

  it('finds the descriptor of a bound dgram socket without the deprecated _handle', async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    expect(socketDescriptor(socket)).toBeGreaterThan(2);
    socket.close();
  });

  const built = loadUdpBatching({}).batching;
  it.skipIf(built === null)('the built addon cuts one send into datagrams and coalesces them into one read', async () => {
    const addon = built!;
    const receiver = dgram.createSocket('udp4');
    const transmitter = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => transmitter.bind(0, '127.0.0.1', resolve));
    const reads: number[] = [];
    receiver.on('message', (message) => reads.push(message.length));
    const send = () => addon.sendSegments(socketDescriptor(transmitter)!, [bytes(1000), bytes(1000), bytes(400)], 1000, '127.0.0.1', receiver.address().port);
    expect(send()).toBe(2400);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reads).toEqual([1000, 1000, 400]);
    expect(addon.enableGro(socketDescriptor(receiver)!)).toBe(0);
    expect(addon.nextDatagramBytes(socketDescriptor(receiver)!)).toBe(0);
    reads.length = 0;
    expect(send()).toBe(2400);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reads).toEqual([2400]);
    expect(() => addon.sendSegments(socketDescriptor(transmitter)!, [bytes(20), bytes(10)], 10, '127.0.0.1', 9)).toThrow(/all but the last/);
    receiver.close();
    transmitter.close();
  });
});
