/**
 * Normal operation (§11.2): what a daemon does with the token. The holder answers
 * retransmission requests, sends new packets under flow control, asks for what it
 * misses, updates the ring aru and passes the token on; the leader parks the token
 * while the ring is idle. In recovery the same visit carries the old ring's packets
 * (recovery.ts supplies them). Separate from membership because this is the part that
 * runs on every visit of a healthy ring, and the only part that creates seqs.
 *
 * Deviations from Spread / the Totem paper (deliberate):
 *  - Data sequence numbers are 32-bit and compared wrap-safely instead of forcing a
 *    membership at 2^30. A ring whose aru has not moved for FAIL_TO_RECEIVE_VISITS visits
 *    while packets are missing gathers ("failed to receive"), so a packet nobody can
 *    retransmit becomes an EVS hole instead of stalling the ring forever.
 *  - Token retransmission: the forwarder re-sends its last token every
 *    `tokenRetransmitMs` (default HurryTimeout / 5) until it sees a newer token or a TOKEN_ACK (Totem style;
 *    Spread only lets the leader re-send after HurryTimeout). Duplicates are
 *    recognised by the token's hop counter and answered with TOKEN_ACK. The commit
 *    token is re-sent the same way (commit.ts); FormTimeout bounds how long a member waits for it.
 *  - Idle ring: the leader holds the token (and acks its predecessor) when it comes
 *    back quiet: it left with aru = seq, nobody else added a packet or asked for one,
 *    every member holds everything, and the IDLE flag the leader set on it survived
 *    (a member with work clears it). One such rotation is enough unless a SAFE packet
 *    may still be undelivered somewhere; then two, so that every member has seen
 *    aru = seq on two visits (FULL_ROTATIONS_BEFORE_SAFE_HOLD). A message submitted at
 *    the leader of an idle ring thus goes out at once, and a lone sender's token stops
 *    circling one rotation after its last packet. While holding, it lets the token go
 *    round once every heartbeat period (HurryTimeout, at most a third of TokenTimeout),
 *    so every member still sees a token within TokenTimeout and a crash is noticed on an
 *    idle ring too. A member with new messages after forwarding an IDLE token sends HURRY
 *    to the leader (re-sent every HurryTimeout until a token arrives).
 *  - Sequencer while idle: the leader holding the token is the only possible sender, so
 *    it orders its own AGREED (and weaker) messages at once: it takes the next seqs on
 *    the held token, multicasts the packets and delivers them locally, all without a
 *    rotation, and keeps holding. Members deliver them in seq order as they arrive. At
 *    most a personal window of packets go out this way between rotations (then the token
 *    goes round, carrying aru and retransmission requests); a SAFE message, a HURRY or the
 *    heartbeat releases it as before. A member that sees a hole in what the holder sent
 *    sends HURRY, so a lost packet costs one rotation, not a heartbeat.
 *  - Retransmission requests only cover seqs at or below the seq of the token we
 *    last forwarded (a full rotation old), in both variants: on one host the token
 *    often overtakes the data sent just before it, and early requests only
 *    duplicate traffic. Spread applies this rule to the accelerated ring only.
 *  - Flow control: Spread's formula min(PW, W, max(0, W + PW − fc)) minus this
 *    visit's retransmissions; plus the receive-buffer bound.
 */
import { assert } from './assert.js';
import { deliverCurrent } from './delivery.js';
import { enterGather } from './gather.js';
import {
  FAIL_TO_RECEIVE_VISITS,
  FULL_ROTATIONS_BEFORE_SAFE_HOLD,
  PACKET_SLOTS,
  RECOVERY_QUIET_VISITS,
  RTR_ITEMS_MAX,
  SEQ_GAP_MAX,
} from './limits.js';
import { encodeHurry, encodeToken, encodeTokenAck, retransmissionOf, type TokenFields, TokenFlag, type TokenPacket } from './packet.js';
import { buildRecoveryPackets, install, recoveryQueued } from './recovery.js';
import { seqAdd, seqDiff, seqGt, seqLt, seqLte, seqMin } from './seq.js';
import { NONE, type TotemState } from './state.js';

