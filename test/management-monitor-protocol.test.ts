// Monitor protocol (spread-protocol.md §9): byte-exact layouts in both byte orders and the
// daemon-side acceptance rules of §9.1.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MonitorCommand,
  decodeFlowControlBody,
  decodeMonitorHeader,
  decodePartitionBody,
  decodeStatusReply,
  encodeFlowControlRequest,
  encodeMonitorPacket,
  encodePartitionRequest,
  encodeReloadRequest,
  encodeStatusReply,
  encodeStatusRequest,
  isMonitorDatagram,
  normalizeAddress,
  respondToMonitor,
  statusReplyFromSnapshot,
  type MonitorOutcome,
} from '../src/management/monitor-protocol.js';
import { BIG_VID, CONF_HASH, D1_VID, D2_VID, sampleConfig, sampleSnapshot } from './management-fixtures.js';
import { hex } from './helpers/bytes.js';

const d1 = { vid: D1_VID, confHash: CONF_HASH };

// §9.4: the status reply of the sample snapshot, written field by field.
const STATUS_REPLY_LE = hex(`
  80000081 00000000 ef7a8d5c 00000000 00000000 00000000 00000000 00000000 6000 0000 0000 0000
  19000000 01000000 01000000 96000000 a0000000 2e010000 07000000 00000000 00000000 07000000
  2c010000 2d010000 2e010000 02000000 94000000 ef7a8d5c ef7a8d5c 2f000000
  0200 0200 0100 a000 1400 0000 0f00 0300 0200 0500 0000 0100`);
const STATUS_REPLY_BE = hex(`
  01000000 00000000 5c8d7aef 00000000 00000000 00000000 00000000 00000000 0060 0000 0000 0000
  00000019 00000001 00000001 00000096 000000a0 0000012e 00000007 00000000 00000000 00000007
  0000012c 0000012d 0000012e 00000002 00000094 5c8d7aef 5c8d7aef 0000002f
  0002 0002 0001 00a0 0014 0000 000f 0003 0002 0005 0000 0001`);
// §9.2: spmonitor on d1 asking for status, replies to port 6543.
const STATUS_REQUEST_LE = hex('80000081 ef7a8d5c ef7a8d5c 00000000 00000000 8f190000 00000000 d87af156 0000 0000 0000 0000');
const STATUS_REQUEST_BE = hex('01000000 5c8d7aef 5c8d7aef 00000000 00000000 0000198f 00000000 56f17ad8 0000 0000 0000 0000');

