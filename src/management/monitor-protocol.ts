/**
 * Spread's monitor protocol (spread-protocol.md §9): the UDP packets spmonitor and a daemon
 * exchange on the daemon's segment port P. Pure codecs over Uint8Array/DataView, plus
 * `respondToMonitor`, the daemon side: one datagram in, one decision out (a status reply to
 * send, a partition / flow-control / reload to apply, or a reason to ignore it).
 *
 * Byte order: every packet is in its writer's native order with the marker 0x80000080 in
 * `type` when the writer is little-endian (§3.2); the reader decides once, from `type`.
 * tspread writes little-endian, as x86 Spread does.
 *
 * Deviations from Spread 5.0.1:
 *   - PARTITION and FLOW CONTROL bodies must be exactly the 256 / 512 bytes spmonitor sends;
 *     Spread reads its fixed-size buffer whatever `data_len` says.
 *   - The status reply's `u_retrans`/`s_retrans` are 0 and `b_retrans` = `retrans`: the
 *     tspread ring does not split retransmissions by cast kind.
 *   - `message_delivered` is the snapshot's client messages delivered; `version` is the Spread
 *     protocol version tspread speaks (5.0.1), not the tspread package version.
 */
import { ENDIAN_MARKER, SPREAD_VERSION } from '../protocol/constants.js';
import { markerByteOrder } from '../protocol/header.js';
import type { DaemonStatusSnapshot } from '../daemon/status-types.js';
import type { RingState } from '../ring/types.js';
import type { SpreadConfig } from '../config/types.js';
import { canonicalAddress, parseIpAddress } from '../config/address.js';

export const MONITOR_HEADER_BYTES = 40;
export const STATUS_BODY_BYTES = 96;
export const STATUS_REPLY_BYTES = MONITOR_HEADER_BYTES + STATUS_BODY_BYTES;
/** MAX_PROCS_RING: the partition and flow-control tables have this many rows (§9.3). */
export const MONITOR_TABLE_ROWS = 128;
export const PARTITION_BODY_BYTES = MONITOR_TABLE_ROWS * 2;
export const FLOW_CONTROL_BODY_BYTES = MONITOR_TABLE_ROWS * 2 * 2;
/** spmonitor's default local port (-p, §10.4). */
export const DEFAULT_MONITOR_PORT = 6543;
/** A partition lapses this long after its last packet (§9.3); spmonitor re-sends every 25 s. */
export const PARTITION_LIFETIME_MS = 60_000;
export const PARTITION_RESEND_MS = 25_000;

/** `type` command bits (§9.3), marker cleared. */
export const MonitorCommand = {
  STATUS: 0x01000000,
  PARTITION: 0x02000000,
  FLOW_CONTROL: 0x04000000,
  RELOAD: 0x08000000,
} as const;
export type MonitorCommandName = keyof typeof MonitorCommand;

/** §9.4 membership state codes. */
export const RING_STATE_CODES: Record<RingState, number> = { op: 1, seg: 2, represented: 3, gather: 4, form: 5, evs: 6 };
/** §9.4 group-layer state codes. */
export const GROUP_STATE_CODES: Record<string, number> = { gop: 1, gtrans: 2, ggather: 3, ggt: 4 };

export function ringStateName(code: number): string {
  const entry = Object.entries(RING_STATE_CODES).find(([, value]) => value === code);
  return entry ? entry[0].toUpperCase() : `state ${code}`;
}
export function groupStateName(code: number): string {
  const entry = Object.entries(GROUP_STATE_CODES).find(([, value]) => value === code);
  return entry ? entry[0].toUpperCase() : `gstate ${code}`;
}

export class MonitorProtocolError extends Error {
  override name = 'MonitorProtocolError';
}

/** The 40-byte packet header (§9.2); `type` has the marker cleared. */
export interface MonitorHeader {
  type: number;
  littleEndian: boolean;
  transmitterId: number;
  procId: number;
  membId: { procId: number; time: number };
  /** In a STATUS request: the UDP port to reply to. */
  seq: number;
  tokenRound: number;
  confHash: number;
  dataLen: number;
  padding: number;
  fragmentIndex: number;
  fragmentLen: number;
}

