/**
 * DaemonNode: the pure daemon core = session registry + Ring + group layer.
 *
 * Inputs (all synchronous, time only as an argument):
 *   sessionAccepted(id, peer, nowMs)   a connection was accepted (TCP or Unix)
 *   sessionData(id, bytes)             bytes arrived from it, split anywhere
 *   sessionEnded(id, reason)           EOF, socket error, or the adapter cut a slow reader
 *   ringPacket(bytes, nowMs)           a datagram from another daemon
 *   tick(nowMs)                        time passed (handshake deadlines, ring timers)
 * Effects, taken with takePackets() (datagrams only, before the group layer runs) and ready():
 *   packets  datagrams for other daemons; send first (ring ordering rule)
 *   writes   {sessions, bytes}: the same bytes for every listed session. Each delivered
 *            frame is built once; data frames are the ring payload itself (no copy).
 *   closes   sessions to close after their writes have been queued
 * Apply them in that order. A session listed in `closes` never appears in later writes.
 *
 * Session life: handshake (handshake.ts) → open → dead. A dead session (client KILL,
 * EOF/error, invalid header, slow reader) is closed at once, but keeps its name and its
 * group memberships until its kill has come back through the ring, exactly like Spread
 * (§2.3 step 5, §3.3): client KILLs travel AGREED, daemon-generated kills SAFE (§5.5).
 *
 * Back-pressure (§6.4): `inputThrottled()` is true while the ring holds ≥ 500 unordered
 * local messages, a submit was refused, or the group layer runs a state exchange after a
 * merge (§7.3); the adapter then stops reading client sockets. Requests from bytes
 * already read wait in the node until the exchange is over; the exchange's own GROUPS
 * messages go to the ring ahead of them.
 */
import type { DaemonSpec, SpreadConfig } from '../config/types.js';
import {
  ErrorCode,
  GROUPS_PER_MESSAGE_MAX,
  GROUP_LOCAL_MEMBERS_MAX,
  MESSAGE_BYTES_MAX,
  SESSIONS_PER_DAEMON_MAX,
  ServiceType,
} from '../protocol/constants.js';
import { Framer, frameData, frameGroups, type Frame } from '../protocol/framer.js';
import { ProtocolError } from '../protocol/header.js';
import { encodeMessage } from '../protocol/message.js';
import { readFixedName } from '../protocol/names.js';
import type { OutboundPacket, Ring, RingEvent } from '../ring/types.js';
import { GroupLayer, type GroupOutput, type LocalSessionRef } from '../groups/group-layer.js';
import { encodeJoin, encodeKill, encodeLeave } from '../groups/ring-message.js';
import type { AccessIpRules, PeerAddress } from './access-ip.js';
import { decideAccess, type AccessControl, type SessionPrincipal } from '../security/access-control.js';
import type { PasswordTable } from '../security/passwords.js';
import { DaemonHandshake, HANDSHAKE_DEADLINE_MS_DEFAULT, type HandshakePolicy, type HandshakeStep } from './handshake.js';
import { RateMeter } from './rate-meter.js';
import type { DaemonStatusSnapshot } from './status-types.js';
import { normalizeToLittleEndian, validateClientFrame } from './validate.js';

/** Stop reading clients while this many local messages wait for ordering (Spread's WATER_MARK, §6.4). */
export const CLIENT_READ_WATER_MARK = 500;
/** Bound on messages held here after the ring refused a submit (always below one read's worth). */
const SUBMIT_BACKLOG_MAX = 100_000;
/** Auth methods this daemon implements, in Spread's registration order (§2.4). */
const IMPLEMENTED_AUTH_METHODS = ['NULL', 'IP', 'PWORD', 'CERT'] as const;

export interface NodeLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

const SILENT_LOGGER: NodeLogger = { info() {}, warn() {}, debug() {} };

