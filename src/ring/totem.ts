/**
 * TotemRing: total order over a logical token ring plus daemon membership with
 * Extended Virtual Synchrony (Totem single-ring protocol as Spread runs it, §11.2–11.4
 * and §7.3–7.4 of spread-protocol.md). A pure state machine: inputs are
 * submit/receive/tick with time as an argument, effects leave via ready(). No
 * sockets, timers, Date.now() or Math.random() in this file.
 *
 * Ordering, in one paragraph: the token visits the members in configuration order.
 * The holder answers retransmission requests, multicasts up to its flow control
 * allowance of new packets (each takes the next seq; small messages are packed,
 * large ones fragmented), asks for what it misses, updates the ring aru and passes
 * the token on. A packet is delivered (AGREED) once every earlier seq is here, and,
 * if it ends a SAFE message, once the aru seen on two successive token visits covers
 * it (then every member holds it). Packets every member holds are discarded.
 *
 * Membership, in one paragraph (states 'op' → 'gather' → 'commit' → 'recovery' → 'op',
 * one enter function each; the reason for entering gather is logged and counted):
 * token loss, a JOIN from a daemon outside the ring (or from a member that restarted
 * or lost the token), a data packet or token of a ring we do not know, or a stalled
 * aru start GATHER. Daemons broadcast JOIN (proc set, fail set) every JoinTimeout and
 * merge the sets they hear; a daemon that did not agree within GatherTimeout is put
 * in the fail set. Once every daemon of proc − fail sent identical sets, the first of
 * them in configuration order (the representative, the new ring's leader) sends the
 * COMMIT token with a new ring id. Its first rotation collects each member's previous
 * ring id, aru, highest seq and safe seq; its second takes every member to RECOVERY.
 * The new ring's token then runs: the members of each previous ring re-send, wrapped
 * in new-ring packets, the previous ring's packets others of that ring may miss
 * (above the lowest aru, up to the highest seq any of them has). When a rotation
 * shows that nothing is left to send and everything has arrived, the leader installs
 * the ring and flags the token so that each member installs it on its visit: the old
 * ring's messages are delivered per §7.3 (in order up to the first hole or the first
 * SAFE message not known to be held by the whole old ring; the transitional
 * configuration; the rest, after a hole only from daemons of the transitional set),
 * then the regular configuration. A failure during commit or recovery goes back to
 * gather with the old ring's messages kept.
 *
 * Deviations from Spread / the Totem paper (deliberate):
 *  - Wire format is our own (packet.ts): big-endian, no endian marker, 36-byte data header.
 *  - No SEG/REPRESENTED states: every daemon gathers for itself (Corosync style), and the
 *    ring's leader and representative is the first daemon of the new ring in configuration
 *    order. Alive, Rep and Seg timeouts are accepted in spread.conf and unused.
 *  - Old-ring packets are recovered inside the new ring (Corosync's encapsulation), so the
 *    new ring's own aru and retransmissions make recovery reliable. A recovery packet is a
 *    data packet plus 40 bytes, so DatagramBytes may be at most 65 467 here.
 *  - The leader installs the new ring once a rotation shows no recovery packet pending and
 *    aru = seq twice in a row, instead of Spread's rotation counting; members install when
 *    the token says so. Spread's cap of 500 recovery rotations is replaced by the "failed to
 *    receive" rule below, which applies in recovery too.
 *  - A freshly started daemon gathers with only itself in its proc set and forms a ring of
 *    one if nobody answers within GatherTimeout; others merge with it through JOINs. Its
 *    first ring has no transitional configuration. Each incarnation of a daemon carries a
 *    number (its start time in ms) in JOINs and on the commit token, so a restarted daemon
 *    is told apart from a stale JOIN of its previous life.
 *  - Ring ids are (leader VID, seconds), bumped above every ring any member was in. A restarted
 *    daemon cannot remember its previous life's ids, so uniqueness across a restart assumes it
 *    comes back in a later second than the last id it created (the times run ahead of the clock
 *    only while memberships come faster than one a second). Recovery groups members by old ring
 *    id and incarnation, so even a reused id cannot mix two rings' messages.
 *  - Each gather attempt (re-entered after a failed commit or recovery) starts with an empty
 *    fail set, keeping only the daemons not yet failed; in op, a JOIN whose fail set holds us is
 *    ignored (its sender gathers without us and probes again once it has a ring). Both keep a
 *    stale fail set from spreading and splitting rings that could merge.
 *  - A gather lasts at least one JoinTimeout (a GatherTimeout when all its daemons just started
 *    or when it would form a ring of one), so daemons starting together form one ring.
 *  - Merges: the leader of a ring missing configured daemons probes them (a JOIN) every
 *    LookupTimeout; a daemon in op that hears a JOIN, a data packet or a token from a
 *    configured daemon outside its ring (of a ring id it does not remember) gathers.
 *  - Data sequence numbers are 32-bit and compared wrap-safely instead of forcing a
 *    membership at 2^30. A ring whose aru has not moved for FAIL_TO_RECEIVE_VISITS visits
 *    while packets are missing gathers ("failed to receive"), so a packet nobody can
 *    retransmit becomes an EVS hole instead of stalling the ring forever.
 *  - A daemon whose timer fires more than TokenTimeout/4 late (it was stalled) logs it and
 *    gives its loss timers STALL_GRACE_MS more, so that it reads what arrived meanwhile
 *    (perhaps the token) before it declares a loss.
 *  - Token retransmission: the forwarder re-sends its last token every
 *    `tokenRetransmitMs` (default HurryTimeout / 5) until it sees a newer token or a TOKEN_ACK (Totem style;
 *    Spread only lets the leader re-send after HurryTimeout). Duplicates are
 *    recognised by the token's hop counter and answered with TOKEN_ACK. The commit
 *    token is re-sent the same way; FormTimeout bounds how long a member waits for it.
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
 *  - Retransmission requests only cover seqs at or below the seq of the token we
 *    last forwarded (a full rotation old), in both variants: on one host the token
 *    often overtakes the data sent just before it, and early requests only
 *    duplicate traffic. Spread applies this rule to the accelerated ring only.
 *  - SAFE granularity is the packet: a packet that completes a SAFE message waits
 *    (with everything after it) until the safe point covers it.
 *  - Flow control: Spread's formula min(PW, W, max(0, W + PW − fc)) minus this
 *    visit's retransmissions; plus the receive-buffer bound.
 *  - A message is fragmented wherever a datagram fills up (not only when it is larger
 *    than a datagram), so 1000-byte messages pack ~1.4 per 1472-byte datagram. A message
 *    whose first fragments went out in a ring that then broke is sent again whole in the
 *    next ring (its torn start is never delivered).
 *  - Event `seq` is the message's position in this ring's total order (1, 2, …),
 *    not the packet seq, since several messages share a packet.
 *  - A ring of one orders locally on the next tick, without packets on the wire (and a
 *    configuration of one daemon delivers inside submit()).
 */
import { assert } from './assert.js';
import { PacketBuffer, type MessageSink } from './buffer.js';
import {
  ACCELERATED_WINDOW_DEFAULT,
  DATAGRAM_BYTES_DEFAULT,
  DATAGRAM_BYTES_MAX,
  DATAGRAM_BYTES_MIN,
  DIAGNOSTIC_LOG_ENTRIES_MAX,
  FAIL_TO_RECEIVE_VISITS,
  FORM_TIMEOUT_MS_DEFAULT,
  GATHER_TIMEOUT_MS_DEFAULT,
  HURRY_TIMEOUT_MS_DEFAULT,
  JOIN_TIMEOUT_MS_DEFAULT,
  LOOKUP_TIMEOUT_MS_DEFAULT,
  MEMBERS_MAX,
  MESSAGE_BYTES_MAX,
  PACKET_SLOTS,
  PERSONAL_WINDOW_DEFAULT,
  FULL_ROTATIONS_BEFORE_SAFE_HOLD,
  RECOVERY_QUIET_VISITS,
  RING_HISTORY_MAX,
  RTR_ITEMS_MAX,
  SEND_QUEUE_BYTES_DEFAULT,
  SEND_QUEUE_MESSAGES_DEFAULT,
  SEQ_GAP_MAX,
  STALL_GRACE_MS,
  TOKEN_TIMEOUT_MS_DEFAULT,
  WINDOW_DEFAULT,
  WINDOW_MAX,
} from './limits.js';
import {
  type CommitFields,
  type CommitPacket,
  DataFlag,
  type DataPacket,
  DataPacketWriter,
  DATA_HEADER_BYTES,
  decodePacket,
  encodeCommit,
  encodeHurry,
  encodeJoin,
  encodeToken,
  encodeTokenAck,
  FRAGMENT_HEADER_BYTES,
  FragmentFlag,
  JoinFlag,
  type JoinPacket,
  type Packet,
  type PacketHeader,
  PacketType,
  RECOVERED_OVERHEAD_BYTES,
  retransmissionOf,
  type TokenFields,
  TokenFlag,
  type TokenPacket,
} from './packet.js';
import { seqAdd, seqDiff, seqGt, seqLt, seqLte, seqMax, seqMin } from './seq.js';
import type {
  FlowControlChange,
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
  /** Tells this life of the daemon from earlier ones (default: nowMs at creation, as u32). */
  incarnation?: number;
  /** Deliver events carry `packetSeq` (simulator checks). */
  traceDeliveries?: boolean;
}