export type MonitorHeaderFields = Partial<Omit<MonitorHeader, 'littleEndian' | 'dataLen'>> & { type: number };

/** Byte order from the marker in `type` (the same rule as client headers, §3.2). */
function markerIsLittleEndian(bytes: Uint8Array): boolean {
  try {
    return markerByteOrder(bytes, 0);
  } catch {
    throw new MonitorProtocolError('malformed endian marker in type');
  }
}

export function decodeMonitorHeader(bytes: Uint8Array): MonitorHeader {
  if (bytes.length < MONITOR_HEADER_BYTES) throw new MonitorProtocolError(`short monitor packet (${bytes.length} bytes)`);
  const littleEndian = markerIsLittleEndian(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, MONITOR_HEADER_BYTES);
  return {
    type: (view.getUint32(0, littleEndian) & ~ENDIAN_MARKER) >>> 0,
    littleEndian,
    transmitterId: view.getInt32(4, littleEndian),
    procId: view.getInt32(8, littleEndian),
    membId: { procId: view.getInt32(12, littleEndian), time: view.getInt32(16, littleEndian) },
    seq: view.getInt32(20, littleEndian),
    tokenRound: view.getInt32(24, littleEndian),
    confHash: view.getUint32(28, littleEndian),
    dataLen: view.getUint16(32, littleEndian),
    padding: view.getInt16(34, littleEndian),
    fragmentIndex: view.getInt16(36, littleEndian),
    fragmentLen: view.getInt16(38, littleEndian),
  };
}

/** A whole packet: header (with `data_len` = body length) then body. VIDs are written as int32 bit patterns. */
export function encodeMonitorPacket(fields: MonitorHeaderFields, body: Uint8Array = new Uint8Array(0), littleEndian = true): Uint8Array {
  if (body.length > 0xffff) throw new MonitorProtocolError('monitor body over 65535 bytes');
  const bytes = new Uint8Array(MONITOR_HEADER_BYTES + body.length);
  const view = new DataView(bytes.buffer);
  const type = littleEndian ? (fields.type | ENDIAN_MARKER) >>> 0 : (fields.type & ~ENDIAN_MARKER) >>> 0;
  view.setUint32(0, type, littleEndian);
  view.setInt32(4, fields.transmitterId ?? 0, littleEndian);
  view.setInt32(8, fields.procId ?? 0, littleEndian);
  view.setInt32(12, fields.membId?.procId ?? 0, littleEndian);
  view.setInt32(16, fields.membId?.time ?? 0, littleEndian);
  view.setInt32(20, fields.seq ?? 0, littleEndian);
  view.setInt32(24, fields.tokenRound ?? 0, littleEndian);
  view.setUint32(28, (fields.confHash ?? 0) >>> 0, littleEndian);
  view.setUint16(32, body.length, littleEndian);
  view.setInt16(34, fields.padding ?? 0, littleEndian);
  view.setInt16(36, fields.fragmentIndex ?? 0, littleEndian);
  view.setInt16(38, fields.fragmentLen ?? 0, littleEndian);
  bytes.set(body, MONITOR_HEADER_BYTES);
  return bytes;
}

/** Who sends a request: the monitor's own configured daemon entry (§9.1). */
export interface MonitorIdentity {
  /** VID of the configured daemon entry the monitor's host is. */
  vid: number;
  /** Configuration hash (§8.6). */
  confHash: number;
}

export function encodeStatusRequest(identity: MonitorIdentity, replyPort: number, littleEndian = true): Uint8Array {
  return encodeMonitorPacket(
    { type: MonitorCommand.STATUS, transmitterId: identity.vid, procId: identity.vid, seq: replyPort, confHash: identity.confHash },
    undefined,
    littleEndian,
  );
}

