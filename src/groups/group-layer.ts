/**
 * The group layer (§5, §7.2, §7.3, §11.5): pure, driven only by the ring's ordered
 * events, so its replicated state (groups, members, group ids) is identical at every
 * daemon that saw the same events. It turns each event into writes to this daemon's
 * sessions, and into GROUPS messages to order through the ring during a state exchange.
 *
 * Replicated state: every group with its gid and its members, each member being a
 * private group `#name#daemon` tagged with the VID of the daemon hosting it (the ring
 * origin of its join), and per group and daemon the membership id under which that
 * daemon's members were last installed (it decides the vs sets, §5.3). Members are
 * kept in Spread's order (§5.3): daemon position in the configuration, then the name
 * bytewise; a daemon missing from the configuration sorts after all configured ones.
 *
 * Local state: which members are sessions of this daemon (looked up once, at join
 * delivery, through the `SessionDirectory`), so routing never scans remote members.
 *
 * Synced set: the daemons known to hold exactly this daemon's replicated state. It is
 * {me} at start, the whole configuration after a completed state exchange, and it
 * shrinks to (synced ∩ transitional configuration) at each regular configuration. The
 * state only ever holds members of synced daemons; joins, leaves and kills ordered
 * from other daemons are ignored (their own synced set applies them and reports them
 * in the next exchange). Every daemon of one synced set computes the same set.
 *
 * Configuration changes (GOP → GTRANS → GOP, or → GGATHER [→ GGT] → …):
 *   - transitional T: groups with members on daemons outside T send TRANSITION_MESS
 *     (old gid) to their local members, in group-name order, and become `changed`:
 *     gid (transitional membership id, 1), where that id is (first daemon of T in
 *     configuration order, the new ring's time with bit 31 set) (§5.2); the daemons
 *     of T take it. (First within the synced set: see beginTransitional.) Joins,
 *     leaves and disconnects of a changed group give REG|NETWORK (all members, vs sets
 *     with each partitioned daemon alone and a joiner alone at the end) immediately
 *     followed by TRANSITION_MESS with the same gid (§5.5).
 *   - regular R: members of daemons outside the new synced set are removed. If R is
 *     inside the synced set (purely subtractive), changed groups install (R, 1) with one
 *     vs set, locally. Otherwise the state exchange (state-exchange.ts): the
 *     representative of each synced set submits its report, everything else ordered
 *     meanwhile is held back; once the reports delivered cover R, every daemon merges
 *     them, installs (R, 1) in each group whose member set changed (REG|NETWORK with
 *     one vs set per membership id the daemons brought, §5.3; no TRANSITION for a pure
 *     merge) and then delivers what it held, in order.
 *   - a transitional configuration during the exchange (GGT) is held like the rest:
 *     GROUPS messages of R still count (every daemon of that transitional configuration
 *     delivered the same messages of R, so all complete or none). If the next regular
 *     configuration comes first, the exchange is abandoned: the transitional
 *     configuration and then the held deliveries are applied to the pre-exchange state
 *     (synced-set semantics above; the deliveries are clean-up messages of the old
 *     views) and the next regular configuration starts over.
 */
import { ENDIAN_MARKER, GROUP_NAME_BYTES, HEADER_BYTES, ServiceType } from '../protocol/constants.js';
import type { GroupId } from '../protocol/membership.js';
import { isPrivateGroupName, readFixedName } from '../protocol/names.js';
import type { MembershipId, RingEvent } from '../ring/types.js';
import type { GroupStatus } from '../daemon/status-types.js';
import { decodeRingMessage, type RingMessage } from './ring-message.js';
import {
  compareMembershipIds,
  encodeGroupsReport,
  GROUPS_KIND,
  type GroupsChunk,
  type GroupsDaemonRecord,
  type GroupsGroupRecord,
  type GroupsReport,
  membershipIdsEqual,
  ReportAssembler,
} from './state-exchange.js';
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
  | { kind: 'killed'; member: string; sessionId: number | null }
  /** Order this payload through the ring now (GROUPS messages of the state exchange); never held back. */
  | { kind: 'submit'; payload: Uint8Array; safe: boolean };

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
  /** Per hosting daemon: the membership id its members were last installed under (§5.3). */
  daemonIds: Map<number, MembershipId>;
  /** Lost daemons in the current transitional period, or awaits its network view (§5.5 "changed"). */
  changed: boolean;
  messages: number;
  bytes: number;
}

