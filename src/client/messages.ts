/**
 * Messages a session receives, as a discriminated union on `kind`, and their
 * decoding from framed bytes (spread-protocol.md §3.4–§3.6, §5).
 *
 * Data messages decode their group list lazily: a receiver that only looks at
 * `data` (the flooder) never builds the strings.
 */
import { ServiceType } from '../protocol/constants.js';
import { decodeHint } from '../protocol/header.js';
import { frameGroups, type Frame } from '../protocol/framer.js';
import { decodeMembershipBody, type GroupId } from '../protocol/membership.js';

/** The six Spread services, weakest first. */
export type Service = 'unreliable' | 'reliable' | 'fifo' | 'causal' | 'agreed' | 'safe';

/** Service name → `type` bit (§4.1). */
export const SERVICE_BITS: Readonly<Record<Service, number>> = {
  unreliable: ServiceType.UNRELIABLE_MESS,
  reliable: ServiceType.RELIABLE_MESS,
  fifo: ServiceType.FIFO_MESS,
  causal: ServiceType.CAUSAL_MESS,
  agreed: ServiceType.AGREED_MESS,
  safe: ServiceType.SAFE_MESS,
};

const SERVICES = Object.keys(SERVICE_BITS) as Service[];

/** The service named by the lowest service bit of `type`, or null when no service bit is set. */
export function serviceOf(type: number): Service | null {
  for (const service of SERVICES) if ((type & SERVICE_BITS[service]) !== 0) return service;
  return null;
}

/** What data and reject messages share: the sender's request as delivered. */
export interface Delivery {
  /** The sender's private group, `#name#daemon`. */
  readonly sender: string;
  /** The sender's full destination list (for a reject, followed by the sender's private group). */
  readonly groups: string[];
  /** The sender's int16 message type. */
  readonly messType: number;
  /** True when the sender's byte order differs from ours (little-endian): its payload may need swapping. */
  readonly endianMismatch: boolean;
  readonly data: Uint8Array;
  /** The sender set SELF_DISCARD. */
  readonly selfDiscard: boolean;
}

/** An application message. */
export interface DataMessage extends Delivery {
  readonly kind: 'data';
  readonly service: Service;
}

/** Why a membership message was delivered. */
export type MembershipCause = 'join' | 'leave' | 'disconnect' | 'network' | 'transition' | 'self-leave';

/** A group membership change (regular), a transitional signal or this session's own leave. */
export interface MembershipMessage {
  readonly kind: 'membership';
  readonly group: string;
  readonly cause: MembershipCause;
  /** True for the transitional signal (cause 'transition'). */
  readonly transitional: boolean;
  /** The view's group id; for a transitional signal the old view's; zeros for a self-leave. */
  readonly gid: GroupId;
  /** Members of the new view in the daemons' order; empty for transition and self-leave. */
  readonly members: string[];
  /** The virtual-synchrony sets; for join/leave/disconnect one set holding the changed member. */
  readonly vsSets: string[][];
  /** The vs set holding this session's daemon (empty when none). */
  readonly mySet: string[];
  /** The joiner, leaver or disconnected member; null for network, transition and self-leave. */
  readonly changedMember: string | null;
  /** This session's index in `members` (the C library's mess_type); -1 when absent. */
  readonly myIndex: number;
}

/** A request the daemon refused, returned to its sender (§3.6). */
export interface RejectMessage extends Delivery {
  readonly kind: 'reject';
  /** The refused request's service, or 'join'/'leave' for a refused join or leave; null if unknown. */
  readonly oldService: Service | 'join' | 'leave' | null;
  /** The refused request's type bits (marker cleared; JOIN_MESS/LEAVE_MESS appear as CAUSED_BY_JOIN/LEAVE). */
  readonly oldType: number;
}

/** Anything a session receives. */
export type Message = DataMessage | MembershipMessage | RejectMessage;