export interface DaemonNodeOptions {
  config: SpreadConfig;
  /** This daemon's entry in the configuration. */
  me: DaemonSpec;
  ring: Ring;
  nowMs: number;
  /** Uniform in [0, 1): generated private names. */
  random: () => number;
  accessIp?: AccessIpRules | null;
  /** PWORD users (src/security/passwords.ts); null = PWORD denies everyone. */
  passwords?: PasswordTable | null;
  /** Who may connect, join, multicast (src/security/access-control.ts); null = everyone. */
  accessControl?: AccessControl | null;
  /** The daemon's rate limit on PWORD checks (HandshakePolicy.passwordCheckAllowed). */
  passwordCheckAllowed?: () => boolean;
  handshakeDeadlineMs?: number;
  /** TCP port, for the status snapshot. */
  port?: number;
  /** Local members of one group before joins are rejected (§3.6); tests lower it. */
  groupLocalMembersMax?: number;
  logger?: NodeLogger;
}

export interface SessionWrite {
  sessions: number[];
  bytes: Uint8Array;
}

export type CloseReason =
  | 'quota'
  | 'handshake-rejected'
  | 'handshake-closed'
  | 'kill'
  | 'protocol'
  | 'eof'
  | 'error'
  | 'slow';

export interface SessionClose {
  session: number;
  reason: CloseReason;
  detail: string;
}

export interface NodeReady {
  packets: OutboundPacket[];
  writes: SessionWrite[];
  closes: SessionClose[];
}

interface Session extends LocalSessionRef {
  readonly id: number;
  readonly peer: PeerAddress;
  state: 'handshake' | 'open' | 'dead';
  handshake: DaemonHandshake | null;
  deadlineMs: number;
  framer: Framer | null;
  name: string | null;
  privateGroup: string;
  membership: boolean;
  principal: SessionPrincipal | null;
}

export interface NodeCounters {
  messagesReceived: number;
  bytesReceived: number;
  slowSessionsCut: number;
  sessionsAccepted: number;
  sessionsRejected: number;
  protocolKills: number;
  /** Joins and multicasts refused by the access-control file (reject messages sent). */
  accessDenied: number;
}

export class DaemonNode {
  readonly config: SpreadConfig;
  readonly me: DaemonSpec;
  readonly ring: Ring;
  readonly groups: GroupLayer;
  private readonly logger: NodeLogger;
  private readonly random: () => number;
  private readonly policy: HandshakePolicy;
  private readonly handshakeDeadlineMs: number;
  private readonly bodyBytesMax: number;
  private readonly port: number;
  private readonly groupLocalMembersMax: number;
  private readonly startedAtMs: number;
  private readonly sessions = new Map<number, Session>();
  private readonly byName = new Map<string, Session>();
  private readonly byPrivateGroup = new Map<string, Session>();
  private readonly handshakes = new Set<Session>();
  private readonly positions = new Map<number, number>();
  private submitBacklog: Array<{ payload: Uint8Array; safe: boolean }> = [];
  private controlBacklog: Array<{ payload: Uint8Array; safe: boolean }> = [];
  private packets: OutboundPacket[] = [];
  /** Ring events taken with the packets (takePackets), applied by the next ready(). */
  private ringEvents: RingEvent[] = [];
  private writes: SessionWrite[] = [];
  private closes: SessionClose[] = [];
  private groupOutputs: GroupOutput[] = [];
  private readonly tokenRate = new RateMeter();
  readonly counters: NodeCounters = {
    messagesReceived: 0,
    bytesReceived: 0,
    slowSessionsCut: 0,
    sessionsAccepted: 0,
    sessionsRejected: 0,
    accessDenied: 0,
    protocolKills: 0,
  };

  constructor(options: DaemonNodeOptions) {
    this.config = options.config;
    this.me = options.me;
    this.ring = options.ring;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.random = options.random;
    this.handshakeDeadlineMs = options.handshakeDeadlineMs ?? HANDSHAKE_DEADLINE_MS_DEFAULT;
    this.port = options.port ?? this.config.segments[this.me.segmentIndex]?.port ?? 4803;
    this.startedAtMs = options.nowMs;
    this.groupLocalMembersMax = options.groupLocalMembersMax ?? GROUP_LOCAL_MEMBERS_MAX;
    const params = this.config.params as Partial<SpreadConfig['params']>;
    this.bodyBytesMax = Math.max(params.maxMessageBytes ?? MESSAGE_BYTES_MAX, 0);
    const allowed = params.allowedAuthMethods ?? ['NULL'];
    const required = params.requiredAuthMethods ?? [];
    this.policy = {
      daemonName: this.me.name,
      allowedAuthMethods: IMPLEMENTED_AUTH_METHODS.filter((method) => allowed.includes(method)),
      requiredAuthMethods: IMPLEMENTED_AUTH_METHODS.filter((method) => required.includes(method)),
      accessIp: options.accessIp ?? null,
      passwords: options.passwords ?? null,
      accessControl: options.accessControl ?? null,
      passwordCheckAllowed: options.passwordCheckAllowed,
    };
    for (const daemon of this.config.daemons) this.positions.set(daemon.vid >>> 0, daemon.configIndex);
    this.groups = new GroupLayer({
      myVid: this.ring.myVid,
      daemonPosition: (vid) => this.positions.get(vid >>> 0),
      sessions: { byPrivateGroup: (name) => this.byPrivateGroup.get(name) },
    });
  }

