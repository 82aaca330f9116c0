/**
 * Membership, third phase (§11.4 EVS, §7.3): recovering the old ring's messages and
 * installing the new ring. The new ring's token runs; the members of each previous ring
 * re-send, wrapped in new-ring packets, the previous ring's packets others of that ring
 * may miss (above the lowest aru, up to the highest seq any of them has). When a rotation
 * shows that nothing is left to send and everything has arrived, the leader installs the
 * ring and flags the token so that each member installs it on its visit: the old ring's
 * messages, the transitional configuration and the regular configuration go up
 * (delivery.ts orders them). A failure during commit or recovery goes back to gather with
 * the old ring's messages kept. Separate because this is where Extended Virtual Synchrony
 * is made: which old messages exist, who must have them, and who moves together.
 *
 * Deviations from Spread / the Totem paper (deliberate):
 *  - Old-ring packets are recovered inside the new ring (Corosync's encapsulation), so the
 *    new ring's own aru and retransmissions make recovery reliable. A recovery packet is a
 *    data packet plus 40 bytes, so DatagramBytes may be at most 65 467 here.
 *  - The leader installs the new ring once a rotation shows no recovery packet pending and
 *    aru = seq twice in a row, instead of Spread's rotation counting; members install when
 *    the token says so. Spread's cap of 500 recovery rotations is replaced by the "failed to
 *    receive" rule (operational.ts), which applies in recovery too.
 */
import { assert } from './assert.js';
import { PacketBuffer } from './buffer.js';
import { deliverOldRing } from './delivery.js';
import { PACKET_SLOTS } from './limits.js';
import {
  type CommitFields,
  DataFlag,
  type DataPacket,
  DataPacketWriter,
  DATA_HEADER_BYTES,
  decodePacket,
  FRAGMENT_HEADER_BYTES,
  FragmentFlag,
  PacketType,
  type TokenFields,
} from './packet.js';
import { resetTokenState } from './operational.js';
import { seqAdd, seqDiff, seqGt, seqLte, seqMax, seqMin } from './seq.js';
import { NO_RING, ringKey, sameRing } from './ring-id.js';
import { type RecoveryPlan, sameList, type TotemState } from './state.js';
import type { MembershipId } from './types.js';

export function enterRecovery(s: TotemState, c: CommitFields, nowMs: number): void {
  const forming = s.forming;
  assert(s.state === 'commit' && forming !== null, 'recovery from commit');
  assert(c.entries.every((e) => e.filled) && sameList(c.entries.map((e) => e.vid), forming.members), 'a complete commit token');
  s.state = 'recovery';
  s.count('recoveryEnters');
  const incarnations = new Map(c.entries.map((e) => [e.vid, e.incarnation]));
  s.cur = s.makeView(forming.id, forming.members, incarnations, c.entries.map((e) => ({ ...e.oldRing })));
  s.buf = new PacketBuffer(s.startSeq, s.badFragment);
  s.header = { sender: s.myVid, membId: forming.id, configHash: s.configHash };
  s.plan = planRecovery(s, c);
  resetTokenState(s);
  // Commit hops and token hops share the ring id: the token's hops continue above the commit token's.
  s.haveHop = true;
  s.lastHop = c.hop;
  s.recoveryQuietVisits = 0;
  s.formAtMs = null;
  s.tokenLossAtMs = nowMs + s.tokenTimeoutMs;
  const plan = s.plan;
  s.note(
    nowMs,
    plan.oldRing === null
      ? `recovery: ring ${ringKey(forming.id)}, nothing to recover (first ring)`
      : `recovery: ring ${ringKey(forming.id)}, from ${ringKey(plan.oldRing)} with ${plan.trans.join(', ')}; ` +
          `${s.recoveryQueue.length} packets to re-send, up to ${plan.maxHighest}, safe to ${plan.safeBound}`,
  );
}

/** Which old packets this daemon re-sends, and the bounds of EVS delivery (§7.3). */
function planRecovery(s: TotemState, c: CommitFields): RecoveryPlan {
  s.recoveryQueue = [];
  s.recoveryHead = 0;
  const old = s.old;
  if (old === null) return { oldRing: null, trans: [], transSet: new Set(), maxHighest: 0, safeBound: 0 };
  const oldRing = old.view.membId;
  // Same old ring id and the same life of the daemon as when that ring formed: a daemon that
  // restarted and reused a ring id (possible only when it kept nothing, ring-id.ts) is not of our ring.
  const group = c.entries.filter((e) => sameRing(e.oldRing, oldRing) && old.view.incarnations.get(e.vid) === e.incarnation);
  const mine = group.find((e) => e.vid === s.myVid);
  assert(mine !== undefined, 'I come from my old ring');
  let minAru = mine.aru;
  let maxHighest = mine.highest;
  let safeBound = mine.safe;
  for (const e of group) {
    minAru = seqMin(minAru, e.aru);
    maxHighest = seqMax(maxHighest, e.highest);
    safeBound = seqMax(safeBound, e.safe);
  }
  const trans = group.map((e) => e.vid);
  const transSet = new Set(trans);
  // The whole old ring moves together: after recovery each of its members holds everything.
  if (old.view.members.every((vid) => transSet.has(vid))) safeBound = maxHighest;
  assert(seqDiff(maxHighest, minAru) >= 0 && seqDiff(maxHighest, minAru) < PACKET_SLOTS, 'old ring range fits the buffer');
  assert(seqLte(old.buf.discardSeq, minAru), 'nothing a member may miss was discarded');
  // Each missing packet is re-sent by the first member whose aru covers it; beyond every aru, by all who hold it.
  for (let seq = seqAdd(minAru, 1); seqLte(seq, maxHighest); seq = seqAdd(seq, 1)) {
    if (old.buf.get(seq) === undefined) continue;
    const responsible = group.find((e) => seqLte(seq, e.aru));
    if (responsible === undefined || responsible.vid === s.myVid) s.recoveryQueue.push(seq);
  }
  return { oldRing: { ...oldRing }, trans, transSet, maxHighest, safeBound };
}