/** Queues a local message. The token may be parked: ask for it on the next tick (batches the submits of one event-loop turn). */
export function queueMessage(s: TotemState, payload: Uint8Array, safe: boolean): boolean {
  const wasEmpty = !s.queue.hasQueued();
  if (!s.queue.offer(payload, safe)) return false;
  // A token held here is used (or released) on the next tick, which the queue makes due at once.
  if (s.state === 'op' && wasEmpty && s.heldToken === null && s.believeIdle && s.hurryAtMs === null) s.hurryAtMs = s.lastNowMs;
  return true;
}

export function onToken(s: TotemState, token: TokenPacket, nowMs: number): void {
  if (s.haveHop && seqLte(token.hop, s.lastHop)) {
    // A re-sent token we already processed: tell the sender to stop.
    s.count('duplicateToken');
    s.send(token.sender, encodeTokenAck(s.header, token.hop));
    return;
  }
  tokenVisit(s, token, nowMs);
}

export function onTokenAck(s: TotemState, sender: number, hop: number): void {
  s.count('tokenAcks');
  if (s.lastTokenBytes !== null && sender === s.retransmitTo && seqLte(s.lastTokenHop, hop)) s.retransmitAtMs = null;
}

export function onHurry(s: TotemState, nowMs: number): void {
  s.count('hurryReceived');
  if (s.state !== 'op' || s.cur!.leaderVid !== s.myVid) return;
  s.hurryPending = true;
  if (s.heldToken !== null) releaseToken(s, nowMs, false);
}

/**
 * `mayHold`: false when the leader releases a token it held (the hold decision was made then);
 * `sequencedWhileHeld`: packets the leader ordered on it meanwhile (they count as this visit's).
 */
