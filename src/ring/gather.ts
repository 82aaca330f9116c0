/**
 * Membership, first phase (§11.4 GATHER): agreeing on who is in the next ring. A daemon
 * leaves normal operation on token loss, a JOIN from a daemon outside its ring (or from a
 * member that restarted or lost the token), a packet of a ring it does not know, or a
 * stalled aru; the reason is logged and counted. Daemons broadcast JOIN (proc set, fail
 * set) every JoinTimeout and merge the sets they hear; a daemon that did not agree within
 * GatherTimeout is put in the fail set. Once every daemon of proc − fail sent identical
 * sets, the first of them in configuration order forms the ring (commit.ts). Separate
 * because it is the only phase that talks in JOINs and decides membership by agreement.
 *
 * Deviations from Spread / the Totem paper (deliberate):
 *  - No SEG/REPRESENTED states: every daemon gathers for itself (Corosync style), and the
 *    ring's leader and representative is the first daemon of the new ring in configuration
 *    order. Alive, Rep and Seg timeouts are accepted in spread.conf and unused.
 *  - A freshly started daemon gathers with only itself in its proc set and forms a ring of
 *    one if nobody answers within GatherTimeout; others merge with it through JOINs. Its
 *    first ring has no transitional configuration. Each incarnation of a daemon carries a
 *    number in JOINs and on the commit token (TotemOptions.incarnation: the daemon counts its
 *    lives), so a restarted daemon is told apart from a stale JOIN of its previous life.
 *  - Each gather attempt (re-entered after a failed commit or recovery) starts with an empty
 *    fail set, keeping only the daemons not yet failed; in op, a JOIN whose fail set holds us is
 *    ignored (its sender gathers without us and probes again once it has a ring). Both keep a
 *    stale fail set from spreading and splitting rings that could merge.
 *  - A gather lasts at least one JoinTimeout (a GatherTimeout when all its daemons just started
 *    or when it would form a ring of one), so daemons starting together form one ring.
 *  - Merges: the leader of a ring missing configured daemons probes them (a JOIN) every
 *    LookupTimeout; a daemon in op that hears a JOIN, a data packet or a token from a
 *    configured daemon outside its ring (of a ring id it does not remember) gathers.
 */
import { assert } from './assert.js';
import { PacketBuffer } from './buffer.js';
import { formRing } from './commit.js';
import { encodeJoin, JoinFlag, type JoinPacket, type Packet, PacketType } from './packet.js';
import { resetTokenState } from './operational.js';
import { seqLte } from './seq.js';
import { NO_RING, ringKey, sameRing } from './ring-id.js';
import { type CounterName, sameList, type TotemState } from './state.js';

/** Why a daemon left normal operation (or re-started a gather). Logged and counted. */
export type GatherReason = 'start' | 'token loss' | 'foreign message' | 'join' | 'restart' | 'failed to receive' | 'form timeout';

const GATHER_COUNTERS: Record<GatherReason, CounterName> = {
  start: 'gatherStart',
  'token loss': 'gatherTokenLoss',
  'foreign message': 'gatherForeignMessage',
  join: 'gatherJoin',
  restart: 'gatherRestart',
  'failed to receive': 'gatherFailedToReceive',
  'form timeout': 'gatherFormTimeout',
};

export function enterGather(s: TotemState, reason: GatherReason, nowMs: number, trigger?: number): void {
  const from = s.state;
  s.count(GATHER_COUNTERS[reason]);
  if (from === 'op') {
    const cur = s.cur;
    assert(cur !== null, 'op has a ring');
    // The ring we leave becomes the old ring: its undelivered messages wait for EVS.
    s.old = { view: cur, buf: s.buf };
    s.procSet.clear();
    s.failSet.clear();
    for (const vid of cur.members) s.procSet.add(vid);
  } else {
    if (from === 'recovery') {
      assert(s.cur !== null, 'recovery has a ring');
      s.rememberRing(s.cur.membId, s.buf);
    }
    // A new attempt starts from the daemons we still believe in, with an empty fail set: a
    // fail set carried from attempt to attempt (a daemon that never gets to install) would
    // spread to every daemon that hears our JOINs and keep splitting rings that could merge.
    for (const vid of s.failSet) s.procSet.delete(vid);
    s.failSet.clear();
  }
  s.note(nowMs, `gather (${reason}) from ${from}${trigger === undefined ? '' : `, daemon ${trigger}`}`);
  s.state = 'gather';
  s.cur = null;
  s.buf = new PacketBuffer(s.startSeq, s.badFragment);
  s.procSet.add(s.myVid);
  if (trigger !== undefined && !s.failSet.has(trigger)) s.procSet.add(trigger);
  s.forgetForming();
  s.formAtMs = null;
  resetTokenState(s);
  s.lookupAtMs = null;
  // Fragments of the head message that went out in the ring we leave are never completed there: start it again.
  s.queue.restartHead();
  s.header = { sender: s.myVid, membId: s.old?.view.membId ?? NO_RING, configHash: s.configHash };
  s.attempt = (s.attempt + 1) >>> 0;
  s.consensus = new Map([[s.myVid, { attempt: s.attempt, incarnation: s.incarnation }]]);
  s.gatherStartMs = nowMs;
  s.consensusAtMs = nowMs + s.gatherTimeoutMs;
  s.joinAtMs = nowMs + s.joinTimeoutMs;
  sendJoin(s);
}