  // ---- inputs ---------------------------------------------------------------------------

  sessionAccepted(id: number, peer: PeerAddress, nowMs: number): void {
    if (this.sessions.has(id)) throw new Error(`session ${id} accepted twice`);
    if (this.sessions.size >= SESSIONS_PER_DAEMON_MAX) {
      // §2.3 step 1: one REJECT_QUOTA byte at accept time, nothing read.
      this.writes.push({ sessions: [id], bytes: Uint8Array.of(ErrorCode.REJECT_QUOTA & 0xff) });
      this.closes.push({ session: id, reason: 'quota', detail: `${this.sessions.size} sessions` });
      this.counters.sessionsRejected += 1;
      return;
    }
    const session: Session = {
      id,
      peer,
      state: 'handshake',
      handshake: null,
      deadlineMs: nowMs + this.handshakeDeadlineMs,
      framer: null,
      name: null,
      privateGroup: '',
      membership: false,
      principal: null,
    };
    session.handshake = new DaemonHandshake(
      this.policy,
      { isNameTaken: (name) => this.byName.has(name), random: this.random },
      id,
      peer,
    );
    this.sessions.set(id, session);
    this.handshakes.add(session);
  }

  sessionData(id: number, bytes: Uint8Array): void {
    const session = this.sessions.get(id);
    if (!session) return;
    if (session.state === 'handshake') {
      this.handshakeStep(session, (session.handshake as DaemonHandshake).push(bytes));
      return;
    }
    if (session.state === 'open') this.sessionFrames(session, bytes);
  }

  /** The connection is gone (EOF, error) or the adapter cut it (slow reader). */
  sessionEnded(id: number, reason: 'eof' | 'error' | 'slow', detail = ''): void {
    const session = this.sessions.get(id);
    if (!session) return;
    if (reason === 'slow') this.counters.slowSessionsCut += 1;
    if (session.state === 'handshake') {
      this.forget(session);
      return;
    }
    if (session.state === 'open') this.kill(session, reason, detail, true, false);
  }

  ringPacket(bytes: Uint8Array, nowMs: number): void {
    this.ring.receive(bytes, nowMs);
  }

  tick(nowMs: number): void {
    this.ring.tick(nowMs);
    for (const session of [...this.handshakes]) {
      if (session.state === 'handshake' && session.deadlineMs <= nowMs) {
        this.handshakeStep(session, (session.handshake as DaemonHandshake).expire());
      }
    }
  }

  // ---- effects --------------------------------------------------------------------------

  /**
   * The ring packets produced so far, ahead of ready(): the adapter sends them before the
   * group-layer work on deliveries, so a token is not held up by the writes to clients.
   */
  takePackets(): OutboundPacket[] {
    this.pullRing();
    const packets = this.packets;
    this.packets = [];
    return packets;
  }

  ready(): NodeReady {
    // Bounded: each round only re-runs when the ring produced something or held
    // submissions were released (the end of a state exchange).
    for (let round = 0; round < 8; round++) {
      const released = this.flushSubmitBacklog();
      this.pullRing();
      if (this.ringEvents.length === 0 && !released) break;
      const events = this.ringEvents;
      this.ringEvents = [];
      for (const event of events) this.groups.apply(event, this.groupOutputs);
      this.applyGroupOutputs();
    }
    const result: NodeReady = { packets: this.packets, writes: this.writes, closes: this.closes };
    this.packets = [];
    this.writes = [];
    this.closes = [];
    return result;
  }

