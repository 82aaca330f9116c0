/**
 * TotemRing: total order over a logical token ring plus daemon membership with
 * Extended Virtual Synchrony (Totem single-ring protocol as Spread runs it, §11.2–11.4
 * and §7.3–7.4 of spread-protocol.md). A pure state machine: inputs are
 * submit/receive/tick with time as an argument, effects leave via ready(). No
 * sockets, timers, Date.now() or Math.random() here or in the files below.
 *
 * This file is the public face: it checks who may talk to us, hands each input to the
 * phase it belongs to, runs the timers and reports status. The protocol itself is in
 * one file per phase, all working on one TotemState (state.ts):
 *
 *   operational.ts  the token visit: retransmissions, new packets under flow control,
 *                   requests, aru, the idle hold and HURRY (state 'op')
 *   send-queue.ts   messages waiting for the token, and how they are packed into datagrams
 *   gather.ts       JOINs and agreement on the next ring's members ('gather')
 *   commit.ts       the new ring id and the commit token's two rotations ('commit')
 *   recovery.ts     EVS recovery of the old ring's packets and the install ('recovery')
 *   delivery.ts     what is delivered, in which order: AGREED, SAFE, and §7.3 at an install
 *   ring-id.ts      ring ids, and how they stay unique across the daemon's restarts
 *
 * Membership runs 'op' → 'gather' → 'commit' → 'recovery' → 'op'; a failure during commit
 * or recovery goes back to gather with the old ring's messages kept. The deviations from
 * Spread and the Totem paper are listed in the file of the phase they concern; two concern
 * the machine as a whole:
 *  - Wire format is our own (packet.ts): big-endian, no endian marker, 36-byte data header.
 *  - A daemon whose timer fires more than TokenTimeout/4 late (it was stalled) logs it and
 *    gives its loss timers STALL_GRACE_MS more, so that it reads what arrived meanwhile
 *    (perhaps the token) before it declares a loss.
 */
import { onCommit } from './commit.js';
import { deliverAtOnce, onData, onOldData, orderAlone } from './delivery.js';
import { enterGather, gatherTimers, onForeign, onJoin, probe } from './gather.js';
import { MEMBERS_MAX, MESSAGE_BYTES_MAX, STALL_GRACE_MS, WINDOW_MAX } from './limits.js';
import { onHurry, onToken, onTokenAck, queueMessage, tokenTimers } from './operational.js';
import { decodePacket, type Packet, PacketType } from './packet.js';
import { seqLte } from './seq.js';
import { NO_RING, ringKey, ringTimeAfter, sameRing } from './ring-id.js';
import { type MembershipState, TotemState } from './state.js';
import type { FlowControlChange, MembershipId, Ring, RingDiagnostics, RingReady, RingState, RingStatus } from './types.js';

export { ringKey } from './ring-id.js';
export type { GatherReason } from './gather.js';

export interface TotemOptions {
  myVid: number;
  /** Configured daemon VIDs in configuration order (ring order; the first of a ring leads it). */
  members: number[];
  configHash: number;
  /** Creation time (ms); deadlines start from here. */
  nowMs: number;
  window?: number;
  personalWindow?: number;
  acceleratedRing?: boolean;
  acceleratedWindow?: number;
  /** No token for this long counts as token loss (§8.5 TokenTimeout). */
  tokenTimeoutMs?: number;
  /** HURRY re-send period and idle heartbeat period (§8.5 HurryTimeout). */
  hurryTimeoutMs?: number;
  /** Token re-send period until the successor shows it has the token. Default hurry/5. */
  tokenRetransmitMs?: number;
  /** JOIN period in gather, and the least duration of a gather (§8.5 JoinTimeout). */
  joinTimeoutMs?: number;
  /** Consensus timeout of a gather (§8.5 GatherTimeout). */
  gatherTimeoutMs?: number;
  /** Commit token loss timeout (§8.5 FormTimeout). */
  formTimeoutMs?: number;
  /** Probe period of an incomplete ring's leader (§8.5 LookupTimeout). */
  lookupTimeoutMs?: number;
  datagramBytes?: number;
  sendQueueMessagesMax?: number;
  sendQueueBytesMax?: number;
  /** First packet of each ring gets initialSeq + 1 (tests start near 2^32 to exercise wrap-around). */
  initialSeq?: number;
  /**
   * Tells this life of the daemon from earlier ones (JOINs, commit token). The daemon passes a
   * counter it keeps across restarts; the default, nowMs at creation as u32, is unique only
   * when lives start in different milliseconds.
   */
  incarnation?: number;
  /**
   * The highest ring id time any earlier life of this daemon formed (its last formedRingTime(),
   * kept by the adapter): every ring id this life forms lies above it (ring-id.ts). Default 0.
   */
  ringTimeFloor?: number;
  /** Deliver events carry `packetSeq` (simulator checks). */
  traceDeliveries?: boolean;
}

