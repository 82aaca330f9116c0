/**
 * The group layer (§5, §7.2, §11.5): pure, driven only by the ring's ordered events,
 * so its replicated state (groups, members, group ids) is identical at every daemon.
 * It turns each event into writes to this daemon's sessions.
 *
 * Replicated state: every group with its gid and its members across all daemons, each
 * member being a private group `#name#daemon` tagged with the VID of the daemon hosting
 * it (the ring origin of its join). Members are kept in Spread's order (§5.3): daemon
 * position in the configuration, then the 32-byte name bytewise; a daemon missing from
 * the configuration sorts after all configured ones, by VID.
 *
 * Local state: which members are sessions of this daemon (looked up once, at join
 * delivery, through the `SessionDirectory`), so routing never scans remote members.
 *
 * Configuration changes — what is here and where the next issue plugs in:
 *   - `onTransitional(membId, members)`: groups that lose members hosted by daemons
 *     outside `members` send TRANSITION_MESS (old gid) to their local members, in
 *     group-name order, and are marked `changed`; their gid becomes
 *     (transitional membership id, 1) (§5.2). State → 'gtrans'.
 *   - `onRegular(membId, members)`: the first one just installs the membership id. Later
 *     ones remove members of departed daemons and, for every changed group, install
 *     (membId, 1) and send REG_MEMB|CAUSED_BY_NETWORK with one vs set (the purely
 *     subtractive case, §5.3). State → 'gop'.
 *   - NOT YET: a regular configuration that ADDS daemons needs the GROUPS state exchange
 *     (§11.5: 'ggather'/'ggt', vs sets per membership id, client input suspended). The
 *     hook is `mergeRequired` (set when a regular configuration adds daemons) plus the
 *     reserved ring-message kinds in ring-message.ts; joins/leaves/disconnects while a
 *     group is `changed` (REG|NETWORK followed by TRANSITION, §5.5) are also left to it.
 */
import { ENDIAN_MARKER, GROUP_NAME_BYTES, HEADER_BYTES, ServiceType } from '../protocol/constants.js';
import type { GroupId } from '../protocol/membership.js';
import { isPrivateGroupName, readFixedName } from '../protocol/names.js';
import type { MembershipId, RingEvent } from '../ring/types.js';
import type { GroupStatus } from '../daemon/status-types.js';
import { decodeRingMessage, type RingMessage } from './ring-message.js';
import {
  encodeRegularMembership,
  encodeSelfLeave,
  encodeTransitional,
  type MembershipCause,
} from './membership-messages.js';

/** A session of this daemon as the group layer sees it. */
export interface LocalSessionRef {
  readonly id: number;
  /** Wants membership messages (connect flag, §5.1). */
  readonly membership: boolean;
}

export interface SessionDirectory {
  /** The local session owning this private group, until its kill has been delivered. */
  byPrivateGroup(privateGroup: string): LocalSessionRef | undefined;
}

export type GroupOutput =
  /** Write the same bytes to each session, in output order. */
  | { kind: 'write'; sessions: number[]; bytes: Uint8Array }
  /** A kill was delivered: the member left every group; a local session can now be forgotten. */
  | { kind: 'killed'; member: string; sessionId: number | null };

export type GroupLayerState = 'gop' | 'gtrans' | 'ggather' | 'ggt';

export interface GroupLayerOptions {
  myVid: number;
  /** Position of a daemon in the configuration file (§5.3), undefined if not configured. */
  daemonPosition(vid: number): number | undefined;
  sessions: SessionDirectory;
}

export interface Member {
  /** Private group `#name#daemon`. */
  readonly name: string;
  /** VID of the hosting daemon. */
  readonly vid: number;
  /** Sort rank of the hosting daemon (configuration position, or after all of them). */
  readonly rank: number;
  /** Set when the member is a session of this daemon. */
  readonly session: LocalSessionRef | null;
}