export function recoveryQueued(s: TotemState): boolean {
  return s.recoveryHead < s.recoveryQueue.length;
}

/** Up to `count` recovery packets, each wrapping one old packet, taking the new ring's next seqs. */
export function buildRecoveryPackets(s: TotemState, count: number, t: TokenFields): Uint8Array[] {
  const out: Uint8Array[] = [];
  const old = s.old;
  assert(old !== null || !recoveryQueued(s), 'recovery packets come from the old ring');
  while (out.length < count && recoveryQueued(s)) {
    const inner = old!.buf.get(s.recoveryQueue[s.recoveryHead++]);
    assert(inner !== undefined, 'a queued recovery packet is held');
    const seq = seqAdd(t.seq, 1);
    const writer = new DataPacketWriter(DATA_HEADER_BYTES + FRAGMENT_HEADER_BYTES + inner.bytes.length);
    writer.begin(s.header, seq, s.myVid, t.round);
    writer.append(FragmentFlag.FIRST | FragmentFlag.LAST, inner.bytes, 0, inner.bytes.length);
    const packet = writer.finishPacket(DataFlag.RECOVERED);
    t.seq = seq;
    s.packetsSent++;
    s.count('recoveryPacketsSent');
    s.buf.store(packet);
    out.push(packet.bytes);
  }
  return out;
}

/** A recovery packet arrived: keep the old packet it carries if it is of our old ring. */
export function takeRecovered(s: TotemState, packet: DataPacket): void {
  const old = s.old;
  const plan = s.plan;
  if (old === null || plan === null || plan.oldRing === null || packet.fragments.length !== 1) return;
  const decoded = decodePacket(packet.fragments[0].payload);
  if (!decoded.ok || decoded.packet.type !== PacketType.DATA || !sameRing(decoded.packet.membId, plan.oldRing)) return;
  const inner = decoded.packet;
  if (seqGt(inner.seq, plan.maxHighest) || !old.buf.accepts(inner.seq)) return;
  old.buf.store(inner);
  s.count('recoveredPackets');
}

/** End of recovery: the old ring's messages per §7.3, the transitional and the regular configuration. */
export function install(s: TotemState, nowMs: number): void {
  const cur = s.cur;
  const plan = s.plan;
  assert(s.state === 'recovery' && cur !== null && plan !== null, 'install from recovery');
  const old = s.old;
  if (old !== null && plan.oldRing !== null) {
    deliverOldRing(s, old.buf, plan, cur.membId);
    s.rememberRing(old.view.membId, old.buf);
  }
  s.count('installs');
  s.membershipChanges++;
  s.events.push({ kind: 'regular', membId: { ...cur.membId }, members: [...cur.members], previous: cur.previous.map((p) => ({ ...p })) });
  s.note(nowMs, `ring ${ringKey(cur.membId)} installed with ${cur.members.join(', ')}`);
  s.state = 'op';
  s.old = null;
  s.forgetForming();
  s.procSet.clear();
  s.failSet.clear();
  s.consensus.clear();
  s.stalledVisits = 0;
  s.stalledAru = s.buf.myAru;
  s.rememberRing(cur.membId);
  s.lookupAtMs = cur.members.length < s.configured.length && cur.leaderVid === s.myVid ? nowMs + s.lookupTimeoutMs : null;
}

/** A ring of one: no token, no commit; install at once. */
export function installAlone(s: TotemState, id: MembershipId, nowMs: number): void {
  const old = s.old;
  s.state = 'recovery';
  s.count('recoveryEnters');
  s.cur = s.makeView(id, [s.myVid], new Map([[s.myVid, s.incarnation]]), [{ ...(old?.view.membId ?? NO_RING) }]);
  s.buf = new PacketBuffer(s.startSeq, s.badFragment);
  s.header = { sender: s.myVid, membId: id, configHash: s.configHash };
  s.joinAtMs = null;
  s.consensusAtMs = null;
  s.plan =
    old === null
      ? { oldRing: null, trans: [], transSet: new Set(), maxHighest: 0, safeBound: 0 }
      : {
          oldRing: { ...old.view.membId },
          trans: [s.myVid],
          transSet: new Set([s.myVid]),
          maxHighest: old.buf.highestSeq,
          safeBound: old.view.members.length === 1 ? old.buf.highestSeq : old.buf.safeSeq,
        };
  resetTokenState(s);
  install(s, nowMs);
}

