/**
 * Everything one daemon's TotemRing knows: its settings, the membership state, the token
 * state, the rings it remembers, its counters and the effects waiting for ready(). The
 * phase modules (operational, gather, commit, recovery, delivery) are functions over this
 * one object, so that each reads as one part of the protocol while the state they share
 * stays in one place, declared once. Only the helpers every phase needs live here.
 */
import { assert } from './assert.js';
import { PacketBuffer, type MessageSink } from './buffer.js';
import {
  ACCELERATED_WINDOW_DEFAULT,
  DATAGRAM_BYTES_DEFAULT,
  DATAGRAM_BYTES_MAX,
  DATAGRAM_BYTES_MIN,
  DIAGNOSTIC_LOG_ENTRIES_MAX,
  FORM_TIMEOUT_MS_DEFAULT,
  GATHER_TIMEOUT_MS_DEFAULT,
  HURRY_TIMEOUT_MS_DEFAULT,
  JOIN_TIMEOUT_MS_DEFAULT,
  LOOKUP_TIMEOUT_MS_DEFAULT,
  MEMBERS_MAX,
  PERSONAL_WINDOW_DEFAULT,
  RING_HISTORY_MAX,
  SEND_QUEUE_BYTES_DEFAULT,
  SEND_QUEUE_MESSAGES_DEFAULT,
  TOKEN_TIMEOUT_MS_DEFAULT,
  WINDOW_DEFAULT,
  WINDOW_MAX,
} from './limits.js';
import { DataPacketWriter, type PacketHeader, RECOVERED_OVERHEAD_BYTES, type TokenFields } from './packet.js';
import { NO_RING, ringKey } from './ring-id.js';
import { SendQueue } from './send-queue.js';
import { seqAdd, seqLte } from './seq.js';
import type { TotemOptions } from './totem.js';
import type { MembershipId, OutboundPacket, RingEvent } from './types.js';

export type MembershipState = 'op' | 'gather' | 'commit' | 'recovery';

/** No daemon (the token's aru setter when aru = seq). */
export const NONE = 0;

/** One ring as this daemon sees it. */
export interface RingView {
  membId: MembershipId;
  /** Configuration order; members[0] leads. */
  members: number[];
  memberSet: ReadonlySet<number>;
  successor: number;
  predecessor: number;
  leaderVid: number;
  /** Each member's incarnation when the ring formed (restart detection). */
  incarnations: ReadonlyMap<number, number>;
  /** Each member's previous ring, parallel to members. */
  previous: MembershipId[];
}

/** What EVS recovery does for this daemon's previous ring (§7.3). */
export interface RecoveryPlan {
  /** The previous ring (null: none, this is the daemon's first ring). */
  oldRing: MembershipId | null;
  /** Transitional configuration: members of the new ring that come from oldRing. */
  trans: number[];
  transSet: ReadonlySet<number>;
  /** Highest seq any of them has: old messages beyond it do not exist for us. */
  maxHighest: number;
  /** SAFE packets up to here are held by every member of the old ring. */
  safeBound: number;
}

/** The ring a commit token is forming. */
export interface Forming {
  id: MembershipId;
  members: number[];
  /** Highest commit-token hop seen or sent (duplicates are acked). */
  lastHop: number;
}

const COUNTER_NAMES = [
  'malformed', 'foreignHash', 'unknownSender', 'foreignRing', 'staleRing', 'duplicateData', 'outOfWindow',
  'duplicateToken', 'tokenRetransmits', 'tokenAcks', 'tokenLoss', 'tokenHolds', 'heartbeats', 'hurrySent',
  'hurryReceived', 'badFragments', 'joinsSent', 'joinsReceived', 'staleJoins', 'probesSent', 'consensusTimeouts',
  'failedDaemons', 'commitTokens', 'commitMismatch', 'lateOldPackets', 'recoveryPacketsSent', 'recoveredPackets',
  'installs', 'gatherStart', 'gatherTokenLoss', 'gatherForeignMessage', 'gatherJoin', 'gatherRestart',
  'gatherFailedToReceive', 'gatherFormTimeout', 'commitEnters', 'recoveryEnters', 'lateTicks', 'sequencedWhileHeld',
] as const;

