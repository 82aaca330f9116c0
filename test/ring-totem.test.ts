/** TotemRing behaviours one at a time: start-up, refusal, single member, back-pressure, idle hold and heartbeat, bounds. */
import { describe, expect, it } from 'vitest';
import { MESSAGE_BYTES_MAX, RTR_ITEMS_MAX, SEQ_GAP_MAX } from '../src/ring/limits.js';
import { decodePacket, encodeCommit, encodeHello, encodeJoin, encodeToken, PacketType, peekType, TokenFlag } from '../src/ring/packet.js';
import { TotemRing, type TotemOptions } from '../src/ring/totem.js';
import type { RingEvent } from '../src/ring/types.js';
import { Checker } from './sim/checker.js';
import { type FaultOptions, Simulator } from './sim/network.js';

const clean: FaultOptions = { loss: 0, duplicate: 0, delayMs: 0.1, jitterMs: 0 };
const HASH = 0xabcdef01;

function delivered(events: { event: RingEvent }[]): number {
  return events.filter((e) => e.event.kind === 'deliver').length;
}

describe('single member', () => {
  it('orders at once, without packets or timers', () => {
    const ring = new TotemRing({ myVid: 5, members: [5], configHash: HASH, nowMs: 12_345 });
    expect(ring.submit(new Uint8Array([1]), false)).toBe(true);
    expect(ring.submit(new Uint8Array([2]), true)).toBe(true);
    const ready = ring.ready();
    expect(ready.packets).toEqual([]);
    expect(ready.events).toEqual([
      { kind: 'regular', membId: { procId: 5, time: 12 }, members: [5], previous: [{ procId: 0, time: 0 }] },
      { kind: 'deliver', seq: 1, origin: 5, safe: false, payload: new Uint8Array([1]) },
      { kind: 'deliver', seq: 2, origin: 5, safe: true, payload: new Uint8Array([2]) },
    ]);
    expect(ring.nextDeadlineMs()).toBeNull();
    expect(ring.pendingCount()).toBe(0);
    expect(ring.status()).toMatchObject({ state: 'op', leaderVid: 5, members: [5], aru: 2, highestSeq: 2 });
  });

  it('refuses an oversized message as a programming error', () => {
    const ring = new TotemRing({ myVid: 5, members: [5], configHash: HASH, nowMs: 0 });
    expect(() => ring.submit(new Uint8Array(MESSAGE_BYTES_MAX + 1), false)).toThrow(RangeError);
  });
});

describe('start-up', () => {
  it('daemons starting within one JoinTimeout form one ring: one regular event everywhere, same id', () => {
    const sim = new Simulator(1, 3, clean, { configHash: HASH, traceDeliveries: false }, 60);
    sim.nowMs = 5_000; // membership id time comes from the representative's clock
    sim.nodes.forEach((n) => (n.startAtMs += 5_000));
    sim.run(10_000);
    const none = { procId: 0, time: 0 };
    for (const node of sim.nodes) {
      expect(node.events.map((e) => e.event)).toEqual([
        { kind: 'regular', membId: { procId: sim.vids[0], time: 5 }, members: sim.vids, previous: [none, none, none] },
      ]);
      expect(node.ring!.status().state).toBe('op');
    }
  });

  it('a daemon alone forms a ring of one; a later one merges with it (no transitional at a first ring)', () => {
    const sim = new Simulator(11, 2, clean, { configHash: HASH });
    sim.nodes[1].startAtMs = 2_000;
    sim.run(1_000);
    expect(sim.nodes[0].ring!.status()).toMatchObject({ state: 'op', members: [sim.vids[0]] });
    sim.run(3_000);
    expect(sim.nodes[0].events.map((e) => e.event.kind)).toEqual(['regular', 'transitional', 'regular']);
    expect(sim.nodes[1].events.map((e) => e.event.kind)).toEqual(['regular']);
    const alone = sim.nodes[0].events[0].event;
    const merged = sim.nodes[0].events[2].event;
    expect(merged).toEqual(sim.nodes[1].events[0].event);
    expect(sim.nodes[0].events[1].event).toEqual({ kind: 'transitional', membId: merged.kind === 'regular' ? merged.membId : null, members: [sim.vids[0]] });
    expect(merged.kind === 'regular' && merged.previous).toEqual([alone.kind === 'regular' && alone.membId, { procId: 0, time: 0 }]);
  });

  it('refuses a daemon with another configuration hash and says why; the others form their ring', () => {
    const sim = new Simulator(2, 3, clean, { configHash: HASH }, 0, [{}, {}, { configHash: 0x1111 }]);
    sim.run(3_000);
    const leader = sim.nodes[0].ring!;
    expect(leader.status()).toMatchObject({ state: 'op', members: sim.vids.slice(0, 2) });
    const d = leader.diagnostics();
    expect(d.refused).toEqual([{ vid: sim.vids[2], reason: `configuration hash ${0x1111} differs from ours (${HASH})` }]);
    expect(d.counters.foreignHash).toBeGreaterThan(0);
    expect(d.log.some((l) => l.text.includes('refusing daemon'))).toBe(true);
    expect(sim.nodes[2].ring!.status()).toMatchObject({ state: 'op', members: [sim.vids[2]] });
  });

  it('queues messages submitted before the ring exists', () => {
    const sim = new Simulator(3, 3, clean, { configHash: HASH }, 30);
    const checker = new Checker(sim);
    sim.run(0);
    checker.submit(0, new Uint8Array([9, 9]), false);
    expect(sim.run(5_000, () => checker.complete())).toBe(true);
  });
});

