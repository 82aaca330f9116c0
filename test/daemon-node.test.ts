// The pure daemon core (src/daemon/node.ts) with a ring of one: no sockets, no clock.
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config/defaults.js';
import { parseConfig } from '../src/config/parser.js';
import { DaemonNode, type NodeReady } from '../src/daemon/node.js';
import {
  ENDIAN_MARKER,
  Framer,
  ServiceType,
  decodeMembershipBody,
  encodeAuthChoice,
  encodeConnectRequest,
  encodeControlRequest,
  encodeHint,
  encodeMessage,
  frameData,
  frameGroups,
  type Frame,
} from '../src/protocol/index.js';
import { SoloRing } from '../src/ring/solo.js';
import type { Ring, RingReady, RingStatus } from '../src/ring/types.js';
import { hex } from './helpers/bytes.js';


function makeNode(options: { ring?: Ring; groupLocalMembersMax?: number; config?: string } = {}) {
  const config = options.config ? parseConfig(options.config, 'test') : defaultConfig();
  const me = config.daemons[0];
  return new DaemonNode({
    config,
    me,
    ring: options.ring ?? new SoloRing(me.vid, 1_000_000),
    nowMs: 1_000_000,
    random: () => 0.5,
    handshakeDeadlineMs: 5000,
    groupLocalMembersMax: options.groupLocalMembersMax,
  });
}

/** Collects what each session was sent, parsed into frames after the handshake. */
class World {
  readonly node: DaemonNode;
  readonly raw = new Map<number, Buffer>();
  readonly closed = new Map<number, string>();
  private readonly framers = new Map<number, Framer>();
  private readonly handshakeBytes = new Map<number, number>();
  private nextId = 1;
  nowMs = 1_000_000;

  constructor(node: DaemonNode) {
    this.node = node;
  }

  pump(): NodeReady {
    const ready = this.node.ready();
    for (const write of ready.writes) {
      for (const id of write.sessions) {
        expect(this.closed.has(id)).toBe(false);
        this.raw.set(id, Buffer.concat([this.raw.get(id) ?? Buffer.alloc(0), Buffer.from(write.bytes)]));
      }
    }
    for (const close of ready.closes) this.closed.set(close.session, close.reason);
    return ready;
  }

  /** Connect and complete a handshake; returns the session id. */
  connect(name: string, membership = true): number {
    const id = this.nextId++;
    this.node.sessionAccepted(id, { kind: 'tcp', address: '127.0.0.1' }, this.nowMs);
    this.node.sessionData(
      id,
      Buffer.concat([
        encodeConnectRequest({ version: { major: 5, minor: 0, patch: 1 }, membership, priority: 0, privateName: name }),
        encodeAuthChoice(['NULL']),
      ]),
    );
    this.pump();
    const privateGroup = `#${name}#localhost`;
    const expected = 6 + 5 + privateGroup.length;
    expect(this.raw.get(id)?.length).toBe(expected);
    this.handshakeBytes.set(id, expected);
    return id;
  }

  send(id: number, bytes: Uint8Array): void {
    this.node.sessionData(id, bytes);
    this.pump();
  }

  /** Messages received by a session since the last call. */
  take(id: number): Frame[] {
    const skip = this.handshakeBytes.get(id) ?? 0;
    const raw = this.raw.get(id) ?? Buffer.alloc(0);
    this.raw.set(id, Buffer.alloc(0));
    this.handshakeBytes.set(id, 0);
    let framer = this.framers.get(id);
    if (!framer) {
      framer = new Framer({ groupsMax: 200, dataBytesMax: 1 << 20, bodyBytesMax: 1 << 20, rejectCarriesOldType: true });
      this.framers.set(id, framer);
    }
    return framer.push(raw.subarray(skip));
  }
}

const AGREED = ServiceType.AGREED_MESS;

function dataFrame(sender: string, groups: string[], text: string, type: number = AGREED, littleEndian = true, messType = 3) {
  return encodeMessage(
    { type, sender, groups, hintRaw: encodeHint(messType, littleEndian), data: Buffer.from(text) },
    littleEndian,
  );
}