const STATE_NAMES: Record<MembershipState, RingState> = { op: 'op', gather: 'gather', commit: 'form', recovery: 'evs' };

export class TotemRing implements Ring {
  readonly myVid: number;
  /** Configured daemons, configuration order. */
  readonly configured: readonly number[];
  private readonly s: TotemState;

  constructor(options: TotemOptions) {
    const s = new TotemState(options);
    this.s = s;
    this.myVid = s.myVid;
    this.configured = s.configured;
    if (s.solo) {
      // A configuration of one orders at once, without packets or timers (SoloRing's fast path).
      const id = { procId: s.myVid, time: ringTimeAfter(options.nowMs, s.formedTime) };
      s.formedTime = id.time;
      s.cur = s.makeView(id, [s.myVid], new Map([[s.myVid, s.incarnation]]), [NO_RING]);
      s.state = 'op';
      s.header = { ...s.header, membId: id };
      s.membershipChanges++;
      s.events.push({ kind: 'regular', membId: { ...id }, members: [s.myVid], previous: [{ ...NO_RING }] });
    } else {
      enterGather(s, 'start', options.nowMs);
    }
  }

  // ---------------------------------------------------------------- inputs

  submit(payload: Uint8Array, safe: boolean): boolean {
    if (payload.length > MESSAGE_BYTES_MAX) throw new RangeError(`message of ${payload.length} bytes > ${MESSAGE_BYTES_MAX}`);
    if (this.s.solo) {
      deliverAtOnce(this.s, payload, safe);
      return true;
    }
    return queueMessage(this.s, payload, safe);
  }

  receive(bytes: Uint8Array, nowMs: number): void {
    const s = this.s;
    s.lastNowMs = nowMs;
    if (s.solo) return;
    const decoded = decodePacket(bytes);
    if (!decoded.ok) {
      s.count('malformed');
      return;
    }
    const packet = decoded.packet;
    if (!this.acceptSender(packet, nowMs)) return;
    s.packetsReceived++;
    switch (packet.type) {
      case PacketType.JOIN:
        onJoin(s, packet, nowMs);
        return;
      case PacketType.COMMIT:
        onCommit(s, packet, nowMs);
        return;
      case PacketType.HELLO:
        return; // the start-up probe of earlier versions: JOIN does its work now
    }
    const cur = s.cur;
    if (cur !== null && sameRing(packet.membId, cur.membId)) {
      if (!cur.memberSet.has(packet.sender)) {
        s.count('unknownSender');
        return;
      }
      switch (packet.type) {
        case PacketType.DATA:
          // Ring traffic shows the token is alive (only its holder sends): Spread's rule. A daemon
          // busy reading a burst of data must not declare the token lost while it queues behind it.
          if (s.tokenLossAtMs !== null) s.tokenLossAtMs = nowMs + s.tokenTimeoutMs;
          onData(s, packet);
          return;
        case PacketType.TOKEN:
          onToken(s, packet, nowMs);
          return;
        case PacketType.HURRY:
          onHurry(s, nowMs);
          return;
        case PacketType.TOKEN_ACK:
          onTokenAck(s, packet.sender, packet.hop);
          return;
      }
    }
    const forming = s.forming;
    if (packet.type === PacketType.TOKEN_ACK && forming !== null && sameRing(packet.membId, forming.id)) {
      onTokenAck(s, packet.sender, packet.hop);
      return;
    }
    const old = s.old;
    if (old !== null && sameRing(packet.membId, old.view.membId)) {
      if (packet.type === PacketType.DATA && !s.frozen) onOldData(s, packet);
      else s.count('lateOldPackets');
      return;
    }
    onForeign(s, packet, nowMs);
  }

