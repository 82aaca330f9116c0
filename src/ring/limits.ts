/**
 * Named bounds of the ring (TigerStyle: "put a limit on everything").
 * Units are last in names. Relations between bounds are asserted at the bottom,
 * so a bad edit fails at import time instead of in production.
 */

/** Default UDP payload: a 1500-byte Ethernet MTU minus IPv4 (20) and UDP (8) headers. */
export const DATAGRAM_BYTES_DEFAULT = 1472;
/** Smallest datagram we accept as a configuration: header plus a useful body. */
export const DATAGRAM_BYTES_MIN = 256;
/** Largest UDP payload over IPv4. */
export const DATAGRAM_BYTES_MAX = 65_507;
/**
 * Largest default datagram when every daemon is on loopback (from-config.ts). Measured with
 * three daemons on one host (BENCHMARKS.md): 8 KiB → 32 KiB still gains 40 % on 1000-byte
 * messages and 70 % on 10 000-byte ones (larger sizes not measured).
 */
export const DATAGRAM_BYTES_LOOPBACK_MAX = 32_768;

/**
 * Largest message the ring carries. Spread's client limit is 143 152 bytes (§6.2);
 * the ring itself allows more (the group layer sends state-exchange messages),
 * but bounds reassembly memory per origin.
 */
export const MESSAGE_BYTES_MAX = 4 * 1024 * 1024;

/** Receive-buffer slots (a power of two, so `seq & mask` survives wrap-around). Spread: 8192. */
export const PACKET_SLOTS = 8192;
/** No new packets while highest seq exceeds the ring aru by this much (Spread's gap rule, §11.2). */
export const SEQ_GAP_MAX = 1600;

/** Flow-control defaults (§11.6). */
export const WINDOW_DEFAULT = 160;
export const PERSONAL_WINDOW_DEFAULT = 20;
export const ACCELERATED_WINDOW_DEFAULT = 15;
/** Upper bound on Window so one rotation can never overrun the receive buffer. */
export const WINDOW_MAX = 1024;

/** Retransmission requests carried on one token; more wait for the next visit. */
export const RTR_ITEMS_MAX = 256;

/** Default send-queue bounds: submit() returns false beyond these (back-pressure, §6.4). */
export const SEND_QUEUE_MESSAGES_DEFAULT = 1000;
export const SEND_QUEUE_BYTES_DEFAULT = 8 * 1024 * 1024;

/**
 * Membership timeouts used when a ring is built without them (tests). A daemon takes
 * them from spread.conf, whose defaults (src/config/parameters.ts) are the same values:
 * tspread's own, shorter than Spread's §8.5 LAN defaults (see docs/configuration.md).
 */
/** No token for this long: token loss, membership starts (Spread's TokenTimeout). */
export const TOKEN_TIMEOUT_MS_DEFAULT = 400;
/** HURRY re-send period, and the period of the idle ring's heartbeat rotation. */
export const HURRY_TIMEOUT_MS_DEFAULT = 120;
/** Period of JOIN messages in gather; also the least time a gather lasts before a ring forms. */
export const JOIN_TIMEOUT_MS_DEFAULT = 50;
/** Consensus timeout: daemons that did not agree within it are declared failed. */
export const GATHER_TIMEOUT_MS_DEFAULT = 200;
/** Loss timeout of the commit (form) token. */
export const FORM_TIMEOUT_MS_DEFAULT = 200;
/** Period of probes from an incomplete ring's leader to the configured daemons outside it. */
export const LOOKUP_TIMEOUT_MS_DEFAULT = 1000;

/**
 * Consecutive token visits at the leader, during EVS recovery, on which nobody had
 * recovery packets left to send and the token's aru equalled its seq, before the new
 * ring is installed. Two: the first shows that everything sent has arrived everywhere,
 * the second confirms it over a rotation in which nothing was sent.
 */
export const RECOVERY_QUIET_VISITS = 2;

/**
 * When a timer fires more than TokenTimeout/4 late, this daemon was stalled: its loss timers
 * (token, consensus, form) wait this much longer, so that what arrived meanwhile is read first.
 */
export const STALL_GRACE_MS = 10;

/** Ring ids remembered (installed or formed here): packets stamped with one of them are stale. */
export const RING_HISTORY_MAX = 32;

/**
 * Token visits on which my aru stayed below the token's seq without moving before this
 * daemon gives up on retransmission and starts a membership ("failed to receive").
 */
export const FAIL_TO_RECEIVE_VISITS = 500;

/**
 * Full rotations (left with aru = seq, came back unchanged) before the leader may hold the
 * token while a SAFE packet may be undelivered at some member: two, so that every member
 * has seen aru = seq on two successive visits and so delivered it before the ring falls
 * silent. Without SAFE packets in flight one quiet rotation is enough.
 */
export const FULL_ROTATIONS_BEFORE_SAFE_HOLD = 2;

/** Bounded diagnostics log kept by each ring. */
export const DIAGNOSTIC_LOG_ENTRIES_MAX = 64;

/** Most daemons in one configuration (§6.1). */
export const MEMBERS_MAX = 128;

function assertRelation(ok: boolean, what: string): void {
  if (!ok) throw new Error(`ring limits: ${what}`);
}
assertRelation((PACKET_SLOTS & (PACKET_SLOTS - 1)) === 0, 'PACKET_SLOTS must be a power of two');
assertRelation(SEQ_GAP_MAX + WINDOW_MAX < PACKET_SLOTS, 'gap plus one window must fit the receive buffer');
assertRelation(DATAGRAM_BYTES_MIN <= DATAGRAM_BYTES_DEFAULT && DATAGRAM_BYTES_DEFAULT <= DATAGRAM_BYTES_LOOPBACK_MAX && DATAGRAM_BYTES_LOOPBACK_MAX <= DATAGRAM_BYTES_MAX, 'datagram bounds');
assertRelation(PERSONAL_WINDOW_DEFAULT <= WINDOW_DEFAULT, 'personal window within window');
assertRelation(ACCELERATED_WINDOW_DEFAULT <= PERSONAL_WINDOW_DEFAULT, 'accelerated window within personal window');