export function tokenVisit(s: TotemState, token: TokenFields, nowMs: number, mayHold = true, sequencedWhileHeld = 0): void {
  const cur = s.cur;
  assert((s.state === 'op' || s.state === 'recovery') && cur !== null, 'token visit in op or recovery');
  assert(seqLte(token.aru, token.seq), 'token aru ≤ seq');
  const buf = s.buf;
  s.haveHop = true;
  s.lastHop = token.hop;
  s.retransmitAtMs = null; // a newer token: our successor had ours
  s.lastTokenBytes = null;
  s.hurryAtMs = null;
  s.believeIdle = false;
  if (seqGt(token.seq, buf.highestSeq)) buf.highestSeq = token.seq;

  const isLeader = cur.leaderVid === s.myVid;
  const recovering = s.state === 'recovery';
  let installing = false;
  if (recovering) {
    if (isLeader) {
      const quiet = token.aru === token.seq && (token.flags & TokenFlag.RECOVERY_PENDING) === 0 && !recoveryQueued(s) && buf.myAru === token.seq;
      s.recoveryQuietVisits = quiet ? s.recoveryQuietVisits + 1 : 0;
      installing = s.recoveryQuietVisits >= RECOVERY_QUIET_VISITS;
    } else {
      installing = (token.flags & TokenFlag.INSTALL) !== 0;
    }
  }

  if (!recovering && isLeader && mayHold && shouldHold(s, token)) {
    s.heldToken = token;
    s.holdUntilMs = nowMs + s.heartbeatMs;
    s.tokenLossAtMs = null;
    s.count('tokenHolds');
    s.send(cur.predecessor, encodeTokenAck(s.header, token.hop));
    buf.noteTokenAru(token.aru);
    deliverCurrent(s);
    if (s.queue.hasQueued()) useHeldToken(s, nowMs);
    return;
  }

  const t: TokenFields = { ...token, rtr: [] };
  if (isLeader) t.round = (t.round + 1) >>> 0;
  s.tokenRounds++;

  // 1. Answer retransmission requests, at most a personal window of them (they count
  //    against flow control like new packets); keep the rest for later visits.
  let retransmitted = 0;
  for (const seq of token.rtr) {
    if (seqLte(seq, buf.discardSeq)) continue; // every member has it: stale request
    const held = seqLte(seq, buf.highestSeq) ? buf.get(seq) : undefined;
    if (held !== undefined && retransmitted < s.personalWindow) {
      s.send('all', retransmissionOf(held.bytes, s.myVid));
      retransmitted++;
    } else {
      t.rtr.push(seq);
    }
  }
  s.retransmissions += retransmitted;

  // 2. New packets under flow control: in recovery only the old ring's packets, from the install on client messages.
  const seqBefore = t.seq;
  const allowance = Math.max(0, flowAllowance(s, t) - retransmitted - sequencedWhileHeld);
  const recoveryPending = recovering && !installing && recoveryQueued(s);
  const fresh = recovering && !installing ? buildRecoveryPackets(s, allowance, t) : buildPackets(s, allowance, t);

  // 3. Ask for what we miss, but only what had a full rotation to arrive: the token
  //    often overtakes the data sent just before it (and always does in the accelerated ring).
  const askLimit = seqMin(seqBefore, s.lastForwardedSeq);
  requestMissing(s, t.rtr, askLimit);

  // 4. aru (Totem): lower it to ours, or raise it if we set it / nobody owns it.
  if (seqLt(buf.myAru, t.aru) || t.aruSetter === s.myVid || t.aruSetter === NONE) {
    t.aru = buf.myAru;
    t.aruSetter = t.aru === t.seq ? NONE : s.myVid;
  }

  // 5. Flow control: replace our previous contribution with this visit's.
  const contribution = retransmitted + sequencedWhileHeld + fresh.length;
  t.flowControl = Math.max(0, t.flowControl - s.myLastContribution) + contribution;
  s.myLastContribution = contribution;

  // 6. Flags. Recovery: the leader starts each rotation with RECOVERY_PENDING clear and
  //    anyone still re-sending sets it; the leader's INSTALL tells each member to install.
  //    Idle: the leader announces a possible hold; anyone adding work withdraws it.
  if (isLeader) {
    s.hurryPending = false;
    t.flags &= ~(TokenFlag.RECOVERY_PENDING | TokenFlag.INSTALL | TokenFlag.IDLE);
    if (recovering && installing) t.flags |= TokenFlag.INSTALL;
    // Offered on every rotation: the hold decision on its return checks that it was quiet.
    if (!recovering) t.flags |= TokenFlag.IDLE;
    s.departedFullSeq = t.aru === t.seq ? t.seq : null;
  }
  if (recoveryPending) t.flags |= TokenFlag.RECOVERY_PENDING;
  // A member with work withdraws the offer; the leader's own packets of this visit do not.
  if ((contribution > 0 && !isLeader) || t.rtr.length > 0 || s.queue.hasQueued() || recovering) t.flags &= ~TokenFlag.IDLE;
  t.hop = seqAdd(t.hop, 1);

  // 7. Send: packets before the token, the token, then (accelerated) the last window of packets.
  const after = Math.min(s.acceleratedWindow, fresh.length);
  for (let i = 0; i < fresh.length - after; i++) s.send('all', fresh[i]);
  const bytes = encodeToken(s.header, t);
  s.send(cur.successor, bytes);
  for (let i = fresh.length - after; i < fresh.length; i++) s.send('all', fresh[i]);
  s.lastTokenBytes = bytes;
  s.lastTokenHop = t.hop;
  s.retransmitTo = cur.successor;
  s.lastForwardedSeq = t.seq;
  s.retransmitAtMs = nowMs + s.tokenRetransmitMs;

  // An IDLE token may be parked at the leader, but it comes round every heartbeat: the loss timer stays.
  s.believeIdle = !isLeader && (t.flags & TokenFlag.IDLE) !== 0;
  s.tokenLossAtMs = nowMs + s.tokenTimeoutMs;

  // 8. Install (events after the token left), then deliver.
  if (installing) install(s, nowMs);
  buf.noteTokenAru(t.aru);
  deliverCurrent(s);

  // 9. Failed to receive: my aru stuck below the ring's seq for many visits (nobody can fill the
  //    hole; in recovery, Spread's cap on recovery rotations plays this part).
  if (s.state === 'op' || s.state === 'recovery') {
    if (seqLt(buf.myAru, t.seq) && buf.myAru === s.stalledAru) {
      if (++s.stalledVisits >= FAIL_TO_RECEIVE_VISITS) enterGather(s, 'failed to receive', nowMs);
    } else {
      s.stalledVisits = 0;
      s.stalledAru = buf.myAru;
    }
  }
}
/** Leader: park the token when its last rotation was quiet and nobody asked for it. */
function shouldHold(s: TotemState, token: TokenFields): boolean {
  const buf = s.buf;
  // flowControl still counts the packets the leader itself sent when the token left.
  const othersAdded = token.flowControl - s.myLastContribution;
  const full = s.departedFullSeq === token.seq && token.aru === token.seq && token.aruSetter === NONE && othersAdded === 0;
  // Consecutive full rotations at this seq: a rotation that carried new packets starts the count again,
  // or a SAFE packet it carried would count as seen twice by every member after one rotation.
  s.fullRotations = !full ? 0 : s.fullRotationsSeq === token.seq ? s.fullRotations + 1 : 1;
  s.fullRotationsSeq = token.seq;
  // Two full rotations: every member saw aru = seq twice, so delivered every SAFE packet.
  if (s.fullRotations >= FULL_ROTATIONS_BEFORE_SAFE_HOLD) buf.noteSafeEverywhere(token.seq);
  // The leader's own queue does not stop a hold: it orders those messages on the held token (unless one is SAFE).
  const quiet = full && token.rtr.length === 0 && buf.myAru === token.seq && !s.queue.hasSafeQueued();
  const safeDelivered = s.fullRotations >= FULL_ROTATIONS_BEFORE_SAFE_HOLD || !buf.safePendingSomewhere();
  // The IDLE flag surviving a rotation means nobody withdrew it (nobody has work queued).
  return quiet && safeDelivered && !s.hurryPending && (token.flags & TokenFlag.IDLE) !== 0;
}