type MembershipState = 'op' | 'gather' | 'commit' | 'recovery';

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

const STATE_NAMES: Record<MembershipState, RingState> = { op: 'op', gather: 'gather', commit: 'form', recovery: 'evs' };

/** Ring id of a daemon that has not installed a ring yet. */
const NO_RING: MembershipId = Object.freeze({ procId: 0, time: 0 });
/** Fragments shorter than this are not split off the head of a message; the next packet takes it whole. */
const SPLIT_BYTES_MIN = 64;
/** Consumed send-queue entries tolerated at the head before the arrays are compacted. */
const QUEUE_COMPACT_AFTER = 1024;
const NONE = 0;

/** One ring as this daemon sees it. */
interface RingView {
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
interface RecoveryPlan {
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

interface Forming {
  id: MembershipId;
  members: number[];
  /** Highest commit-token hop seen or sent (duplicates are acked). */
  lastHop: number;
}

type CounterName =
  | 'malformed'
  | 'foreignHash'
  | 'unknownSender'
  | 'foreignRing'
  | 'staleRing'
  | 'duplicateData'
  | 'outOfWindow'
  | 'duplicateToken'
  | 'tokenRetransmits'
  | 'tokenAcks'
  | 'tokenLoss'
  | 'tokenHolds'
  | 'heartbeats'
  | 'hurrySent'
  | 'hurryReceived'
  | 'badFragments'
  | 'joinsSent'
  | 'joinsReceived'
  | 'staleJoins'
  | 'probesSent'
  | 'consensusTimeouts'
  | 'failedDaemons'
  | 'commitTokens'
  | 'commitMismatch'
  | 'lateOldPackets'
  | 'recoveryPacketsSent'
  | 'recoveredPackets'
  | 'installs'
  | 'gatherStart'
  | 'gatherTokenLoss'
  | 'gatherForeignMessage'
  | 'gatherJoin'
  | 'gatherRestart'
  | 'gatherFailedToReceive'
  | 'gatherFormTimeout'
  | 'commitEnters'
  | 'recoveryEnters'
  | 'lateTicks';

const COUNTER_NAMES: readonly CounterName[] = [
  'malformed', 'foreignHash', 'unknownSender', 'foreignRing', 'staleRing', 'duplicateData', 'outOfWindow',
  'duplicateToken', 'tokenRetransmits', 'tokenAcks', 'tokenLoss', 'tokenHolds', 'heartbeats', 'hurrySent',
  'hurryReceived', 'badFragments', 'joinsSent', 'joinsReceived', 'staleJoins', 'probesSent', 'consensusTimeouts',
  'failedDaemons', 'commitTokens', 'commitMismatch', 'lateOldPackets', 'recoveryPacketsSent', 'recoveredPackets',
  'installs', 'gatherStart', 'gatherTokenLoss', 'gatherForeignMessage', 'gatherJoin', 'gatherRestart',
  'gatherFailedToReceive', 'gatherFormTimeout', 'commitEnters', 'recoveryEnters', 'lateTicks',
];

export function ringKey(id: MembershipId): string {
  return `${id.procId}/${id.time}`;
}

function sameRing(a: MembershipId, b: MembershipId): boolean {
  return a.procId === b.procId && a.time === b.time;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class TotemRing implements Ring {
  readonly myVid: number;
  /** Configured daemons, configuration order. */
  readonly configured: readonly number[];
  private readonly configIndex: ReadonlyMap<number, number>;
  private readonly configHash: number;
  private readonly incarnation: number;
  private readonly solo: boolean;
  private readonly startSeq: number;
  private readonly traceDeliveries: boolean;

  private window: number;
  private personalWindow: number;
  private readonly acceleratedRing: boolean;
  private acceleratedWindow: number;
  private readonly tokenTimeoutMs: number;
  private readonly hurryTimeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly tokenRetransmitMs: number;
  private readonly joinTimeoutMs: number;
  private readonly gatherTimeoutMs: number;
  private readonly formTimeoutMs: number;
  private readonly lookupTimeoutMs: number;
  private readonly sendQueueMessagesMax: number;
  private readonly sendQueueBytesMax: number;
  private readonly writer: DataPacketWriter;

  // ------------------------------------------------------------ membership state
  private state: MembershipState = 'gather';
  /** op, recovery: the ring the token runs on (in recovery: the ring being installed). */
  private cur: RingView | null = null;
  /** The receive buffer of `cur` (a spare one while there is no `cur`). */
  private buf: PacketBuffer;
  /** gather, commit, recovery: the ring installed last and its buffer (null: none yet). */
  private old: { view: RingView; buf: PacketBuffer } | null = null;
  /** commit, recovery: the old buffer takes no more packets of the old ring (its state is on the commit token). */
  private frozen = false;
  private header: PacketHeader;

  // gather
  private readonly procSet = new Set<number>();
  private readonly failSet = new Set<number>();
  /** Daemons whose last JOIN had exactly our sets, with the attempt and incarnation it carried. */
  private consensus = new Map<number, { attempt: number; incarnation: number }>();
  /** Gathers entered so far (carried in JOINs: a higher one means the sender gathered again). */
  private attempt = 0;
  private gatherStartMs = 0;
  private joinAtMs: number | null = null;
  private consensusAtMs: number | null = null;
  /** The ring each daemon last reported in a JOIN (new ring ids must exceed them all). */
  private readonly joinRing = new Map<number, MembershipId>();
  private lastFormedTime = 0;

  // commit
  private forming: Forming | null = null;
  private formAtMs: number | null = null;

  // recovery
  private plan: RecoveryPlan | null = null;
  private recoveryQueue: number[] = [];
  private recoveryHead = 0;
  private recoveryQuietVisits = 0;

  // op
  private lookupAtMs: number | null = null;
  /** Ring ids installed or formed here, oldest first: their packets are stale. */
  private readonly history: string[] = [];
  /** What I held of rings I left (simulator SAFE checks), by ring key; bounded with history. */
  private readonly historyHeld = new Map<string, { aru: number; above: ReadonlySet<number> }>();
  private stalledVisits = 0;
  private stalledAru = 0;

  private readonly heard = new Set<number>();
  private readonly refused = new Map<number, string>();
  private readonly unknownLogged = new Set<number>();
  private readonly log: { atMs: number; text: string }[] = [];
  private readonly counters = Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as Record<CounterName, number>;

  // Send queue: parallel arrays with a head index (no shift()).
  private queuePayload: Uint8Array[] = [];
  private queueSafe: boolean[] = [];
  private queueHead = 0;
  private queueBytes = 0;
  /** Bytes of the head message already placed in packets of the current ring. */
  private headOffset = 0;

  // Token state (of `cur`, or of the commit token being passed).
  private haveHop = false;
  private lastHop = 0;
  private myLastContribution = 0;
  /** seq on the token I last forwarded (only ask for seqs up to here). */
  private lastForwardedSeq: number;
  private lastTokenBytes: Uint8Array | null = null;
  private lastTokenHop = 0;
  private retransmitTo = 0;
  private retransmitAtMs: number | null = null;
  private tokenLossAtMs: number | null = null;
  private hurryAtMs: number | null = null;
  /** Leader only: token kept while the ring is idle, released for work or every heartbeat. */
  private heldToken: TokenFields | null = null;
  private holdUntilMs: number | null = null;
  /** Leader: consecutive rotations that left with aru = seq and came back unchanged. */
  private fullRotations = 0;
  /** Leader: the last token it sent left with aru = seq (this seq). */
  private departedFullSeq: number | null = null;
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

  private readonly emit: MessageSink = (ordinal, origin, safe, payload, packetSeq) => {
    this.events.push(
      this.traceDeliveries
        ? { kind: 'deliver', seq: ordinal, origin, safe, payload, packetSeq }
        : { kind: 'deliver', seq: ordinal, origin, safe, payload },
    );
  };
  private readonly badFragment = (): void => {
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
    this.sendQueueMessagesMax = options.sendQueueMessagesMax ?? SEND_QUEUE_MESSAGES_DEFAULT;
    this.sendQueueBytesMax = options.sendQueueBytesMax ?? SEND_QUEUE_BYTES_DEFAULT;
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
    assert(this.sendQueueMessagesMax > 0 && this.sendQueueBytesMax > 0, 'send queue bounds > 0');
    this.writer = new DataPacketWriter(datagramBytes);

    this.startSeq = (options.initialSeq ?? 0) >>> 0;
    this.buf = new PacketBuffer(this.startSeq, this.badFragment);
    this.lastForwardedSeq = this.startSeq;
    this.lastNowMs = options.nowMs;
    this.header = { sender: this.myVid, membId: NO_RING, configHash: this.configHash };

    if (this.solo) {
      // A configuration of one orders at once, without packets or timers (SoloRing's fast path).
      const id = { procId: this.myVid, time: Math.floor(options.nowMs / 1000) >>> 0 };
      this.cur = this.makeView(id, [this.myVid], new Map([[this.myVid, this.incarnation]]), [NO_RING]);
      this.state = 'op';
      this.header = { ...this.header, membId: id };
      this.membershipChanges++;
      this.events.push({ kind: 'regular', membId: { ...id }, members: [this.myVid], previous: [{ ...NO_RING }] });
    } else {
      this.enterGather('start', options.nowMs);
    }
  }

  // ---------------------------------------------------------------- inputs

  submit(payload: Uint8Array, safe: boolean): boolean {
    if (payload.length > MESSAGE_BYTES_MAX) throw new RangeError(`message of ${payload.length} bytes > ${MESSAGE_BYTES_MAX}`);
    if (this.solo) {
      const b = this.buf;
      b.highestSeq = seqAdd(b.highestSeq, 1);
      b.myAru = b.deliveredSeq = b.discardSeq = b.safeSeq = b.highestSeq;
      this.packetsSent++;
      this.emit(++b.messageOrdinal, this.myVid, safe, payload, b.highestSeq);
      return true;
    }
    const queued = this.queuePayload.length - this.queueHead;
    if (queued >= this.sendQueueMessagesMax) return false;
    if (queued > 0 && this.queueBytes + payload.length > this.sendQueueBytesMax) return false;
    this.queuePayload.push(payload);
    this.queueSafe.push(safe);
    this.queueBytes += payload.length;
    // The token may be parked: ask for it on the next tick (batches submits of one event-loop turn).
    if (this.state === 'op' && queued === 0) {
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
      case PacketType.JOIN:
        this.onJoin(packet, nowMs);
        return;
      case PacketType.COMMIT:
        this.onCommit(packet, nowMs);
        return;
      case PacketType.HELLO:
        return; // the start-up probe of earlier versions: JOIN does its work now
    }
    const cur = this.cur;
    if (cur !== null && sameRing(packet.membId, cur.membId)) {
      if (!cur.memberSet.has(packet.sender)) {
        this.count('unknownSender');
        return;
      }
      switch (packet.type) {
        case PacketType.DATA:
          // Ring traffic shows the token is alive (only its holder sends): Spread's rule. A daemon
          // busy reading a burst of data must not declare the token lost while it queues behind it.
          if (this.tokenLossAtMs !== null) this.tokenLossAtMs = nowMs + this.tokenTimeoutMs;
          this.onData(packet);
          return;
        case PacketType.TOKEN:
          this.onToken(packet, nowMs);
          return;
        case PacketType.HURRY:
          this.onHurry(nowMs);
          return;
        case PacketType.TOKEN_ACK:
          this.onTokenAck(packet.sender, packet.hop);
          return;
      }
    }
    const forming = this.forming;
    if (packet.type === PacketType.TOKEN_ACK && forming !== null && sameRing(packet.membId, forming.id)) {
      this.onTokenAck(packet.sender, packet.hop);
      return;
    }
    const old = this.old;
    if (old !== null && sameRing(packet.membId, old.view.membId)) {
      if (packet.type === PacketType.DATA && !this.frozen) this.onOldData(packet);
      else this.count('lateOldPackets');
      return;
    }
    this.onForeign(packet, nowMs);
  }

  tick(nowMs: number): void {
    if (this.solo) {
      this.lastNowMs = nowMs;
      return;
    }
    // A timer that fires much later than due means this process was stalled (CPU starvation,
    // a long synchronous task): to the others that looks like a lost token. Say so.
    // Its own loss timers then fire at once, though the token or the JOINs they wait for may be
    // sitting in the socket, unread: give the adapter STALL_GRACE_MS to read them first.
    // (Late since it was due, or since our last input if that came later: we were running then.)
    const due = this.nextDeadlineMs();
    const lateMs = due === null ? 0 : nowMs - Math.max(due, this.lastNowMs);
    const stalled = lateMs > this.tokenTimeoutMs / 4;
    if (stalled) {
      this.count('lateTicks');
      this.note(nowMs, `timer ${Math.round(lateMs)} ms late (the process was stalled)`);
      const grace = nowMs + STALL_GRACE_MS;
      if (this.consensusAtMs !== null && nowMs >= this.consensusAtMs) this.consensusAtMs = grace;
      if (this.formAtMs !== null && nowMs >= this.formAtMs) this.formAtMs = grace;
      if (this.tokenLossAtMs !== null && nowMs >= this.tokenLossAtMs) this.tokenLossAtMs = grace;
    }
    this.lastNowMs = nowMs;
    if (this.state === 'gather') {
      if (this.consensusAtMs !== null && nowMs >= this.consensusAtMs) this.consensusTimeout(nowMs);
      if (this.state === 'gather' && this.joinAtMs !== null && nowMs >= this.joinAtMs) {
        this.sendJoin();
        this.joinAtMs = nowMs + this.joinTimeoutMs;
        this.checkConsensus(nowMs);
      }
    }
    if (this.state === 'commit' && this.formAtMs !== null && nowMs >= this.formAtMs) {
      this.enterGather('form timeout', nowMs);
    }
    if (this.state === 'op' && this.cur!.members.length === 1 && this.hasQueued()) this.orderAlone();
    if (this.heldToken !== null) {
      if (this.hurryPending || this.hasQueued()) {
        this.releaseToken(nowMs, false);
      } else if (this.holdUntilMs !== null && nowMs >= this.holdUntilMs) {
        this.count('heartbeats');
        this.releaseToken(nowMs, true);
      }
    }
    if (this.hurryAtMs !== null && nowMs >= this.hurryAtMs) {
      if (this.state === 'op' && this.believeIdle && this.hasQueued()) {
        this.send(this.cur!.leaderVid, encodeHurry(this.header, this.lastHop));
        this.count('hurrySent');
        this.tokenHurry++;
        this.hurryAtMs = nowMs + this.hurryTimeoutMs;
      } else {
        this.hurryAtMs = null;
      }
    }
    if (this.retransmitAtMs !== null && nowMs >= this.retransmitAtMs) {
      assert(this.lastTokenBytes !== null, 'a token retransmission needs a token');
      this.send(this.retransmitTo, this.lastTokenBytes);
      this.count('tokenRetransmits');
      this.retransmitAtMs = nowMs + this.tokenRetransmitMs;
    }
    if (this.tokenLossAtMs !== null && nowMs >= this.tokenLossAtMs) {
      this.count('tokenLoss');
      this.enterGather('token loss', nowMs);
    }
    if (this.state === 'op' && this.lookupAtMs !== null && nowMs >= this.lookupAtMs) {
      this.probe();
      this.lookupAtMs = nowMs + this.lookupTimeoutMs;
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
    let next = earliest(this.joinAtMs, this.consensusAtMs);
    next = earliest(next, this.formAtMs);
    next = earliest(next, this.hurryAtMs);
    next = earliest(next, this.retransmitAtMs);
    next = earliest(next, this.tokenLossAtMs);
    next = earliest(next, this.lookupAtMs);
    next = earliest(next, this.holdUntilMs);
    if (this.heldToken !== null && (this.hurryPending || this.hasQueued())) next = earliest(next, this.lastNowMs);
    if (this.state === 'op' && !this.solo && this.cur!.members.length === 1 && this.hasQueued()) next = earliest(next, this.lastNowMs);
    return next;
  }

  pendingCount(): number {
    return this.queuePayload.length - this.queueHead;
  }

  status(): RingStatus {
    const view = this.cur ?? this.old?.view ?? null;
    const b = this.cur !== null ? this.buf : (this.old?.buf ?? this.buf);
    return {
      state: STATE_NAMES[this.state],
      myVid: this.myVid,
      leaderVid: view?.leaderVid ?? this.myVid,
      membId: { ...(view?.membId ?? NO_RING) },
      members: view === null ? [this.myVid] : [...view.members],
      aru: b.safeSeq,
      myAru: b.myAru,
      highestSeq: b.highestSeq,
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
      datagramBytes: this.writer.datagramBytes,
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

  /** Membership details for tests and status tools. */
  membership(): {
    state: MembershipState;
    procSet: number[];
    failSet: number[];
    oldRing: MembershipId | null;
    incarnation: number;
    /** Highest ring id time this daemon created: a restart must come in a later second (ring ids stay unique). */
    lastFormedTime: number;
  } {
    return {
      lastFormedTime: this.lastFormedTime,
      state: this.state,
      procSet: this.inConfigOrder(this.procSet),
      failSet: this.inConfigOrder(this.failSet),
      oldRing: this.old === null ? null : { ...this.old.view.membId },
      incarnation: this.incarnation,
    };
  }

  setFlowControl(change: FlowControlChange): string | null {
    const window = change.window ?? this.window;
    const personal = change.personalWindow ?? this.personalWindow;
    // Without the accelerated ring nothing is sent after the token: the window stays 0.
    const accelerated = this.acceleratedRing ? (change.acceleratedWindow ?? this.acceleratedWindow) : 0;
    if (!Number.isInteger(window) || window < 1 || window > WINDOW_MAX) return `Window ${window} is not in 1..${WINDOW_MAX}`;
    if (!Number.isInteger(personal) || personal < 1 || personal > window) return `PersonalWindow ${personal} is not in 1..Window (${window})`;
    if (!Number.isInteger(accelerated) || accelerated < 0 || accelerated > personal) {
      return `AcceleratedWindow ${accelerated} is not in 0..PersonalWindow (${personal})`;
    }
    this.window = window;
    this.personalWindow = personal;
    this.acceleratedWindow = accelerated;
    return null;
  }

  /** Whether this daemon holds (or held: it is at or below its aru) packet `seq` of the current ring. */
  holdsSeq(seq: number): boolean {
    return this.buf.holds(seq);
  }

  /** Whether this daemon holds or held packet `seq` of ring `ring` (simulator SAFE checks; recent rings only). */
  holds(ring: MembershipId, seq: number): boolean {
    if (this.cur !== null && sameRing(this.cur.membId, ring)) return this.buf.holds(seq);
    if (this.old !== null && sameRing(this.old.view.membId, ring)) return this.old.buf.holds(seq);
    const held = this.historyHeld.get(ringKey(ring));
    return held !== undefined && (seqLte(seq, held.aru) || held.above.has(seq));
  }

  // ---------------------------------------------------------------- source checks

  /** Checks common to every packet: another configured daemon, with our configuration hash. */
  private acceptSender(packet: Packet, nowMs: number): boolean {
    const sender = packet.sender;
    if (sender === this.myVid || !this.configIndex.has(sender)) {
      this.count('unknownSender');
      if (!this.unknownLogged.has(sender) && this.unknownLogged.size < MEMBERS_MAX) {
        this.unknownLogged.add(sender);
        this.note(nowMs, `packet from VID ${sender}, which is not another daemon of our configuration`);
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
    if (this.refused.delete(sender)) this.note(nowMs, `daemon ${sender} now runs our configuration`);
    this.heard.add(sender);
    return true;
  }

  /** A data packet or token of a ring that is not ours. */
  private onForeign(packet: Packet, nowMs: number): void {
    const cur = this.cur;
    // Our own earlier rings, or a member of our ring talking in an older one: delayed packets.
    if (this.history.includes(ringKey(packet.membId)) || (cur !== null && cur.memberSet.has(packet.sender))) {
      this.count('staleRing');
      return;
    }
    this.count('foreignRing');
    // A live daemon outside our ring: merge (JOINs do the same in the other states).
    if (this.state === 'op' && (packet.type === PacketType.DATA || packet.type === PacketType.TOKEN)) {
      this.enterGather('foreign message', nowMs, packet.sender);
    }
  }

  // ---------------------------------------------------------------- gather

  private enterGather(reason: GatherReason, nowMs: number, trigger?: number): void {
    const from = this.state;
    this.count(GATHER_COUNTERS[reason]);
    if (from === 'op') {
      const cur = this.cur;
      assert(cur !== null, 'op has a ring');
      // The ring we leave becomes the old ring: its undelivered messages wait for EVS.
      this.old = { view: cur, buf: this.buf };
      this.procSet.clear();
      this.failSet.clear();
      for (const vid of cur.members) this.procSet.add(vid);
    } else {
      if (from === 'recovery') {
        assert(this.cur !== null, 'recovery has a ring');
        this.rememberRing(this.cur.membId, this.buf);
      }
      // A new attempt starts from the daemons we still believe in, with an empty fail set: a
      // fail set carried from attempt to attempt (a daemon that never gets to install) would
      // spread to every daemon that hears our JOINs and keep splitting rings that could merge.
      for (const vid of this.failSet) this.procSet.delete(vid);
      this.failSet.clear();
    }
    this.note(nowMs, `gather (${reason}) from ${from}${trigger === undefined ? '' : `, daemon ${trigger}`}`);
    this.state = 'gather';
    this.cur = null;
    this.buf = new PacketBuffer(this.startSeq, this.badFragment);
    this.procSet.add(this.myVid);
    if (trigger !== undefined && !this.failSet.has(trigger)) this.procSet.add(trigger);
    this.frozen = false;
    this.forming = null;
    this.formAtMs = null;
    this.plan = null;
    this.recoveryQueue = [];
    this.recoveryHead = 0;
    this.resetTokenState();
    this.lookupAtMs = null;
    // Fragments of the head message that went out in the ring we leave are never completed there: start it again.
    this.headOffset = 0;
    this.header = { sender: this.myVid, membId: this.old?.view.membId ?? NO_RING, configHash: this.configHash };
    this.attempt = (this.attempt + 1) >>> 0;
    this.consensus = new Map([[this.myVid, { attempt: this.attempt, incarnation: this.incarnation }]]);
    this.gatherStartMs = nowMs;
    this.consensusAtMs = nowMs + this.gatherTimeoutMs;
    this.joinAtMs = nowMs + this.joinTimeoutMs;
    this.sendJoin();
  }

  private resetTokenState(): void {
    this.haveHop = false;
    this.lastHop = 0;
    this.myLastContribution = 0;
    this.lastForwardedSeq = this.startSeq;
    this.lastTokenBytes = null;
    this.retransmitAtMs = null;
    this.tokenLossAtMs = null;
    this.hurryAtMs = null;
    this.heldToken = null;
    this.holdUntilMs = null;
    this.fullRotations = 0;
    this.departedFullSeq = null;
    this.hurryPending = false;
    this.believeIdle = false;
    this.stalledVisits = 0;
  }

  private sendJoin(): void {
    this.send(
      'all',
      encodeJoin(this.header, {
        flags: 0,
        incarnation: this.incarnation,
        attempt: this.attempt,
        proc: this.inConfigOrder(this.procSet),
        fail: this.inConfigOrder(this.failSet),
      }),
    );
    this.count('joinsSent');
  }

  /** Leader of an incomplete ring: tell the configured daemons outside it that we are here. */
  private probe(): void {
    const cur = this.cur;
    assert(cur !== null && this.state === 'op', 'probe from op');
    let bytes: Uint8Array | null = null;
    for (const vid of this.configured) {
      // Refused daemons too: so that they learn of us and say why they refuse us as well.
      if (cur.memberSet.has(vid)) continue;
      bytes ??= encodeJoin(this.header, { flags: JoinFlag.PROBE, incarnation: this.incarnation, attempt: this.attempt, proc: cur.members, fail: [] });
      this.send(vid, bytes);
      this.count('probesSent');
    }
  }

  private onJoin(j: JoinPacket, nowMs: number): void {
    this.count('joinsReceived');
    const sender = j.sender;
    if (!j.proc.every((v) => this.configIndex.has(v)) || !j.fail.every((v) => this.configIndex.has(v))) {
      this.count('malformed');
      return;
    }
    this.joinRing.set(sender, j.membId);
    switch (this.state) {
      case 'op': {
        const cur = this.cur!;
        if (!cur.memberSet.has(sender)) {
          // It has given up on us for its current gather: answering would only make us give up
          // on it in turn and spread that to our ring. It probes again once it has a ring.
          if (j.fail.includes(this.myVid)) {
            this.count('staleJoins');
            return;
          }
          this.enterGather('join', nowMs, sender);
        } else if (cur.incarnations.get(sender) !== j.incarnation) {
          this.enterGather('restart', nowMs, sender);
        } else if (sameRing(j.membId, cur.membId)) {
          this.enterGather('join', nowMs, sender); // a member of our ring lost the token
        } else {
          this.count('staleJoins'); // sent before the sender installed our ring
          return;
        }
        break;
      }
      case 'commit':
      case 'recovery':
        if (this.isStaleJoin(j)) {
          this.count('staleJoins');
          return;
        }
        this.enterGather('join', nowMs, sender);
        break;
      case 'gather':
        break;
    }
    this.gatherJoin(j, nowMs);
  }

  /** In commit or recovery: a JOIN that changes nothing (sent before the sender agreed). */
  private isStaleJoin(j: JoinPacket): boolean {
    // We gave up on this daemon in this membership; it merges after we install.
    if (this.failSet.has(j.sender)) return true;
    const forming = this.forming;
    assert(forming !== null, 'commit and recovery have a forming ring');
    if (!forming.members.includes(j.sender)) return false;
    if (!sameList(j.proc, this.inConfigOrder(this.procSet)) || !sameList(j.fail, this.inConfigOrder(this.failSet))) return false;
    const agreed = this.consensus.get(j.sender);
    return agreed === undefined || (agreed.incarnation === j.incarnation && seqLte(j.attempt, agreed.attempt));
  }

  /** Totem's join rule: merge the sender's sets into ours; equal sets count as its agreement. */
  private gatherJoin(j: JoinPacket, nowMs: number): void {
    assert(this.state === 'gather', 'join merge in gather');
    const sender = j.sender;
    if (this.failSet.has(sender)) {
      this.count('staleJoins');
      return;
    }
    let changed = false;
    if (j.fail.includes(this.myVid)) {
      // It has given up on us: no ring can hold both of us in this membership.
      this.failSet.add(sender);
      this.procSet.add(sender);
      changed = true;
    } else {
      for (const vid of j.proc) {
        if (!this.procSet.has(vid)) (this.procSet.add(vid), (changed = true));
      }
      for (const vid of j.fail) {
        if (!this.failSet.has(vid)) (this.failSet.add(vid), this.procSet.add(vid), (changed = true));
      }
      if (!this.procSet.has(sender)) (this.procSet.add(sender), (changed = true));
    }
    if (changed) {
      this.consensus = new Map([[this.myVid, { attempt: this.attempt, incarnation: this.incarnation }]]);
      this.consensusAtMs = nowMs + this.gatherTimeoutMs;
      this.sendJoin();
    }
    if (!this.failSet.has(sender) && sameList(j.proc, this.inConfigOrder(this.procSet)) && sameList(j.fail, this.inConfigOrder(this.failSet))) {
      this.consensus.set(sender, { attempt: j.attempt, incarnation: j.incarnation });
    }
    this.checkConsensus(nowMs);
  }

  /** proc − fail, configuration order: the ring we are trying to form. */
  private candidates(): number[] {
    return this.configured.filter((vid) => this.procSet.has(vid) && !this.failSet.has(vid));
  }

  private checkConsensus(nowMs: number): void {
    if (this.state !== 'gather') return;
    const members = this.candidates();
    assert(members.includes(this.myVid), 'I am never in my own fail set');
    for (const vid of members) if (!this.consensus.has(vid)) return;
    // Let JOINs of daemons starting at the same moment arrive (the join tick checks again).
    // Alone, or when every one of us just started (a cold start), wait a whole GatherTimeout:
    // daemons started together by hand or by a script should form one ring, not first rings
    // of one or two that then merge. A daemon restarting into a running ring merges sooner.
    const coldStart = members.every((vid) => (vid === this.myVid ? this.old === null : sameRing(this.joinRing.get(vid) ?? NO_RING, NO_RING)));
    const least = members.length === 1 || coldStart ? this.gatherTimeoutMs : this.joinTimeoutMs;
    if (nowMs < this.gatherStartMs + least) return;
    if (members[0] !== this.myVid) return; // the representative sends the commit token
    this.formRing(members, nowMs);
  }

  private consensusTimeout(nowMs: number): void {
    const missing = this.candidates().filter((vid) => !this.consensus.has(vid));
    if (missing.length === 0 && this.candidates()[0] === this.myVid) {
      // Everyone agreed and we form the ring: we were only waiting for the least gather time.
      this.checkConsensus(nowMs);
      if (this.state !== 'gather') return;
    }
    this.count('consensusTimeouts');
    for (const vid of missing) {
      this.failSet.add(vid);
      this.count('failedDaemons');
    }
    // Everyone agreed but no ring came: the representative may be gone; ask for fresh agreement.
    this.note(nowMs, missing.length > 0 ? `consensus timeout: failing ${missing.join(', ')}` : 'consensus timeout: no commit token, gathering again');
    this.consensus = new Map([[this.myVid, { attempt: this.attempt, incarnation: this.incarnation }]]);
    this.consensusAtMs = nowMs + this.gatherTimeoutMs;
    this.sendJoin();
    this.checkConsensus(nowMs);
  }

  // ---------------------------------------------------------------- commit (form)

  /** Representative: a new ring id above every ring any member was in, then the commit token. */
  private formRing(members: number[], nowMs: number): void {
    let time = Math.max(Math.floor(nowMs / 1000), this.lastFormedTime + 1);
    if (this.old !== null) time = Math.max(time, this.old.view.membId.time + 1);
    for (const vid of members) {
      const ring = this.joinRing.get(vid);
      if (ring !== undefined) time = Math.max(time, ring.time + 1);
    }
    assert(time <= 0xffffffff, 'ring id time fits u32');
    const id = { procId: this.myVid, time };
    this.lastFormedTime = time;
    this.rememberRing(id);
    if (members.length === 1) {
      this.installAlone(id, nowMs);
      return;
    }
    this.forming = { id, members, lastHop: 0 };
    const entries = members.map((vid) => ({ vid, incarnation: 0, filled: false, oldRing: NO_RING, aru: 0, highest: 0, safe: 0 }));
    this.enterCommit({ hop: 0, rotation: 1, entries }, nowMs);
  }

  private enterCommit(c: CommitFields, nowMs: number): void {
    assert(this.state === 'gather' && this.forming !== null, 'commit from gather with a forming ring');
    this.state = 'commit';
    this.count('commitEnters');
    // What we report now is what the others will rely on: the old ring takes no more packets of its own.
    this.frozen = true;
    this.joinAtMs = null;
    this.consensusAtMs = null;
    const mine = c.entries.find((e) => e.vid === this.myVid);
    assert(mine !== undefined && !mine.filled, 'my commit entry is empty');
    const old = this.old;
    mine.incarnation = this.incarnation;
    mine.filled = true;
    mine.oldRing = old?.view.membId ?? NO_RING;
    mine.aru = old?.buf.myAru ?? 0;
    mine.highest = old?.buf.highestSeq ?? 0;
    mine.safe = old?.buf.safeSeq ?? 0;
    this.note(nowMs, `commit: ring ${ringKey(this.forming.id)} with ${this.forming.members.join(', ')}`);
    this.forwardCommit(c, nowMs);
    this.formAtMs = nowMs + this.formTimeoutMs;
  }

  private forwardCommit(c: CommitFields, nowMs: number): void {
    const forming = this.forming;
    assert(forming !== null, 'a commit token belongs to a forming ring');
    c.hop = (c.hop + 1) >>> 0;
    forming.lastHop = c.hop;
    const index = forming.members.indexOf(this.myVid);
    const successor = forming.members[(index + 1) % forming.members.length];
    const bytes = encodeCommit({ sender: this.myVid, membId: forming.id, configHash: this.configHash }, c);
    this.send(successor, bytes);
    this.count('commitTokens');
    this.lastTokenBytes = bytes;
    this.lastTokenHop = c.hop;
    this.retransmitTo = successor;
    this.retransmitAtMs = nowMs + this.tokenRetransmitMs;
  }

  private onCommit(c: CommitPacket, nowMs: number): void {
    const forming = this.forming;
    if (forming !== null && sameRing(c.membId, forming.id)) {
      if (seqLte(c.hop, forming.lastHop)) {
        this.count('duplicateToken');
        this.send(c.sender, encodeTokenAck({ sender: this.myVid, membId: forming.id, configHash: this.configHash }, c.hop));
        return;
      }
      const representative = forming.members[0] === this.myVid;
      if (this.state === 'commit') {
        if (c.rotation === 1) {
          // Back at the representative: every member has filled its entry.
          if (!representative || !c.entries.every((e) => e.filled)) {
            this.count('commitMismatch');
            return;
          }
          c.rotation = 2;
        }
        forming.lastHop = c.hop;
        this.enterRecovery(c, nowMs);
        this.forwardCommit(c, nowMs);
        return;
      }
      if (this.state === 'recovery' && representative && c.rotation === 2) {
        // Second rotation back: every member is in recovery. The new ring's token starts here.
        forming.lastHop = c.hop;
        const start = this.startSeq;
        this.tokenVisit({ hop: c.hop, seq: start, aru: start, aruSetter: NONE, flowControl: 0, round: 0, flags: 0, rtr: [] }, nowMs);
        return;
      }
      this.count('commitMismatch');
      return;
    }
    if (this.state !== 'gather' || c.rotation !== 1) {
      this.count('commitMismatch');
      return;
    }
    const members = c.entries.map((e) => e.vid);
    // A commit token of an attempt we already gave up (its id is remembered) is not taken up again.
    if (!sameList(members, this.candidates()) || c.membId.procId !== members[0] || members[0] === this.myVid || this.history.includes(ringKey(c.membId))) {
      this.count('commitMismatch');
      return;
    }
    this.forming = { id: { ...c.membId }, members, lastHop: c.hop };
    this.rememberRing(c.membId);
    this.enterCommit(c, nowMs);
  }

  // ---------------------------------------------------------------- recovery (EVS)

  private enterRecovery(c: CommitFields, nowMs: number): void {
    const forming = this.forming;
    assert(this.state === 'commit' && forming !== null, 'recovery from commit');
    assert(c.entries.every((e) => e.filled) && sameList(c.entries.map((e) => e.vid), forming.members), 'a complete commit token');
    this.state = 'recovery';
    this.count('recoveryEnters');
    const incarnations = new Map(c.entries.map((e) => [e.vid, e.incarnation]));
    this.cur = this.makeView(forming.id, forming.members, incarnations, c.entries.map((e) => ({ ...e.oldRing })));
    this.buf = new PacketBuffer(this.startSeq, this.badFragment);
    this.header = { sender: this.myVid, membId: forming.id, configHash: this.configHash };
    this.plan = this.planRecovery(c);
    this.resetTokenState();
    // Commit hops and token hops share the ring id: the token's hops continue above the commit token's.
    this.haveHop = true;
    this.lastHop = c.hop;
    this.recoveryQuietVisits = 0;
    this.formAtMs = null;
    this.tokenLossAtMs = nowMs + this.tokenTimeoutMs;
    const plan = this.plan;
    this.note(
      nowMs,
      plan.oldRing === null
        ? `recovery: ring ${ringKey(forming.id)}, nothing to recover (first ring)`
        : `recovery: ring ${ringKey(forming.id)}, from ${ringKey(plan.oldRing)} with ${plan.trans.join(', ')}; ` +
            `${this.recoveryQueue.length} packets to re-send, up to ${plan.maxHighest}, safe to ${plan.safeBound}`,
    );
  }

  /** Which old packets this daemon re-sends, and the bounds of EVS delivery (§7.3). */
  private planRecovery(c: CommitFields): RecoveryPlan {
    this.recoveryQueue = [];
    this.recoveryHead = 0;
    const old = this.old;
    if (old === null) return { oldRing: null, trans: [], transSet: new Set(), maxHighest: 0, safeBound: 0 };
    const oldRing = old.view.membId;
    // Same old ring id and the same life of the daemon as when that ring formed: a daemon that
    // restarted and reused a ring id (it cannot remember its earlier ones) is not of our ring.
    const group = c.entries.filter((e) => sameRing(e.oldRing, oldRing) && old.view.incarnations.get(e.vid) === e.incarnation);
    const mine = group.find((e) => e.vid === this.myVid);
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
      if (responsible === undefined || responsible.vid === this.myVid) this.recoveryQueue.push(seq);
    }
    return { oldRing: { ...oldRing }, trans, transSet, maxHighest, safeBound };
  }

  private recoveryQueued(): boolean {
    return this.recoveryHead < this.recoveryQueue.length;
  }

  /** Up to `count` recovery packets, each wrapping one old packet, taking the new ring's next seqs. */
  private buildRecoveryPackets(count: number, t: TokenFields): Uint8Array[] {
    const out: Uint8Array[] = [];
    const old = this.old;
    assert(old !== null || !this.recoveryQueued(), 'recovery packets come from the old ring');
    while (out.length < count && this.recoveryQueued()) {
      const inner = old!.buf.get(this.recoveryQueue[this.recoveryHead++]);
      assert(inner !== undefined, 'a queued recovery packet is held');
      const seq = seqAdd(t.seq, 1);
      const writer = new DataPacketWriter(DATA_HEADER_BYTES + FRAGMENT_HEADER_BYTES + inner.bytes.length);
      writer.begin(this.header, seq, this.myVid, t.round);
      writer.append(FragmentFlag.FIRST | FragmentFlag.LAST, inner.bytes, 0, inner.bytes.length);
      const packet = writer.finishPacket(DataFlag.RECOVERED);
      t.seq = seq;
      this.packetsSent++;
      this.count('recoveryPacketsSent');
      this.buf.store(packet);
      out.push(packet.bytes);
    }
    return out;
  }

  /** A recovery packet arrived: keep the old packet it carries if it is of our old ring. */
  private takeRecovered(packet: DataPacket): void {
    const old = this.old;
    const plan = this.plan;
    if (old === null || plan === null || plan.oldRing === null || packet.fragments.length !== 1) return;
    const decoded = decodePacket(packet.fragments[0].payload);
    if (!decoded.ok || decoded.packet.type !== PacketType.DATA || !sameRing(decoded.packet.membId, plan.oldRing)) return;
    const inner = decoded.packet;
    if (seqGt(inner.seq, plan.maxHighest) || !old.buf.accepts(inner.seq)) return;
    old.buf.store(inner);
    this.count('recoveredPackets');
  }

  /** End of recovery: the old ring's messages per §7.3, the transitional and the regular configuration. */
  private install(nowMs: number): void {
    const cur = this.cur;
    const plan = this.plan;
    assert(this.state === 'recovery' && cur !== null && plan !== null, 'install from recovery');
    const old = this.old;
    if (old !== null && plan.oldRing !== null) {
      this.deliverOldRing(old.buf, plan, cur.membId);
      this.rememberRing(old.view.membId, old.buf);
    }
    this.count('installs');
    this.membershipChanges++;
    this.events.push({ kind: 'regular', membId: { ...cur.membId }, members: [...cur.members], previous: cur.previous.map((p) => ({ ...p })) });
    this.note(nowMs, `ring ${ringKey(cur.membId)} installed with ${cur.members.join(', ')}`);
    this.state = 'op';
    this.old = null;
    this.frozen = false;
    this.plan = null;
    this.forming = null;
    this.recoveryQueue = [];
    this.recoveryHead = 0;
    this.procSet.clear();
    this.failSet.clear();
    this.consensus.clear();
    this.stalledVisits = 0;
    this.stalledAru = this.buf.myAru;
    this.rememberRing(cur.membId);
    this.lookupAtMs = cur.members.length < this.configured.length && cur.leaderVid === this.myVid ? nowMs + this.lookupTimeoutMs : null;
  }

  /**
   * §7.3 steps 1–3 over the old ring's buffer, up to the highest seq any daemon of the
   * transitional set has (each of them holds exactly the same packets now).
   */
  private deliverOldRing(b: PacketBuffer, plan: RecoveryPlan, newId: MembershipId): void {
    const limit = plan.maxHighest;
    // 1. In order, up to the first hole or the first SAFE packet not known to be held by the whole old ring.
    while (seqLt(b.deliveredSeq, limit)) {
      const seq = seqAdd(b.deliveredSeq, 1);
      const packet = b.get(seq);
      if (packet === undefined) break;
      if (b.isSafeSlot(seq) && seqGt(seq, plan.safeBound)) break;
      b.deliverPacket(packet, this.emit);
      b.deliveredSeq = seq;
      this.packetsDelivered++;
    }
    // 2. The transitional configuration.
    this.events.push({ kind: 'transitional', membId: { ...newId }, members: [...plan.trans] });
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
      b.deliverPacket(packet, this.emit);
      this.packetsDelivered++;
    }
  }

  /** A ring of one: no token, no commit; install at once. */
  private installAlone(id: MembershipId, nowMs: number): void {
    const old = this.old;
    this.state = 'recovery';
    this.count('recoveryEnters');
    this.cur = this.makeView(id, [this.myVid], new Map([[this.myVid, this.incarnation]]), [{ ...(old?.view.membId ?? NO_RING) }]);
    this.buf = new PacketBuffer(this.startSeq, this.badFragment);
    this.header = { sender: this.myVid, membId: id, configHash: this.configHash };
    this.joinAtMs = null;
    this.consensusAtMs = null;
    this.plan =
      old === null
        ? { oldRing: null, trans: [], transSet: new Set(), maxHighest: 0, safeBound: 0 }
        : {
            oldRing: { ...old.view.membId },
            trans: [this.myVid],
            transSet: new Set([this.myVid]),
            maxHighest: old.buf.highestSeq,
            safeBound: old.view.members.length === 1 ? old.buf.highestSeq : old.buf.safeSeq,
          };
    this.resetTokenState();
    this.install(nowMs);
  }

  /** A ring of one in op: order everything queued, no packets on the wire. */
  private orderAlone(): void {
    const b = this.buf;
    while (this.hasQueued()) {
      const t: TokenFields = { hop: 0, seq: b.highestSeq, aru: b.highestSeq, aruSetter: NONE, flowControl: 0, round: 0, flags: 0, rtr: [] };
      this.buildPackets(this.window, t);
      b.allSafe();
      this.packetsDelivered += b.deliver(this.emit);
    }
  }

  // ---------------------------------------------------------------- receive paths

  private onData(packet: DataPacket): void {
    assert(this.state === 'op' || this.state === 'recovery', 'data of our ring in op or recovery');
    const buf = this.buf;
    if (seqLte(packet.seq, buf.myAru) || buf.get(packet.seq) !== undefined) {
      this.count('duplicateData');
      return;
    }
    if (!buf.accepts(packet.seq)) {
      this.count('outOfWindow');
      return;
    }
    buf.store(packet);
    if ((packet.flags & DataFlag.RECOVERED) !== 0 && this.state === 'recovery') this.takeRecovered(packet);
    this.deliverCurrent();
  }

  /** In gather: a late packet of the ring we left. It may fill a hole; deliver what became deliverable. */
  private onOldData(packet: DataPacket): void {
    const b = this.old!.buf;
    if (!b.accepts(packet.seq)) {
      this.count('duplicateData');
      return;
    }
    b.store(packet);
    this.count('lateOldPackets');
    this.packetsDelivered += b.deliver(this.emit);
  }

  private onToken(token: TokenPacket, nowMs: number): void {
    if (this.haveHop && seqLte(token.hop, this.lastHop)) {
      // A re-sent token we already processed: tell the sender to stop.
      this.count('duplicateToken');
      this.send(token.sender, encodeTokenAck(this.header, token.hop));
      return;
    }
    this.tokenVisit(token, nowMs);
  }

  private onTokenAck(sender: number, hop: number): void {
    this.count('tokenAcks');
    if (this.lastTokenBytes !== null && sender === this.retransmitTo && seqLte(this.lastTokenHop, hop)) this.retransmitAtMs = null;
  }

  private onHurry(nowMs: number): void {
    this.count('hurryReceived');
    if (this.state !== 'op' || this.cur!.leaderVid !== this.myVid) return;
    this.hurryPending = true;
    if (this.heldToken !== null) this.releaseToken(nowMs, false);
  }

  // ---------------------------------------------------------------- the token visit

  /** `mayHold`: false when the leader releases a token it held (the hold decision was made then). */
  private tokenVisit(token: TokenFields, nowMs: number, mayHold = true): void {
    const cur = this.cur;
    assert((this.state === 'op' || this.state === 'recovery') && cur !== null, 'token visit in op or recovery');
    assert(seqLte(token.aru, token.seq), 'token aru ≤ seq');
    const buf = this.buf;
    this.haveHop = true;
    this.lastHop = token.hop;
    this.retransmitAtMs = null; // a newer token: our successor had ours
    this.lastTokenBytes = null;
    this.hurryAtMs = null;
    this.believeIdle = false;
    if (seqGt(token.seq, buf.highestSeq)) buf.highestSeq = token.seq;

    const isLeader = cur.leaderVid === this.myVid;
    const recovering = this.state === 'recovery';
    let installing = false;
    if (recovering) {
      if (isLeader) {
        const quiet = token.aru === token.seq && (token.flags & TokenFlag.RECOVERY_PENDING) === 0 && !this.recoveryQueued() && buf.myAru === token.seq;
        this.recoveryQuietVisits = quiet ? this.recoveryQuietVisits + 1 : 0;
        installing = this.recoveryQuietVisits >= RECOVERY_QUIET_VISITS;
      } else {
        installing = (token.flags & TokenFlag.INSTALL) !== 0;
      }
    }

    if (!recovering && isLeader && mayHold && this.shouldHold(token)) {
      this.heldToken = token;
      this.holdUntilMs = nowMs + this.heartbeatMs;
      this.tokenLossAtMs = null;
      this.count('tokenHolds');
      this.send(cur.predecessor, encodeTokenAck(this.header, token.hop));
      buf.noteTokenAru(token.aru);
      this.deliverCurrent();
      return;
    }

    const t: TokenFields = { ...token, rtr: [] };
    if (isLeader) t.round = (t.round + 1) >>> 0;
    this.tokenRounds++;

    // 1. Answer retransmission requests, at most a personal window of them (they count
    //    against flow control like new packets); keep the rest for later visits.
    let retransmitted = 0;
    for (const seq of token.rtr) {
      if (seqLte(seq, buf.discardSeq)) continue; // every member has it: stale request
      const held = seqLte(seq, buf.highestSeq) ? buf.get(seq) : undefined;
      if (held !== undefined && retransmitted < this.personalWindow) {
        this.send('all', retransmissionOf(held.bytes, this.myVid));
        retransmitted++;
      } else {
        t.rtr.push(seq);
      }
    }
    this.retransmissions += retransmitted;

    // 2. New packets under flow control: in recovery only the old ring's packets, from the install on client messages.
    const seqBefore = t.seq;
    const allowance = Math.max(0, this.flowAllowance(t) - retransmitted);
    const recoveryPending = recovering && !installing && this.recoveryQueued();
    const fresh = recovering && !installing ? this.buildRecoveryPackets(allowance, t) : this.buildPackets(allowance, t);

    // 3. Ask for what we miss, but only what had a full rotation to arrive: the token
    //    often overtakes the data sent just before it (and always does in the accelerated ring).
    const askLimit = seqMin(seqBefore, this.lastForwardedSeq);
    this.requestMissing(t.rtr, askLimit);

    // 4. aru (Totem): lower it to ours, or raise it if we set it / nobody owns it.
    if (seqLt(buf.myAru, t.aru) || t.aruSetter === this.myVid || t.aruSetter === NONE) {
      t.aru = buf.myAru;
      t.aruSetter = t.aru === t.seq ? NONE : this.myVid;
    }

    // 5. Flow control: replace our previous contribution with this visit's.
    const contribution = retransmitted + fresh.length;
    t.flowControl = Math.max(0, t.flowControl - this.myLastContribution) + contribution;
    this.myLastContribution = contribution;

    // 6. Flags. Recovery: the leader starts each rotation with RECOVERY_PENDING clear and
    //    anyone still re-sending sets it; the leader's INSTALL tells each member to install.
    //    Idle: the leader announces a possible hold; anyone adding work withdraws it.
    if (isLeader) {
      this.hurryPending = false;
      t.flags &= ~(TokenFlag.RECOVERY_PENDING | TokenFlag.INSTALL | TokenFlag.IDLE);
      if (recovering && installing) t.flags |= TokenFlag.INSTALL;
      // Offered on every rotation: the hold decision on its return checks that it was quiet.
      if (!recovering) t.flags |= TokenFlag.IDLE;
      this.departedFullSeq = t.aru === t.seq ? t.seq : null;
    }
    if (recoveryPending) t.flags |= TokenFlag.RECOVERY_PENDING;
    // A member with work withdraws the offer; the leader's own packets of this visit do not.
    if ((contribution > 0 && !isLeader) || t.rtr.length > 0 || this.hasQueued() || recovering) t.flags &= ~TokenFlag.IDLE;
    t.hop = seqAdd(t.hop, 1);

    // 7. Send: packets before the token, the token, then (accelerated) the last window of packets.
    const after = Math.min(this.acceleratedWindow, fresh.length);
    for (let i = 0; i < fresh.length - after; i++) this.send('all', fresh[i]);
    const bytes = encodeToken(this.header, t);
    this.send(cur.successor, bytes);
    for (let i = fresh.length - after; i < fresh.length; i++) this.send('all', fresh[i]);
    this.lastTokenBytes = bytes;
    this.lastTokenHop = t.hop;
    this.retransmitTo = cur.successor;
    this.lastForwardedSeq = t.seq;
    this.retransmitAtMs = nowMs + this.tokenRetransmitMs;

    // An IDLE token may be parked at the leader, but it comes round every heartbeat: the loss timer stays.
    this.believeIdle = !isLeader && (t.flags & TokenFlag.IDLE) !== 0;
    this.tokenLossAtMs = nowMs + this.tokenTimeoutMs;

    // 8. Install (events after the token left), then deliver.
    if (installing) this.install(nowMs);
    buf.noteTokenAru(t.aru);
    this.deliverCurrent();

    // 9. Failed to receive: my aru stuck below the ring's seq for many visits (nobody can fill the
    //    hole; in recovery, Spread's cap on recovery rotations plays this part).
    if (this.state === 'op' || this.state === 'recovery') {
      if (seqLt(buf.myAru, t.seq) && buf.myAru === this.stalledAru) {
        if (++this.stalledVisits >= FAIL_TO_RECEIVE_VISITS) this.enterGather('failed to receive', nowMs);
      } else {
        this.stalledVisits = 0;
        this.stalledAru = buf.myAru;
      }
    }
  }

  private deliverCurrent(): void {
    this.packetsDelivered += this.buf.deliver(this.emit, this.state === 'recovery');
  }

  /** Leader: park the token when its last rotation was quiet and nobody asked for it. */
  private shouldHold(token: TokenFields): boolean {
    const buf = this.buf;
    // flowControl still counts the packets the leader itself sent when the token left.
    const othersAdded = token.flowControl - this.myLastContribution;
    const full = this.departedFullSeq === token.seq && token.aru === token.seq && token.aruSetter === NONE && othersAdded === 0;
    this.fullRotations = full ? this.fullRotations + 1 : 0;
    // Two full rotations: every member saw aru = seq twice, so delivered every SAFE packet.
    if (this.fullRotations >= FULL_ROTATIONS_BEFORE_SAFE_HOLD) buf.noteSafeEverywhere(token.seq);
    const quiet = full && token.rtr.length === 0 && buf.myAru === token.seq && !this.hasQueued();
    const safeDelivered = this.fullRotations >= FULL_ROTATIONS_BEFORE_SAFE_HOLD || !buf.safePendingSomewhere();
    // The IDLE flag surviving a rotation means nobody withdrew it (nobody has work queued).
    return quiet && safeDelivered && !this.hurryPending && (token.flags & TokenFlag.IDLE) !== 0;
  }

  /** `heartbeat`: the idle ring's periodic rotation (it comes back to be held again at once). */
  private releaseToken(nowMs: number, heartbeat: boolean): void {
    const token = this.heldToken;
    assert(token !== null && this.cur?.leaderVid === this.myVid, 'release a held token at the leader');
    this.heldToken = null;
    this.holdUntilMs = null;
    if (!heartbeat) this.fullRotations = 0;
    // The held token was accepted when it arrived; now run the visit we postponed.
    this.tokenVisit(token, nowMs, false);
  }

  /** Spread's formula (§11.2), the gap rule and the receive-buffer bound. */
  private flowAllowance(t: TokenFields): number {
    if (seqDiff(t.seq, t.aru) >= SEQ_GAP_MAX) return 0;
    const byWindow = Math.min(this.personalWindow, this.window, Math.max(0, this.window + this.personalWindow - t.flowControl));
    const byBuffer = PACKET_SLOTS - 1 - seqDiff(t.seq, this.buf.discardSeq);
    const byGap = SEQ_GAP_MAX - seqDiff(t.seq, t.aru);
    return Math.max(0, Math.min(byWindow, byBuffer, byGap));
  }

  private requestMissing(rtr: number[], limit: number): void {
    const buf = this.buf;
    if (rtr.length >= RTR_ITEMS_MAX || !seqLt(buf.myAru, limit)) return;
    const listed = new Set(rtr);
    const bufferEnd = seqAdd(buf.discardSeq, PACKET_SLOTS - 1);
    const end = seqMin(limit, bufferEnd);
    for (let seq = seqAdd(buf.myAru, 1); seqLte(seq, end) && rtr.length < RTR_ITEMS_MAX; seq = seqAdd(seq, 1)) {
      if (buf.get(seq) !== undefined || listed.has(seq)) continue;
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
        // A message that would fit a packet of its own starts the next one instead of being split:
        // every receiver would otherwise copy its pieces together.
        if (remaining > room && this.headOffset === 0 && this.writer.fragments > 0 && remaining <= this.writer.emptyRoom) break;
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
      this.buf.store(packet);
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

  // ---------------------------------------------------------------- helpers

  private makeView(membId: MembershipId, members: number[], incarnations: ReadonlyMap<number, number>, previous: MembershipId[]): RingView {
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

  private inConfigOrder(set: ReadonlySet<number>): number[] {
    return this.configured.filter((vid) => set.has(vid));
  }

  /** Remember a ring id (its packets are stale from now on), with what I held there if I leave it. */
  private rememberRing(id: MembershipId, left?: PacketBuffer): void {
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
