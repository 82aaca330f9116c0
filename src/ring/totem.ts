/**
 * TotemRing: total order over a logical token ring (Totem single-ring protocol,
 * as Spread runs it, §11.2–11.3 of spread-protocol.md). A pure state machine:
 * inputs are submit/receive/tick with time as an argument, effects leave via
 * ready(). No sockets, timers, Date.now() or Math.random() in this file.
 *
 * How it works, in one paragraph: the token visits the members in configuration
 * order. The holder answers retransmission requests, multicasts up to its flow
 * control allowance of new packets (each takes the next seq; small messages are
 * packed, large ones fragmented), asks for what it misses, updates the ring aru
 * and passes the token on. A packet is delivered (AGREED) once every earlier seq
 * is here, and, if it ends a SAFE message, once the aru seen on two successive
 * token visits covers it (then every member holds it). Packets every member holds
 * are discarded.
 *
 * Deviations from Spread / the Totem paper (deliberate):
 *  - Wire format is our own (packet.ts): big-endian, no endian marker, 36-byte data header.
 *  - Start-up is a placeholder for membership: every daemon sends HELLO; the leader
 *    (first configured member) forms the ring once it heard every configured member
 *    with our configuration hash. No partial rings, no merges, no EVS recovery yet.
 *    `enterGather` is where token loss and foreign rings will go (next issue).
 *    A daemon in gather joins only on the first rotation (token hop = its position),
 *    so a daemon restarting later stays out (the leader notes it) instead of
 *    joining with none of the old packets.
 *  - Token loss does not yet start membership: it is counted and logged, and
 *    recovery relies on token retransmission (below). Data sequence numbers are
 *    32-bit and compared wrap-safely instead of forcing a membership at 2^30.
 *  - Token retransmission: the forwarder re-sends its last token every
 *    `tokenRetransmitMs` (default HurryTimeout / 5) until it sees a newer token or a TOKEN_ACK (Totem style;
 *    Spread only lets the leader re-send after HurryTimeout). Duplicates are
 *    recognised by the token's hop counter and answered with TOKEN_ACK.
 *  - Idle ring: the leader holds the token after QUIET_VISITS_BEFORE_HOLD quiet
 *    visits and acks its predecessor; the rotation before the hold carries an IDLE
 *    flag so the others drop their token-loss timers. A member with new messages
 *    sends HURRY to the leader (re-sent every HurryTimeout until a token arrives).
 *  - Retransmission requests only cover seqs at or below the seq of the token we
 *    last forwarded (a full rotation old), in both variants: on one host the token
 *    often overtakes the data sent just before it, and early requests only
 *    duplicate traffic. Spread applies this rule to the accelerated ring only.
 *  - SAFE granularity is the packet: a packet that completes a SAFE message waits
 *    (with everything after it) until the safe point covers it.
 *  - Flow control: Spread's formula min(PW, W, max(0, W + PW − fc)) minus this
 *    visit's retransmissions; plus the receive-buffer bound.
 *  - A message is fragmented wherever a datagram fills up (not only when it is larger
 *    than a datagram), so 1000-byte messages pack ~1.4 per 1472-byte datagram.
 *  - Event `seq` is the message's position in this ring's total order (1, 2, …),
 *    not the packet seq, since several messages share a packet.
 */
import { assert } from './assert.js';
import {
  ACCELERATED_WINDOW_DEFAULT,
  DATAGRAM_BYTES_DEFAULT,
  DATAGRAM_BYTES_MAX,
  DATAGRAM_BYTES_MIN,
  DIAGNOSTIC_LOG_ENTRIES_MAX,
  HELLO_INTERVAL_MS_DEFAULT,
  HURRY_TIMEOUT_MS_DEFAULT,
  MEMBERS_MAX,
  MESSAGE_BYTES_MAX,
  PACKET_SLOTS,
  PERSONAL_WINDOW_DEFAULT,
  QUIET_VISITS_BEFORE_HOLD,
  RTR_ITEMS_MAX,
  SEND_QUEUE_BYTES_DEFAULT,
  SEND_QUEUE_MESSAGES_DEFAULT,
  SEQ_GAP_MAX,
  TOKEN_TIMEOUT_MS_DEFAULT,
  WINDOW_DEFAULT,
  WINDOW_MAX,
} from './limits.js';
import {
  type DataPacket,
  DataPacketWriter,
  decodePacket,
  encodeHello,
  encodeHurry,
  encodeToken,
  encodeTokenAck,
  FragmentFlag,
  type Packet,
  type PacketHeader,
  PacketType,
  retransmissionOf,
  type TokenFields,
  TokenFlag,
  type TokenPacket,
} from './packet.js';
import { seqAdd, seqDiff, seqGt, seqLt, seqLte, seqMin } from './seq.js';
import type {
  MembershipId,
  OutboundPacket,
  Ring,
  RingDiagnostics,
  RingEvent,
  RingReady,
  RingState,
  RingStatus,
} from './types.js';