function twoInGroup() {
  const world = new World(makeNode());
  const a = world.connect('a');
  const b = world.connect('b');
  world.send(a, encodeControlRequest('join', '#a#localhost', 'g'));
  world.send(b, encodeControlRequest('join', '#b#localhost', 'g'));
  world.take(a);
  world.take(b);
  return { world, a, b };
}

describe('header validation kills the session (§3.3, §12)', () => {
  const withType = (type: number, patch?: (bytes: Buffer) => void) => {
    const bytes = Buffer.from(dataFrame('#b#localhost', ['g'], 'x', type));
    patch?.(bytes);
    return bytes;
  };
  const cases: Array<[string, () => Uint8Array]> = [
    ['AGREED|SAFE', () => withType(AGREED | ServiceType.SAFE_MESS)],
    ['JOIN|AGREED', () => withType(ServiceType.JOIN_MESS | AGREED)],
    ['GROUPS_MESS alone', () => withType(ServiceType.GROUPS_MESS)],
    ['GROUPS_MESS with a service bit', () => withType(ServiceType.GROUPS_MESS | AGREED)],
    ['REJECT_MESS with a service bit', () => withType(ServiceType.REJECT_MESS | AGREED)],
    ['pass-through bit 0x100000', () => withType(0x100000 | AGREED)],
    ['no service bit', () => withType(ServiceType.SELF_DISCARD)],
    ['another private group', () => dataFrame('#a#localhost', ['g'], 'x')],
    ['another daemon name', () => dataFrame('#b#elsewhere', ['g'], 'x')],
    ['101 groups', () => dataFrame('#b#localhost', Array.from({ length: 101 }, (_, i) => `g${i}`), 'x')],
    ['negative num_groups', () => withType(AGREED, (bytes) => bytes.writeInt32LE(-1, 36))],
    ['negative data_len', () => withType(AGREED, (bytes) => bytes.writeInt32LE(-5, 44))],
    ['stray hint bits', () => withType(AGREED, (bytes) => bytes.writeUInt32LE(0x80000081, 40))],
    ['mixed endian marker', () => withType(AGREED, (bytes) => (bytes[3] &= 0x7f))],
    ['body over 143152 bytes', () => dataFrame('#b#localhost', ['g'], 'x'.repeat(143_152 - 32 + 1))],
    ['join without a NUL', () => Buffer.concat([Buffer.from(encodeControlRequest('join', '#b#localhost', 'g')).subarray(0, 48), Buffer.alloc(32, 0x61)])],
    ['join of an illegal name', () => encodeControlRequest('join', '#b#localhost', 'a b')],
    ['join with no group', () => encodeMessage({ type: ServiceType.JOIN_MESS, sender: '#b#localhost', groups: [], hintRaw: ENDIAN_MARKER, data: new Uint8Array(0) })],
  ];
  for (const [label, make] of cases) {
    it(label, () => {
      const { world, a, b } = twoInGroup();
      world.node.sessionData(b, make());
      world.pump();
      expect(world.closed.get(b)).toBe('protocol');
      const seen = world.take(a);
      expect(seen).toHaveLength(1);
      expect(seen[0].header.type).toBe(ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_DISCONNECT);
      expect(frameGroups(seen[0])).toEqual(['#a#localhost']);
    });
  }

  it('accepts exactly 143152 bytes of groups + data, and 100 groups', () => {
    const { world, a, b } = twoInGroup();
    world.send(b, dataFrame('#b#localhost', ['g'], 'x'.repeat(143_152 - 32)));
    world.send(b, dataFrame('#b#localhost', ['g', ...Array.from({ length: 99 }, (_, i) => `h${i}`)], 'y'));
    expect(world.closed.has(b)).toBe(false);
    expect(world.take(a).map((frame) => frame.header.dataLen)).toEqual([143_120, 1]);
  });
});

