/**
 * Client delivery logs for the Extended Virtual Synchrony checker (see
 * docs/evs-checker.md and ./evs.ts).
 *
 * A log is what ONE client session saw, in the order it saw it: the messages
 * it sent, the data messages and membership messages it received, the joins
 * and leaves it asked for, and the end of its connection. Nothing here knows
 * about daemons, rings or the simulator: a test harness (the deterministic
 * simulator, or real client processes in network namespaces) records these
 * entries through `ClientLogRecorder` and hands the logs to `checkEvs`.
 *
 * Everything is plain JSON so that real-process tests can dump one file per
 * client (or one file per run) and check them afterwards.
 */

import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';

/** Spread's six data services, weakest first. */
export const SERVICES = ['UNRELIABLE', 'RELIABLE', 'FIFO', 'CAUSAL', 'AGREED', 'SAFE'] as const;
export type Service = (typeof SERVICES)[number];

/** Strength of a service: UNRELIABLE 0 … SAFE 5. */
export function serviceRank(service: Service): number {
  return SERVICES.indexOf(service);
}

/** Whether `service` is at least as strong as `atLeast`. */
export function serviceAtLeast(service: Service, atLeast: Service): boolean {
  return serviceRank(service) >= serviceRank(atLeast);
}

/**
 * Maps a Spread `service_type` word (spread-protocol.md §4.1, endian marker
 * already cleared) to the strongest service bit it carries. Returns undefined
 * when no service bit is set. The bit values are restated here on purpose so
 * that the checker depends on nothing but its own format.
 */
export function serviceFromTypeBits(type: number): Service | undefined {
  for (let bit = 5; bit >= 0; bit--) {
    if ((type & (1 << bit)) !== 0) return SERVICES[bit];
  }
  return undefined;
}

/** The 12-byte Spread group id (spread-protocol.md §5.2). */
export interface GroupId {
  procId: number;
  time: number;
  index: number;
}

export type MembershipCause = 'join' | 'leave' | 'disconnect' | 'network';

/** The client sent a data message. Recorded when the send call returns. */
export interface SentEntry {
  type: 'sent';
  /** Unique over ALL sessions of a run, e.g. `${session}:${counter}`. */
  id: string;
  service: Service;
  /** Destination groups, public and private, as passed to multicast. */
  groups: string[];
  selfDiscard: boolean;
}

/** The client received a data message. */
export interface DataEntry {
  type: 'data';
  id: string;
  /** The sender's private group name, as reported by the receive call. */
  sender: string;
  service: Service;
  groups: string[];
}

/** A regular membership message (REG_MEMB_MESS). */
export interface RegularMembershipEntry {
  type: 'membership';
  kind: 'regular';
  group: string;
  cause: MembershipCause;
  gid: GroupId;
  /** The member list, in the order the daemon sent it. */
  members: string[];
  /**
   * The receiver's own vs set (the set holding its daemon). Meaningful for
   * cause 'network' only; for join/leave/disconnect Spread reports the changed
   * member here and the checker ignores it.
   */
  vsSet?: string[];
}

/** A TRANSITION_MESS for `group`; its body holds the group's current gid. */
export interface TransitionalMembershipEntry {
  type: 'membership';
  kind: 'transitional';
  group: string;
  gid: GroupId;
}

/** The self-leave message the leaver gets (CAUSED_BY_LEAVE alone). */
export interface SelfLeaveEntry {
  type: 'membership';
  kind: 'self-leave';
  group: string;
}

export type MembershipEntry = RegularMembershipEntry | TransitionalMembershipEntry | SelfLeaveEntry;

/** The client asked to join `group` (optional, sharpens self-delivery checks). */
export interface JoinRequestEntry {
  type: 'join';
  group: string;
}

/** The client asked to leave `group`: messages it sends afterwards to that group need not come back. */
export interface LeaveRequestEntry {
  type: 'leave';
  group: string;
}

/** The connection ended (daemon died, the client disconnected, or an error). Always the last entry. */
export interface DisconnectedEntry {
  type: 'disconnected';
  reason?: string;
}

export type LogEntry =
  | SentEntry
  | DataEntry
  | MembershipEntry
  | JoinRequestEntry
  | LeaveRequestEntry
  | DisconnectedEntry;