export interface TotemOptions {
  myVid: number;
  /** Member VIDs in configuration order (token order; the first is the leader). */
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
  /** HURRY re-send period (§8.5 HurryTimeout). */
  hurryTimeoutMs?: number;
  /** Token re-send period until the successor shows it has the token. Default hurry/5. */
  tokenRetransmitMs?: number;
  /** Start-up HELLO period. */
  helloIntervalMs?: number;
  datagramBytes?: number;
  sendQueueMessagesMax?: number;
  sendQueueBytesMax?: number;
  /** First packet gets initialSeq + 1 (tests start near 2^32 to exercise wrap-around). Same on all members. */
  initialSeq?: number;
}

type Phase = 'gather' | 'op';

/** Fragments shorter than this are not split off the head of a message; the next packet takes it whole. */
const SPLIT_BYTES_MIN = 64;
/** Consumed send-queue entries tolerated at the head before the arrays are compacted. */
const QUEUE_COMPACT_AFTER = 1024;
const NONE = 0;

interface Partial {
  chunks: Uint8Array[];
  bytes: number;
}

type CounterName =
  | 'malformed'
  | 'foreignHash'
  | 'unknownSender'
  | 'foreignRing'
  | 'notOperational'
  | 'duplicateData'
  | 'outOfWindow'
  | 'duplicateToken'
  | 'tokenRetransmits'
  | 'tokenAcks'
  | 'tokenLoss'
  | 'tokenHolds'
  | 'hurrySent'
  | 'hurryReceived'
  | 'badFragments';

export class TotemRing implements Ring {
  readonly myVid: number;
  readonly members: readonly number[];
  private readonly memberSet: ReadonlySet<number>;
  readonly leaderVid: number;
  private readonly configHash: number;
  private readonly successor: number;
  private readonly myIndex: number;
  private readonly solo: boolean;

  private readonly window: number;
  private readonly personalWindow: number;
  private readonly acceleratedRing: boolean;
  private readonly acceleratedWindow: number;
  private readonly tokenTimeoutMs: number;
  private readonly hurryTimeoutMs: number;
  private readonly tokenRetransmitMs: number;
  private readonly helloIntervalMs: number;
  private readonly sendQueueMessagesMax: number;
  private readonly sendQueueBytesMax: number;
  private readonly writer: DataPacketWriter;

  private phase: Phase;
  private membId: MembershipId = { procId: 0, time: 0 };
  private header: PacketHeader;
  private readonly heard = new Set<number>();
  private readonly refused = new Map<number, string>();
  private readonly unknownLogged = new Set<number>();
  private readonly restartNoted = new Set<number>();
  private readonly log: { atMs: number; text: string }[] = [];
  private readonly counters: Record<CounterName, number> = {
    malformed: 0,
    foreignHash: 0,
    unknownSender: 0,
    foreignRing: 0,
    notOperational: 0,
    duplicateData: 0,
    outOfWindow: 0,
    duplicateToken: 0,
    tokenRetransmits: 0,
    tokenAcks: 0,
    tokenLoss: 0,
    tokenHolds: 0,
    hurrySent: 0,
    hurryReceived: 0,
    badFragments: 0,
  };

  // Sequence state. Invariant: discardSeq ≤ deliveredSeq ≤ myAru ≤ highestSeq < discardSeq + PACKET_SLOTS.
  private highestSeq: number;
  private myAru: number;
  private deliveredSeq: number;
  private discardSeq: number;
  /** Every member holds every seq ≤ safeSeq: min of the aru on my last two token visits. */
  private safeSeq: number;
  private prevTokenAru: number;
  private readonly slots: (DataPacket | undefined)[] = new Array(PACKET_SLOTS);
  /** 1 where the packet in the slot completes a SAFE message. */
  private readonly slotSafe = new Uint8Array(PACKET_SLOTS);
  private messageOrdinal = 0;
  private readonly partials = new Map<number, Partial>();

  // Send queue: parallel arrays with a head index (no shift()).
  private queuePayload: Uint8Array[] = [];
  private queueSafe: boolean[] = [];
  private queueHead = 0;
  private queueBytes = 0;
  /** Bytes of the head message already placed in packets. */
  private headOffset = 0;