describe('robustness', () => {
  it('counts malformed, foreign and unknown-sender datagrams without throwing', () => {
    const ring = new TotemRing({ myVid: 2, members: [1, 2, 3], configHash: HASH, nowMs: 0 });
    ring.receive(new Uint8Array([1, 2, 3]), 1);
    ring.receive(encodeHello({ sender: 99, membId: { procId: 0, time: 0 }, configHash: HASH }), 2);
    ring.receive(encodeHello({ sender: 2, membId: { procId: 0, time: 0 }, configHash: HASH }), 3);
    const c = ring.diagnostics().counters;
    expect(c.malformed).toBe(1);
    expect(c.unknownSender).toBe(2);
  });

  it('rejects impossible options', () => {
    expect(() => new TotemRing({ myVid: 4, members: [1, 2], configHash: 0, nowMs: 0 })).toThrow(/not a member/);
    expect(() => new TotemRing({ myVid: 1, members: [1, 1], configHash: 0, nowMs: 0 })).toThrow(/distinct/);
    expect(() => new TotemRing({ myVid: 1, members: [1, 2], configHash: 0, nowMs: 0, personalWindow: 50, window: 10 })).toThrow(/personal window/);
  });
});

describe('back-pressure', () => {
  it('submit returns false at the message bound and accepts again once ordered', () => {
    const sim = new Simulator(4, 3, clean, { configHash: HASH, sendQueueMessagesMax: 3 });
    sim.run(2_000);
    const ring = sim.nodes[1].ring!;
    const accepted = [1, 2, 3, 4].map((i) => ring.submit(new Uint8Array([i]), false));
    expect(accepted).toEqual([true, true, true, false]);
    expect(ring.pendingCount()).toBe(3);
    sim.run(4_000);
    expect(ring.pendingCount()).toBe(0);
    expect(ring.submit(new Uint8Array([4]), false)).toBe(true);
  });

  it('the byte bound refuses a message that would overflow a non-empty queue, but never an empty one', () => {
    const ring = new TotemRing({ myVid: 1, members: [1, 2], configHash: HASH, nowMs: 0, sendQueueBytesMax: 1000 });
    expect(ring.submit(new Uint8Array(5000), false)).toBe(true);
    expect(ring.submit(new Uint8Array(1), false)).toBe(false);
  });
});