export function encodeReloadRequest(identity: MonitorIdentity, littleEndian = true): Uint8Array {
  return encodeMonitorPacket(
    { type: MonitorCommand.RELOAD, transmitterId: identity.vid, procId: identity.vid, confHash: identity.confHash },
    undefined,
    littleEndian,
  );
}

/** `components[i]` is the component of the i-th daemon of the configuration; −1 makes it exit; all 0 cancels. */
export function encodePartitionRequest(identity: MonitorIdentity, components: readonly number[], littleEndian = true): Uint8Array {
  if (components.length > MONITOR_TABLE_ROWS) throw new MonitorProtocolError(`more than ${MONITOR_TABLE_ROWS} partition entries`);
  const body = new Uint8Array(PARTITION_BODY_BYTES);
  const view = new DataView(body.buffer);
  components.forEach((component, index) => view.setInt16(index * 2, component, littleEndian));
  return encodeMonitorPacket(
    { type: MonitorCommand.PARTITION, transmitterId: identity.vid, procId: identity.vid, confHash: identity.confHash },
    body,
    littleEndian,
  );
}

export function decodePartitionBody(body: Uint8Array, littleEndian: boolean): number[] {
  if (body.length < PARTITION_BODY_BYTES) throw new MonitorProtocolError('short partition body');
  const view = new DataView(body.buffer, body.byteOffset, PARTITION_BODY_BYTES);
  return Array.from({ length: MONITOR_TABLE_ROWS }, (_, index) => view.getInt16(index * 2, littleEndian));
}

/** Flow-control request (§9.3): −1 (or null) anywhere means "unchanged". */
export interface FlowControlSettings {
  window: number | null;
  /** Indexed by configuration position. */
  personalWindows: Array<number | null>;
  acceleratedWindows: Array<number | null>;
}

export function encodeFlowControlRequest(
  identity: MonitorIdentity,
  daemonCount: number,
  settings: FlowControlSettings,
  littleEndian = true,
): Uint8Array {
  if (daemonCount < 1 || daemonCount >= MONITOR_TABLE_ROWS) throw new MonitorProtocolError(`bad daemon count ${daemonCount}`);
  const body = new Uint8Array(FLOW_CONTROL_BODY_BYTES);
  const view = new DataView(body.buffer);
  const put = (row: number, column: number, value: number | null | undefined) =>
    view.setInt16((row * 2 + column) * 2, value ?? -1, littleEndian);
  for (let row = 0; row < MONITOR_TABLE_ROWS; row++) {
    put(row, 0, row < daemonCount ? settings.personalWindows[row] : null);
    put(row, 1, row < daemonCount ? settings.acceleratedWindows[row] : null);
  }
  put(daemonCount, 0, settings.window);
  return encodeMonitorPacket(
    { type: MonitorCommand.FLOW_CONTROL, transmitterId: identity.vid, procId: identity.vid, confHash: identity.confHash },
    body,
    littleEndian,
  );
}

/** The 128 rows of [personal or ring window, accelerated window] as sent. */
export function decodeFlowControlBody(body: Uint8Array, littleEndian: boolean): Array<[number, number]> {
  if (body.length < FLOW_CONTROL_BODY_BYTES) throw new MonitorProtocolError('short flow-control body');
  const view = new DataView(body.buffer, body.byteOffset, FLOW_CONTROL_BODY_BYTES);
  return Array.from({ length: MONITOR_TABLE_ROWS }, (_, row): [number, number] => [
    view.getInt16(row * 4, littleEndian),
    view.getInt16(row * 4 + 2, littleEndian),
  ]);
}

/** The 96-byte status structure (§9.4), field names as in Spread's status.h. */
export interface MonitorStatus {
  sec: number;
  state: number;
  gstate: number;
  packetSent: number;
  packetRecv: number;
  packetDelivered: number;
  retrans: number;
  uRetrans: number;
  sRetrans: number;
  bRetrans: number;
  aru: number;
  myAru: number;
  highestSeq: number;
  tokenHurry: number;
  tokenRounds: number;
  myId: number;
  leaderId: number;
  messageDelivered: number;
  membershipChanges: number;
  numProcs: number;
  numSegments: number;
  window: number;
  personalWindow: number;
  acceleratedRing: number;
  acceleratedWindow: number;
  numSessions: number;
  numGroups: number;
  majorVersion: number;
  minorVersion: number;
  patchVersion: number;
}