  // Token state.
  private haveHop = false;
  private lastHop = 0;
  private myLastContribution = 0;
  /** seq on the token I last forwarded (accelerated ring: only ask for seqs up to here). */
  private lastForwardedSeq: number;
  private lastTokenBytes: Uint8Array | null = null;
  private lastTokenHop = 0;
  private retransmitAtMs: number | null = null;
  private tokenLossAtMs: number | null = null;
  private helloAtMs: number | null = null;
  private hurryAtMs: number | null = null;
  /** Leader only: token kept while the ring is idle. */
  private heldToken: TokenFields | null = null;
  private quietVisits = 0;
  private hurryPending = false;
  /** Non-leader: the last token said the leader may hold it. */
  private believeIdle = false;
  private lastNowMs: number;

  private packets: OutboundPacket[] = [];
  private events: RingEvent[] = [];

  // Status counters.
  private packetsSent = 0;
  private packetsReceived = 0;
  private packetsDelivered = 0;
  private retransmissions = 0;
  private tokenHurry = 0;
  private tokenRounds = 0;
  private membershipChanges = 0;

  constructor(options: TotemOptions) {
    const members = options.members;
    assert(members.length >= 1 && members.length <= MEMBERS_MAX, `member count ${members.length}`);
    assert(new Set(members).size === members.length, 'member VIDs must be distinct');
    assert(members.every((v) => Number.isInteger(v) && v > 0 && v <= 0xffffffff), 'member VIDs are non-zero u32');
    const myIndex = members.indexOf(options.myVid);
    assert(myIndex >= 0, `my VID ${options.myVid} is not a member`);
    this.myVid = options.myVid;
    this.members = [...members];
    this.memberSet = new Set(members);
    this.leaderVid = members[0];
    this.myIndex = myIndex;
    this.successor = members[(myIndex + 1) % members.length];
    this.configHash = options.configHash >>> 0;
    this.solo = members.length === 1;

    this.window = options.window ?? WINDOW_DEFAULT;
    this.personalWindow = options.personalWindow ?? PERSONAL_WINDOW_DEFAULT;
    this.acceleratedRing = options.acceleratedRing ?? false;
    this.acceleratedWindow = this.acceleratedRing ? (options.acceleratedWindow ?? ACCELERATED_WINDOW_DEFAULT) : 0;
    this.tokenTimeoutMs = options.tokenTimeoutMs ?? TOKEN_TIMEOUT_MS_DEFAULT;
    this.hurryTimeoutMs = options.hurryTimeoutMs ?? HURRY_TIMEOUT_MS_DEFAULT;
    this.tokenRetransmitMs = options.tokenRetransmitMs ?? Math.max(1, Math.floor(this.hurryTimeoutMs / 5));
    this.helloIntervalMs = options.helloIntervalMs ?? HELLO_INTERVAL_MS_DEFAULT;
    const datagramBytes = options.datagramBytes ?? DATAGRAM_BYTES_DEFAULT;
    this.sendQueueMessagesMax = options.sendQueueMessagesMax ?? SEND_QUEUE_MESSAGES_DEFAULT;
    this.sendQueueBytesMax = options.sendQueueBytesMax ?? SEND_QUEUE_BYTES_DEFAULT;
    assert(this.window > 0 && this.window <= WINDOW_MAX, `window ${this.window}`);
    assert(this.personalWindow > 0 && this.personalWindow <= this.window, `personal window ${this.personalWindow}`);
    assert(this.acceleratedWindow >= 0 && this.acceleratedWindow <= this.personalWindow, `accelerated window ${this.acceleratedWindow}`);
    assert(datagramBytes >= DATAGRAM_BYTES_MIN && datagramBytes <= DATAGRAM_BYTES_MAX, `datagram bytes ${datagramBytes}`);
    assert(this.tokenRetransmitMs > 0 && this.hurryTimeoutMs > 0 && this.tokenTimeoutMs > 0 && this.helloIntervalMs > 0, 'timeouts > 0');
    assert(this.sendQueueMessagesMax > 0 && this.sendQueueBytesMax > 0, 'send queue bounds > 0');
    this.writer = new DataPacketWriter(datagramBytes);

    const start = (options.initialSeq ?? 0) >>> 0;
    this.highestSeq = start;
    this.myAru = start;
    this.deliveredSeq = start;
    this.discardSeq = start;
    this.safeSeq = start;
    this.prevTokenAru = start;
    this.lastForwardedSeq = start;
    this.lastNowMs = options.nowMs;
    this.header = { sender: this.myVid, membId: this.membId, configHash: this.configHash };

    this.phase = 'gather';
    if (this.solo) {
      // A ring of one orders at once, without packets or timers (SoloRing's fast path).
      this.installRing(options.nowMs);
    } else {
      this.helloAtMs = options.nowMs;
    }
  }

  // ---------------------------------------------------------------- inputs