  tick(nowMs: number): void {
    const s = this.s;
    if (s.solo) {
      s.lastNowMs = nowMs;
      return;
    }
    // A timer that fires much later than due means this process was stalled (CPU starvation,
    // a long synchronous task): to the others that looks like a lost token. Say so.
    // Its own loss timers then fire at once, though the token or the JOINs they wait for may be
    // sitting in the socket, unread: give the adapter STALL_GRACE_MS to read them first.
    // (Late since it was due, or since our last input if that came later: we were running then.)
    const due = this.nextDeadlineMs();
    const lateMs = due === null ? 0 : nowMs - Math.max(due, s.lastNowMs);
    const stalled = lateMs > s.tokenTimeoutMs / 4;
    if (stalled) {
      s.count('lateTicks');
      s.note(nowMs, `timer ${Math.round(lateMs)} ms late (the process was stalled)`);
      const grace = nowMs + STALL_GRACE_MS;
      if (s.consensusAtMs !== null && nowMs >= s.consensusAtMs) s.consensusAtMs = grace;
      if (s.formAtMs !== null && nowMs >= s.formAtMs) s.formAtMs = grace;
      if (s.tokenLossAtMs !== null && nowMs >= s.tokenLossAtMs) s.tokenLossAtMs = grace;
    }
    s.lastNowMs = nowMs;
    if (s.state === 'gather') gatherTimers(s, nowMs);
    if (s.state === 'commit' && s.formAtMs !== null && nowMs >= s.formAtMs) {
      enterGather(s, 'form timeout', nowMs);
    }
    if (s.state === 'op' && s.cur!.members.length === 1 && s.queue.hasQueued()) orderAlone(s);
    tokenTimers(s, nowMs);
    if (s.state === 'op' && s.lookupAtMs !== null && nowMs >= s.lookupAtMs) {
      probe(s);
      s.lookupAtMs = nowMs + s.lookupTimeoutMs;
    }
  }

  ready(): RingReady {
    const s = this.s;
    const out = { packets: s.packets, events: s.events };
    s.packets = [];
    s.events = [];
    return out;
  }

  nextDeadlineMs(): number | null {
    // Called after every datagram by the adapter: no allocation here.
    const s = this.s;
    let next = earliest(s.joinAtMs, s.consensusAtMs);
    next = earliest(next, s.formAtMs);
    next = earliest(next, s.hurryAtMs);
    next = earliest(next, s.retransmitAtMs);
    next = earliest(next, s.tokenLossAtMs);
    next = earliest(next, s.lookupAtMs);
    next = earliest(next, s.holdUntilMs);
    if (s.heldToken !== null && (s.hurryPending || s.queue.hasQueued())) next = earliest(next, s.lastNowMs);
    if (s.state === 'op' && !s.solo && s.cur!.members.length === 1 && s.queue.hasQueued()) next = earliest(next, s.lastNowMs);
    return next;
  }

  pendingCount(): number {
    return this.s.queue.length;
  }

  status(): RingStatus {
    const s = this.s;
    const view = s.cur ?? s.old?.view ?? null;
    const b = s.cur !== null ? s.buf : (s.old?.buf ?? s.buf);
    return {
      state: STATE_NAMES[s.state],
      myVid: s.myVid,
      leaderVid: view?.leaderVid ?? s.myVid,
      membId: { ...(view?.membId ?? NO_RING) },
      members: view === null ? [s.myVid] : [...view.members],
      aru: b.safeSeq,
      myAru: b.myAru,
      highestSeq: b.highestSeq,
      packetsSent: s.packetsSent,
      packetsReceived: s.packetsReceived,
      packetsDelivered: s.packetsDelivered,
      retransmissions: s.retransmissions,
      tokenHurry: s.tokenHurry,
      tokenRounds: s.tokenRounds,
      membershipChanges: s.membershipChanges,
      window: s.window,
      personalWindow: s.personalWindow,
      acceleratedRing: s.acceleratedRing,
      acceleratedWindow: s.acceleratedWindow,
      datagramBytes: s.writer.datagramBytes,
    };
  }