describe('status reply (§9.4)', () => {
  const status = statusReplyFromSnapshot(sampleSnapshot(), sampleConfig());

  it('maps the snapshot to Spread fields', () => {
    expect(status).toMatchObject({
      sec: 25, state: 1, gstate: 1, packetSent: 150, packetRecv: 160, packetDelivered: 302, retrans: 7, bRetrans: 7,
      myId: D1_VID, leaderId: D1_VID, messageDelivered: 47, numProcs: 2, numSegments: 1, window: 160,
      personalWindow: 20, acceleratedRing: 0, acceleratedWindow: 15, numSessions: 3, numGroups: 2,
      majorVersion: 5, minorVersion: 0, patchVersion: 1,
    });
  });
  it('encodes little-endian byte for byte', () => {
    expect(Buffer.from(encodeStatusReply(status))).toEqual(STATUS_REPLY_LE);
  });
  it('encodes big-endian byte for byte', () => {
    expect(Buffer.from(encodeStatusReply(status, false))).toEqual(STATUS_REPLY_BE);
  });
  it('decodes both orders to the same fields', () => {
    const le = decodeStatusReply(STATUS_REPLY_LE);
    const be = decodeStatusReply(STATUS_REPLY_BE);
    expect(le.header.littleEndian).toBe(true);
    expect(be.header.littleEndian).toBe(false);
    expect(le.status).toEqual(status);
    expect(be.status).toEqual(status);
    expect(le.header).toMatchObject({ type: MonitorCommand.STATUS, transmitterId: 0, procId: D1_VID, confHash: 0, dataLen: 96 });
  });
  it('matches the observed 136-byte reply of §9.4', () => {
    // type 0x81000080, state 1, gstate 1, window 160, personal 20, accelerated 0/15, version 5.0.1
    expect(STATUS_REPLY_LE.length).toBe(136);
    expect(STATUS_REPLY_LE.readUInt32LE(0)).toBe(0x81000080);
    const { status: observed } = decodeStatusReply(STATUS_REPLY_LE);
    expect([observed.state, observed.gstate, observed.window, observed.personalWindow]).toEqual([1, 1, 160, 20]);
    expect([observed.acceleratedRing, observed.acceleratedWindow]).toEqual([0, 15]);
    expect([observed.majorVersion, observed.minorVersion, observed.patchVersion]).toEqual([5, 0, 1]);
  });
  it('keeps VIDs with the top bit set unsigned and wraps counters like int32/int16', () => {
    const big = encodeStatusReply({ ...status, myId: BIG_VID, leaderId: BIG_VID, packetSent: 2 ** 32 + 5, membershipChanges: 70_000 });
    const decoded = decodeStatusReply(big).status;
    expect(decoded.myId).toBe(BIG_VID);
    expect(decoded.packetSent).toBe(5);
    expect(decoded.membershipChanges).toBe(70_000 - 65_536);
  });
  it('codes every membership and group state', () => {
    const states = ['op', 'seg', 'represented', 'gather', 'form', 'evs'] as const;
    states.forEach((state, index) => {
      const snapshot = sampleSnapshot();
      snapshot.ring.state = state;
      expect(statusReplyFromSnapshot(snapshot).state).toBe(index + 1);
    });
    ['gop', 'gtrans', 'ggather', 'ggt'].forEach((groupState, index) => {
      expect(statusReplyFromSnapshot({ ...sampleSnapshot(), groupState }).gstate).toBe(index + 1);
    });
  });
  it('counts segments of the ring members from the configuration', () => {
    const snapshot = sampleSnapshot({ members: [D1_VID, D2_VID, BIG_VID] });
    expect(statusReplyFromSnapshot(snapshot, sampleConfig()).numSegments).toBe(2);
  });
});

describe('requests (§9.2, §9.3)', () => {
  it('encodes spmonitor\'s status request in both orders', () => {
    expect(Buffer.from(encodeStatusRequest(d1, 6543))).toEqual(STATUS_REQUEST_LE);
    expect(Buffer.from(encodeStatusRequest(d1, 6543, false))).toEqual(STATUS_REQUEST_BE);
    for (const bytes of [STATUS_REQUEST_LE, STATUS_REQUEST_BE]) {
      expect(decodeMonitorHeader(bytes)).toMatchObject({
        type: MonitorCommand.STATUS, transmitterId: D1_VID, procId: D1_VID, seq: 6543, confHash: CONF_HASH, dataLen: 0,
      });
    }
  });
  it('encodes a partition table of int16 in the writer\'s order', () => {
    for (const littleEndian of [true, false]) {
      const bytes = encodePartitionRequest(d1, [1, 2, -1], littleEndian);
      expect(bytes.length).toBe(40 + 256);
      const header = decodeMonitorHeader(bytes);
      expect(header).toMatchObject({ type: MonitorCommand.PARTITION, dataLen: 256, littleEndian });
      const body = Buffer.from(bytes.subarray(40));
      expect(littleEndian ? body.readInt16LE(4) : body.readInt16BE(4)).toBe(-1);
      expect(decodePartitionBody(bytes.subarray(40), littleEndian).slice(0, 4)).toEqual([1, 2, -1, 0]);
    }
  });
  it('encodes flow control with −1 for unchanged and the window in row N', () => {
    for (const littleEndian of [true, false]) {
      const bytes = encodeFlowControlRequest(d1, 3, { window: 200, personalWindows: [30, null, 10], acceleratedWindows: [5] }, littleEndian);
      expect(bytes.length).toBe(40 + 512);
      const rows = decodeFlowControlBody(bytes.subarray(40), littleEndian);
      expect(rows.slice(0, 5)).toEqual([[30, 5], [-1, -1], [10, -1], [200, -1], [-1, -1]]);
      const body = Buffer.from(bytes.subarray(40));
      expect(littleEndian ? body.readInt16LE(12) : body.readInt16BE(12)).toBe(200);
    }
  });
  it('encodes reload with no body', () => {
    const header = decodeMonitorHeader(encodeReloadRequest(d1, false));
    expect(header).toMatchObject({ type: MonitorCommand.RELOAD, dataLen: 0, littleEndian: false, confHash: CONF_HASH });
  });
  it('tells monitor datagrams from other traffic', () => {
    expect(isMonitorDatagram(STATUS_REQUEST_LE)).toBe(true);
    expect(isMonitorDatagram(STATUS_REPLY_BE)).toBe(true);
    expect(isMonitorDatagram(encodeMonitorPacket({ type: 0x00000002 }))).toBe(false);
    // tspread ring packets start with the magic 0x7453 (src/ring/packet.ts), never a monitor type.
    const ring = Buffer.alloc(60);
    ring.writeUInt16BE(0x7453, 0);
    ring[2] = 1;
    expect(isMonitorDatagram(ring)).toBe(false);
    expect(isMonitorDatagram(STATUS_REQUEST_LE.subarray(0, 39))).toBe(false);
    const mixed = Buffer.from(STATUS_REQUEST_LE);
    mixed[3] = 0x01; // marker bit only in byte 0
    expect(isMonitorDatagram(mixed)).toBe(false);
  });
});