  submit(payload: Uint8Array, safe: boolean): boolean {
    if (payload.length > MESSAGE_BYTES_MAX) throw new RangeError(`message of ${payload.length} bytes > ${MESSAGE_BYTES_MAX}`);
    if (this.solo) {
      this.highestSeq = seqAdd(this.highestSeq, 1);
      this.myAru = this.deliveredSeq = this.discardSeq = this.safeSeq = this.highestSeq;
      this.packetsSent++;
      this.emitDelivery(this.myVid, safe, payload);
      return true;
    }
    const queued = this.queuePayload.length - this.queueHead;
    if (queued >= this.sendQueueMessagesMax) return false;
    if (queued > 0 && this.queueBytes + payload.length > this.sendQueueBytesMax) return false;
    this.queuePayload.push(payload);
    this.queueSafe.push(safe);
    this.queueBytes += payload.length;
    // The token may be parked: ask for it on the next tick (batches submits of one event-loop turn).
    if (this.phase === 'op' && queued === 0) {
      if (this.heldToken !== null) this.hurryPending = true;
      else if (this.believeIdle && this.hurryAtMs === null) this.hurryAtMs = this.lastNowMs;
    }
    return true;
  }

  receive(bytes: Uint8Array, nowMs: number): void {
    this.lastNowMs = nowMs;
    if (this.solo) return;
    const decoded = decodePacket(bytes);
    if (!decoded.ok) {
      this.count('malformed');
      return;
    }
    const packet = decoded.packet;
    if (!this.acceptSender(packet, nowMs)) return;
    this.packetsReceived++;
    switch (packet.type) {
      case PacketType.DATA:
        this.onData(packet);
        break;
      case PacketType.TOKEN:
        this.onToken(packet, nowMs);
        break;
      case PacketType.HELLO:
        this.onHello(packet.sender, nowMs);
        break;
      case PacketType.HURRY:
        this.onHurry(nowMs);
        break;
      case PacketType.TOKEN_ACK:
        if (this.lastTokenBytes !== null && packet.sender === this.successor && seqLte(this.lastTokenHop, packet.hop)) {
          this.retransmitAtMs = null;
        }
        break;
    }
  }

  tick(nowMs: number): void {
    this.lastNowMs = nowMs;
    if (this.solo) return;
    if (this.helloAtMs !== null && nowMs >= this.helloAtMs) {
      this.send('all', encodeHello(this.header));
      this.helloAtMs = nowMs + this.helloIntervalMs;
    }
    if (this.heldToken !== null && (this.hurryPending || this.hasQueued())) {
      this.releaseToken(nowMs);
    }
    if (this.hurryAtMs !== null && nowMs >= this.hurryAtMs) {
      if (this.believeIdle && this.hasQueued()) {
        this.send(this.leaderVid, encodeHurry(this.header, this.lastHop));
        this.count('hurrySent');
        this.tokenHurry++;
        this.hurryAtMs = nowMs + this.hurryTimeoutMs;
      } else {
        this.hurryAtMs = null;
      }
    }
    if (this.retransmitAtMs !== null && nowMs >= this.retransmitAtMs) {
      assert(this.lastTokenBytes !== null, 'a token retransmission needs a token');
      this.send(this.successor, this.lastTokenBytes);
      this.count('tokenRetransmits');
      this.retransmitAtMs = nowMs + this.tokenRetransmitMs;
    }
    if (this.tokenLossAtMs !== null && nowMs >= this.tokenLossAtMs) {
      this.enterGather('token loss', nowMs);
    }
  }

  ready(): RingReady {
    const out = { packets: this.packets, events: this.events };
    this.packets = [];
    this.events = [];
    return out;
  }

  nextDeadlineMs(): number | null {
    // Called after every datagram by the adapter: no allocation here.
    let next = earliest(this.helloAtMs, this.hurryAtMs);
    next = earliest(next, this.retransmitAtMs);
    next = earliest(next, this.tokenLossAtMs);
    if (this.heldToken !== null && (this.hurryPending || this.hasQueued())) next = earliest(next, this.lastNowMs);
    return next;
  }

  pendingCount(): number {
    return this.queuePayload.length - this.queueHead;
  }

  status(): RingStatus {
    const state: RingState = this.phase === 'op' ? 'op' : 'gather';
    return {
      state,
      myVid: this.myVid,
      leaderVid: this.leaderVid,
      membId: { ...this.membId },
      members: [...this.members],
      aru: this.safeSeq,
      myAru: this.myAru,
      highestSeq: this.highestSeq,
      packetsSent: this.packetsSent,
      packetsReceived: this.packetsReceived,
      packetsDelivered: this.packetsDelivered,
      retransmissions: this.retransmissions,
      tokenHurry: this.tokenHurry,
      tokenRounds: this.tokenRounds,
      membershipChanges: this.membershipChanges,
      window: this.window,
      personalWindow: this.personalWindow,
      acceleratedRing: this.acceleratedRing,
      acceleratedWindow: this.acceleratedWindow,
    };
  }