  private pullRing(): void {
    const ringReady = this.ring.ready();
    for (const packet of ringReady.packets) this.packets.push(packet);
    for (const event of ringReady.events) this.ringEvents.push(event);
  }

  /** Earliest time `tick` is due, or null. */
  nextDeadlineMs(): number | null {
    let deadline = this.ring.nextDeadlineMs();
    for (const session of this.handshakes) {
      if (deadline === null || session.deadlineMs < deadline) deadline = session.deadlineMs;
    }
    return deadline;
  }

  /** True while client sockets should not be read (§6.4): ring back-pressure, or a state exchange (§7.3). */
  inputThrottled(): boolean {
    return this.submitBacklog.length > 0 || this.groups.exchanging || this.ring.pendingCount() >= CLIENT_READ_WATER_MARK;
  }

  isOpen(id: number): boolean {
    return this.sessions.get(id)?.state === 'open';
  }

  sessionCount(): number {
    return this.sessions.size;
  }

  /** Private group of an open or dying session (for logs). */
  sessionName(id: number): string | null {
    const session = this.sessions.get(id);
    return session && session.privateGroup !== '' ? session.privateGroup : null;
  }

  /** Sessions refused at the handshake, and requests refused by access control, since start. */
  refusals(): { sessionsRejected: number; accessDenied: number } {
    return { sessionsRejected: this.counters.sessionsRejected, accessDenied: this.counters.accessDenied };
  }

  statusSnapshot(nowMs: number): DaemonStatusSnapshot {
    const ringStatus = this.ring.status();
    return {
      daemon: {
        name: this.me.name,
        vid: this.me.vid,
        address: this.me.address,
        port: this.port,
        version: '5.0.1',
        startedAtMs: this.startedAtMs,
        uptimeSeconds: Math.max(0, Math.floor((nowMs - this.startedAtMs) / 1000)),
      },
      config: {
        source: this.config.source,
        hash: this.config.hash,
        daemons: this.config.daemons.map((daemon) => ({ name: daemon.name, address: daemon.address, vid: daemon.vid })),
      },
      ring: ringStatus,
      groupState: this.groups.state,
      sessions: this.sessions.size,
      groups: this.groups.status(),
      traffic: {
        messagesReceived: this.counters.messagesReceived,
        bytesReceived: this.counters.bytesReceived,
        messagesDelivered: this.groups.messagesDelivered,
        bytesDelivered: this.groups.bytesDelivered,
        slowSessionsCut: this.counters.slowSessionsCut,
      },
      tokenRoundsPerSecond: this.tokenRate.sample(ringStatus.tokenRounds, nowMs),
    };
  }

  // ---- handshake ------------------------------------------------------------------------

  private handshakeStep(session: Session, step: HandshakeStep): void {
    for (const bytes of step.output) this.writes.push({ sessions: [session.id], bytes });
    const handshake = session.handshake as DaemonHandshake;
    if (session.name === null && handshake.name !== null) {
      // §2.3 step 6: the name is registered (and taken) from here on.
      session.name = handshake.name;
      this.byName.set(session.name, session);
    }
    const outcome = step.outcome;
    switch (outcome.kind) {
      case 'pending':
        return;
      case 'accepted': {
        this.handshakes.delete(session);
        session.handshake = null;
        session.state = 'open';
        session.privateGroup = outcome.session.privateGroup;
        session.membership = outcome.session.membership;
        session.principal = outcome.session.principal;
        session.framer = new Framer({
          groupsMax: GROUPS_PER_MESSAGE_MAX,
          dataBytesMax: this.bodyBytesMax,
          bodyBytesMax: this.bodyBytesMax,
          rejectCarriesOldType: false,
        });
        this.byPrivateGroup.set(session.privateGroup, session);
        this.counters.sessionsAccepted += 1;
        this.logger.debug({ session: session.id, name: session.privateGroup }, 'session accepted');
        if (outcome.leftover.length > 0) this.sessionFrames(session, outcome.leftover);
        return;
      }
      case 'rejected':
      case 'closed': {
        const reason = outcome.kind === 'rejected' ? 'handshake-rejected' : 'handshake-closed';
        this.closes.push({ session: session.id, reason, detail: outcome.reason });
        this.counters.sessionsRejected += 1;
        this.logger.debug({ session: session.id, reason: outcome.reason }, 'handshake ended without a session');
        this.forget(session);
        return;
      }
    }
  }

