/**
 * Delivery (§11.2, §7.3, §7.4): what reaches the layer above, and in which order. A packet
 * of the current ring is delivered (AGREED) once every earlier seq is here, and, if it ends
 * a SAFE message, once the aru seen on two successive token visits covers it (then every
 * member holds it); packets every member holds are discarded (buffer.ts keeps those
 * points). At an install the old ring's messages go up per §7.3: in order up to the first
 * hole or the first SAFE message not known to be held by the whole old ring; the
 * transitional configuration; the rest, after a hole only from daemons of the
 * transitional set. Separate because delivery decides what clients see, whichever phase
 * the packets arrived in.
 *
 * Deviations from Spread (deliberate):
 *  - SAFE granularity is the packet: a packet that completes a SAFE message waits
 *    (with everything after it) until the safe point covers it.
 *  - Event `seq` is the message's position in this ring's total order (1, 2, …),
 *    not the packet seq, since several messages share a packet.
 *  - A ring of one orders locally on the next tick, without packets on the wire (and a
 *    configuration of one daemon delivers inside submit()).
 */
import { assert } from './assert.js';
import type { PacketBuffer } from './buffer.js';
import { DataFlag, type DataPacket, type TokenFields } from './packet.js';
import { buildPackets, missingFromHolder } from './operational.js';
import { takeRecovered } from './recovery.js';
import { seqAdd, seqGt, seqLt, seqLte } from './seq.js';
import { NONE, type RecoveryPlan, type TotemState } from './state.js';
import type { MembershipId } from './types.js';

/** A configuration of one daemon: the message is ordered and delivered at once, no packets, no token. */
export function deliverAtOnce(s: TotemState, payload: Uint8Array, safe: boolean): void {
  const b = s.buf;
  b.highestSeq = seqAdd(b.highestSeq, 1);
  b.myAru = b.deliveredSeq = b.discardSeq = b.safeSeq = b.highestSeq;
  s.packetsSent++;
  s.emit(++b.messageOrdinal, s.myVid, safe, payload, b.highestSeq);
}

export function onData(s: TotemState, packet: DataPacket): void {
  assert(s.state === 'op' || s.state === 'recovery', 'data of our ring in op or recovery');
  const buf = s.buf;
  if (seqLte(packet.seq, buf.myAru) || buf.get(packet.seq) !== undefined) {
    s.count('duplicateData');
    return;
  }
  if (!buf.accepts(packet.seq)) {
    s.count('outOfWindow');
    return;
  }
  buf.store(packet);
  if ((packet.flags & DataFlag.RECOVERED) !== 0 && s.state === 'recovery') takeRecovered(s, packet);
  deliverCurrent(s);
  // The leader may be ordering while it holds the token (operational.ts): a hole asks for a rotation.
  if (s.believeIdle && s.hurryAtMs === null && missingFromHolder(s)) s.hurryAtMs = s.lastNowMs;
}

/** In gather: a late packet of the ring we left. It may fill a hole; deliver what became deliverable. */
export function onOldData(s: TotemState, packet: DataPacket): void {
  const b = s.old!.buf;
  if (!b.accepts(packet.seq)) {
    s.count('duplicateData');
    return;
  }
  b.store(packet);
  s.count('lateOldPackets');
  s.packetsDelivered += b.deliver(s.emit);
}

export function deliverCurrent(s: TotemState): void {
  s.packetsDelivered += s.buf.deliver(s.emit, s.state === 'recovery');
}

/** A ring of one in op: order everything queued, no packets on the wire. */
export function orderAlone(s: TotemState): void {
  const b = s.buf;
  while (s.queue.hasQueued()) {
    const t: TokenFields = { hop: 0, seq: b.highestSeq, aru: b.highestSeq, aruSetter: NONE, flowControl: 0, round: 0, flags: 0, rtr: [] };
    buildPackets(s, s.window, t);
    b.allSafe();
    s.packetsDelivered += b.deliver(s.emit);
  }
}

/**
 * §7.3 steps 1–3 over the old ring's buffer, up to the highest seq any daemon of the
 * transitional set has (each of them holds exactly the same packets now).
 */
export function deliverOldRing(s: TotemState, b: PacketBuffer, plan: RecoveryPlan, newId: MembershipId): void {
  const limit = plan.maxHighest;
  // 1. In order, up to the first hole or the first SAFE packet not known to be held by the whole old ring.
  while (seqLt(b.deliveredSeq, limit)) {
    const seq = seqAdd(b.deliveredSeq, 1);
    const packet = b.get(seq);
    if (packet === undefined) break;
    if (b.isSafeSlot(seq) && seqGt(seq, plan.safeBound)) break;
    b.deliverPacket(packet, s.emit);
    b.deliveredSeq = seq;
    s.packetsDelivered++;
  }
  // 2. The transitional configuration.
  s.events.push({ kind: 'transitional', membId: { ...newId }, members: [...plan.trans] });
  // 3. The rest; after a hole only messages of daemons of the transitional set (never theirs: they hold their own).
  let hole = false;
  while (seqLt(b.deliveredSeq, limit)) {
    const seq = seqAdd(b.deliveredSeq, 1);
    b.deliveredSeq = seq;
    const packet = b.get(seq);
    if (packet === undefined) {
      if (!hole) b.dropPartials((origin) => plan.transSet.has(origin));
      hole = true;
      continue;
    }
    if (hole && !plan.transSet.has(packet.origin)) continue;
    b.deliverPacket(packet, s.emit);
    s.packetsDelivered++;
  }
}