function sendJoin(s: TotemState): void {
  s.send(
    'all',
    encodeJoin(s.header, {
      flags: 0,
      incarnation: s.incarnation,
      attempt: s.attempt,
      proc: s.inConfigOrder(s.procSet),
      fail: s.inConfigOrder(s.failSet),
    }),
  );
  s.count('joinsSent');
}

/** Leader of an incomplete ring: tell the configured daemons outside it that we are here. */
export function probe(s: TotemState): void {
  const cur = s.cur;
  assert(cur !== null && s.state === 'op', 'probe from op');
  let bytes: Uint8Array | null = null;
  for (const vid of s.configured) {
    // Refused daemons too: so that they learn of us and say why they refuse us as well.
    if (cur.memberSet.has(vid)) continue;
    bytes ??= encodeJoin(s.header, { flags: JoinFlag.PROBE, incarnation: s.incarnation, attempt: s.attempt, proc: cur.members, fail: [] });
    s.send(vid, bytes);
    s.count('probesSent');
  }
}

export function onJoin(s: TotemState, j: JoinPacket, nowMs: number): void {
  s.count('joinsReceived');
  const sender = j.sender;
  if (!j.proc.every((v) => s.configIndex.has(v)) || !j.fail.every((v) => s.configIndex.has(v))) {
    s.count('malformed');
    return;
  }
  s.joinRing.set(sender, j.membId);
  switch (s.state) {
    case 'op': {
      const cur = s.cur!;
      if (!cur.memberSet.has(sender)) {
        // It has given up on us for its current gather: answering would only make us give up
        // on it in turn and spread that to our ring. It probes again once it has a ring.
        if (j.fail.includes(s.myVid)) {
          s.count('staleJoins');
          return;
        }
        enterGather(s, 'join', nowMs, sender);
      } else if (cur.incarnations.get(sender) !== j.incarnation) {
        enterGather(s, 'restart', nowMs, sender);
      } else if (sameRing(j.membId, cur.membId)) {
        enterGather(s, 'join', nowMs, sender); // a member of our ring lost the token
      } else {
        s.count('staleJoins'); // sent before the sender installed our ring
        return;
      }
      break;
    }
    case 'commit':
    case 'recovery':
      if (isStaleJoin(s, j)) {
        s.count('staleJoins');
        return;
      }
      enterGather(s, 'join', nowMs, sender);
      break;
    case 'gather':
      break;
  }
  gatherJoin(s, j, nowMs);
}

/** In commit or recovery: a JOIN that changes nothing (sent before the sender agreed). */
function isStaleJoin(s: TotemState, j: JoinPacket): boolean {
  // We gave up on this daemon in this membership; it merges after we install.
  if (s.failSet.has(j.sender)) return true;
  const forming = s.forming;
  assert(forming !== null, 'commit and recovery have a forming ring');
  if (!forming.members.includes(j.sender)) return false;
  if (!sameList(j.proc, s.inConfigOrder(s.procSet)) || !sameList(j.fail, s.inConfigOrder(s.failSet))) return false;
  const agreed = s.consensus.get(j.sender);
  return agreed === undefined || (agreed.incarnation === j.incarnation && seqLte(j.attempt, agreed.attempt));
}