  // ---- client requests ------------------------------------------------------------------

  private sessionFrames(session: Session, bytes: Uint8Array): void {
    let frames: Frame[];
    try {
      frames = (session.framer as Framer).push(bytes);
    } catch (error) {
      const detail = error instanceof ProtocolError ? error.message : String(error);
      this.kill(session, 'protocol', detail, true, true);
      return;
    }
    for (const frame of frames) {
      if (session.state !== 'open') return;
      this.clientRequest(session, frame);
    }
  }

  private clientRequest(session: Session, frame: Frame): void {
    const problem = validateClientFrame(frame, session.privateGroup, this.bodyBytesMax);
    if (problem !== null) {
      this.kill(session, 'protocol', problem, true, true);
      return;
    }
    normalizeToLittleEndian(frame);
    const type = frame.header.type;
    this.counters.messagesReceived += 1;
    this.counters.bytesReceived += frame.bytes.length;
    if ((type & ServiceType.REGULAR_MESS) !== 0) {
      if (!this.allowed(session, 'multicast', frameGroups(frame))) {
        this.reject(session, frame);
        return;
      }
      this.submit(frame.bytes, (type & ServiceType.SAFE_MESS) !== 0);
    } else if ((type & ServiceType.JOIN_MESS) !== 0) {
      const group = readFixedName(frame.bytes, frame.groupsOffset);
      if (!this.allowed(session, 'join', [group])) {
        this.reject(session, frame);
        return;
      }
      if (this.groups.localMemberCount(group) >= this.groupLocalMembersMax && !this.groups.isMember(group, session.privateGroup)) {
        this.reject(session, frame);
        return;
      }
      this.submit(encodeJoin(session.privateGroup, group), false);
    } else if ((type & ServiceType.LEAVE_MESS) !== 0) {
      this.submit(encodeLeave(session.privateGroup, readFixedName(frame.bytes, frame.groupsOffset)), false);
    } else {
      this.kill(session, 'kill', 'client disconnect', false, false);
    }
  }

  /** The access-control file's verdict for every group (true without a file); a refusal is counted and logged. */
  private allowed(session: Session, action: 'join' | 'multicast', groups: readonly string[]): boolean {
    const control = this.policy.accessControl ?? null;
    if (control === null || session.principal === null) return true;
    for (const group of groups) {
      const decision = decideAccess(control, session.principal, action, group);
      if (decision.allowed) continue;
      this.counters.accessDenied += 1;
      this.logger.info({ session: session.id, name: session.privateGroup, action, group, rule: decision.by }, 'access control refused a request');
      return false;
    }
    return true;
  }

  /** A reloaded access-control file (null: everyone may do everything): applies to the next request. */
  setAccessControl(control: AccessControl | null): void {
    this.policy.accessControl = control;
  }

  /** A reloaded password file: applies to the next PWORD handshake. */
  setPasswords(passwords: PasswordTable | null): void {
    this.policy.passwords = passwords;
  }

  /**
   * Reject message (§3.6), delivered only to the sender, outside the ring order. A
   * request that carried SELF_DISCARD is dropped instead, as Spread does (§13 item 5).
   */
  private reject(session: Session, frame: Frame): void {
    const type = frame.header.type;
    if ((type & ServiceType.SELF_DISCARD) !== 0) return;
    let oldType = type;
    if ((type & ServiceType.JOIN_MESS) !== 0) oldType = (type & ~ServiceType.JOIN_MESS) | ServiceType.CAUSED_BY_JOIN;
    if ((type & ServiceType.LEAVE_MESS) !== 0) oldType = (type & ~ServiceType.LEAVE_MESS) | ServiceType.CAUSED_BY_LEAVE;
    const groups = frameGroups(frame);
    if (groups.length >= GROUPS_PER_MESSAGE_MAX) groups[GROUPS_PER_MESSAGE_MAX - 1] = session.privateGroup;
    else groups.push(session.privateGroup);
    const bytes = encodeMessage({
      type: ServiceType.REJECT_MESS,
      sender: session.privateGroup,
      groups,
      hintRaw: frame.header.hintRaw,
      data: frameData(frame),
      oldType,
    });
    this.writes.push({ sessions: [session.id], bytes });
  }