describe('delivery', () => {
  it('big-endian client headers reach receivers little-endian with the hint bytes untouched', () => {
    const { world, a, b } = twoInGroup();
    const be = dataFrame('#b#localhost', ['g'], 'hello', AGREED, false, 7);
    expect(be.subarray(40, 44)).toEqual(hex('00 00 07 00'));
    world.send(b, be);
    const [frame] = world.take(a);
    expect(Buffer.from(frame.bytes.subarray(0, 4))).toEqual(hex('90 00 00 80'));
    expect(Buffer.from(frame.bytes.subarray(36, 48))).toEqual(hex('01 00 00 00 00 00 07 00 05 00 00 00'));
    expect(Buffer.from(frameData(frame)).toString()).toBe('hello');
    expect(world.take(b)).toHaveLength(1);
  });

  it('multi-group and private groups: one copy per session, full destination list', () => {
    const { world, a, b } = twoInGroup();
    const c = world.connect('c', false);
    world.send(c, dataFrame('#c#localhost', ['g', '#a#localhost', '#b#localhost', 'g'], 'm'));
    for (const id of [a, b]) {
      const frames = world.take(id);
      expect(frames).toHaveLength(1);
      expect(frameGroups(frames[0])).toEqual(['g', '#a#localhost', '#b#localhost', 'g']);
    }
    expect(world.take(c)).toHaveLength(0);
  });

  it('SELF_DISCARD removes only the sender', () => {
    const { world, a, b } = twoInGroup();
    world.send(a, dataFrame('#a#localhost', ['g'], 'm', AGREED | ServiceType.SELF_DISCARD));
    expect(world.take(a)).toHaveLength(0);
    const [frame] = world.take(b);
    expect(frame.header.type).toBe(AGREED | ServiceType.SELF_DISCARD);
    world.send(a, dataFrame('#a#localhost', ['g'], 'm'));
    expect(world.take(a)).toHaveLength(1);
  });

  it('pipelined requests in one chunk, and a request split byte by byte', () => {
    const { world, a, b } = twoInGroup();
    const chunk = Buffer.concat([dataFrame('#a#localhost', ['g'], '1'), dataFrame('#a#localhost', ['g'], '2')]);
    world.send(a, chunk);
    for (const byte of dataFrame('#a#localhost', ['g'], '3')) world.send(a, Uint8Array.of(byte));
    expect(world.take(b).map((frame) => Buffer.from(frameData(frame)).toString())).toEqual(['1', '2', '3']);
  });

  it('sessions without the membership flag get data but no membership messages', () => {
    const world = new World(makeNode());
    const quiet = world.connect('q', false);
    world.send(quiet, encodeControlRequest('join', '#q#localhost', 'g'));
    expect(world.take(quiet)).toHaveLength(0);
    world.send(quiet, dataFrame('#q#localhost', ['g'], 'self'));
    expect(world.take(quiet)).toHaveLength(1);
  });
});

describe('session life', () => {
  it('a client KILL closes at once; the name stays taken until the kill is ordered', () => {
    const { world, a, b } = twoInGroup();
    world.node.sessionData(b, encodeControlRequest('kill', '#b#localhost', '#b#localhost'));
    // Before ready(): the kill is not yet ordered, so the name is still taken.
    const again = 99;
    world.node.sessionAccepted(again, { kind: 'unix' }, world.nowMs);
    world.node.sessionData(again, hex('05 00 01 01 01 62'));
    world.pump();
    expect(world.closed.get(b)).toBe('kill');
    expect(world.raw.get(again)).toEqual(hex('fa'));
    expect(world.closed.get(again)).toBe('handshake-rejected');
    const [disconnect] = world.take(a);
    expect(decodeMembershipBody(frameData(disconnect), disconnect.header.type).changedMember).toBe('#b#localhost');
    // Now the name is free again.
    world.connect('b');
  });

  it('EOF kills like a disconnect; data after a KILL in the same chunk is ignored', () => {
    const { world, a, b } = twoInGroup();
    world.send(b, Buffer.concat([encodeControlRequest('kill', '#b#localhost', '#b#localhost'), dataFrame('#b#localhost', ['g'], 'late')]));
    expect(world.take(a).map((frame) => frame.header.type)).toEqual([ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_DISCONNECT]);
    world.node.sessionEnded(a, 'eof');
    world.pump();
    expect(world.node.sessionCount()).toBe(0);
  });

  it('handshake deadlines fire through tick', () => {
    const world = new World(makeNode());
    world.node.sessionAccepted(1, { kind: 'tcp', address: '127.0.0.1' }, world.nowMs);
    world.node.sessionData(1, hex('05 00 01 01 03 61'));
    expect(world.node.nextDeadlineMs()).toBe(world.nowMs + 5000);
    world.node.tick(world.nowMs + 4999);
    world.pump();
    expect(world.closed.size).toBe(0);
    world.node.tick(world.nowMs + 5000);
    world.pump();
    expect(world.raw.get(1)).toEqual(hex('fb'));
    expect(world.node.nextDeadlineMs()).toBeNull();
  });

  it('REJECT_QUOTA at accept time once 997 sessions exist', () => {
    const world = new World(makeNode());
    for (let id = 1; id <= 997; id++) world.node.sessionAccepted(id, { kind: 'unix' }, world.nowMs);
    world.node.sessionAccepted(998, { kind: 'unix' }, world.nowMs);
    world.pump();
    expect(world.raw.get(998)).toEqual(hex('fd'));
    expect(world.closed.get(998)).toBe('quota');
  });

  it('a join past the local-member limit gets a reject message (§3.6)', () => {
    const world = new World(makeNode({ groupLocalMembersMax: 1 }));
    const a = world.connect('a');
    const b = world.connect('b');
    world.send(a, encodeControlRequest('join', '#a#localhost', 'g'));
    world.take(a);
    world.send(b, encodeControlRequest('join', '#b#localhost', 'g'));
    const [reject] = world.take(b);
    expect(reject.header.type).toBe(ServiceType.REJECT_MESS);
    expect(reject.oldType).toBe(ServiceType.CAUSED_BY_JOIN);
    expect(reject.header.sender).toBe('#b#localhost');
    expect(frameGroups(reject)).toEqual(['g', '#b#localhost']);
    expect(Buffer.from(reject.bytes.subarray(48, 52))).toEqual(hex('80 01 00 80'));
    expect(world.take(a)).toHaveLength(0);
  });
});