/**
 * Leader holding the token with messages queued: order them on the held token without a
 * rotation (module comment, "Sequencer while idle"), or, when it may not (a SAFE message
 * waits, the personal window is used up), send the token round with them.
 */
function useHeldToken(s: TotemState, nowMs: number): void {
  const token = s.heldToken!;
  const allowance = s.queue.hasSafeQueued() ? 0 : Math.min(flowAllowance(s, token), s.personalWindow - s.sequencedWhileHeld);
  if (allowance > 0) {
    const fresh = buildPackets(s, allowance, token);
    s.sequencedWhileHeld += fresh.length;
    s.count('sequencedWhileHeld', fresh.length);
    for (const packet of fresh) s.send('all', packet);
    deliverCurrent(s);
  }
  if (s.queue.hasQueued()) releaseToken(s, nowMs, false);
}

/** Member of an idle ring: packets the holder sent after the last token have a hole here. */
export function missingFromHolder(s: TotemState): boolean {
  return seqLt(s.buf.myAru, s.buf.highestSeq);
}

/** `heartbeat`: the idle ring's periodic rotation (it comes back to be held again at once). */
function releaseToken(s: TotemState, nowMs: number, heartbeat: boolean): void {
  const token = s.heldToken;
  assert(token !== null && s.cur?.leaderVid === s.myVid, 'release a held token at the leader');
  s.heldToken = null;
  s.holdUntilMs = null;
  const sequenced = s.sequencedWhileHeld;
  s.sequencedWhileHeld = 0;
  if (!heartbeat) s.fullRotations = 0;
  // The held token was accepted when it arrived; now run the visit we postponed.
  tokenVisit(s, token, nowMs, false, sequenced);
}