  diagnostics(): RingDiagnostics {
    return {
      refused: [...this.refused].map(([vid, reason]) => ({ vid, reason })),
      heard: [...this.heard],
      log: this.log.map((e) => ({ ...e })),
      counters: { ...this.counters },
    };
  }

  /** Whether this daemon has ever held packet `seq` (simulator's SAFE check). */
  holdsSeq(seq: number): boolean {
    if (seqLte(seq, this.myAru)) return true;
    if (seqGt(seq, this.highestSeq)) return false;
    return this.slots[seq & (PACKET_SLOTS - 1)]?.seq === seq;
  }

  // ---------------------------------------------------------------- membership hooks

  /** Leader: every configured member answered; create the ring (placeholder for FORM, §11.4). */
  private installRing(nowMs: number, membId?: MembershipId): void {
    assert(this.phase === 'gather', 'install from gather only');
    this.phase = 'op';
    this.membId = membId ?? { procId: this.leaderVid, time: Math.floor(nowMs / 1000) >>> 0 };
    this.header = { sender: this.myVid, membId: this.membId, configHash: this.configHash };
    this.helloAtMs = null;
    this.membershipChanges++;
    this.note(nowMs, `ring ${this.membId.procId}/${this.membId.time} installed with ${this.members.length} members`);
    this.events.push({ kind: 'regular', membId: { ...this.membId }, members: [...this.members] });
  }

  /**
   * Where token loss (and, later, foreign rings and join messages) leave normal
   * operation. Membership proper is the next issue: for now the reason is
   * counted and logged and the ring keeps relying on token retransmission.
   */
  private enterGather(reason: 'token loss', nowMs: number): void {
    this.count('tokenLoss');
    this.note(nowMs, `${reason}: no token for ${this.tokenTimeoutMs} ms (membership not implemented; waiting)`);
    this.tokenLossAtMs = nowMs + this.tokenTimeoutMs;
  }

  // ---------------------------------------------------------------- receive paths

  /** Source checks common to every packet: known member, our configuration, our ring. */
  private acceptSender(packet: Packet, nowMs: number): boolean {
    const sender = packet.sender;
    if (sender === this.myVid || !this.memberSet.has(sender)) {
      this.count('unknownSender');
      if (!this.unknownLogged.has(sender) && this.unknownLogged.size < MEMBERS_MAX) {
        this.unknownLogged.add(sender);
        this.note(nowMs, `packet from VID ${sender}, which is not another member of our configuration`);
      }
      return false;
    }
    if (packet.configHash !== this.configHash) {
      this.count('foreignHash');
      const reason = `configuration hash ${packet.configHash} differs from ours (${this.configHash})`;
      if (this.refused.get(sender) !== reason) {
        this.refused.set(sender, reason);
        this.note(nowMs, `refusing daemon ${sender}: ${reason}`);
      }
      return false;
    }
    if (packet.type === PacketType.HELLO) return true;
    if (this.phase === 'op') {
      if (packet.membId.procId !== this.membId.procId || packet.membId.time !== this.membId.time) {
        this.count('foreignRing');
        return false;
      }
      return true;
    }
    // Gather: only the leader's token on its first rotation takes us into its ring (its hop
    // counter equals our position). A daemon that restarts later must not join mid-stream,
    // since the old packets are gone: that needs membership (next issue).
    if (packet.type === PacketType.TOKEN && packet.membId.procId === this.leaderVid && packet.hop === this.myIndex) return true;
    this.count('notOperational');
    return false;
  }

  private onHello(sender: number, nowMs: number): void {
    this.refused.delete(sender);
    this.heard.add(sender);
    if (this.phase === 'op') {
      // After a full rotation every member has had the token, so a HELLO means that daemon restarted.
      if (this.tokenRounds >= 2 && !this.restartNoted.has(sender)) {
        this.restartNoted.add(sender);
        this.note(nowMs, `daemon ${sender} is probing after the ring formed: it cannot join without membership`);
      }
      return;
    }
    if (this.myVid !== this.leaderVid) return;
    if (this.heard.size < this.members.length - 1) return;
    this.installRing(nowMs);
    // The leader starts the first rotation as if the token had just come back to it.
    const start = this.highestSeq;
    this.tokenVisit({ hop: 0, seq: start, aru: start, aruSetter: NONE, flowControl: 0, round: 0, flags: 0, rtr: [] }, nowMs);
  }

  private onData(packet: DataPacket): void {
    assert(this.phase === 'op', 'data only in op');
    const seq = packet.seq;
    if (seqLte(seq, this.myAru)) {
      this.count('duplicateData');
      return;
    }
    if (seqDiff(seq, this.discardSeq) >= PACKET_SLOTS) {
      this.count('outOfWindow');
      return;
    }
    const slot = seq & (PACKET_SLOTS - 1);
    if (this.slots[slot] !== undefined) {
      this.count('duplicateData');
      return;
    }
    this.store(packet);
    this.deliver();
  }