describe('acceptance rules (§9.1) and the daemon\'s answers', () => {
  const config = sampleConfig();
  const snapshot = sampleSnapshot();
  const ignoredBecause = (outcome: MonitorOutcome) => (outcome.kind === 'ignored' ? outcome.reason : `accepted: ${outcome.kind}`);

  it('answers a status request from a configured daemon\'s address, to proc_id\'s address and port seq', () => {
    for (const request of [STATUS_REQUEST_LE, STATUS_REQUEST_BE]) {
      const outcome = respondToMonitor(request, { address: '127.0.0.1', port: 6543 }, config, snapshot);
      expect(outcome.kind).toBe('status');
      if (outcome.kind !== 'status') return;
      expect(outcome.to).toEqual({ address: '127.0.0.1', port: 6543 });
      expect(Buffer.from(outcome.reply)).toEqual(STATUS_REPLY_LE);
    }
  });
  it('sends the reply to the daemon named by proc_id', () => {
    const request = encodeMonitorPacket({ type: MonitorCommand.STATUS, transmitterId: D1_VID, procId: D2_VID, seq: 7000, confHash: CONF_HASH });
    const outcome = respondToMonitor(request, '127.0.0.1', config, () => snapshot);
    expect(outcome).toMatchObject({ kind: 'status', to: { address: '127.0.0.2', port: 7000 } });
  });
  it('accepts an IPv4-mapped source address and a VID with the top bit set', () => {
    expect(respondToMonitor(STATUS_REQUEST_LE, '::ffff:127.0.0.1', config, snapshot).kind).toBe('status');
    const big = encodeStatusRequest({ vid: BIG_VID, confHash: CONF_HASH }, 6543);
    expect(respondToMonitor(big, '10.1.2.3', config, snapshot)).toMatchObject({ kind: 'status', to: { address: '10.1.2.3' } });
  });
  it('ignores a length that is not 40 + data_len', () => {
    const longer = Buffer.concat([STATUS_REQUEST_LE, Buffer.alloc(1)]);
    expect(ignoredBecause(respondToMonitor(longer, '127.0.0.1', config, snapshot))).toMatch(/length 41/);
    expect(ignoredBecause(respondToMonitor(STATUS_REQUEST_LE.subarray(0, 30), '127.0.0.1', config, snapshot))).toMatch(/short/);
  });
  it('ignores another configuration hash', () => {
    const other = encodeStatusRequest({ vid: D1_VID, confHash: CONF_HASH + 1 }, 6543);
    expect(ignoredBecause(respondToMonitor(other, '127.0.0.1', config, snapshot))).toMatch(/conf_hash/);
  });
  it('ignores an unconfigured transmitter', () => {
    const stranger = encodeStatusRequest({ vid: 12345, confHash: CONF_HASH }, 6543);
    expect(ignoredBecause(respondToMonitor(stranger, '127.0.0.1', config, snapshot))).toMatch(/transmiter_id 12345/);
  });
  it('ignores a source IP other than the transmitter\'s configured address', () => {
    expect(ignoredBecause(respondToMonitor(STATUS_REQUEST_LE, '127.0.0.2', config, snapshot))).toMatch(/source 127.0.0.2/);
  });
  it('ignores a status request whose proc_id is not configured, and never builds a snapshot for it', () => {
    const request = encodeMonitorPacket({ type: MonitorCommand.STATUS, transmitterId: D1_VID, procId: 99, seq: 7000, confHash: CONF_HASH });
    const outcome = respondToMonitor(request, '127.0.0.1', config, () => {
      throw new Error('snapshot taken');
    });
    expect(ignoredBecause(outcome)).toMatch(/proc_id 99/);
  });
  it('gates PARTITION and FLOW CONTROL on DangerousMonitor, not RELOAD', () => {
    const partition = encodePartitionRequest(d1, [1, 2, 2]);
    const flow = encodeFlowControlRequest(d1, 3, { window: 200, personalWindows: [], acceleratedWindows: [] });
    expect(ignoredBecause(respondToMonitor(partition, '127.0.0.1', config, snapshot))).toMatch(/DangerousMonitor/);
    expect(ignoredBecause(respondToMonitor(flow, '127.0.0.1', config, snapshot))).toMatch(/DangerousMonitor/);
    expect(respondToMonitor(encodeReloadRequest(d1), '127.0.0.1', config, snapshot)).toEqual({ kind: 'reload' });
  });
  it('applies a partition and a terminate with DangerousMonitor', () => {
    const dangerous = sampleConfig({ dangerousMonitor: true });
    for (const littleEndian of [true, false]) {
      const partition = encodePartitionRequest(d1, [1, 2, 2], littleEndian);
      expect(respondToMonitor(partition, '127.0.0.1', dangerous, snapshot)).toEqual({
        kind: 'partition', components: [1, 2, 2], myComponent: 1, terminate: false,
      });
      const kill = encodePartitionRequest(d1, [-1, 0, 0], littleEndian);
      expect(respondToMonitor(kill, '127.0.0.1', dangerous, snapshot, { vid: D1_VID })).toMatchObject({ terminate: true });
      const other = respondToMonitor(kill, '127.0.0.1', dangerous, snapshot, { vid: D2_VID });
      expect(other).toMatchObject({ kind: 'partition', myComponent: 0, terminate: false });
    }
  });
  it('applies flow control with DangerousMonitor; −1 means unchanged', () => {
    const dangerous = sampleConfig({ dangerousMonitor: true });
    const flow = encodeFlowControlRequest(d1, 3, { window: 200, personalWindows: [30, 40], acceleratedWindows: [null, 8] }, false);
    expect(respondToMonitor(flow, '127.0.0.1', dangerous, snapshot)).toEqual({
      kind: 'flowControl', window: 200, personalWindow: 30, acceleratedWindow: null,
    });
    expect(respondToMonitor(flow, '127.0.0.1', dangerous, snapshot, { vid: D2_VID })).toEqual({
      kind: 'flowControl', window: 200, personalWindow: 40, acceleratedWindow: 8,
    });
    const truncated = encodeMonitorPacket({ type: MonitorCommand.FLOW_CONTROL, transmitterId: D1_VID, procId: D1_VID, confHash: CONF_HASH }, new Uint8Array(10));
    expect(ignoredBecause(respondToMonitor(truncated, '127.0.0.1', dangerous, snapshot))).toMatch(/body of 10/);
  });
  it('ignores unknown commands and never throws on random bytes', () => {
    const unknown = encodeMonitorPacket({ type: 0x10000000, transmitterId: D1_VID, procId: D1_VID, confHash: CONF_HASH });
    expect(ignoredBecause(respondToMonitor(unknown, '127.0.0.1', config, snapshot))).toMatch(/unknown/);
    const dangerous = sampleConfig({ dangerousMonitor: true });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), (bytes) => {
        respondToMonitor(bytes, '127.0.0.1', dangerous, snapshot);
        isMonitorDatagram(bytes);
      }),
    );
  });
  it('normalizes addresses for comparison', () => {
    expect(normalizeAddress('::FFFF:10.0.0.1')).toBe('10.0.0.1');
    expect(normalizeAddress('0000:0000:0000:0000:0000:0000:0000:0001')).toBe(normalizeAddress('::1'));
    expect(normalizeAddress('fe80::1%eth0')).toBe(normalizeAddress('fe80:0:0:0:0:0:0:1'));
  });
});