  diagnostics(): RingDiagnostics {
    const s = this.s;
    return {
      refused: [...s.refused].map(([vid, reason]) => ({ vid, reason })),
      heard: [...s.heard],
      log: s.log.map((e) => ({ ...e })),
      counters: { ...s.counters },
    };
  }

  /** Membership details for tests and status tools. */
  membership(): {
    state: MembershipState;
    procSet: number[];
    failSet: number[];
    oldRing: MembershipId | null;
    incarnation: number;
  } {
    const s = this.s;
    return {
      state: s.state,
      procSet: s.inConfigOrder(s.procSet),
      failSet: s.inConfigOrder(s.failSet),
      oldRing: s.old === null ? null : { ...s.old.view.membId },
      incarnation: s.incarnation,
    };
  }

  formedRingTime(): number {
    return this.s.formedTime;
  }

  setFlowControl(change: FlowControlChange): string | null {
    const s = this.s;
    const window = change.window ?? s.window;
    const personal = change.personalWindow ?? s.personalWindow;
    // Without the accelerated ring nothing is sent after the token: the window stays 0.
    const accelerated = s.acceleratedRing ? (change.acceleratedWindow ?? s.acceleratedWindow) : 0;
    if (!Number.isInteger(window) || window < 1 || window > WINDOW_MAX) return `Window ${window} is not in 1..${WINDOW_MAX}`;
    if (!Number.isInteger(personal) || personal < 1 || personal > window) return `PersonalWindow ${personal} is not in 1..Window (${window})`;
    if (!Number.isInteger(accelerated) || accelerated < 0 || accelerated > personal) {
      return `AcceleratedWindow ${accelerated} is not in 0..PersonalWindow (${personal})`;
    }
    s.window = window;
    s.personalWindow = personal;
    s.acceleratedWindow = accelerated;
    return null;
  }

  /** Whether this daemon holds (or held: it is at or below its aru) packet `seq` of the current ring. */
  holdsSeq(seq: number): boolean {
    return this.s.buf.holds(seq);
  }

  /** Whether this daemon holds or held packet `seq` of ring `ring` (simulator SAFE checks; recent rings only). */
  holds(ring: MembershipId, seq: number): boolean {
    const s = this.s;
    if (s.cur !== null && sameRing(s.cur.membId, ring)) return s.buf.holds(seq);
    if (s.old !== null && sameRing(s.old.view.membId, ring)) return s.old.buf.holds(seq);
    const held = s.historyHeld.get(ringKey(ring));
    return held !== undefined && (seqLte(seq, held.aru) || held.above.has(seq));
  }

  /** Checks common to every packet: another configured daemon, with our configuration hash. */
  private acceptSender(packet: Packet, nowMs: number): boolean {
    const s = this.s;
    const sender = packet.sender;
    if (sender === s.myVid || !s.configIndex.has(sender)) {
      s.count('unknownSender');
      if (!s.unknownLogged.has(sender) && s.unknownLogged.size < MEMBERS_MAX) {
        s.unknownLogged.add(sender);
        s.note(nowMs, `packet from VID ${sender}, which is not another daemon of our configuration`);
      }
      return false;
    }
    if (packet.configHash !== s.configHash) {
      s.count('foreignHash');
      const reason = `configuration hash ${packet.configHash} differs from ours (${s.configHash})`;
      if (s.refused.get(sender) !== reason) {
        s.refused.set(sender, reason);
        s.note(nowMs, `refusing daemon ${sender}: ${reason}`);
      }
      return false;
    }
    if (s.refused.delete(sender)) s.note(nowMs, `daemon ${sender} now runs our configuration`);
    s.heard.add(sender);
    return true;
  }
}

function earliest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}
