/**
 * The contract between the ordering core (the ring) and the layers above it.
 *
 * A ring is a pure state machine in the style of etcd's RawNode: inputs are
 * `submit` (a local message to order), `receive` (a datagram from another daemon)
 * and `tick` (time passes; time is only ever an argument). Effects are collected
 * and handed out by `ready()`. Nothing behind this interface touches a socket,
 * a timer, Date.now() or Math.random().
 *
 * Effect ordering (documented here, relied on by the adapters):
 *   1. send `packets` first (the token is forwarded before anything is delivered);
 *   2. then hand `events` to the group layer in array order.
 * A SAFE message appears in `events` only once every daemon of the current
 * configuration holds it.
 */

/** Identifies one daemon membership (a ring): (leader VID, time), §5.2. */
export interface MembershipId {
  procId: number;
  time: number;
}

export type RingEvent =
  /**
   * A message in the total order. `payload` is what some daemon passed to `submit`.
   * `seq` is the message's position in its ring's order (1, 2, … per ring; EVS
   * deliveries of the old ring continue the old ring's count). `packetSeq` (only
   * with TotemOptions.traceDeliveries) is the ring sequence number of the packet
   * that completed the message, for simulator checks.
   */
  | { kind: 'deliver'; seq: number; origin: number; safe: boolean; payload: Uint8Array; packetSeq?: number }
  /**
   * Transitional configuration (§7.3): `members` are the daemons that move together
   * from this daemon's previous ring into the ring being installed (configuration
   * order, this daemon included); `membId` is the id of the ring being installed.
   * It comes after the old ring's messages that every member of the old ring holds
   * and before its clean-up messages; the next event of kind 'transitional' or
   * 'regular' is that ring's 'regular'. A daemon's first ring has no transitional.
   */
  | { kind: 'transitional'; membId: MembershipId; members: number[] }
  /**
   * Regular configuration: the new ring, members as VIDs in configuration order.
   * `previous[i]` is the ring `members[i]` installed last before this one
   * ({procId: 0, time: 0} for a daemon that had none: it just started). Daemons
   * with equal `previous` came from the same daemon membership.
   */
  | { kind: 'regular'; membId: MembershipId; members: number[]; previous?: MembershipId[] };

/** A datagram to send; `to` is a daemon VID or 'all' (every other daemon of the configuration). */
export interface OutboundPacket {
  to: number | 'all';
  bytes: Uint8Array;
}

export interface RingReady {
  packets: OutboundPacket[];
  events: RingEvent[];
}

/** Membership state names (§11.4), reported by status. */
export type RingState = 'op' | 'seg' | 'represented' | 'gather' | 'form' | 'evs';

export interface RingStatus {
  state: RingState;
  myVid: number;
  leaderVid: number;
  membId: MembershipId;
  members: number[];
  aru: number;
  myAru: number;
  highestSeq: number;
  packetsSent: number;
  packetsReceived: number;
  packetsDelivered: number;
  retransmissions: number;
  tokenHurry: number;
  tokenRounds: number;
  membershipChanges: number;
  window: number;
  personalWindow: number;
  acceleratedRing: boolean;
  acceleratedWindow: number;
  /** Largest datagram this daemon's ring sends (DatagramBytes, or the size chosen for it). */
  datagramBytes: number;
}

/** What a ring saw that did not fit normal operation (optional; TotemRing provides it). */
export interface RingDiagnostics {
  /** Daemons whose packets are refused, with the reason (e.g. a different configuration hash). */
  refused: { vid: number; reason: string }[];
  /** Configured daemons heard from (any accepted packet) since start. */
  heard: number[];
  /** Recent notable events, oldest first, bounded. */
  log: { atMs: number; text: string }[];
  /** Dropped-packet and protocol counters by name. */
  counters: Record<string, number>;
}

export interface Ring {
  readonly myVid: number;
  /**
   * Queue a message for total ordering. Returns false, queuing nothing, when the
   * send queue is at its bound: the caller stops reading clients (back-pressure).
   */
  submit(payload: Uint8Array, safe: boolean): boolean;
  /** A datagram arrived. Malformed or foreign packets are dropped and counted, never thrown. */
  receive(bytes: Uint8Array, nowMs: number): void;
  /** Time passes: fire every deadline that is due. */
  tick(nowMs: number): void;
  /** Take the pending effects (see the ordering rules above). */
  ready(): RingReady;
  /** Earliest time at which `tick` must be called, or null when nothing is scheduled. */
  nextDeadlineMs(): number | null;
  /** Messages submitted here and not yet ordered (drives the client read water mark). */
  pendingCount(): number;
  status(): RingStatus;
  /** Refusals, recent log lines and counters, for status tools and logs. */
  diagnostics?(): RingDiagnostics;
  /**
   * Highest ring id time this daemon formed, in this life or an earlier one. The adapter keeps
   * it durable before any effect leaves the process and hands it back after a restart
   * (TotemOptions.ringTimeFloor), so that no ring id is formed twice (ring-id.ts).
   */
  formedRingTime?(): number;
  /**
   * New flow-control windows (the monitor's FLOW CONTROL, §9), from the next token visit on;
   * null keeps a value. Returns why the change was refused (nothing changes then), or null.
   */
  setFlowControl?(change: FlowControlChange): string | null;
}

export interface FlowControlChange {
  window: number | null;
  personalWindow: number | null;
  acceleratedWindow: number | null;
}