describe('idle ring', () => {
  it('sends only a heartbeat rotation, and a HURRY from a non-leader wakes it', () => {
    const sim = new Simulator(5, 4, clean, { configHash: HASH, tokenTimeoutMs: 500, hurryTimeoutMs: 150 });
    const checker = new Checker(sim);
    sim.run(1_000);
    checker.submit(2, new Uint8Array(3000), true);
    expect(sim.run(2_000, () => checker.complete())).toBe(true);
    const sentIdle = sim.datagramsSent;
    sim.run(4_000);
    // A heartbeat every 150 ms: 4 tokens, maybe a re-send each, and the leader's ack.
    expect(sim.datagramsSent - sentIdle).toBeLessThan((2_000 / 150 + 2) * 4 * 3);
    expect(sim.datagramsSent - sentIdle).toBeGreaterThan(2_000 / 150);
    expect(sim.nodes[0].ring!.diagnostics().counters.tokenHolds).toBeGreaterThan(0);
    expect(sim.nodes[0].ring!.diagnostics().counters.heartbeats).toBeGreaterThan(10);
    expect(sim.nodes.every((n) => n.ring!.diagnostics().counters.tokenLoss === 0)).toBe(true);
    checker.submit(3, new Uint8Array([1, 2, 3]), false);
    expect(sim.run(4_100, () => checker.complete())).toBe(true);
    expect(sim.nodes[3].ring!.diagnostics().counters.hurrySent).toBeLessThanOrEqual(1);
    expect(delivered(sim.nodes[1].events)).toBe(2);
    expect(sim.nodes.every((n) => n.events.filter((e) => e.event.kind === 'regular').length === 1)).toBe(true);
  });

  it('a lone sender at the leader: each AGREED message is ordered on the held token, no rotation; SAFE sends it round', () => {
    const sim = new Simulator(7, 3, clean, { configHash: HASH });
    const checker = new Checker(sim);
    sim.run(3_000);
    const leader = sim.nodes[0].ring!;
    const counters = () => leader.diagnostics().counters;
    expect(counters().tokenHolds).toBeGreaterThan(0);
    const rounds = () => leader.status().tokenRounds;
    for (let i = 0; i < 5; i++) {
      const [roundsBefore, sequencedBefore] = [rounds(), counters().sequencedWhileHeld];
      const start = sim.nowMs;
      checker.submit(0, new Uint8Array([i]), false);
      // One hop of 0.1 ms: ordered and multicast at once, delivered everywhere when it lands.
      expect(sim.run(start + 5, () => checker.complete())).toBe(true);
      expect(sim.nowMs - start).toBeLessThan(0.25);
      expect(counters().sequencedWhileHeld).toBe(sequencedBefore + 1);
      expect(rounds()).toBe(roundsBefore);
    }
    // SAFE needs every member to have it: the token goes round, and rests again once all delivered it.
    const holds = counters().tokenHolds;
    const roundsBefore = rounds();
    checker.submit(0, new Uint8Array([9]), true);
    expect(sim.run(sim.nowMs + 50, () => counters().tokenHolds > holds)).toBe(true);
    expect(rounds()).toBeGreaterThan(roundsBefore);
    expect(checker.complete()).toBe(true);
    checker.checkComplete();
  });

  it('ordering on a held token: a personal window per rotation, and a member with a hole asks for the token', () => {
    const sim = new Simulator(8, 3, { loss: 0, duplicate: 0, delayMs: 0.1, jitterMs: 0 }, { configHash: HASH, personalWindow: 4, window: 8 });
    const checker = new Checker(sim);
    sim.run(3_000);
    const leader = sim.nodes[0].ring!;
    const rounds = () => leader.status().tokenRounds;
    const roundsBefore = rounds();
    // Ten one-packet messages in one turn: four on the held token, the rest with rotations.
    for (let i = 0; i < 10; i++) checker.submit(0, new Uint8Array(1000).fill(i), false);
    expect(sim.run(sim.nowMs + 50, () => checker.complete())).toBe(true);
    expect(leader.diagnostics().counters.sequencedWhileHeld).toBe(4);
    expect(rounds()).toBeGreaterThan(roundsBefore);
    // Now lose a packet the holder sends to one member: it asks for the token (HURRY) and gets the packet back.
    sim.run(sim.nowMs + 1_000);
    const member = sim.nodes[2].ring!;
    const hurries = member.diagnostics().counters.hurrySent;
    let dropped = false;
    sim.dropIf = (from, to, bytes) => {
      if (dropped || from !== 0 || to !== 2 || peekType(bytes) !== PacketType.DATA) return false;
      return (dropped = true);
    };
    checker.submit(0, new Uint8Array(1000), false);
    checker.submit(0, new Uint8Array(1000), false);
    expect(sim.run(sim.nowMs + 100, () => checker.complete())).toBe(true);
    expect(dropped).toBe(true);
    expect(member.diagnostics().counters.hurrySent).toBeGreaterThan(hurries);
    checker.checkComplete();
  });

  it('SAFE ping-pong between the leader and a member: every exchange takes rotations, never a heartbeat', () => {
    // The leader may hold only after two full rotations since its last SAFE packet left: counting
    // rotations from before it would park the token while members still wait for their second aru.
    const sim = new Simulator(7, 3, clean, { configHash: HASH });
    sim.run(3_000);
    const roundTrips: number[] = [];
    let sentAtMs = 0;
    sim.onEvent = (node, event) => {
      if (event.kind !== 'deliver') return;
      if (node.index === 1 && event.payload[0] === 1) sim.submit(1, new Uint8Array([2]), true);
      if (node.index === 0 && event.payload[0] === 2) {
        roundTrips.push(sim.nowMs - sentAtMs);
        if (roundTrips.length < 5) {
          sentAtMs = sim.nowMs;
          sim.submit(0, new Uint8Array([1]), true);
        }
      }
    };
    sentAtMs = sim.nowMs;
    sim.submit(0, new Uint8Array([1]), true);
    expect(sim.run(sim.nowMs + 1_000, () => roundTrips.length === 5)).toBe(true);
    // Hops of 0.1 ms: a few rotations of three hops each (the idle heartbeat is 120 ms).
    for (const ms of roundTrips) expect(ms).toBeLessThan(3);
  });

  it('the leader releases a held token for its own messages', () => {
    const sim = new Simulator(6, 3, clean, { configHash: HASH });
    const checker = new Checker(sim);
    sim.run(3_000);
    expect(sim.nodes[0].ring!.diagnostics().counters.tokenHolds).toBeGreaterThan(0);
    checker.submit(0, new Uint8Array([7]), false);
    expect(sim.run(3_010, () => checker.complete())).toBe(true);
  });
});

