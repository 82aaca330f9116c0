/**
 * Membership, second phase (§11.4 FORM): the commit token. The representative (the first
 * daemon of the agreed set in configuration order, the new ring's leader) picks the new
 * ring id and sends the COMMIT token. Its first rotation collects each member's previous
 * ring id, aru, highest seq and safe seq; its second takes every member to recovery, after
 * which the representative starts the new ring's token. Separate because the commit token
 * is the one moment the members' old-ring states meet: everything EVS recovery needs is
 * fixed here, and nothing after it may change what was reported.
 *
 * Ring ids are (leader VID, seconds), raised above every ring any member was in and above
 * every id this daemon formed in this life or an earlier one (ring-id.ts says how the last
 * part survives a restart). Recovery also groups members by old ring id and incarnation, so
 * even a reused id (a restart that kept nothing) cannot mix two rings' messages.
 */
import { assert } from './assert.js';
import { candidates } from './gather.js';
import { type CommitFields, type CommitPacket, encodeCommit, encodeTokenAck } from './packet.js';
import { tokenVisit } from './operational.js';
import { enterRecovery, installAlone } from './recovery.js';
import { seqLte } from './seq.js';
import { NO_RING, ringKey, ringTimeAfter, sameRing } from './ring-id.js';
import { NONE, sameList, type TotemState } from './state.js';

/** Representative: a new ring id above every ring any member was in, then the commit token. */
export function formRing(s: TotemState, members: number[], nowMs: number): void {
  let time = ringTimeAfter(nowMs, s.formedTime);
  if (s.old !== null) time = Math.max(time, s.old.view.membId.time + 1);
  for (const vid of members) {
    const ring = s.joinRing.get(vid);
    if (ring !== undefined) time = Math.max(time, ring.time + 1);
  }
  assert(time <= 0xffffffff, 'ring id time fits u32');
  const id = { procId: s.myVid, time };
  s.formedTime = time;
  s.rememberRing(id);
  if (members.length === 1) {
    installAlone(s, id, nowMs);
    return;
  }
  s.forming = { id, members, lastHop: 0 };
  const entries = members.map((vid) => ({ vid, incarnation: 0, filled: false, oldRing: NO_RING, aru: 0, highest: 0, safe: 0 }));
  enterCommit(s, { hop: 0, rotation: 1, entries }, nowMs);
}

function enterCommit(s: TotemState, c: CommitFields, nowMs: number): void {
  assert(s.state === 'gather' && s.forming !== null, 'commit from gather with a forming ring');
  s.state = 'commit';
  s.count('commitEnters');
  // What we report now is what the others will rely on: the old ring takes no more packets of its own.
  s.frozen = true;
  s.joinAtMs = null;
  s.consensusAtMs = null;
  const mine = c.entries.find((e) => e.vid === s.myVid);
  assert(mine !== undefined && !mine.filled, 'my commit entry is empty');
  const old = s.old;
  mine.incarnation = s.incarnation;
  mine.filled = true;
  mine.oldRing = old?.view.membId ?? NO_RING;
  mine.aru = old?.buf.myAru ?? 0;
  mine.highest = old?.buf.highestSeq ?? 0;
  mine.safe = old?.buf.safeSeq ?? 0;
  s.note(nowMs, `commit: ring ${ringKey(s.forming.id)} with ${s.forming.members.join(', ')}`);
  forwardCommit(s, c, nowMs);
  s.formAtMs = nowMs + s.formTimeoutMs;
}

function forwardCommit(s: TotemState, c: CommitFields, nowMs: number): void {
  const forming = s.forming;
  assert(forming !== null, 'a commit token belongs to a forming ring');
  c.hop = (c.hop + 1) >>> 0;
  forming.lastHop = c.hop;
  const index = forming.members.indexOf(s.myVid);
  const successor = forming.members[(index + 1) % forming.members.length];
  const bytes = encodeCommit({ sender: s.myVid, membId: forming.id, configHash: s.configHash }, c);
  s.send(successor, bytes);
  s.count('commitTokens');
  s.lastTokenBytes = bytes;
  s.lastTokenHop = c.hop;
  s.retransmitTo = successor;
  s.retransmitAtMs = nowMs + s.tokenRetransmitMs;
}

export function onCommit(s: TotemState, c: CommitPacket, nowMs: number): void {
  const forming = s.forming;
  if (forming !== null && sameRing(c.membId, forming.id)) {
    if (seqLte(c.hop, forming.lastHop)) {
      s.count('duplicateToken');
      s.send(c.sender, encodeTokenAck({ sender: s.myVid, membId: forming.id, configHash: s.configHash }, c.hop));
      return;
    }
    const representative = forming.members[0] === s.myVid;
    if (s.state === 'commit') {
      if (c.rotation === 1) {
        // Back at the representative: every member has filled its entry.
        if (!representative || !c.entries.every((e) => e.filled)) {
          s.count('commitMismatch');
          return;
        }
        c.rotation = 2;
      }
      forming.lastHop = c.hop;
      enterRecovery(s, c, nowMs);
      forwardCommit(s, c, nowMs);
      return;
    }
    if (s.state === 'recovery' && representative && c.rotation === 2) {
      // Second rotation back: every member is in recovery. The new ring's token starts here.
      forming.lastHop = c.hop;
      const start = s.startSeq;
      tokenVisit(s, { hop: c.hop, seq: start, aru: start, aruSetter: NONE, flowControl: 0, round: 0, flags: 0, rtr: [] }, nowMs);
      return;
    }
    s.count('commitMismatch');
    return;
  }
  if (s.state !== 'gather' || c.rotation !== 1) {
    s.count('commitMismatch');
    return;
  }
  const members = c.entries.map((e) => e.vid);
  // A commit token of an attempt we already gave up (its id is remembered) is not taken up again.
  if (!sameList(members, candidates(s)) || c.membId.procId !== members[0] || members[0] === s.myVid || s.history.includes(ringKey(c.membId))) {
    s.count('commitMismatch');
    return;
  }
  s.forming = { id: { ...c.membId }, members, lastHop: c.hop };
  s.rememberRing(c.membId);
  enterCommit(s, c, nowMs);
}