/** Totem's join rule: merge the sender's sets into ours; equal sets count as its agreement. */
export function gatherJoin(s: TotemState, j: JoinPacket, nowMs: number): void {
  assert(s.state === 'gather', 'join merge in gather');
  const sender = j.sender;
  if (s.failSet.has(sender)) {
    s.count('staleJoins');
    return;
  }
  let changed = false;
  if (j.fail.includes(s.myVid)) {
    // It has given up on us: no ring can hold both of us in this membership.
    s.failSet.add(sender);
    s.procSet.add(sender);
    changed = true;
  } else {
    for (const vid of j.proc) {
      if (!s.procSet.has(vid)) (s.procSet.add(vid), (changed = true));
    }
    for (const vid of j.fail) {
      if (!s.failSet.has(vid)) (s.failSet.add(vid), s.procSet.add(vid), (changed = true));
    }
    if (!s.procSet.has(sender)) (s.procSet.add(sender), (changed = true));
  }
  if (changed) {
    s.consensus = new Map([[s.myVid, { attempt: s.attempt, incarnation: s.incarnation }]]);
    s.consensusAtMs = nowMs + s.gatherTimeoutMs;
    sendJoin(s);
  }
  if (!s.failSet.has(sender) && sameList(j.proc, s.inConfigOrder(s.procSet)) && sameList(j.fail, s.inConfigOrder(s.failSet))) {
    s.consensus.set(sender, { attempt: j.attempt, incarnation: j.incarnation });
  }
  checkConsensus(s, nowMs);
}

/** proc − fail, configuration order: the ring we are trying to form. */
export function candidates(s: TotemState): number[] {
  return s.configured.filter((vid) => s.procSet.has(vid) && !s.failSet.has(vid));
}

function checkConsensus(s: TotemState, nowMs: number): void {
  if (s.state !== 'gather') return;
  const members = candidates(s);
  assert(members.includes(s.myVid), 'I am never in my own fail set');
  for (const vid of members) if (!s.consensus.has(vid)) return;
  // Let JOINs of daemons starting at the same moment arrive (the join tick checks again).
  // Alone, or when every one of us just started (a cold start), wait a whole GatherTimeout:
  // daemons started together by hand or by a script should form one ring, not first rings
  // of one or two that then merge. A daemon restarting into a running ring merges sooner.
  const coldStart = members.every((vid) => (vid === s.myVid ? s.old === null : sameRing(s.joinRing.get(vid) ?? NO_RING, NO_RING)));
  const least = members.length === 1 || coldStart ? s.gatherTimeoutMs : s.joinTimeoutMs;
  if (nowMs < s.gatherStartMs + least) return;
  if (members[0] !== s.myVid) return; // the representative sends the commit token
  formRing(s, members, nowMs);
}

function consensusTimeout(s: TotemState, nowMs: number): void {
  const missing = candidates(s).filter((vid) => !s.consensus.has(vid));
  if (missing.length === 0 && candidates(s)[0] === s.myVid) {
    // Everyone agreed and we form the ring: we were only waiting for the least gather time.
    checkConsensus(s, nowMs);
    if (s.state !== 'gather') return;
  }
  s.count('consensusTimeouts');
  for (const vid of missing) {
    s.failSet.add(vid);
    s.count('failedDaemons');
  }
  // Everyone agreed but no ring came: the representative may be gone; ask for fresh agreement.
  s.note(nowMs, missing.length > 0 ? `consensus timeout: failing ${missing.join(', ')}` : 'consensus timeout: no commit token, gathering again');
  s.consensus = new Map([[s.myVid, { attempt: s.attempt, incarnation: s.incarnation }]]);
  s.consensusAtMs = nowMs + s.gatherTimeoutMs;
  sendJoin(s);
  checkConsensus(s, nowMs);
}

/** A data packet or token of a ring that is not ours. */
export function onForeign(s: TotemState, packet: Packet, nowMs: number): void {
  const cur = s.cur;
  // Our own earlier rings, or a member of our ring talking in an older one: delayed packets.
  if (s.history.includes(ringKey(packet.membId)) || (cur !== null && cur.memberSet.has(packet.sender))) {
    s.count('staleRing');
    return;
  }
  s.count('foreignRing');
  // A live daemon outside our ring: merge (JOINs do the same in the other states).
  if (s.state === 'op' && (packet.type === PacketType.DATA || packet.type === PacketType.TOKEN)) {
    enterGather(s, 'foreign message', nowMs, packet.sender);
  }
}

/** The gather's timers: the consensus timeout, then the periodic JOIN. */
export function gatherTimers(s: TotemState, nowMs: number): void {
  if (s.consensusAtMs !== null && nowMs >= s.consensusAtMs) consensusTimeout(s, nowMs);
  if (s.state === 'gather' && s.joinAtMs !== null && nowMs >= s.joinAtMs) {
    sendJoin(s);
    s.joinAtMs = nowMs + s.joinTimeoutMs;
    checkConsensus(s, nowMs);
  }
}