/** Everything one client session saw. */
export interface ClientLog {
  /** Unique name of this session in the run (a reconnecting client is a new session). */
  session: string;
  /** The session's private group name, e.g. `#alice#d1`. */
  privateGroup: string;
  /** Name of the daemon the session was connected to. */
  daemon: string;
  entries: LogEntry[];
}

/** The JSON document written by `saveLogs`. */
export interface LogFile {
  format: typeof LOG_FORMAT;
  version: 1;
  clients: ClientLog[];
}

export const LOG_FORMAT = 'tspread-evs-log';

/** A service name in either case ('AGREED' or the client library's 'agreed'). */
export type ServiceName = Service | Lowercase<Service>;

/** Normalizes a service name; throws on an unknown one. */
export function toService(name: string): Service {
  const upper = name.toUpperCase();
  if (!(SERVICES as readonly string[]).includes(upper)) throw new Error(`unknown service ${name}`);
  return upper as Service;
}

/**
 * What `ClientLogRecorder.received` accepts: structurally, the client
 * library's DataMessage / MembershipMessage / RejectMessage (src/client), so
 * that harnesses pass received messages straight through. Declared here, not
 * imported, to keep the checker independent of the client library.
 */
export type ReceivedMessageLike =
  | { kind: 'data'; sender: string; groups: readonly string[]; service: string; data?: Uint8Array }
  | {
      kind: 'membership';
      group: string;
      /** 'join' | 'leave' | 'disconnect' | 'network' | 'transition' | 'self-leave' */
      cause: string;
      gid: GroupId;
      members: readonly string[];
      /** The receiver's vs set. */
      mySet: readonly string[];
    }
  | { kind: 'reject' };

const PAYLOAD_PREFIX = 'evs:';
const PAYLOAD_END = 0x0a;

/** A payload carrying `id` (then `padding` zero bytes), for `messageIdOf`. */
export function payloadWithId(id: string, padding = 0): Uint8Array {
  const head = new TextEncoder().encode(`${PAYLOAD_PREFIX}${id}\n`);
  const payload = new Uint8Array(head.length + padding);
  payload.set(head);
  return payload;
}

/** The id carried by a `payloadWithId` payload, or undefined. */
export function messageIdOf(payload: Uint8Array): string | undefined {
  const end = payload.indexOf(PAYLOAD_END);
  if (end < 0) return undefined;
  const text = new TextDecoder().decode(payload.subarray(0, end));
  return text.startsWith(PAYLOAD_PREFIX) ? text.slice(PAYLOAD_PREFIX.length) : undefined;
}

export interface SendRequest {
  /** Defaults to the recorder's next id. */
  id?: string;
  service: ServiceName;
  groups: string[];
  selfDiscard?: boolean;
}

export interface DeliveryRecord {
  id: string;
  sender: string;
  service: ServiceName;
  groups: string[];
}

export type MembershipRecord =
  | Omit<RegularMembershipEntry, 'type'>
  | Omit<TransitionalMembershipEntry, 'type'>
  | Omit<SelfLeaveEntry, 'type'>;

export interface ClientLogMeta {
  privateGroup: string;
  daemon: string;
  /** Defaults to the private group name. Must be unique within a run. */
  session?: string;
  /** Also hands every entry, as recorded, to this sink (e.g. `JsonLinesSink`). */
  sink?: LogSink;
}

/** Receives entries as they are recorded; `close` is called by `closed()`. */
export interface LogSink {
  write(entry: LogEntry): void;
  close?(): void;
}

export const JSONL_FORMAT = 'tspread-evs-jsonl';

/**
 * Appends a session's log to a file, one JSON value per line, written
 * synchronously as each entry is recorded: a process that is killed leaves
 * a valid prefix (`loadLogs` drops a torn last line). The first line holds
 * the session's metadata.
 */
export class JsonLinesSink implements LogSink {
  private fd: number | undefined;

  constructor(path: string, meta: { session: string; privateGroup: string; daemon: string }) {
    this.fd = openSync(path, 'w');
    this.line({ format: JSONL_FORMAT, version: 1, session: meta.session, privateGroup: meta.privateGroup, daemon: meta.daemon });
  }

  write(entry: LogEntry): void {
    this.line(entry);
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  private line(value: unknown): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, `${JSON.stringify(value)}\n`);
  }
}

/** A recorder that also streams to `path` (JSON Lines), for real client processes. */
export function openJsonLinesRecorder(path: string, meta: { privateGroup: string; daemon: string; session: string }): ClientLogRecorder {
  return new ClientLogRecorder({ ...meta, sink: new JsonLinesSink(path, meta) });
}