describe('back-pressure (§6.4)', () => {
  class StallingRing implements Ring {
    readonly myVid: number;
    accept = true;
    pending = 0;
    readonly inner: SoloRing;
    constructor(vid: number) {
      this.myVid = vid;
      this.inner = new SoloRing(vid, 0);
    }
    submit(payload: Uint8Array, safe: boolean): boolean {
      if (!this.accept) return false;
      return this.inner.submit(payload, safe);
    }
    receive(): void {}
    tick(): void {}
    ready(): RingReady {
      return this.inner.ready();
    }
    nextDeadlineMs(): number | null {
      return null;
    }
    pendingCount(): number {
      return this.pending;
    }
    status(): RingStatus {
      return this.inner.status();
    }
  }

  it('throttles input at the water mark and holds refused submits in order', () => {
    const config = defaultConfig();
    const ring = new StallingRing(config.daemons[0].vid);
    const world = new World(makeNode({ ring }));
    const a = world.connect('a');
    world.send(a, encodeControlRequest('join', '#a#localhost', 'g'));
    world.take(a);
    ring.pending = 500;
    expect(world.node.inputThrottled()).toBe(true);
    ring.pending = 499;
    expect(world.node.inputThrottled()).toBe(false);
    ring.accept = false;
    world.send(a, Buffer.concat([dataFrame('#a#localhost', ['g'], '1'), dataFrame('#a#localhost', ['g'], '2')]));
    expect(world.node.inputThrottled()).toBe(true);
    expect(world.take(a)).toHaveLength(0);
    ring.accept = true;
    world.pump();
    expect(world.node.inputThrottled()).toBe(false);
    expect(world.take(a).map((frame) => Buffer.from(frameData(frame)).toString())).toEqual(['1', '2']);
  });
});

describe('status', () => {
  it('reports sessions, groups and traffic', () => {
    const { world, a } = twoInGroup();
    world.send(a, dataFrame('#a#localhost', ['g'], 'hello'));
    const status = world.node.statusSnapshot(1_005_000);
    expect(status.daemon).toMatchObject({ name: 'localhost', vid: 482711334, uptimeSeconds: 5, version: '5.0.1' });
    expect(status.sessions).toBe(2);
    expect(status.groups).toEqual([{ name: 'g', members: 2, localMembers: 2, messages: 1, bytes: 48 + 32 + 5 }]);
    expect(status.traffic.messagesDelivered).toBe(1);
    expect(status.groupState).toBe('gop');
  });
});