describe('bounds', () => {
  const leader = 1;
  const me = 2;
  const membId = { procId: leader, time: 1 };
  const header = { sender: leader, membId, configHash: HASH };
  const token = (hop: number, seq: number, aru: number, rtr: number[] = []) =>
    encodeToken(header, { hop, seq, aru, aruSetter: leader, flowControl: 0, round: 1, flags: 0, rtr });

  /** A member taken into ring (leader 1, time 1) by hand: the leader's JOIN, both commit rotations, the installing token (hop 5). */
  function joinedMember(extra: Partial<TotemOptions> = {}): TotemRing {
    const ring = new TotemRing({ myVid: me, members: [leader, me], configHash: HASH, nowMs: 0, incarnation: 2, ...extra });
    const none = { procId: 0, time: 0 };
    const entry = (vid: number, incarnation: number, filled: boolean) => ({ vid, incarnation, filled, oldRing: none, aru: 0, highest: 0, safe: 0 });
    ring.receive(encodeJoin({ ...header, membId: none }, { flags: 0, incarnation: 1, attempt: 1, proc: [leader, me], fail: [] }), 1);
    ring.receive(encodeCommit(header, { hop: 1, rotation: 1, entries: [entry(leader, 1, true), entry(me, 0, false)] }), 2);
    ring.receive(encodeCommit(header, { hop: 3, rotation: 2, entries: [entry(leader, 1, true), entry(me, 2, true)] }), 3);
    ring.receive(encodeToken(header, { hop: 5, seq: 0, aru: 0, aruSetter: 0, flowControl: 0, round: 1, flags: TokenFlag.INSTALL, rtr: [] }), 4);
    expect(ring.ready().events).toEqual([{ kind: 'regular', membId, members: [leader, me], previous: [none, none] }]);
    return ring;
  }

  it('the gap rule: no new packets while seq is SEQ_GAP_MAX past the aru; requests stop at RTR_ITEMS_MAX', () => {
    const ring = joinedMember();
    for (let i = 0; i < 10; i++) expect(ring.submit(new Uint8Array([i]), false)).toBe(true);
    ring.receive(token(7, SEQ_GAP_MAX, 0), 5); // at the gap: may not send
    let out = ring.ready();
    expect(out.packets.map((p) => peekType(p.bytes))).toEqual([PacketType.TOKEN]);
    ring.receive(token(9, SEQ_GAP_MAX, 0), 6);
    out = ring.ready();
    expect(out.packets.map((p) => peekType(p.bytes))).toEqual([PacketType.TOKEN]);
    const forwarded = decodePacket(out.packets[0].bytes);
    expect(forwarded.ok && forwarded.packet.type === PacketType.TOKEN && forwarded.packet.rtr.length).toBe(RTR_ITEMS_MAX);
    expect(ring.pendingCount()).toBe(10);
    ring.receive(token(11, SEQ_GAP_MAX - 1, 0), 7); // one below the gap: one packet carries all ten
    out = ring.ready();
    expect(out.packets.map((p) => peekType(p.bytes))).toEqual([PacketType.DATA, PacketType.TOKEN]);
    expect(ring.pendingCount()).toBe(0);
  });

  it('packs messages whole: one that fits a packet of its own is not split across two', () => {
    const ring = joinedMember({ datagramBytes: 1472 });
    for (const size of [600, 600, 600, 3000]) ring.submit(new Uint8Array(size).fill(size & 0xff), false);
    ring.receive(token(7, 0, 0), 2);
    const fragments = ring
      .ready()
      .packets.map((p) => decodePacket(p.bytes))
      .flatMap((d) => (d.ok && d.packet.type === PacketType.DATA ? [d.packet.fragments.map((f) => [f.flags & 3, f.payload.length])] : []));
    // Two 600-byte messages fill most of the first packet; the third starts the second whole,
    // and the 3000-byte one (larger than any packet) is split, starting in the room left.
    expect(fragments[0]).toEqual([[3, 600], [3, 600]]);
    expect(fragments[1][0]).toEqual([3, 600]);
    expect(fragments[1][1][0]).toBe(1); // FIRST of the 3000-byte message
    expect(fragments.flat().filter(([flags]) => flags !== 3).reduce((sum, [, length]) => sum + length, 0)).toBe(3000);
  });

  it('flow control changed while running applies from the next visit; an impossible change is refused whole', () => {
    const ring = joinedMember({ personalWindow: 5, window: 10 });
    for (let i = 0; i < 30; i++) ring.submit(new Uint8Array(1400), false);
    expect(ring.setFlowControl({ window: 4, personalWindow: 8, acceleratedWindow: null })).toMatch(/PersonalWindow 8/);
    expect(ring.setFlowControl({ window: null, personalWindow: 3, acceleratedWindow: null })).toBeNull();
    expect(ring.status()).toMatchObject({ window: 10, personalWindow: 3, acceleratedWindow: 0 });
    ring.receive(token(7, 0, 0), 2);
    expect(ring.ready().packets.filter((p) => peekType(p.bytes) === PacketType.DATA)).toHaveLength(3);
  });

  it('answers at most a personal window of retransmission requests per visit', () => {
    const ring = joinedMember({ personalWindow: 5, window: 10 });
    for (let i = 0; i < 30; i++) ring.submit(new Uint8Array(1400), false);
    ring.receive(token(7, 0, 0), 2); // sends 5 packets, seqs 1..5
    ring.receive(token(9, 5, 0), 3); // sends 5 more, seqs 6..10
    ring.ready();
    ring.receive(token(11, 10, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 4);
    const out = ring.ready();
    const kinds = out.packets.map((p) => peekType(p.bytes));
    expect(kinds.filter((k) => k === PacketType.DATA)).toHaveLength(5);
    const forwarded = decodePacket(out.packets[out.packets.length - 1].bytes);
    expect(forwarded.ok && forwarded.packet.type === PacketType.TOKEN && forwarded.packet.rtr).toEqual([6, 7, 8, 9, 10]);
  });
});

describe('a member that receives no data for a while', () => {
  it('keeps the ring within its bounds, and everything arrives after the heal', () => {
    const sim = new Simulator(8, 3, clean, { configHash: HASH, datagramBytes: 600, personalWindow: 40, window: 160 });
    const checker = new Checker(sim);
    sim.run(1_000);
    let maxRtr = 0;
    sim.dropIf = (_from, to, bytes) => {
      const p = decodePacket(bytes);
      if (p.ok && p.packet.type === PacketType.TOKEN) maxRtr = Math.max(maxRtr, p.packet.rtr.length);
      return to === 2 && peekType(bytes) === PacketType.DATA;
    };
    for (let i = 0; i < 3000; i++) checker.submit(i % 2, new Uint8Array(500).fill(i & 0xff), false);
    sim.run(3_000);
    expect(maxRtr).toBeGreaterThan(0);
    expect(maxRtr).toBeLessThanOrEqual(RTR_ITEMS_MAX);
    expect(sim.nodes[2].events.length).toBe(1); // only the regular configuration
    for (const node of sim.nodes) expect(node.ring!.status().highestSeq - node.ring!.status().aru).toBeLessThanOrEqual(SEQ_GAP_MAX);
    sim.dropIf = null;
    expect(sim.run(60_000, () => checker.complete())).toBe(true);
  });
});