/** Dropped-packet and protocol counters (diagnostics()). */
export type CounterName = (typeof COUNTER_NAMES)[number];

export function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class TotemState {
  // ------------------------------------------------------------ settings
  readonly myVid: number;
  /** Configured daemons, configuration order. */
  readonly configured: readonly number[];
  readonly configIndex: ReadonlyMap<number, number>;
  readonly configHash: number;
  readonly incarnation: number;
  readonly solo: boolean;
  readonly startSeq: number;
  readonly traceDeliveries: boolean;

  window: number;
  personalWindow: number;
  readonly acceleratedRing: boolean;
  acceleratedWindow: number;
  readonly tokenTimeoutMs: number;
  readonly hurryTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly tokenRetransmitMs: number;
  readonly joinTimeoutMs: number;
  readonly gatherTimeoutMs: number;
  readonly formTimeoutMs: number;
  readonly lookupTimeoutMs: number;
  readonly writer: DataPacketWriter;
  readonly queue: SendQueue;

  // ------------------------------------------------------------ membership state
  state: MembershipState = 'gather';
  /** op, recovery: the ring the token runs on (in recovery: the ring being installed). */
  cur: RingView | null = null;
  /** The receive buffer of `cur` (a spare one while there is no `cur`). */
  buf: PacketBuffer;
  /** gather, commit, recovery: the ring installed last and its buffer (null: none yet). */
  old: { view: RingView; buf: PacketBuffer } | null = null;
  /** commit, recovery: the old buffer takes no more packets of the old ring (its state is on the commit token). */
  frozen = false;
  header: PacketHeader;

  // gather
  readonly procSet = new Set<number>();
  readonly failSet = new Set<number>();
  /** Daemons whose last JOIN had exactly our sets, with the attempt and incarnation it carried. */
  consensus = new Map<number, { attempt: number; incarnation: number }>();
  /** Gathers entered so far (carried in JOINs: a higher one means the sender gathered again). */
  attempt = 0;
  gatherStartMs = 0;
  joinAtMs: number | null = null;
  consensusAtMs: number | null = null;
  /** The ring each daemon last reported in a JOIN (new ring ids must exceed them all). */
  readonly joinRing = new Map<number, MembershipId>();
  /** Highest ring id time formed here, in this life or (ringTimeFloor) an earlier one: new ids go above it. */
  formedTime: number;

  // commit
  forming: Forming | null = null;
  formAtMs: number | null = null;

  // recovery
  plan: RecoveryPlan | null = null;
  recoveryQueue: number[] = [];
  recoveryHead = 0;
  recoveryQuietVisits = 0;

  // op
  lookupAtMs: number | null = null;
  /** Ring ids installed or formed here, oldest first: their packets are stale. */
  readonly history: string[] = [];
  /** What I held of rings I left (simulator SAFE checks), by ring key; bounded with history. */
  readonly historyHeld = new Map<string, { aru: number; above: ReadonlySet<number> }>();
  stalledVisits = 0;
  stalledAru = 0;

  readonly heard = new Set<number>();
  readonly refused = new Map<number, string>();
  readonly unknownLogged = new Set<number>();
  readonly log: { atMs: number; text: string }[] = [];
  readonly counters = Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as Record<CounterName, number>;

  // Token state (of `cur`, or of the commit token being passed).
  haveHop = false;
  lastHop = 0;
  myLastContribution = 0;
  /** seq on the token I last forwarded (only ask for seqs up to here). */
  lastForwardedSeq: number;
  lastTokenBytes: Uint8Array | null = null;
  lastTokenHop = 0;
  retransmitTo = 0;
  retransmitAtMs: number | null = null;
  tokenLossAtMs: number | null = null;
  hurryAtMs: number | null = null;
  /** Leader only: token kept while the ring is idle, released for work or every heartbeat. */
  heldToken: TokenFields | null = null;
  holdUntilMs: number | null = null;
  /** Leader: packets sequenced while holding the token since it last went round. */
  sequencedWhileHeld = 0;
  /** Leader: consecutive rotations that left with aru = seq and came back unchanged. */
  fullRotations = 0;
  /** Leader: the seq those full rotations came back with. */
  fullRotationsSeq = 0;
  /** Leader: the last token it sent left with aru = seq (this seq). */
  departedFullSeq: number | null = null;
  hurryPending = false;
  /** Non-leader: the last token said the leader may hold it. */
  believeIdle = false;
  lastNowMs: number;

  // Effects, taken by ready().
  packets: OutboundPacket[] = [];
  events: RingEvent[] = [];

  // Status counters.
  packetsSent = 0;
  packetsReceived = 0;
  packetsDelivered = 0;
  retransmissions = 0;
  tokenHurry = 0;
  tokenRounds = 0;
  membershipChanges = 0;

  readonly emit: MessageSink = (ordinal, origin, safe, payload, packetSeq) => {
    this.events.push(
      this.traceDeliveries
        ? { kind: 'deliver', seq: ordinal, origin, safe, payload, packetSeq }
        : { kind: 'deliver', seq: ordinal, origin, safe, payload },
    );
  };
  readonly badFragment = (): void => {
    this.counters.badFragments++;
  };

  constructor(options: TotemOptions) {
    const members = options.members;
    assert(members.length >= 1 && members.length <= MEMBERS_MAX, `member count ${members.length}`);
    assert(new Set(members).size === members.length, 'member VIDs must be distinct');
    assert(members.every((v) => Number.isInteger(v) && v > 0 && v <= 0xffffffff), 'member VIDs are non-zero u32');
    assert(members.includes(options.myVid), `my VID ${options.myVid} is not a member`);
    this.myVid = options.myVid;
    this.configured = [...members];
    this.configIndex = new Map(members.map((v, i) => [v, i]));
    this.configHash = options.configHash >>> 0;
    this.solo = members.length === 1;
    this.incarnation = (options.incarnation ?? Math.floor(options.nowMs)) >>> 0;
    this.traceDeliveries = options.traceDeliveries ?? false;

    this.window = options.window ?? WINDOW_DEFAULT;
    this.personalWindow = options.personalWindow ?? PERSONAL_WINDOW_DEFAULT;
    this.acceleratedRing = options.acceleratedRing ?? false;
    this.acceleratedWindow = this.acceleratedRing ? (options.acceleratedWindow ?? ACCELERATED_WINDOW_DEFAULT) : 0;
    this.tokenTimeoutMs = options.tokenTimeoutMs ?? TOKEN_TIMEOUT_MS_DEFAULT;
    this.hurryTimeoutMs = options.hurryTimeoutMs ?? HURRY_TIMEOUT_MS_DEFAULT;
    // The idle heartbeat must come round well within the token timeout, whatever the configuration says.
    this.heartbeatMs = Math.max(1, Math.min(this.hurryTimeoutMs, Math.floor(this.tokenTimeoutMs / 3)));
    this.tokenRetransmitMs = options.tokenRetransmitMs ?? Math.max(1, Math.floor(this.hurryTimeoutMs / 5));
    this.joinTimeoutMs = options.joinTimeoutMs ?? JOIN_TIMEOUT_MS_DEFAULT;
    this.gatherTimeoutMs = options.gatherTimeoutMs ?? GATHER_TIMEOUT_MS_DEFAULT;
    this.formTimeoutMs = options.formTimeoutMs ?? FORM_TIMEOUT_MS_DEFAULT;
    this.lookupTimeoutMs = options.lookupTimeoutMs ?? LOOKUP_TIMEOUT_MS_DEFAULT;
    const datagramBytes = options.datagramBytes ?? DATAGRAM_BYTES_DEFAULT;
    const sendQueueMessagesMax = options.sendQueueMessagesMax ?? SEND_QUEUE_MESSAGES_DEFAULT;
    const sendQueueBytesMax = options.sendQueueBytesMax ?? SEND_QUEUE_BYTES_DEFAULT;
    assert(this.window > 0 && this.window <= WINDOW_MAX, `window ${this.window}`);
    assert(this.personalWindow > 0 && this.personalWindow <= this.window, `personal window ${this.personalWindow}`);
    assert(this.acceleratedWindow >= 0 && this.acceleratedWindow <= this.personalWindow, `accelerated window ${this.acceleratedWindow}`);
    assert(
      datagramBytes >= DATAGRAM_BYTES_MIN && datagramBytes <= DATAGRAM_BYTES_MAX - RECOVERED_OVERHEAD_BYTES,
      `datagram bytes ${datagramBytes} (a recovery packet adds ${RECOVERED_OVERHEAD_BYTES})`,
    );
    assert(
      this.tokenRetransmitMs > 0 && this.hurryTimeoutMs > 0 && this.tokenTimeoutMs > 0 && this.joinTimeoutMs > 0 &&
        this.gatherTimeoutMs > 0 && this.formTimeoutMs > 0 && this.lookupTimeoutMs > 0,
      'timeouts > 0',
    );
    assert(sendQueueMessagesMax > 0 && sendQueueBytesMax > 0, 'send queue bounds > 0');
    this.writer = new DataPacketWriter(datagramBytes);
    this.queue = new SendQueue(sendQueueMessagesMax, sendQueueBytesMax);

    this.startSeq = (options.initialSeq ?? 0) >>> 0;
    this.buf = new PacketBuffer(this.startSeq, this.badFragment);
    this.lastForwardedSeq = this.startSeq;
    this.lastNowMs = options.nowMs;
    this.formedTime = options.ringTimeFloor ?? 0;
    this.header = { sender: this.myVid, membId: NO_RING, configHash: this.configHash };
  }

  send(to: number | 'all', bytes: Uint8Array): void {
    this.packets.push({ to, bytes });
  }

  count(name: CounterName, by = 1): void {
    this.counters[name] += by;
  }

  note(atMs: number, text: string): void {
    if (this.log.length >= DIAGNOSTIC_LOG_ENTRIES_MAX) this.log.shift();
    this.log.push({ atMs, text });
  }

  makeView(membId: MembershipId, members: number[], incarnations: ReadonlyMap<number, number>, previous: MembershipId[]): RingView {
    const index = members.indexOf(this.myVid);
    assert(index >= 0, 'I am a member of my ring');
    assert(previous.length === members.length, 'a previous ring per member');
    const n = members.length;
    return {
      membId: { ...membId },
      members: [...members],
      memberSet: new Set(members),
      successor: members[(index + 1) % n],
      predecessor: members[(index + n - 1) % n],
      leaderVid: members[0],
      incarnations,
      previous,
    };
  }

  /** Drops the commit and recovery state: a new gather abandons the ring being formed, an install completes it. */
  forgetForming(): void {
    this.frozen = false;
    this.forming = null;
    this.plan = null;
    this.recoveryQueue = [];
    this.recoveryHead = 0;
  }

  inConfigOrder(set: ReadonlySet<number>): number[] {
    return this.configured.filter((vid) => set.has(vid));
  }

  /** Remember a ring id (its packets are stale from now on), with what I held there if I leave it. */
  rememberRing(id: MembershipId, left?: PacketBuffer): void {
    const key = ringKey(id);
    if (!this.history.includes(key)) {
      this.history.push(key);
      if (this.history.length > RING_HISTORY_MAX) this.historyHeld.delete(this.history.shift()!);
    }
    if (left !== undefined) {
      const above = new Set<number>();
      for (let seq = seqAdd(left.myAru, 1); seqLte(seq, left.highestSeq); seq = seqAdd(seq, 1)) if (left.get(seq) !== undefined) above.add(seq);
      this.historyHeld.set(key, { aru: left.myAru, above });
    }
  }
}