class LazyDataMessage implements DataMessage {
  readonly kind = 'data' as const;
  readonly service: Service;
  readonly sender: string;
  readonly messType: number;
  readonly endianMismatch: boolean;
  readonly data: Uint8Array;
  readonly selfDiscard: boolean;
  #frame: Frame;
  #groups: string[] | undefined;

  constructor(frame: Frame, service: Service) {
    const hint = decodeHint(frame.header.hintRaw);
    this.#frame = frame;
    this.service = service;
    this.sender = frame.header.sender;
    this.messType = hint.messType;
    this.endianMismatch = hint.endianMismatch;
    this.data = frame.bytes.subarray(frame.dataOffset, frame.dataOffset + frame.header.dataLen);
    this.selfDiscard = (frame.header.type & ServiceType.SELF_DISCARD) !== 0;
  }

  get groups(): string[] {
    return (this.#groups ??= frameGroups(this.#frame));
  }

  toJSON(): object {
    const { kind, service, sender, groups, messType, endianMismatch, data, selfDiscard } = this;
    return { kind, service, sender, groups, messType, endianMismatch, data, selfDiscard };
  }
}

const ZERO_GID: GroupId = { procId: 0, time: 0, index: 0 };

function membershipCause(type: number): MembershipCause {
  if ((type & ServiceType.TRANSITION_MESS) !== 0) return 'transition';
  if ((type & ServiceType.REG_MEMB_MESS) === 0) return 'self-leave';
  if ((type & ServiceType.CAUSED_BY_JOIN) !== 0) return 'join';
  if ((type & ServiceType.CAUSED_BY_LEAVE) !== 0) return 'leave';
  if ((type & ServiceType.CAUSED_BY_DISCONNECT) !== 0) return 'disconnect';
  return 'network';
}

function decodeMembership(frame: Frame, privateGroup: string): MembershipMessage {
  const { header } = frame;
  const cause = membershipCause(header.type);
  const body = frame.bytes.subarray(frame.dataOffset, frame.dataOffset + header.dataLen);
  const info =
    cause === 'self-leave'
      ? { gid: ZERO_GID, vsSets: [], localSetIndex: -1, changedMember: null }
      : decodeMembershipBody(body, header.type, header.littleEndian);
  const members = cause === 'transition' || cause === 'self-leave' ? [] : frameGroups(frame);
  return {
    kind: 'membership',
    group: header.sender,
    cause,
    transitional: cause === 'transition',
    gid: info.gid,
    members,
    vsSets: info.vsSets,
    mySet: info.vsSets[info.localSetIndex] ?? [],
    changedMember: info.changedMember,
    myIndex: members.indexOf(privateGroup),
  };
}

function decodeReject(frame: Frame): RejectMessage {
  const { header } = frame;
  const oldType = frame.oldType ?? 0;
  const hint = decodeHint(header.hintRaw);
  let oldService: RejectMessage['oldService'] = serviceOf(oldType);
  if (oldService === null && (oldType & ServiceType.CAUSED_BY_JOIN) !== 0) oldService = 'join';
  if (oldService === null && (oldType & ServiceType.CAUSED_BY_LEAVE) !== 0) oldService = 'leave';
  return {
    kind: 'reject',
    oldService,
    oldType,
    sender: header.sender,
    groups: frameGroups(frame),
    messType: hint.messType,
    endianMismatch: hint.endianMismatch,
    data: frame.bytes.subarray(frame.dataOffset, frame.dataOffset + header.dataLen),
    selfDiscard: (header.type & ServiceType.SELF_DISCARD) !== 0,
  };
}

/**
 * Turns a frame into a message; null for a type no predicate of sp.h accepts
 * (the C library would hand it to the application uninterpreted; we drop it).
 */
export function decodeMessage(frame: Frame, privateGroup: string): Message | null {
  const type = frame.header.type;
  if ((type & ServiceType.REJECT_MESS) !== 0) return decodeReject(frame);
  const service = serviceOf(type);
  if (service !== null) return new LazyDataMessage(frame, service);
  if ((type & ServiceType.MEMBERSHIP_MESS) !== 0) return decodeMembership(frame, privateGroup);
  return null;
}