  private onToken(token: TokenPacket, nowMs: number): void {
    if (this.haveHop && seqLte(token.hop, this.lastHop)) {
      // A re-sent token we already processed: tell the sender to stop.
      this.count('duplicateToken');
      this.send(token.sender, encodeTokenAck(this.header, token.hop));
      return;
    }
    if (this.phase === 'gather') this.installRing(nowMs, token.membId);
    this.tokenVisit(token, nowMs);
  }

  private onHurry(nowMs: number): void {
    this.count('hurryReceived');
    if (this.myVid !== this.leaderVid || this.phase !== 'op') return;
    this.hurryPending = true;
    if (this.heldToken !== null) this.releaseToken(nowMs);
  }

  // ---------------------------------------------------------------- the token visit

  private tokenVisit(token: TokenFields, nowMs: number): void {
    assert(this.phase === 'op', 'token visit in op only');
    assert(seqLte(token.aru, token.seq), 'token aru ≤ seq');
    this.haveHop = true;
    this.lastHop = token.hop;
    this.retransmitAtMs = null; // a newer token: our successor had ours
    this.lastTokenBytes = null;
    this.hurryAtMs = null;
    this.believeIdle = false;
    if (seqGt(token.seq, this.highestSeq)) this.highestSeq = token.seq;

    const isLeader = this.myVid === this.leaderVid;
    if (isLeader && this.shouldHold(token)) {
      this.heldToken = token;
      this.tokenLossAtMs = null;
      this.count('tokenHolds');
      if (token.hop !== 0) this.send(this.members[this.members.length - 1], encodeTokenAck(this.header, token.hop));
      this.deliverWithAru(token.aru);
      return;
    }

    const t: TokenFields = { ...token, rtr: [] };
    if (isLeader) t.round = (t.round + 1) >>> 0;
    this.tokenRounds++;

    // 1. Answer retransmission requests, at most a personal window of them (they count
    //    against flow control like new packets); keep the rest for later visits.
    let retransmitted = 0;
    for (const seq of token.rtr) {
      if (seqLte(seq, this.discardSeq)) continue; // every member has it: stale request
      const held = seqLte(seq, this.highestSeq) ? this.slots[seq & (PACKET_SLOTS - 1)] : undefined;
      if (held !== undefined && held.seq === seq && retransmitted < this.personalWindow) {
        this.send('all', retransmissionOf(held.bytes, this.myVid));
        retransmitted++;
      } else {
        t.rtr.push(seq);
      }
    }
    this.retransmissions += retransmitted;

    // 2. New packets under flow control.
    const seqBefore = t.seq;
    const allowance = Math.max(0, this.flowAllowance(t) - retransmitted);
    const fresh = this.buildPackets(allowance, t);

    // 3. Ask for what we miss, but only what had a full rotation to arrive: the token
    //    often overtakes the data sent just before it (and always does in the accelerated ring).
    const askLimit = seqMin(seqBefore, this.lastForwardedSeq);
    this.requestMissing(t.rtr, askLimit);

    // 4. aru (Totem): lower it to ours, or raise it if we set it / nobody owns it.
    if (seqLt(this.myAru, t.aru) || t.aruSetter === this.myVid || t.aruSetter === NONE) {
      t.aru = this.myAru;
      t.aruSetter = t.aru === t.seq ? NONE : this.myVid;
    }

    // 5. Flow control: replace our previous contribution with this visit's.
    const contribution = retransmitted + fresh.length;
    t.flowControl = Math.max(0, t.flowControl - this.myLastContribution) + contribution;
    this.myLastContribution = contribution;

    // 6. Idle handling: the leader announces a possible hold; anyone adding work withdraws it.
    if (isLeader) {
      this.hurryPending = false;
      t.flags = this.quietVisits === QUIET_VISITS_BEFORE_HOLD - 1 ? t.flags | TokenFlag.IDLE : t.flags & ~TokenFlag.IDLE;
    }
    if (contribution > 0 || t.rtr.length > 0 || this.hasQueued()) t.flags &= ~TokenFlag.IDLE;
    t.hop = seqAdd(t.hop, 1);

    // 7. Send: packets before the token, the token, then (accelerated) the last window of packets.
    const after = Math.min(this.acceleratedWindow, fresh.length);
    for (let i = 0; i < fresh.length - after; i++) this.send('all', fresh[i]);
    const bytes = encodeToken(this.header, t);
    this.send(this.successor, bytes);
    for (let i = fresh.length - after; i < fresh.length; i++) this.send('all', fresh[i]);
    this.lastTokenBytes = bytes;
    this.lastTokenHop = t.hop;
    this.lastForwardedSeq = t.seq;
    this.retransmitAtMs = nowMs + this.tokenRetransmitMs;

    // An IDLE token we add nothing to may be parked at the leader: no token-loss timer then.
    this.believeIdle = !isLeader && (t.flags & TokenFlag.IDLE) !== 0;
    this.tokenLossAtMs = this.believeIdle ? null : nowMs + this.tokenTimeoutMs;

    // 8. Deliver after the token left (effect ordering: token first).
    this.deliverWithAru(t.aru);
  }