/** Layout of §9.4: field, offset in the body, width in bytes. */
const STATUS_LAYOUT: ReadonlyArray<readonly [keyof MonitorStatus, number, 4 | 2]> = [
  ['sec', 0, 4],
  ['state', 4, 4],
  ['gstate', 8, 4],
  ['packetSent', 12, 4],
  ['packetRecv', 16, 4],
  ['packetDelivered', 20, 4],
  ['retrans', 24, 4],
  ['uRetrans', 28, 4],
  ['sRetrans', 32, 4],
  ['bRetrans', 36, 4],
  ['aru', 40, 4],
  ['myAru', 44, 4],
  ['highestSeq', 48, 4],
  ['tokenHurry', 52, 4],
  ['tokenRounds', 56, 4],
  ['myId', 60, 4],
  ['leaderId', 64, 4],
  ['messageDelivered', 68, 4],
  ['membershipChanges', 72, 2],
  ['numProcs', 74, 2],
  ['numSegments', 76, 2],
  ['window', 78, 2],
  ['personalWindow', 80, 2],
  ['acceleratedRing', 82, 2],
  ['acceleratedWindow', 84, 2],
  ['numSessions', 86, 2],
  ['numGroups', 88, 2],
  ['majorVersion', 90, 2],
  ['minorVersion', 92, 2],
  ['patchVersion', 94, 2],
];

/**
 * A status reply datagram: header (type STATUS, transmitter 0, proc_id = the daemon's VID,
 * conf_hash 0, data_len 96) then the body. Counters wrap as Spread's int32/int16 fields do;
 * VIDs keep their 32-bit pattern.
 */
export function encodeStatusReply(status: MonitorStatus, littleEndian = true): Uint8Array {
  const body = new Uint8Array(STATUS_BODY_BYTES);
  const view = new DataView(body.buffer);
  for (const [field, offset, width] of STATUS_LAYOUT) {
    if (width === 4) view.setInt32(offset, status[field], littleEndian);
    else view.setInt16(offset, status[field], littleEndian);
  }
  return encodeMonitorPacket({ type: MonitorCommand.STATUS, procId: status.myId }, body, littleEndian);
}