/**
 * A copy of `log` that ends with 'disconnected' (unchanged if it already
 * does): for sessions whose process the test killed, which could not record
 * their own end.
 */
export function markDisconnected(log: ClientLog, reason = 'process killed'): ClientLog {
  const last = log.entries[log.entries.length - 1];
  if (last?.type === 'disconnected') return log;
  return { ...log, entries: [...log.entries, { type: 'disconnected', reason }] };
}

/**
 * Records one client session. Call `nextId()` (or let `sent()` pick the id)
 * and carry the id inside the payload so that receivers can report it.
 * Every recorded array is copied, so callers may reuse their buffers.
 */
export class ClientLogRecorder {
  readonly session: string;
  readonly privateGroup: string;
  readonly daemon: string;
  private readonly entries: LogEntry[] = [];
  private readonly sink: LogSink | undefined;
  private counter = 0;
  private isClosed = false;

  constructor(meta: ClientLogMeta) {
    this.privateGroup = meta.privateGroup;
    this.daemon = meta.daemon;
    this.session = meta.session ?? meta.privateGroup;
    this.sink = meta.sink;
  }

  /** A fresh message id, unique as long as session names are unique. */
  nextId(): string {
    this.counter += 1;
    return `${this.session}:${this.counter}`;
  }

  /** Records a send; returns the message id to embed in the payload. */
  sent(request: SendRequest): string {
    const id = request.id ?? this.nextId();
    this.push({
      type: 'sent',
      id,
      service: toService(request.service),
      groups: [...request.groups],
      selfDiscard: request.selfDiscard ?? false,
    });
    return id;
  }

  delivered(record: DeliveryRecord): void {
    this.push({ type: 'data', id: record.id, sender: record.sender, service: toService(record.service), groups: [...record.groups] });
  }

  /**
   * Records a message as the client library returns it. For data messages
   * the id is taken from `id`, or else read from the payload (`payloadWithId`);
   * rejects are not deliveries and are ignored.
   */
  received(message: ReceivedMessageLike, id?: string): void {
    if (message.kind === 'reject') return;
    if (message.kind === 'data') {
      const messageId = id ?? (message.data === undefined ? undefined : messageIdOf(message.data));
      if (messageId === undefined) throw new Error(`data message from ${message.sender} carries no message id`);
      this.delivered({ id: messageId, sender: message.sender, service: toService(message.service), groups: [...message.groups] });
      return;
    }
    if (message.cause === 'self-leave') {
      this.membership({ kind: 'self-leave', group: message.group });
    } else if (message.cause === 'transition') {
      this.membership({ kind: 'transitional', group: message.group, gid: message.gid });
    } else {
      const cause = message.cause as MembershipCause;
      if (!['join', 'leave', 'disconnect', 'network'].includes(cause)) throw new Error(`unknown membership cause ${message.cause}`);
      this.membership({ kind: 'regular', group: message.group, cause, gid: message.gid, members: [...message.members], vsSet: [...message.mySet] });
    }
  }

  membership(record: MembershipRecord): void {
    if (record.kind === 'regular') {
      const entry: RegularMembershipEntry = {
        type: 'membership',
        kind: 'regular',
        group: record.group,
        cause: record.cause,
        gid: { ...record.gid },
        members: [...record.members],
      };
      if (record.vsSet !== undefined) entry.vsSet = [...record.vsSet];
      this.push(entry);
    } else if (record.kind === 'transitional') {
      this.push({ type: 'membership', kind: 'transitional', group: record.group, gid: { ...record.gid } });
    } else {
      this.push({ type: 'membership', kind: 'self-leave', group: record.group });
    }
  }

  joinRequested(group: string): void {
    this.push({ type: 'join', group });
  }

  leaveRequested(group: string): void {
    this.push({ type: 'leave', group });
  }

  /** The connection closed; later calls are ignored. */
  closed(reason?: string): void {
    if (this.isClosed) return;
    this.push(reason === undefined ? { type: 'disconnected' } : { type: 'disconnected', reason });
    this.isClosed = true;
    this.sink?.close?.();
  }

  get isDisconnected(): boolean {
    return this.isClosed;
  }

  log(): ClientLog {
    return { session: this.session, privateGroup: this.privateGroup, daemon: this.daemon, entries: [...this.entries] };
  }

  toJSON(): ClientLog {
    return this.log();
  }