  /** Leader: park the token when the last visits were quiet and nobody asked for it. */
  private shouldHold(token: TokenFields): boolean {
    const quiet =
      token.hop !== 0 &&
      token.rtr.length === 0 &&
      token.aru === token.seq &&
      token.aruSetter === NONE &&
      token.flowControl === 0 &&
      this.myAru === token.seq &&
      !this.hasQueued();
    this.quietVisits = quiet ? this.quietVisits + 1 : 0;
    // The IDLE flag surviving a rotation means nobody withdrew it (nobody has work queued).
    return quiet && !this.hurryPending && this.quietVisits >= QUIET_VISITS_BEFORE_HOLD && (token.flags & TokenFlag.IDLE) !== 0;
  }

  private releaseToken(nowMs: number): void {
    const token = this.heldToken;
    assert(token !== null && this.myVid === this.leaderVid, 'release a held token at the leader');
    this.heldToken = null;
    this.quietVisits = 0;
    // The held token was accepted when it arrived; now run the visit we postponed.
    this.tokenVisit(token, nowMs);
  }

  /** Spread's formula (§11.2), the gap rule and the receive-buffer bound. */
  private flowAllowance(t: TokenFields): number {
    if (seqDiff(t.seq, t.aru) >= SEQ_GAP_MAX) return 0;
    const byWindow = Math.min(this.personalWindow, this.window, Math.max(0, this.window + this.personalWindow - t.flowControl));
    const byBuffer = PACKET_SLOTS - 1 - seqDiff(t.seq, this.discardSeq);
    const byGap = SEQ_GAP_MAX - seqDiff(t.seq, t.aru);
    return Math.max(0, Math.min(byWindow, byBuffer, byGap));
  }

  private requestMissing(rtr: number[], limit: number): void {
    if (rtr.length >= RTR_ITEMS_MAX || !seqLt(this.myAru, limit)) return;
    const listed = new Set(rtr);
    const bufferEnd = seqAdd(this.discardSeq, PACKET_SLOTS - 1);
    const end = seqMin(limit, bufferEnd);
    for (let seq = seqAdd(this.myAru, 1); seqLte(seq, end) && rtr.length < RTR_ITEMS_MAX; seq = seqAdd(seq, 1)) {
      if (this.slots[seq & (PACKET_SLOTS - 1)]?.seq === seq || listed.has(seq)) continue;
      rtr.push(seq);
    }
  }

  // ---------------------------------------------------------------- sending

  private hasQueued(): boolean {
    return this.queueHead < this.queuePayload.length;
  }