export interface Group {
  readonly name: string;
  gid: GroupId;
  /** All members, in §5.3 order. */
  members: Member[];
  /** Members hosted here. */
  localMembers: Member[];
  /** Lost daemons in the current transitional period (§5.5 "changed"). */
  changed: boolean;
  messages: number;
  bytes: number;
}

/** Unconfigured daemons rank after every configured one (at most 128, §6.1). */
const UNCONFIGURED_RANK_BASE = 1 << 16;

/** Bytewise comparison of names (latin1 strings hold one byte per char), as strncmp on 32-byte fields. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareMembers(a: Member, b: Member): number {
  return a.rank !== b.rank ? a.rank - b.rank : compareNames(a.name, b.name);
}

export class GroupLayer {
  private readonly options: GroupLayerOptions;
  private readonly groups = new Map<string, Group>();
  /** Groups of each member (replicated). */
  private readonly memberGroups = new Map<string, Set<string>>();
  private membId: MembershipId | null = null;
  private daemons: number[] = [];
  private transitionalMembId: MembershipId | null = null;
  state: GroupLayerState = 'gop';
  /** Set when a regular configuration added daemons: the state exchange (next issue) must run. */
  mergeRequired = false;
  /** Data messages delivered (each once, whatever the recipients) and their frame bytes. */
  messagesDelivered = 0;
  bytesDelivered = 0;
  /** Ring payloads that did not decode (a bug or a foreign daemon); dropped. */
  malformedPayloads = 0;

  constructor(options: GroupLayerOptions) {
    this.options = options;
  }

  get membershipId(): MembershipId | null {
    return this.membId;
  }

  /** Consume one ring event, appending outputs in delivery order. */
  apply(event: RingEvent, out: GroupOutput[]): void {
    switch (event.kind) {
      case 'deliver':
        this.onDeliver(event.origin, event.payload, out);
        return;
      case 'transitional':
        this.onTransitional(event.membId, event.members, out);
        return;
      case 'regular':
        this.onRegular(event.membId, event.members, out);
        return;
    }
  }

  onDeliver(origin: number, payload: Uint8Array, out: GroupOutput[]): void {
    let message: RingMessage;
    try {
      message = decodeRingMessage(payload);
    } catch {
      this.malformedPayloads += 1;
      return;
    }
    switch (message.kind) {
      case 'data':
        this.onData(origin, message.frame, out);
        return;
      case 'join':
        this.onJoin(origin, message.member, message.group, out);
        return;
      case 'leave':
        this.onLeave(message.member, message.group, out);
        return;
      case 'kill':
        this.onKill(origin, message.member, out);
        return;
    }
  }

  // ---- configurations -------------------------------------------------------------

  onTransitional(membId: MembershipId, members: readonly number[], out: GroupOutput[]): void {
    this.transitionalMembId = membId;
    this.state = 'gtrans';
    const staying = new Set(members);
    for (const group of this.sortedGroups()) {
      if (group.members.every((member) => staying.has(member.vid))) continue;
      this.sendToLocal(group, encodeTransitional(group.name, group.gid), out);
      group.changed = true;
      group.gid = { procId: membId.procId, time: membId.time, index: 1 };
    }
  }

  onRegular(membId: MembershipId, members: readonly number[], out: GroupOutput[]): void {
    const previous = this.daemons;
    const first = this.membId === null;
    this.membId = membId;
    this.daemons = [...members];
    this.state = 'gop';
    this.transitionalMembId = null;
    if (first) return;
    const present = new Set(members);
    const before = new Set(previous);
    this.mergeRequired = members.some((vid) => !before.has(vid));
    for (const group of this.sortedGroups()) {
      const lost = group.members.some((member) => !present.has(member.vid));
      if (!lost && !group.changed) continue;
      for (const member of group.members) if (!present.has(member.vid)) this.forgetMembership(member.name, group.name);
      group.members = group.members.filter((member) => present.has(member.vid));
      group.localMembers = group.localMembers.filter((member) => present.has(member.vid));
      group.changed = false;
      if (group.members.length === 0) {
        this.groups.delete(group.name);
        continue;
      }
      group.gid = { procId: membId.procId, time: membId.time, index: 1 };
      const names = group.members.map((member) => member.name);
      this.sendToLocal(group, encodeRegularMembership(group.name, 'network', group.gid, names, [names], 0), out);
    }
  }

  // ---- joins, leaves, kills (AGREED / SAFE through the ring, §5.5) ------------------

  private onJoin(origin: number, memberName: string, groupName: string, out: GroupOutput[]): void {
    if (this.isMember(groupName, memberName)) return; // already joined: nothing (§5.5)
    let group = this.groups.get(groupName);
    if (!group) {
      group = {
        name: groupName,
        gid: this.freshGid(),
        members: [],
        localMembers: [],
        changed: false,
        messages: 0,
        bytes: 0,
      };
      this.groups.set(groupName, group);
    }
    const session = origin === this.options.myVid ? (this.options.sessions.byPrivateGroup(memberName) ?? null) : null;
    const member: Member = { name: memberName, vid: origin, rank: this.rankOf(origin), session };
    insertSorted(group.members, member);
    if (session) group.localMembers.push(member);
    let groupsOfMember = this.memberGroups.get(memberName);
    if (!groupsOfMember) {
      groupsOfMember = new Set();
      this.memberGroups.set(memberName, groupsOfMember);
    }
    groupsOfMember.add(groupName);
    group.gid = { ...group.gid, index: group.gid.index + 1 };
    this.sendLightweight(group, 'join', memberName, out);
  }

  private onLeave(memberName: string, groupName: string, out: GroupOutput[]): void {
    const group = this.groups.get(groupName);
    const removed = group ? this.removeMember(group, memberName) : null;
    if (!group || !removed) return;
    this.forgetMembership(memberName, groupName);
    if (removed.session?.membership) {
      out.push({ kind: 'write', sessions: [removed.session.id], bytes: encodeSelfLeave(groupName) });
    }
    this.afterDeparture(group, 'leave', memberName, out);
  }

  private onKill(origin: number, memberName: string, out: GroupOutput[]): void {
    const groupNames = [...(this.memberGroups.get(memberName) ?? [])].sort(compareNames);
    this.memberGroups.delete(memberName);
    for (const groupName of groupNames) {
      const group = this.groups.get(groupName);
      if (!group || !this.removeMember(group, memberName)) continue;
      this.afterDeparture(group, 'disconnect', memberName, out);
    }
    const session = origin === this.options.myVid ? this.options.sessions.byPrivateGroup(memberName) : undefined;
    out.push({ kind: 'killed', member: memberName, sessionId: session ? session.id : null });
  }

  private afterDeparture(group: Group, cause: MembershipCause, memberName: string, out: GroupOutput[]): void {
    if (group.members.length === 0) {
      this.groups.delete(group.name); // recreated with index 1 on the next join (§5.5)
      return;
    }
    group.gid = { ...group.gid, index: group.gid.index + 1 };
    this.sendLightweight(group, cause, memberName, out);
  }

  /** REG_MEMB with one vs set holding the changed member, local offset 0 (§5.1). */
  private sendLightweight(group: Group, cause: MembershipCause, changed: string, out: GroupOutput[]): void {
    if (!group.localMembers.some((member) => member.session?.membership)) return;
    const names = group.members.map((member) => member.name);
    this.sendToLocal(group, encodeRegularMembership(group.name, cause, group.gid, names, [[changed]], 0), out);
  }

  private sendToLocal(group: Group, bytes: Uint8Array, out: GroupOutput[]): void {
    const sessions: number[] = [];
    for (const member of group.localMembers) if (member.session?.membership) sessions.push(member.session.id);
    if (sessions.length > 0) out.push({ kind: 'write', sessions, bytes });
  }

  private removeMember(group: Group, memberName: string): Member | null {
    const index = group.members.findIndex((member) => member.name === memberName);
    if (index < 0) return null;
    const [removed] = group.members.splice(index, 1);
    if (removed.session) group.localMembers = group.localMembers.filter((member) => member !== removed);
    return removed;
  }

  private forgetMembership(memberName: string, groupName: string): void {
    const groupsOfMember = this.memberGroups.get(memberName);
    if (!groupsOfMember) return;
    groupsOfMember.delete(groupName);
    if (groupsOfMember.size === 0) this.memberGroups.delete(memberName);
  }

  // ---- data (§7.2) ---------------------------------------------------------------------

  private onData(origin: number, frame: Uint8Array, out: GroupOutput[]): void {
    if (frame.length < HEADER_BYTES) {
      this.malformedPayloads += 1;
      return;
    }
    const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
    const type = (view.getUint32(0, true) & ~ENDIAN_MARKER) >>> 0;
    const groupCount = view.getInt32(36, true);
    if (frame.length < HEADER_BYTES + groupCount * GROUP_NAME_BYTES || groupCount < 0) {
      this.malformedPayloads += 1;
      return;
    }
    this.messagesDelivered += 1;
    this.bytesDelivered += frame.length;
    let sessions: number[];
    if (groupCount === 1) {
      sessions = this.targetsOf(readFixedName(frame, HEADER_BYTES), frame.length);
    } else {
      const unique = new Set<number>();
      for (let i = 0; i < groupCount; i++) {
        for (const id of this.targetsOf(readFixedName(frame, HEADER_BYTES + i * GROUP_NAME_BYTES), frame.length)) {
          unique.add(id);
        }
      }
      sessions = [...unique];
    }
    if ((type & ServiceType.SELF_DISCARD) !== 0 && origin === this.options.myVid && sessions.length > 0) {
      const sender = this.options.sessions.byPrivateGroup(readFixedName(frame, 4));
      if (sender) sessions = sessions.filter((id) => id !== sender.id);
    }
    if (sessions.length > 0) out.push({ kind: 'write', sessions, bytes: frame });
  }

  /** Local sessions addressed by one destination name. */
  private targetsOf(destination: string, frameBytes: number): number[] {
    if (isPrivateGroupName(destination)) {
      const session = this.options.sessions.byPrivateGroup(destination);
      return session ? [session.id] : [];
    }
    const group = this.groups.get(destination);
    if (!group) return [];
    group.messages += 1;
    group.bytes += frameBytes;
    const local = group.localMembers;
    const ids = new Array<number>(local.length);
    for (let i = 0; i < local.length; i++) ids[i] = (local[i].session as LocalSessionRef).id;
    return ids;
  }

  // ---- queries ------------------------------------------------------------------------

  /** Members of `group` hosted here (for the 3122-member reject, §3.6). */
  localMemberCount(groupName: string): number {
    return this.groups.get(groupName)?.localMembers.length ?? 0;
  }

  isMember(groupName: string, memberName: string): boolean {
    return this.memberGroups.get(memberName)?.has(groupName) ?? false;
  }

  group(name: string): Readonly<Group> | undefined {
    return this.groups.get(name);
  }

  groupNames(): string[] {
    return [...this.groups.keys()].sort(compareNames);
  }

  status(): GroupStatus[] {
    return this.sortedGroups().map((group) => ({
      name: group.name,
      members: group.members.length,
      localMembers: group.localMembers.length,
      messages: group.messages,
      bytes: group.bytes,
    }));
  }

  private sortedGroups(): Group[] {
    return [...this.groups.values()].sort((a, b) => compareNames(a.name, b.name));
  }

  private freshGid(): GroupId {
    const membId = this.transitionalMembId ?? this.membId ?? { procId: this.options.myVid, time: 0 };
    return { procId: membId.procId, time: membId.time, index: 0 };
  }

  private rankOf(vid: number): number {
    const position = this.options.daemonPosition(vid);
    return position !== undefined ? position : UNCONFIGURED_RANK_BASE + (vid >>> 0);
  }
}

function insertSorted(members: Member[], member: Member): void {
  let low = 0;
  let high = members.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareMembers(members[middle], member) < 0) low = middle + 1;
    else high = middle;
  }
  members.splice(low, 0, member);
}