  private push(entry: LogEntry): void {
    // A closed session sees nothing more; dropping here keeps harness races
    // (a late callback after close) out of the checked log.
    if (this.isClosed) return;
    this.entries.push(entry);
    this.sink?.write(entry);
  }
}

/**
 * Hands out recorders with unique session names: the k-th session of a
 * private group is `${privateGroup}` for k = 1 and `${privateGroup}~k` after.
 */
export class ClientLogCollection {
  private readonly recorders: ClientLogRecorder[] = [];
  private readonly perName = new Map<string, number>();

  open(meta: { privateGroup: string; daemon: string }): ClientLogRecorder {
    const count = (this.perName.get(meta.privateGroup) ?? 0) + 1;
    this.perName.set(meta.privateGroup, count);
    const session = count === 1 ? meta.privateGroup : `${meta.privateGroup}~${count}`;
    const recorder = new ClientLogRecorder({ ...meta, session });
    this.recorders.push(recorder);
    return recorder;
  }

  logs(): ClientLog[] {
    return this.recorders.map((recorder) => recorder.log());
  }
}

export function serializeLogs(logs: readonly ClientLog[]): string {
  const file: LogFile = { format: LOG_FORMAT, version: 1, clients: [...logs] };
  return JSON.stringify(file);
}

/** Writes a log file holding any number of sessions. */
export function saveLogs(path: string, logs: readonly ClientLog[]): void {
  writeFileSync(path, serializeLogs(logs));
}

/**
 * Parses a log file: a `LogFile` document, a bare `ClientLog[]`, a single
 * `ClientLog`, or one session in JSON Lines (`JsonLinesSink`). Throws a descriptive Error on malformed input; entry
 * contents are checked by `checkEvs` (property 'log-format').
 */
export function parseLogs(text: string): ClientLog[] {
  if (text.startsWith(`{"format":"${JSONL_FORMAT}"`)) return [parseJsonLines(text)];
  const value: unknown = JSON.parse(text);
  let clients: unknown;
  if (Array.isArray(value)) {
    clients = value;
  } else if (isObject(value) && value.format === LOG_FORMAT) {
    if (value.version !== 1) throw new Error(`unsupported ${LOG_FORMAT} version ${String(value.version)}`);
    clients = value.clients;
  } else if (isObject(value) && Array.isArray(value.entries)) {
    clients = [value];
  } else {
    throw new Error(`not a ${LOG_FORMAT} document`);
  }
  if (!Array.isArray(clients)) throw new Error('"clients" must be an array');
  return clients.map((client, index) => {
    if (
      !isObject(client) ||
      typeof client.session !== 'string' ||
      typeof client.privateGroup !== 'string' ||
      typeof client.daemon !== 'string' ||
      !Array.isArray(client.entries)
    ) {
      throw new Error(`client log ${index} lacks session/privateGroup/daemon/entries`);
    }
    return client as unknown as ClientLog;
  });
}

/** One session from JSON Lines (`JsonLinesSink`); a torn last line is dropped. */
function parseJsonLines(text: string): ClientLog {
  const lines = text.split('\n').filter((line) => line.trim().length > 0);
  const header: unknown = JSON.parse(lines[0]);
  if (!isObject(header) || header.format !== JSONL_FORMAT || header.version !== 1) throw new Error(`not a ${JSONL_FORMAT} v1 header`);
  if (typeof header.session !== 'string' || typeof header.privateGroup !== 'string' || typeof header.daemon !== 'string') {
    throw new Error(`${JSONL_FORMAT} header lacks session/privateGroup/daemon`);
  }
  const entries: LogEntry[] = [];
  for (let index = 1; index < lines.length; index++) {
    try {
      entries.push(JSON.parse(lines[index]) as LogEntry);
    } catch (error) {
      if (index === lines.length - 1 && !text.endsWith('\n')) break; // torn by a kill
      throw new Error(`${header.session}: line ${index + 1} is not JSON`, { cause: error });
    }
  }
  return { session: header.session, privateGroup: header.privateGroup, daemon: header.daemon, entries };
}

/** Reads and concatenates log files (each may hold one or many sessions). */
export function loadLogs(...paths: string[]): ClientLog[] {
  return paths.flatMap((path) => parseLogs(readFileSync(path, 'utf8')));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function formatGid(gid: GroupId): string {
  return `${gid.procId}.${gid.time}.${gid.index}`;
}