/** Set in the time of transitional membership ids, so that none equals a ring's id (see beginTransitional). */
export const TRANSITIONAL_TIME_BIT = 0x80000000;

/** Unconfigured daemons rank after every configured one (at most 128, §6.1). */
const UNCONFIGURED_RANK_BASE = 1 << 16;

/** Bytewise comparison of names (latin1 strings hold one byte per char), as strncmp on 32-byte fields. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareMembers(a: Member, b: Member): number {
  return a.rank !== b.rank ? a.rank - b.rank : compareNames(a.name, b.name);
}

interface Exchange {
  membId: MembershipId;
  members: number[];
  covered: Set<number>;
  assemblers: Map<number, ReportAssembler>;
  reports: GroupsReport[];
}

interface Transitional {
  membId: MembershipId;
  members: Set<number>;
}

export class GroupLayer {
  private readonly options: GroupLayerOptions;
  private readonly groups = new Map<string, Group>();
  /** Groups of each member (replicated). */
  private readonly memberGroups = new Map<string, Set<string>>();
  private membId: MembershipId | null = null;
  private daemons: number[] = [];
  /** Daemons holding exactly this replicated state (see the module comment). */
  private synced: Set<number>;
  /** The transitional configuration while in GTRANS, else null. */
  private trans: Transitional | null = null;
  private exchange: Exchange | null = null;
  /** Events held back while the exchange runs: deliveries and a transitional configuration. */
  private held: RingEvent[] = [];
  state: GroupLayerState = 'gop';
  /** Data messages delivered (each once, whatever the recipients) and their frame bytes. */
  messagesDelivered = 0;
  bytesDelivered = 0;
  /** Ring payloads that did not decode (a bug or a foreign daemon); dropped. */
  malformedPayloads = 0;
  /** State exchanges completed, and abandoned because the configuration changed again. */
  exchangesCompleted = 0;
  exchangesAbandoned = 0;
  /** Joins, leaves and kills ordered from daemons outside the synced set (left to their reports). */
  foreignOpsIgnored = 0;

  constructor(options: GroupLayerOptions) {
    this.options = options;
    this.synced = new Set([options.myVid]);
  }

  get membershipId(): MembershipId | null {
    return this.membId;
  }

  /** True while the state exchange runs: client input is suspended (§6.4, §7.3). */
  get exchanging(): boolean {
    return this.state === 'ggather' || this.state === 'ggt';
  }

  /** The synced set, in configuration order. */
  syncedSet(): number[] {
    return this.sortDaemons([...this.synced]);
  }

  /** Consume one ring event, appending outputs in delivery order. */
  apply(event: RingEvent, out: GroupOutput[]): void {
    switch (event.kind) {
      case 'deliver':
        if (this.exchanging) {
          if (event.payload.length > 0 && event.payload[0] === GROUPS_KIND) this.onDeliver(event.origin, event.payload, out);
          else this.held.push(event);
          return;
        }
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
      case 'groups':
        this.onGroups(origin, message.chunk, out);
        return;
    }
    if (!this.synced.has(origin)) {
      this.foreignOpsIgnored += 1;
      return;
    }
    switch (message.kind) {
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
    if (this.exchanging) {
      this.held.push({ kind: 'transitional', membId, members: [...members] });
      this.state = 'ggt';
      return;
    }
    this.beginTransitional(membId, members, out);
  }

  onRegular(membId: MembershipId, members: readonly number[], out: GroupOutput[]): void {
    if (this.state === 'ggather') {
      // A regular configuration without its transitional one: those that came from the
      // exchange's configuration came along.
      const from = new Set((this.exchange as Exchange).members);
      this.onTransitional(membId, members.filter((vid) => from.has(vid)), out);
    }
    if (this.state === 'ggt') this.abandonExchange(out);
    if (this.state === 'gop') {
      // No transitional configuration came first (the first configuration, or a ring
      // that skips it): the daemons of the previous one that are still here came along.
      const came = this.membId === null ? [this.options.myVid] : this.daemons.filter((vid) => members.includes(vid));
      this.beginTransitional(membId, came, out);
    }
    this.installRegular(membId, members, out);
  }

  private beginTransitional(membId: MembershipId, members: readonly number[], out: GroupOutput[]): void {
    const staying = new Set(members);
    staying.add(this.options.myVid);
    if (this.trans !== null) for (const vid of [...staying]) if (!this.trans.members.has(vid)) staying.delete(vid);
    // The transitional membership id (§5.2): the first daemon of the transitional
    // configuration, with the time of the ring being formed, high bit set. Sides of one
    // new ring get different ids (the ring may hand every side the new ring's own id),
    // and none equals a ring's id: with the side holding the new leader it would be
    // the new ring's id, and views of that period would reuse gids of the next ones.
    // "First" is taken within the synced set: after an abandoned exchange one
    // transitional configuration can hold daemons with different group states, and
    // equal ids would put members with different previous views in one vs set.
    const first = this.sortDaemons([...staying].filter((vid) => this.synced.has(vid)))[0] ?? this.options.myVid;
    const transId = { procId: first, time: (membId.time | TRANSITIONAL_TIME_BIT) >>> 0 };
    membId = transId;
    this.trans = { membId: transId, members: staying };
    this.state = 'gtrans';
    for (const group of this.sortedGroups()) {
      if (group.members.every((member) => staying.has(member.vid))) continue;
      if (!group.changed) this.sendToLocal(group, encodeTransitional(group.name, group.gid), out);
      group.changed = true;
      group.gid = { procId: membId.procId, time: membId.time, index: 1 };
      for (const vid of group.daemonIds.keys()) if (staying.has(vid)) group.daemonIds.set(vid, { ...membId });
    }
  }

  private installRegular(membId: MembershipId, members: readonly number[], out: GroupOutput[]): void {
    const trans = this.trans as Transitional;
    const synced = new Set([...this.synced].filter((vid) => trans.members.has(vid)));
    synced.add(this.options.myVid);
    this.membId = { ...membId };
    this.daemons = [...members];
    this.trans = null;
    this.synced = synced;
    for (const group of this.sortedGroups()) {
      if (group.members.every((member) => synced.has(member.vid))) continue;
      for (const member of group.members) if (!synced.has(member.vid)) this.forgetMembership(member.name, group.name);
      group.members = group.members.filter((member) => synced.has(member.vid));
      group.localMembers = group.localMembers.filter((member) => synced.has(member.vid));
      for (const vid of [...group.daemonIds.keys()]) if (!synced.has(vid)) group.daemonIds.delete(vid);
      group.changed = true;
      if (group.members.length === 0) this.groups.delete(group.name);
    }
    if (members.every((vid) => synced.has(vid))) {
      // Purely subtractive: every daemon here shares this state; ids first, so one vs set.
      for (const group of this.sortedGroups()) {
        if (!group.changed) continue;
        group.changed = false;
        this.installNetworkView(group, membId, out);
      }
      this.state = 'gop';
      return;
    }
    this.state = 'ggather';
    this.held = [];
    this.exchange = { membId: { ...membId }, members: [...members], covered: new Set(), assemblers: new Map(), reports: [] };
    const syncedList = this.sortDaemons([...synced]);
    if (syncedList[0] === this.options.myVid) {
      const report: GroupsReport = { membId: { ...membId }, synced: syncedList, groups: this.report() };
      for (const payload of encodeGroupsReport(report)) out.push({ kind: 'submit', payload, safe: false });
    }
  }

  /** This synced set's state, groups in name order, daemons in configuration order. */
  private report(): GroupsGroupRecord[] {
    return this.sortedGroups().map((group) => {
      const daemons: GroupsDaemonRecord[] = [];
      for (const member of group.members) {
        const last = daemons.at(-1);
        if (last && last.vid === member.vid) last.members.push(member.name);
        else daemons.push({ vid: member.vid, membId: this.daemonMembId(group, member.vid), members: [member.name] });
      }
      return { name: group.name, gid: { ...group.gid }, changed: group.changed, daemons };
    });
  }

  private onGroups(origin: number, chunk: GroupsChunk, out: GroupOutput[]): void {
    const exchange = this.exchange;
    if (exchange === null || !membershipIdsEqual(chunk.membId, exchange.membId)) return; // stale
    let assembler = exchange.assemblers.get(origin);
    if (!assembler) {
      assembler = new ReportAssembler();
      exchange.assemblers.set(origin, assembler);
    }
    const report = assembler.add(chunk);
    if (report === null) return;
    exchange.reports.push(report);
    for (const vid of report.synced) exchange.covered.add(vid);
    if (exchange.members.every((vid) => exchange.covered.has(vid))) this.completeExchange(out);
  }

  /** Merge the reports (identically everywhere), install the new views, then deliver what was held. */
  private completeExchange(out: GroupOutput[]): void {
    const exchange = this.exchange as Exchange;
    const inConfiguration = new Set(exchange.members);
    const owner = new Map<number, GroupsReport>();
    for (const report of exchange.reports) for (const vid of report.synced) if (!owner.has(vid)) owner.set(vid, report);
    const localByName = new Map<string, Member>();
    for (const group of this.groups.values()) for (const member of group.localMembers) localByName.set(member.name, member);
    const oldGroups = new Map(this.groups);
    this.groups.clear();
    this.memberGroups.clear();
    const changedGroups: Group[] = [];
    const contributions = new Map<string, { reports: Set<GroupsReport>; gid: GroupId; changed: boolean; daemons: GroupsDaemonRecord[] }>();
    for (const report of exchange.reports) {
      for (const record of report.groups) {
        for (const daemon of record.daemons) {
          if (owner.get(daemon.vid) !== report || !inConfiguration.has(daemon.vid) || daemon.members.length === 0) continue;
          let entry = contributions.get(record.name);
          if (!entry) {
            entry = { reports: new Set(), gid: record.gid, changed: false, daemons: [] };
            contributions.set(record.name, entry);
          }
          entry.reports.add(report);
          entry.changed ||= record.changed;
          entry.daemons.push(daemon);
        }
      }
    }
    for (const [name, entry] of contributions) {
      const old = oldGroups.get(name);
      const group: Group = {
        name,
        gid: { ...entry.gid },
        members: [],
        localMembers: [],
        daemonIds: new Map(),
        changed: false,
        messages: old?.messages ?? 0,
        bytes: old?.bytes ?? 0,
      };
      for (const daemon of entry.daemons) {
        group.daemonIds.set(daemon.vid, { ...daemon.membId });
        for (const memberName of daemon.members) {
          if (group.members.some((member) => member.name === memberName)) continue;
          let member: Member;
          if (daemon.vid === this.options.myVid) {
            const session = localByName.get(memberName)?.session ?? this.options.sessions.byPrivateGroup(memberName) ?? null;
            member = { name: memberName, vid: daemon.vid, rank: this.rankOf(daemon.vid), session };
          } else {
            member = { name: memberName, vid: daemon.vid, rank: this.rankOf(daemon.vid), session: null };
          }
          insertSorted(group.members, member);
          if (member.session) group.localMembers.push(member);
          this.addMembership(memberName, name);
        }
      }
      this.groups.set(name, group);
      if (entry.reports.size > 1 || entry.changed) changedGroups.push(group);
    }
    changedGroups.sort((a, b) => compareNames(a.name, b.name));
    for (const group of changedGroups) this.installNetworkView(group, exchange.membId, out, true);
    this.synced = new Set(exchange.members);
    this.exchange = null;
    this.state = 'gop';
    this.exchangesCompleted += 1;
    const held = this.held;
    this.held = [];
    for (const event of held) this.apply(event, out);
  }

  /**
   * The configuration changed again before the exchange completed: apply what was held
   * to the old state, the transitional configuration first. Daemons of the exchange's
   * ring that did complete it delivered these messages in the merged views; here they
   * become clean-up messages of the old views (after their TRANSITION_MESS), never
   * messages of a view those daemons' members left without them. Groups created now
   * take the transitional id, which belongs to this synced set (the ring's id is shared
   * with other synced sets, whose group states differ).
   */
  private abandonExchange(out: GroupOutput[]): void {
    this.exchange = null;
    this.state = 'gop';
    this.exchangesAbandoned += 1;
    const held = this.held;
    this.held = [];
    for (const event of held) if (event.kind === 'transitional') this.apply(event, out);
    for (const event of held) if (event.kind !== 'transitional') this.apply(event, out);
  }

  /**
   * Installs (membId, 1) and sends REG|NETWORK. After a merge the vs sets come from the
   * ids the daemons brought (`setsBeforeIds`); otherwise the ids are updated first.
   */
  private installNetworkView(group: Group, membId: MembershipId, out: GroupOutput[], setsBeforeIds = false): void {
    group.gid = { procId: membId.procId, time: membId.time, index: 1 };
    const update = (): void => {
      for (const vid of [...group.daemonIds.keys()]) group.daemonIds.set(vid, { procId: membId.procId, time: membId.time });
    };
    if (!setsBeforeIds) update();
    const { sets, daemonSet } = this.vsSets(group, () => false, null);
    if (setsBeforeIds) update();
    const names = group.members.map((member) => member.name);
    const local = daemonSet.get(this.options.myVid) ?? 0;
    this.sendToLocal(group, encodeRegularMembership(group.name, 'network', group.gid, names, sets, local), out);
  }

  /**
   * vs sets (§5.3): daemons grouped by membership id, sets ordered by id, daemons in
   * configuration order, members by name; each partitioned daemon alone after them;
   * `joiner` left out of its daemon's set and alone at the very end.
   */
  private vsSets(group: Group, partitioned: (vid: number) => boolean, joiner: string | null): { sets: string[][]; daemonSet: Map<number, number> } {
    const byDaemon = new Map<number, string[]>();
    for (const member of group.members) {
      let names = byDaemon.get(member.vid);
      if (!names) {
        names = [];
        byDaemon.set(member.vid, names);
      }
      if (member.name !== joiner) names.push(member.name);
    }
    const regular: { id: MembershipId; vids: number[] }[] = [];
    const alone: number[] = [];
    for (const vid of byDaemon.keys()) {
      if (partitioned(vid)) {
        alone.push(vid);
        continue;
      }
      const id = this.daemonMembId(group, vid);
      const existing = regular.find((set) => membershipIdsEqual(set.id, id));
      if (existing) existing.vids.push(vid);
      else regular.push({ id, vids: [vid] });
    }
    regular.sort((a, b) => compareMembershipIds(a.id, b.id));
    const sets: string[][] = [];
    const daemonSet = new Map<number, number>();
    for (const set of regular) {
      for (const vid of set.vids) daemonSet.set(vid, sets.length);
      sets.push(set.vids.flatMap((vid) => byDaemon.get(vid) as string[]));
    }
    for (const vid of alone) {
      daemonSet.set(vid, sets.length);
      sets.push(byDaemon.get(vid) as string[]);
    }
    if (joiner !== null) sets.push([joiner]);
    return { sets, daemonSet };
  }

  private daemonMembId(group: Group, vid: number): MembershipId {
    return group.daemonIds.get(vid) ?? { procId: group.gid.procId, time: group.gid.time };
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
        daemonIds: new Map(),
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
    this.addMembership(memberName, groupName);
    if (!group.daemonIds.has(origin)) group.daemonIds.set(origin, { procId: group.gid.procId, time: group.gid.time });
    group.gid = { ...group.gid, index: group.gid.index + 1 };
    if (group.changed) this.sendChangedView(group, memberName, out);
    else this.sendLightweight(group, 'join', memberName, out);
  }

  private onLeave(memberName: string, groupName: string, out: GroupOutput[]): void {
    const group = this.groups.get(groupName);
    const removed = group ? this.removeMember(group, memberName) : null;
    if (!group || !removed) return;
    this.forgetMembership(memberName, groupName);
    if (removed.session?.membership) {
      out.push({ kind: 'write', sessions: [removed.session.id], bytes: encodeSelfLeave(groupName) });
    }
    this.afterDeparture(group, removed, 'leave', out);
  }

  private onKill(origin: number, memberName: string, out: GroupOutput[]): void {
    const groupNames = [...(this.memberGroups.get(memberName) ?? [])].sort(compareNames);
    this.memberGroups.delete(memberName);
    for (const groupName of groupNames) {
      const group = this.groups.get(groupName);
      const removed = group ? this.removeMember(group, memberName) : null;
      if (!group || !removed) continue;
      this.afterDeparture(group, removed, 'disconnect', out);
    }
    const session = origin === this.options.myVid ? this.options.sessions.byPrivateGroup(memberName) : undefined;
    out.push({ kind: 'killed', member: memberName, sessionId: session ? session.id : null });
  }

  private afterDeparture(group: Group, removed: Member, cause: MembershipCause, out: GroupOutput[]): void {
    if (group.members.length === 0) {
      this.groups.delete(group.name); // recreated with index 1 on the next join (§5.5)
      return;
    }
    if (!group.members.some((member) => member.vid === removed.vid)) group.daemonIds.delete(removed.vid);
    group.gid = { ...group.gid, index: group.gid.index + 1 };
    if (group.changed) this.sendChangedView(group, null, out);
    else this.sendLightweight(group, cause, removed.name, out);
  }

  /** REG_MEMB with one vs set holding the changed member, local offset 0 (§5.1). */
  private sendLightweight(group: Group, cause: MembershipCause, changed: string, out: GroupOutput[]): void {
    if (!group.localMembers.some((member) => member.session?.membership)) return;
    const names = group.members.map((member) => member.name);
    this.sendToLocal(group, encodeRegularMembership(group.name, cause, group.gid, names, [[changed]], 0), out);
  }

  /**
   * A join, leave or disconnect in a changed group (§5.5): REG|NETWORK with every member
   * (partitioned daemons' members too), then TRANSITION_MESS, both with the new gid.
   */
  private sendChangedView(group: Group, joiner: string | null, out: GroupOutput[]): void {
    const trans = this.trans;
    const { sets, daemonSet } = this.vsSets(group, (vid) => trans !== null && !trans.members.has(vid), joiner);
    const names = group.members.map((member) => member.name);
    const others: number[] = [];
    let joinerSession: number | null = null;
    for (const member of group.localMembers) {
      if (!member.session?.membership) continue;
      if (member.name === joiner) joinerSession = member.session.id;
      else others.push(member.session.id);
    }
    if (others.length > 0) {
      const local = daemonSet.get(this.options.myVid) ?? 0;
      out.push({ kind: 'write', sessions: others, bytes: encodeRegularMembership(group.name, 'network', group.gid, names, sets, local) });
    }
    if (joinerSession !== null) {
      const bytes = encodeRegularMembership(group.name, 'network', group.gid, names, sets, sets.length - 1);
      out.push({ kind: 'write', sessions: [joinerSession], bytes });
    }
    this.sendToLocal(group, encodeTransitional(group.name, group.gid), out);
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

  private addMembership(memberName: string, groupName: string): void {
    let groupsOfMember = this.memberGroups.get(memberName);
    if (!groupsOfMember) {
      groupsOfMember = new Set();
      this.memberGroups.set(memberName, groupsOfMember);
    }
    groupsOfMember.add(groupName);
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

  /** Replicated state as plain data, for comparing daemons in tests (no local fields). */
  replicatedState(): { name: string; gid: GroupId; members: string[] }[] {
    return this.sortedGroups().map((group) => ({ name: group.name, gid: { ...group.gid }, members: group.members.map((member) => member.name) }));
  }

  private sortedGroups(): Group[] {
    return [...this.groups.values()].sort((a, b) => compareNames(a.name, b.name));
  }

  private sortDaemons(vids: number[]): number[] {
    return vids.sort((a, b) => this.rankOf(a) - this.rankOf(b) || (a >>> 0) - (b >>> 0));
  }

  private freshGid(): GroupId {
    const membId = this.trans?.membId ?? this.membId ?? { procId: this.options.myVid, time: 0 };
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