/** Spread's formula (§11.2), the gap rule and the receive-buffer bound. */
function flowAllowance(s: TotemState, t: TokenFields): number {
  if (seqDiff(t.seq, t.aru) >= SEQ_GAP_MAX) return 0;
  const byWindow = Math.min(s.personalWindow, s.window, Math.max(0, s.window + s.personalWindow - t.flowControl));
  const byBuffer = PACKET_SLOTS - 1 - seqDiff(t.seq, s.buf.discardSeq);
  const byGap = SEQ_GAP_MAX - seqDiff(t.seq, t.aru);
  return Math.max(0, Math.min(byWindow, byBuffer, byGap));
}

function requestMissing(s: TotemState, rtr: number[], limit: number): void {
  const buf = s.buf;
  if (rtr.length >= RTR_ITEMS_MAX || !seqLt(buf.myAru, limit)) return;
  const listed = new Set(rtr);
  const bufferEnd = seqAdd(buf.discardSeq, PACKET_SLOTS - 1);
  const end = seqMin(limit, bufferEnd);
  for (let seq = seqAdd(buf.myAru, 1); seqLte(seq, end) && rtr.length < RTR_ITEMS_MAX; seq = seqAdd(seq, 1)) {
    if (buf.get(seq) !== undefined || listed.has(seq)) continue;
    rtr.push(seq);
  }
}

export function resetTokenState(s: TotemState): void {
  s.haveHop = false;
  s.lastHop = 0;
  s.myLastContribution = 0;
  s.lastForwardedSeq = s.startSeq;
  s.lastTokenBytes = null;
  s.retransmitAtMs = null;
  s.tokenLossAtMs = null;
  s.hurryAtMs = null;
  s.heldToken = null;
  s.holdUntilMs = null;
  s.sequencedWhileHeld = 0;
  s.fullRotations = 0;
  s.departedFullSeq = null;
  s.hurryPending = false;
  s.believeIdle = false;
  s.stalledVisits = 0;
}

/** The token's timers: a held token's release or heartbeat, HURRY, re-sending the (commit) token, token loss. */
export function tokenTimers(s: TotemState, nowMs: number): void {
  if (s.heldToken !== null) {
    if (s.hurryPending) {
      releaseToken(s, nowMs, false);
    } else if (s.queue.hasQueued()) {
      useHeldToken(s, nowMs);
    } else if (s.holdUntilMs !== null && nowMs >= s.holdUntilMs) {
      s.count('heartbeats');
      releaseToken(s, nowMs, true);
    }
  }
  if (s.hurryAtMs !== null && nowMs >= s.hurryAtMs) {
    if (s.state === 'op' && s.believeIdle && (s.queue.hasQueued() || missingFromHolder(s))) {
      s.send(s.cur!.leaderVid, encodeHurry(s.header, s.lastHop));
      s.count('hurrySent');
      s.tokenHurry++;
      s.hurryAtMs = nowMs + s.hurryTimeoutMs;
    } else {
      s.hurryAtMs = null;
    }
  }
  if (s.retransmitAtMs !== null && nowMs >= s.retransmitAtMs) {
    assert(s.lastTokenBytes !== null, 'a token retransmission needs a token');
    s.send(s.retransmitTo, s.lastTokenBytes);
    s.count('tokenRetransmits');
    s.retransmitAtMs = nowMs + s.tokenRetransmitMs;
  }
  if (s.tokenLossAtMs !== null && nowMs >= s.tokenLossAtMs) {
    s.count('tokenLoss');
    enterGather(s, 'token loss', nowMs);
  }
}

/** Fills up to `count` datagrams from the send queue; each takes the next seq on `t`. */
export function buildPackets(s: TotemState, count: number, t: TokenFields): Uint8Array[] {
  const out: Uint8Array[] = [];
  while (out.length < count && s.queue.hasQueued()) {
    const seq = seqAdd(t.seq, 1);
    s.writer.begin(s.header, seq, s.myVid, t.round);
    s.queue.fillPacket(s.writer);
    assert(s.writer.fragments > 0, 'a packet carries at least one fragment');
    const packet = s.writer.finishPacket();
    t.seq = seq;
    s.packetsSent++;
    s.buf.store(packet);
    out.push(packet.bytes);
  }
  return out;
}