  /**
   * Ends an open session: close it now, keep its name and memberships until the kill
   * comes back through the ring. Client KILLs travel AGREED; the daemon's own kills SAFE.
   */
  private kill(session: Session, reason: CloseReason, detail: string, daemonGenerated: boolean, closeSocket: boolean): void {
    if (session.state !== 'open') return;
    session.state = 'dead';
    session.framer = null;
    if (reason === 'protocol') this.counters.protocolKills += 1;
    if (closeSocket || reason === 'kill') this.closes.push({ session: session.id, reason, detail });
    const level = reason === 'protocol' || reason === 'slow' ? 'warn' : 'debug';
    this.logger[level]({ session: session.id, name: session.privateGroup, reason, detail }, 'session killed');
    this.submit(encodeKill(session.privateGroup), daemonGenerated);
  }

  /**
   * Client-caused ring messages. During a state exchange they wait here (client input is
   * suspended, §6.4/§7.3; bytes already read still produce requests), and go out once the
   * exchange is over, in order.
   */
  private submit(payload: Uint8Array, safe: boolean): void {
    if (this.submitBacklog.length === 0 && !this.groups.exchanging && this.controlBacklog.length === 0 && this.ring.submit(payload, safe)) return;
    if (this.submitBacklog.length >= SUBMIT_BACKLOG_MAX) {
      // Unreachable while the adapter honours inputThrottled(); never grow without bound.
      throw new Error(`submit backlog over ${SUBMIT_BACKLOG_MAX}: the adapter ignored inputThrottled()`);
    }
    this.submitBacklog.push({ payload, safe });
  }

  /** Group-layer messages (the state exchange): ahead of every client message, never held. */
  private submitControl(payload: Uint8Array, safe: boolean): void {
    if (this.controlBacklog.length === 0 && this.ring.submit(payload, safe)) return;
    this.controlBacklog.push({ payload, safe });
  }

  /** Hands held messages to the ring; true when client messages were released. */
  private flushSubmitBacklog(): boolean {
    while (this.controlBacklog.length > 0) {
      const item = this.controlBacklog[0];
      if (!this.ring.submit(item.payload, item.safe)) return false;
      this.controlBacklog.shift();
    }
    if (this.submitBacklog.length === 0 || this.groups.exchanging) return false;
    let index = 0;
    while (index < this.submitBacklog.length) {
      const item = this.submitBacklog[index];
      if (!this.ring.submit(item.payload, item.safe)) break;
      index += 1;
    }
    this.submitBacklog = index === this.submitBacklog.length ? [] : this.submitBacklog.slice(index);
    return index > 0;
  }

  // ---- group outputs ----------------------------------------------------------------------

  private applyGroupOutputs(): void {
    const outputs = this.groupOutputs;
    this.groupOutputs = [];
    for (const output of outputs) {
      if (output.kind === 'killed') {
        const session = output.sessionId === null ? undefined : this.sessions.get(output.sessionId);
        if (session) this.forget(session);
        continue;
      }
      if (output.kind === 'submit') {
        this.submitControl(output.payload, output.safe);
        continue;
      }
      const sessions = this.liveOnly(output.sessions);
      if (sessions.length > 0) this.writes.push({ sessions, bytes: output.bytes });
    }
  }

  /** Drops dead sessions from a recipient list; allocates only when one is found. */
  private liveOnly(ids: number[]): number[] {
    for (let i = 0; i < ids.length; i++) {
      if (this.sessions.get(ids[i])?.state !== 'open') return ids.filter((id) => this.sessions.get(id)?.state === 'open');
    }
    return ids;
  }

  private forget(session: Session): void {
    this.sessions.delete(session.id);
    this.handshakes.delete(session);
    if (session.name !== null && this.byName.get(session.name) === session) this.byName.delete(session.name);
    if (session.privateGroup !== '' && this.byPrivateGroup.get(session.privateGroup) === session) {
      this.byPrivateGroup.delete(session.privateGroup);
    }
    session.state = 'dead';
  }
}