  /** Fills up to `count` datagrams from the send queue; each takes the next seq on `t`. */
  private buildPackets(count: number, t: TokenFields): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (out.length < count && this.hasQueued()) {
      const seq = seqAdd(t.seq, 1);
      this.writer.begin(this.header, seq, this.myVid, t.round);
      while (this.hasQueued()) {
        const payload = this.queuePayload[this.queueHead];
        const safe = this.queueSafe[this.queueHead];
        const remaining = payload.length - this.headOffset;
        const room = this.writer.room();
        // Split only into pieces worth a fragment header; an empty packet always has room enough.
        if (remaining > room && room < SPLIT_BYTES_MIN) break;
        const take = Math.min(remaining, room);
        const last = take === remaining;
        const flags = (this.headOffset === 0 ? FragmentFlag.FIRST : 0) | (last ? FragmentFlag.LAST : 0) | (safe ? FragmentFlag.SAFE : 0);
        this.writer.append(flags, payload, this.headOffset, take);
        if (last) this.popQueue();
        else this.headOffset += take;
      }
      assert(this.writer.fragments > 0, 'a packet carries at least one fragment');
      const packet = this.writer.finishPacket();
      t.seq = seq;
      this.packetsSent++;
      this.store(packet);
      out.push(packet.bytes);
    }
    return out;
  }

  private popQueue(): void {
    const payload = this.queuePayload[this.queueHead];
    this.queueBytes -= payload.length;
    this.queuePayload[this.queueHead] = EMPTY;
    this.queueHead++;
    this.headOffset = 0;
    if (this.queueHead === this.queuePayload.length) {
      this.queuePayload = [];
      this.queueSafe = [];
      this.queueHead = 0;
    } else if (this.queueHead >= QUEUE_COMPACT_AFTER && this.queueHead * 2 >= this.queuePayload.length) {
      this.queuePayload = this.queuePayload.slice(this.queueHead);
      this.queueSafe = this.queueSafe.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private send(to: number | 'all', bytes: Uint8Array): void {
    this.packets.push({ to, bytes });
  }

  // ---------------------------------------------------------------- receive buffer and delivery

  private store(packet: DataPacket): void {
    const seq = packet.seq;
    assert(seqGt(seq, this.myAru) && seqDiff(seq, this.discardSeq) < PACKET_SLOTS, 'stored seq inside the buffer');
    const slot = seq & (PACKET_SLOTS - 1);
    this.slots[slot] = packet;
    let safe = 0;
    for (const f of packet.fragments) if ((f.flags & (FragmentFlag.LAST | FragmentFlag.SAFE)) === (FragmentFlag.LAST | FragmentFlag.SAFE)) safe = 1;
    this.slotSafe[slot] = safe;
    if (seqGt(seq, this.highestSeq)) this.highestSeq = seq;
    while (seqLt(this.myAru, this.highestSeq) && this.slots[seqAdd(this.myAru, 1) & (PACKET_SLOTS - 1)]?.seq === seqAdd(this.myAru, 1)) {
      this.myAru = seqAdd(this.myAru, 1);
    }
  }

  /** A token visit showed `tokenAru`: the safe point is the lower of this and the previous visit's. */
  private deliverWithAru(tokenAru: number): void {
    const candidate = seqMin(tokenAru, this.prevTokenAru);
    if (seqGt(candidate, this.safeSeq)) this.safeSeq = candidate;
    this.prevTokenAru = tokenAru;
    assert(seqLte(this.safeSeq, this.myAru), 'safe point ≤ my aru');
    this.deliver();
  }

  private deliver(): void {
    const mask = PACKET_SLOTS - 1;
    while (seqLt(this.deliveredSeq, this.myAru)) {
      const seq = seqAdd(this.deliveredSeq, 1);
      const slot = seq & mask;
      const packet = this.slots[slot];
      assert(packet !== undefined && packet.seq === seq, 'packets up to my aru are held');
      if (this.slotSafe[slot] === 1 && seqGt(seq, this.safeSeq)) break;
      this.deliverPacket(packet);
      this.deliveredSeq = seq;
      this.packetsDelivered++;
    }
    // Discard what every member holds and we have delivered.
    const discardTo = seqMin(this.deliveredSeq, this.safeSeq);
    while (seqLt(this.discardSeq, discardTo)) {
      this.discardSeq = seqAdd(this.discardSeq, 1);
      this.slots[this.discardSeq & mask] = undefined;
    }
  }

  private deliverPacket(packet: DataPacket): void {
    const origin = packet.origin;
    for (const f of packet.fragments) {
      const first = (f.flags & FragmentFlag.FIRST) !== 0;
      const last = (f.flags & FragmentFlag.LAST) !== 0;
      const safe = (f.flags & FragmentFlag.SAFE) !== 0;
      let partial = this.partials.get(origin);
      if (first) {
        if (partial !== undefined) {
          // The origin started a new message before finishing the last: drop the torn one (same at every member).
          this.count('badFragments');
          this.partials.delete(origin);
        }
        if (last) {
          this.emitDelivery(origin, safe, f.payload);
          continue;
        }
        this.partials.set(origin, { chunks: [f.payload], bytes: f.payload.length });
        continue;
      }
      if (partial === undefined) {
        this.count('badFragments');
        continue;
      }
      partial.chunks.push(f.payload);
      partial.bytes += f.payload.length;
      if (partial.bytes > MESSAGE_BYTES_MAX) {
        this.count('badFragments');
        this.partials.delete(origin);
        continue;
      }
      if (last) {
        this.partials.delete(origin);
        this.emitDelivery(origin, safe, concat(partial.chunks, partial.bytes));
        partial = undefined;
      }
    }
  }

  private emitDelivery(origin: number, safe: boolean, payload: Uint8Array): void {
    this.messageOrdinal++;
    this.events.push({ kind: 'deliver', seq: this.messageOrdinal, origin, safe, payload });
  }

  // ---------------------------------------------------------------- diagnostics

  private count(name: CounterName): void {
    this.counters[name]++;
  }

  private note(atMs: number, text: string): void {
    if (this.log.length >= DIAGNOSTIC_LOG_ENTRIES_MAX) this.log.shift();
    this.log.push({ atMs, text });
  }
}

const EMPTY = new Uint8Array(0);

function earliest(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}

function concat(chunks: Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