/** Decodes a status reply; `myId`/`leaderId` are returned as unsigned VIDs. */
export function decodeStatusReply(bytes: Uint8Array): { header: MonitorHeader; status: MonitorStatus } {
  const header = decodeMonitorHeader(bytes);
  if (header.type !== MonitorCommand.STATUS) throw new MonitorProtocolError(`not a status reply (type 0x${header.type.toString(16)})`);
  if (header.dataLen < STATUS_BODY_BYTES || bytes.length < MONITOR_HEADER_BYTES + STATUS_BODY_BYTES) {
    throw new MonitorProtocolError(`short status reply (${bytes.length} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + MONITOR_HEADER_BYTES, STATUS_BODY_BYTES);
  const status = {} as MonitorStatus;
  for (const [field, offset, width] of STATUS_LAYOUT) {
    status[field] = width === 4 ? view.getInt32(offset, header.littleEndian) : view.getInt16(offset, header.littleEndian);
  }
  status.myId >>>= 0;
  status.leaderId >>>= 0;
  return { header, status };
}

/** Number of distinct configured segments among `members`; 1 without a configuration. */
function segmentCount(members: readonly number[], config: SpreadConfig | undefined): number {
  if (!config) return members.length > 0 ? 1 : 0;
  const segments = new Set<number>();
  for (const vid of members) {
    const daemon = config.daemons.find((entry) => entry.vid === vid);
    if (daemon) segments.add(daemon.segmentIndex);
  }
  return segments.size;
}

/** Maps tspread's snapshot to Spread's status fields (§9.4). */
export function statusReplyFromSnapshot(snapshot: DaemonStatusSnapshot, config?: SpreadConfig): MonitorStatus {
  const ring = snapshot.ring;
  return {
    sec: Math.floor(snapshot.daemon.uptimeSeconds),
    state: RING_STATE_CODES[ring.state] ?? 0,
    gstate: GROUP_STATE_CODES[snapshot.groupState.toLowerCase()] ?? 0,
    packetSent: ring.packetsSent,
    packetRecv: ring.packetsReceived,
    packetDelivered: ring.packetsDelivered,
    retrans: ring.retransmissions,
    uRetrans: 0,
    sRetrans: 0,
    bRetrans: ring.retransmissions,
    aru: ring.aru,
    myAru: ring.myAru,
    highestSeq: ring.highestSeq,
    tokenHurry: ring.tokenHurry,
    tokenRounds: ring.tokenRounds,
    myId: snapshot.daemon.vid,
    leaderId: ring.leaderVid,
    messageDelivered: snapshot.traffic.messagesDelivered,
    membershipChanges: ring.membershipChanges,
    numProcs: ring.members.length,
    numSegments: segmentCount(ring.members, config),
    window: ring.window,
    personalWindow: ring.personalWindow,
    acceleratedRing: ring.acceleratedRing ? 1 : 0,
    acceleratedWindow: ring.acceleratedWindow,
    numSessions: snapshot.sessions,
    numGroups: snapshot.groups.length,
    majorVersion: SPREAD_VERSION.major,
    minorVersion: SPREAD_VERSION.minor,
    patchVersion: SPREAD_VERSION.patch,
  };
}

/** Canonical text of an IP address for comparison: IPv4-mapped IPv6 as IPv4, RFC 5952 IPv6, no zone. */
export function normalizeAddress(text: string): string {
  let address = text.trim().replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address)) address = address.slice('::ffff:'.length);
  const parsed = parseIpAddress(address);
  return parsed ? canonicalAddress(parsed) : address.toLowerCase();
}

/** True when the datagram looks like a monitor packet (one §9.3 command bit, a clean marker), not ring traffic. */
export function isMonitorDatagram(bytes: Uint8Array): boolean {
  if (bytes.length < MONITOR_HEADER_BYTES) return false;
  try {
    const type = decodeMonitorHeader(bytes).type;
    return Object.values(MonitorCommand).includes(type as never);
  } catch {
    return false;
  }
}

export interface UdpDestination {
  address: string;
  port: number;
}

/** What the daemon must do with a monitor datagram. */
export type MonitorOutcome =
  | { kind: 'ignored'; reason: string }
  /** Send `reply` from the daemon's address (any port) to `to`. */
  | { kind: 'status'; reply: Uint8Array; to: UdpDestination }
  /**
   * Apply a partition: accept ring traffic only from daemons with the same component as
   * `myComponent`; `components` holds one entry per configured daemon (configuration order);
   * all zeros cancels. `terminate` (my entry −1): exit. Lapses PARTITION_LIFETIME_MS after the last one.
   */
  | { kind: 'partition'; components: number[]; myComponent: number; terminate: boolean }
  /** Apply flow control; null = unchanged. */
  | { kind: 'flowControl'; window: number | null; personalWindow: number | null; acceleratedWindow: number | null }
  /** Re-read the configuration file (deferred until OP, §9.3). */
  | { kind: 'reload' };

export type MonitorResponder = (
  datagram: Uint8Array,
  source: string | { address: string; port?: number },
  config: SpreadConfig,
  snapshot: DaemonStatusSnapshot | (() => DaemonStatusSnapshot),
  self?: { vid: number },
) => MonitorOutcome;

const ignored = (reason: string): MonitorOutcome => ({ kind: 'ignored', reason });
const orNull = (value: number): number | null => (value === -1 ? null : value);

/**
 * The daemon side of §9.1/§9.3, pure. `config` is the daemon's configuration (its hash,
 * VIDs, addresses and DangerousMonitor), `snapshot` its status (called only for an accepted
 * STATUS request), `self.vid` its own VID (defaults to the snapshot's, read lazily).
 */
export const respondToMonitor: MonitorResponder = (datagram, source, config, snapshot, self) => {
  const sourceAddress = typeof source === 'string' ? source : source.address;
  let header: MonitorHeader;
  try {
    header = decodeMonitorHeader(datagram);
  } catch (error) {
    return ignored((error as Error).message);
  }
  if (datagram.length !== MONITOR_HEADER_BYTES + header.dataLen) {
    return ignored(`length ${datagram.length} is not 40 + data_len ${header.dataLen}`);
  }
  if (header.confHash >>> 0 !== config.hash >>> 0) {
    return ignored(`conf_hash ${header.confHash >>> 0} is not ours (${config.hash >>> 0})`);
  }
  const transmitter = config.daemons.find((daemon) => daemon.vid >>> 0 === header.transmitterId >>> 0);
  if (!transmitter) return ignored(`transmiter_id ${header.transmitterId >>> 0} is not a configured daemon`);
  if (normalizeAddress(transmitter.address) !== normalizeAddress(sourceAddress)) {
    return ignored(`source ${sourceAddress} is not ${transmitter.name}'s address ${transmitter.address}`);
  }
  const body = datagram.subarray(MONITOR_HEADER_BYTES);
  const takeSnapshot = () => (typeof snapshot === 'function' ? snapshot() : snapshot);
  const myVid = () => (self ? self.vid : takeSnapshot().daemon.vid) >>> 0;
  switch (header.type) {
    case MonitorCommand.STATUS: {
      const target = config.daemons.find((daemon) => daemon.vid >>> 0 === header.procId >>> 0);
      if (!target) return ignored(`proc_id ${header.procId >>> 0} is not a configured daemon`);
      if (header.seq <= 0 || header.seq > 0xffff) return ignored(`reply port ${header.seq} out of range`);
      const reply = encodeStatusReply(statusReplyFromSnapshot(takeSnapshot(), config));
      return { kind: 'status', reply, to: { address: target.address, port: header.seq } };
    }
    case MonitorCommand.PARTITION: {
      if (!config.params.dangerousMonitor) return ignored('PARTITION needs DangerousMonitor = true');
      if (body.length !== PARTITION_BODY_BYTES) return ignored(`partition body of ${body.length} bytes`);
      const components = decodePartitionBody(body, header.littleEndian).slice(0, config.daemons.length);
      const myIndex = config.daemons.findIndex((daemon) => daemon.vid >>> 0 === myVid());
      if (myIndex < 0) return ignored('this daemon is not in its configuration');
      const myComponent = components[myIndex];
      return { kind: 'partition', components, myComponent, terminate: myComponent === -1 };
    }
    case MonitorCommand.FLOW_CONTROL: {
      if (!config.params.dangerousMonitor) return ignored('FLOW CONTROL needs DangerousMonitor = true');
      if (!config.daemons.some((daemon) => daemon.vid >>> 0 === header.procId >>> 0)) {
        return ignored(`proc_id ${header.procId >>> 0} is not a configured daemon`);
      }
      if (body.length !== FLOW_CONTROL_BODY_BYTES) return ignored(`flow-control body of ${body.length} bytes`);
      const rows = decodeFlowControlBody(body, header.littleEndian);
      const myIndex = config.daemons.findIndex((daemon) => daemon.vid >>> 0 === myVid());
      if (myIndex < 0) return ignored('this daemon is not in its configuration');
      return {
        kind: 'flowControl',
        window: orNull(rows[config.daemons.length][0]),
        personalWindow: orNull(rows[myIndex][0]),
        acceleratedWindow: orNull(rows[myIndex][1]),
      };
    }
    case MonitorCommand.RELOAD:
      return { kind: 'reload' };
    default:
      return ignored(`unknown monitor command 0x${header.type.toString(16)}`);
  }
};
