/**
 * Extended Virtual Synchrony checker: reads every client session's delivery
 * log (./log.ts) and reports each way in which what the clients saw breaks
 * the guarantees Spread gives (spread-protocol.md §5.5, §7). It depends on
 * nothing but the log format, so it serves the deterministic simulator and
 * real daemons alike. docs/evs-checker.md explains each rule at length.
 *
 * Words used below. A *view* is a regular membership of one group. A client
 * is *in* view V of group g from the regular membership message that installs
 * V until its next regular membership of g, its self-leave of g, its
 * disconnection, or the end of its log. A view *instance* is identified by
 * (group, gid, member list); Spread reuses a gid after a group empties, so a
 * session that installs the same key twice (after leaving in between) starts
 * a new instance, and occurrences at different sessions are paired by
 * ordinal (or, failing that, by shared messages). A message is *in* V for a
 * client when the client delivers it, addressed to g, while in V. Two
 * clients *move together* from V to V' when both install V and then, as
 * their very next view of g, V'; for a V' caused by 'network' they must also
 * list each other in their vs sets. UNRELIABLE is best effort: it is exempt
 * from delivery guarantees but not from no-duplication/no-creation.
 *
 * Properties (the `property` of a Violation):
 *  - log-format: entries are well formed; nothing follows 'disconnected';
 *    sent message ids are unique over all sessions.
 *  - view-agreement: installers of the same (group, gid) see the same member
 *    list (see docs for the gid-reuse exception), the same cause, and the
 *    same vs set when they are in each other's vs set; a member list includes
 *    the receiver; a network vs set includes the receiver and lies within the
 *    member list.
 *  - view-sequence: per session and group: a join/leave/disconnect view keeps
 *    the previous view's (procId, time), adds 1 to its index and adds/removes
 *    exactly one member; a network view changes the gid; no gid is installed
 *    twice between a join and a leave; leave/disconnect views and self-leaves
 *    only reach members. Across sessions: regular views (of all groups) are
 *    installed in one order consistent at every session.
 *  - transitional-signal: a transitional signal only reaches a member, carries
 *    the gid of the receiver's current regular view, comes at most once per
 *    view, and is followed by a 'network' regular view. With
 *    `strictCleanupSenders`, messages delivered between the signal and the
 *    next regular view come from the receiver's vs set in that view.
 *  - virtual-synchrony: clients moving together from V to V' deliver the
 *    same set of messages in V (services ≥ `vsMinService`, default RELIABLE),
 *    a sender being excused from its own SELF_DISCARD messages; clients that
 *    report the same vs set in a network view, and had a previous view of
 *    the group, had the same previous view.
 *  - safe: a SAFE message delivered by a client in V before V's transitional
 *    signal is delivered in V by every installer of V whose log shows that it
 *    lived through V's end (it saw V's transitional signal, its next regular
 *    view of the group, or its self-leave), unless it was the
 *    self-discarding sender.
 *  - total-order: AGREED and SAFE messages, over all groups, are delivered in
 *    one order consistent with every client's delivery order.
 *  - fifo: at each receiver, the FIFO-or-stronger messages of one sender are
 *    delivered in the order that sender sent them (across groups).
 *  - causal: if m1 causally precedes m2 (a chain of "sent, or delivered,
 *    before sending" steps, through messages of any service) and both are
 *    CAUSAL or stronger, no client delivers m2 before m1 (same-sender pairs
 *    are left to fifo).
 *  - self-delivery: a session that sends a non-UNRELIABLE message without
 *    SELF_DISCARD while it is addressed (member of a destination group whose
 *    latest join/leave request is not a leave, or the message names its
 *    private group)
 *    delivers it unless it disconnects (with `truncated`, only if a later
 *    own message came back); a SELF_DISCARD message never comes back to its
 *    sender.
 *  - no-duplication: no session delivers a message id twice.
 *  - no-creation: every delivered id was sent, by the session whose private
 *    group is the reported sender, with the same service and group set.
 *  - delivery-to-members: a session delivers a message only if the message
 *    names its private group or it is in a view of a destination group.
 *  - quiescence (only with `expectQuiescent`): sessions connected at the end
 *    that are in group g end in the same view of g, deliver the same set of
 *    messages in it, and every message sent in that final view by one of them
 *    is delivered by all of them.
 */

import {
  type ClientLog,
  type DataEntry,
  type GroupId,
  type LogEntry,
  type MembershipCause,
  type RegularMembershipEntry,
  type SentEntry,
  type Service,
  SERVICES,
  formatGid,
  serviceAtLeast,
} from './log.js';
import { findOrderConflicts, type OrderSequence } from './order-graph.js';

export type EvsProperty =
  | 'log-format'
  | 'view-agreement'
  | 'view-sequence'
  | 'transitional-signal'
  | 'virtual-synchrony'
  | 'safe'
  | 'total-order'
  | 'fifo'
  | 'causal'
  | 'self-delivery'
  | 'no-duplication'
  | 'no-creation'
  | 'delivery-to-members'
  | 'quiescence';

export interface Violation {
  property: EvsProperty;
  /** Session names involved. */
  clients: string[];
  /** What happened, naming message ids and gids. */
  message: string;
  /** Message ids involved, when any. */
  ids?: string[];
  group?: string;
}

export interface CheckOptions {
  /**
   * The run ended healed and quiet: also check the 'quiescence' property.
   * Default false.
   */
  expectQuiescent?: boolean;
  /**
   * The logs may have been cut while messages were in flight: a sender only
   * has to deliver its own message m if it delivered a message it sent after m.
   * Default false.
   */
  truncated?: boolean;
  /** Weakest service covered by virtual synchrony and quiescence. Default 'RELIABLE'. */
  vsMinService?: Service;
  /** Clean-up messages must come from the receiver's vs set. Default false (see docs). */
  strictCleanupSenders?: boolean;
  /** Check that views of different groups are installed in one order. Default true. */
  crossGroupViewOrder?: boolean;
  /** Deliveries from private groups that no log belongs to are not 'no-creation'. Default false. */
  allowUnknownSenders?: boolean;
  /** Report at most this many violations per property (then one summary). Default 20. */
  maxViolationsPerProperty?: number;
}

/** Checks all logs of one run. Returns no violations when the run is correct. */
export function checkEvs(logs: readonly ClientLog[], options: CheckOptions = {}): Violation[] {
  return new EvsChecker(logs, options).run();
}

/** Throws an Error listing the violations, if any. */
export function assertEvs(logs: readonly ClientLog[], options: CheckOptions = {}): void {
  const violations = checkEvs(logs, options);
  if (violations.length > 0) throw new Error(`EVS violations:\n${formatViolations(violations)}`);
}

export function formatViolations(violations: readonly Violation[]): string {
  return violations.map((violation) => `[${violation.property}] ${violation.message}`).join('\n');
}

// ---------------------------------------------------------------------------

type ViewEnd = 'next' | 'self-leave' | 'disconnected' | 'eol';

interface Session {
  index: number;
  name: string;
  privateGroup: string;
  daemon: string;
  entries: readonly LogEntry[];
  disconnected: boolean;
  sends: SendInfo[];
  deliveries: Delivery[];
  /** Sends and (first) deliveries in log order, for causality. */
  events: (SendInfo | Delivery)[];
  views: ViewOccurrence[];
  deliveredIds: Map<string, Delivery>;
}

interface SendInfo {
  kind: 'send';
  id: string;
  session: Session;
  /** 0-based send number within the session. */
  seq: number;
  service: Service;
  groups: string[];
  selfDiscard: boolean;
  /** Whether the sender was addressed by its own message when it sent it. */
  addressedAtSend: boolean;
  /** The sender's views of destination groups when it sent the message. */
  viewAtSend: Map<string, ViewOccurrence>;
}

interface Delivery {
  kind: 'delivery';
  id: string;
  sender: string;
  service: Service;
  groups: string[];
  session: Session;
  /** Position among the session's (non-duplicate) deliveries. */
  position: number;
  sent?: SendInfo;
}

interface ViewOccurrence {
  session: Session;
  group: string;
  gid: GroupId;
  gidKey: string;
  members: string[];
  cause: MembershipCause;
  vsSet?: string[];
  delivered: Delivery[];
  /** delivered.length when the transitional signal came, or -1. */
  transitionalAt: number;
  next?: ViewOccurrence;
  /** The session's previous view of the group, without a leave in between. */
  previous?: ViewOccurrence;
  end: ViewEnd;
  instance: number;
  deliveredSet?: Set<string>;
}

interface GroupState {
  view?: ViewOccurrence;
  /** The session's latest join/leave request for the group was a leave. */
  leaveRequested: boolean;
  /** The log records join requests for the group (then request order alone decides). */
  joinsRecorded: boolean;
  /** gids installed since the session joined, to catch double installs. */
  installed: Set<string>;
}

const DEFAULT_MAX_PER_PROPERTY = 20;
const IDS_LISTED_MAX = 10;

class EvsChecker {
  private readonly violations: Violation[] = [];
  private readonly reportedPerProperty = new Map<EvsProperty, number>();
  private readonly sessions: Session[] = [];
  private readonly sentById = new Map<string, SendInfo>();
  private readonly privateGroups = new Set<string>();
  private readonly instances: ViewOccurrence[][] = [];
  private readonly maxPerProperty: number;
  private readonly vsMinService: Service;

  constructor(
    logs: readonly ClientLog[],
    private readonly options: CheckOptions,
  ) {
    this.maxPerProperty = options.maxViolationsPerProperty ?? DEFAULT_MAX_PER_PROPERTY;
    this.vsMinService = options.vsMinService ?? 'RELIABLE';
    const names = new Set<string>();
    logs.forEach((log, index) => {
      let name = typeof log.session === 'string' ? log.session : `session-${index}`;
      if (names.has(name)) {
        this.report('log-format', [name], `two logs are named session "${name}"; the second is checked as "${name}@${index}"`);
        name = `${name}@${index}`;
      }
      names.add(name);
      this.privateGroups.add(log.privateGroup);
      this.sessions.push({
        index,
        name,
        privateGroup: log.privateGroup,
        daemon: log.daemon,
        entries: Array.isArray(log.entries) ? log.entries : [],
        disconnected: false,
        sends: [],
        deliveries: [],
        events: [],
        views: [],
        deliveredIds: new Map(),
      });
    });
  }

  run(): Violation[] {
    for (const session of this.sessions) this.walk(session);
    this.linkDeliveries();
    this.assignInstances();
    this.checkViewAgreement();
    this.checkViewOrder();
    this.checkVirtualSynchrony();
    this.checkSafe();
    this.checkTotalOrder();
    this.checkFifo();
    this.checkCausal();
    this.checkSelfDelivery();
    if (this.options.expectQuiescent === true) this.checkQuiescence();
    this.summarizeSuppressed();
    return this.violations;
  }

  // -- reporting ------------------------------------------------------------

  private report(property: EvsProperty, clients: string[], message: string, ids?: string[], group?: string): void {
    const count = (this.reportedPerProperty.get(property) ?? 0) + 1;
    this.reportedPerProperty.set(property, count);
    if (count > this.maxPerProperty) return;
    const violation: Violation = { property, clients: [...new Set(clients)], message };
    if (ids !== undefined) violation.ids = ids;
    if (group !== undefined) violation.group = group;
    this.violations.push(violation);
  }

  private summarizeSuppressed(): void {
    for (const [property, count] of this.reportedPerProperty) {
      if (count > this.maxPerProperty) {
        this.violations.push({
          property,
          clients: [],
          message: `${count - this.maxPerProperty} more '${property}' violations not listed`,
        });
      }
    }
  }

  // -- pass 1: one session's log ------------------------------------------------

  private walk(session: Session): void {
    const groups = new Map<string, GroupState>();
    const stateOf = (group: string): GroupState => {
      let state = groups.get(group);
      if (state === undefined) {
        state = { leaveRequested: false, joinsRecorded: false, installed: new Set() };
        groups.set(group, state);
      }
      return state;
    };
    const who = session.name;
    session.entries.forEach((entry, position) => {
      const where = `${who} entry ${position}`;
      if (session.disconnected) {
        this.report('log-format', [who], `${where} (${describeEntryType(entry)}) follows 'disconnected'`);
        return;
      }
      const problem = validateEntry(entry);
      if (problem !== undefined) {
        this.report('log-format', [who], `${where}: ${problem}`);
        return;
      }
      switch (entry.type) {
        case 'sent':
          this.walkSent(session, entry, groups);
          break;
        case 'data':
          this.walkData(session, entry, groups, where);
          break;
        case 'membership':
          if (entry.kind === 'regular') {
            this.walkRegular(session, entry, stateOf(entry.group), where);
          } else if (entry.kind === 'transitional') {
            const state = stateOf(entry.group);
            const view = state.view;
            if (view === undefined) {
              this.report('transitional-signal', [who], `${where}: transitional signal for ${entry.group} (gid ${formatGid(entry.gid)}) while not a member of ${entry.group}`, undefined, entry.group);
            } else if (view.transitionalAt >= 0) {
              this.report('transitional-signal', [who], `${where}: second transitional signal for ${entry.group} in view ${view.gidKey}`, undefined, entry.group);
            } else {
              if (!sameGid(entry.gid, view.gid)) {
                this.report('transitional-signal', [who], `${where}: transitional signal for ${entry.group} carries gid ${formatGid(entry.gid)}, but the current regular view is ${view.gidKey}`, undefined, entry.group);
              }
              view.transitionalAt = view.delivered.length;
            }
          } else {
            const state = stateOf(entry.group);
            if (state.view === undefined) {
              this.report('view-sequence', [who], `${where}: self-leave of ${entry.group} while not a member`, undefined, entry.group);
            } else {
              state.view.end = 'self-leave';
              state.view = undefined;
            }
            if (!state.joinsRecorded) state.leaveRequested = false;
            state.installed.clear();
          }
          break;
        case 'join': {
          // Requests are ordered FIFO: a leave asked for after this join takes effect
          // after it, even if the join view arrives only later.
          const state = stateOf(entry.group);
          state.joinsRecorded = true;
          state.leaveRequested = false;
          break;
        }
        case 'leave':
          stateOf(entry.group).leaveRequested = true;
          break;
        case 'disconnected':
          session.disconnected = true;
          for (const state of groups.values()) {
            if (state.view !== undefined) state.view.end = 'disconnected';
          }
          break;
      }
    });
  }

  private walkSent(session: Session, entry: SentEntry, groups: Map<string, GroupState>): void {
    const viewAtSend = new Map<string, ViewOccurrence>();
    let addressedAtSend = false;
    for (const group of entry.groups) {
      if (group === session.privateGroup) addressedAtSend = true;
      const state = groups.get(group);
      if (state?.view !== undefined) {
        viewAtSend.set(group, state.view);
        if (!state.leaveRequested) addressedAtSend = true;
      }
    }
    const send: SendInfo = {
      kind: 'send',
      id: entry.id,
      session,
      seq: session.sends.length,
      service: entry.service,
      groups: entry.groups,
      selfDiscard: entry.selfDiscard,
      addressedAtSend,
      viewAtSend,
    };
    const earlier = this.sentById.get(entry.id);
    if (earlier !== undefined) {
      this.report('log-format', [session.name, earlier.session.name], `message id ${entry.id} is sent twice (by ${earlier.session.name} and ${session.name}); ids must be unique per run`, [entry.id]);
      return;
    }
    this.sentById.set(entry.id, send);
    session.sends.push(send);
    session.events.push(send);
  }

  private walkData(session: Session, entry: DataEntry, groups: Map<string, GroupState>, where: string): void {
    const who = session.name;
    if (session.deliveredIds.has(entry.id)) {
      this.report('no-duplication', [who], `${where}: ${who} delivers ${entry.id} (from ${entry.sender}) a second time`, [entry.id]);
      return;
    }
    const delivery: Delivery = {
      kind: 'delivery',
      id: entry.id,
      sender: entry.sender,
      service: entry.service,
      groups: entry.groups,
      session,
      position: session.deliveries.length,
    };
    session.deliveredIds.set(entry.id, delivery);
    session.deliveries.push(delivery);
    session.events.push(delivery);
    let addressed = entry.groups.includes(session.privateGroup);
    for (const group of entry.groups) {
      const view = groups.get(group)?.view;
      if (view === undefined) continue;
      addressed = true;
      view.delivered.push(delivery);
    }
    if (!addressed) {
      const current = [...groups.entries()].filter(([, state]) => state.view !== undefined).map(([group]) => group);
      this.report('delivery-to-members', [who], `${where}: ${who} delivers ${entry.id} from ${entry.sender} addressed to [${entry.groups.join(', ')}] but is a member of none of them (member of [${current.join(', ')}]) and is not its private group ${session.privateGroup}`, [entry.id]);
    }
  }

  private walkRegular(session: Session, entry: RegularMembershipEntry, state: GroupState, where: string): void {
    const who = session.name;
    const group = entry.group;
    const gidKey = formatGid(entry.gid);
    const view: ViewOccurrence = {
      session,
      group,
      gid: entry.gid,
      gidKey,
      members: entry.members,
      cause: entry.cause,
      delivered: [],
      transitionalAt: -1,
      end: 'eol',
      instance: -1,
    };
    if (entry.vsSet !== undefined) view.vsSet = entry.vsSet;
    if (!entry.members.includes(session.privateGroup)) {
      this.report('view-agreement', [who], `${where}: view ${group}@${gidKey} [${entry.members.join(', ')}] does not list its receiver ${session.privateGroup}`, undefined, group);
    }
    if (entry.cause === 'network' && entry.vsSet !== undefined) {
      if (!entry.vsSet.includes(session.privateGroup)) {
        this.report('view-agreement', [who], `${where}: vs set [${entry.vsSet.join(', ')}] of ${group}@${gidKey} does not hold its receiver ${session.privateGroup}`, undefined, group);
      }
      const outside = entry.vsSet.filter((member) => !entry.members.includes(member));
      if (outside.length > 0) {
        this.report('view-agreement', [who], `${where}: vs set of ${group}@${gidKey} holds non-members [${outside.join(', ')}]`, undefined, group);
      }
    }
    const previous = state.view;
    if (state.installed.has(gidKey)) {
      this.report('view-sequence', [who], `${where}: ${who} installs ${group}@${gidKey} a second time without leaving ${group} in between`, undefined, group);
    }
    state.installed.add(gidKey);
    if (previous === undefined) {
      // Without recorded joins, a leave asked for while not a member was a no-op.
      if (!state.joinsRecorded) state.leaveRequested = false;
      if (entry.cause === 'leave' || entry.cause === 'disconnect') {
        this.report('view-sequence', [who], `${where}: ${who} gets a ${entry.cause} view ${group}@${gidKey} without being a member of ${group} before`, undefined, group);
      }
    } else {
      this.checkSuccession(who, where, previous, view);
      if (previous.transitionalAt >= 0 && entry.cause !== 'network') {
        this.report('transitional-signal', [who], `${where}: after the transitional signal of ${group}@${previous.gidKey}, the next view ${group}@${gidKey} is caused by ${entry.cause}, not network`, undefined, group);
      }
      if (this.options.strictCleanupSenders === true && previous.transitionalAt >= 0 && entry.cause === 'network' && entry.vsSet !== undefined) {
        const vsSet = new Set(entry.vsSet);
        const foreign = previous.delivered.slice(previous.transitionalAt).filter((delivery) => !vsSet.has(delivery.sender));
        if (foreign.length > 0) {
          this.report('transitional-signal', [who], `${where}: clean-up messages delivered by ${who} after the transitional signal of ${group}@${previous.gidKey} come from outside its vs set [${entry.vsSet.join(', ')}]: ${listIds(foreign.map((d) => `${d.id} (from ${d.sender})`))}`, foreign.map((d) => d.id), group);
        }
      }
      previous.end = 'next';
      previous.next = view;
      view.previous = previous;
    }
    state.view = view;
    session.views.push(view);
  }

  /** Rules for two consecutive regular views of one group at one session. */
  private checkSuccession(who: string, where: string, previous: ViewOccurrence, view: ViewOccurrence): void {
    const group = view.group;
    const label = `${group}@${previous.gidKey} -> ${group}@${view.gidKey}`;
    if (view.cause === 'network') {
      if (sameGid(previous.gid, view.gid)) {
        this.report('view-sequence', [who], `${where}: network view ${label} keeps the previous gid`, undefined, group);
      }
      return;
    }
    if (previous.gid.procId !== view.gid.procId || previous.gid.time !== view.gid.time || view.gid.index !== previous.gid.index + 1) {
      this.report('view-sequence', [who], `${where}: ${view.cause} view ${label} must keep the membership id and add 1 to the index`, undefined, group);
    }
    const before = new Set(previous.members);
    const after = new Set(view.members);
    const added = view.members.filter((member) => !before.has(member));
    const removed = previous.members.filter((member) => !after.has(member));
    const ok = view.cause === 'join' ? added.length === 1 && removed.length === 0 : added.length === 0 && removed.length === 1;
    if (!ok) {
      this.report('view-sequence', [who], `${where}: ${view.cause} view ${label} adds [${added.join(', ')}] and removes [${removed.join(', ')}]; a ${view.cause} changes exactly one member`, undefined, group);
    }
  }

  // -- pass 2: cross-session indexes ------------------------------------------

  private linkDeliveries(): void {
    for (const session of this.sessions) {
      for (const delivery of session.deliveries) {
        const sent = this.sentById.get(delivery.id);
        const who = session.name;
        if (sent === undefined) {
          if (this.options.allowUnknownSenders === true && !this.privateGroups.has(delivery.sender)) continue;
          this.report('no-creation', [who], `${who} delivers ${delivery.id} from ${delivery.sender}, which no session sent`, [delivery.id]);
          continue;
        }
        delivery.sent = sent;
        const sender = sent.session;
        const problems: string[] = [];
        if (sender.privateGroup !== delivery.sender) problems.push(`sender ${delivery.sender} instead of ${sender.privateGroup}`);
        if (sent.service !== delivery.service) problems.push(`service ${delivery.service} instead of ${sent.service}`);
        if (!sameSet(sent.groups, delivery.groups)) problems.push(`groups [${delivery.groups.join(', ')}] instead of [${sent.groups.join(', ')}]`);
        if (problems.length > 0) {
          this.report('no-creation', [who, sender.name], `${who} delivers ${delivery.id} with ${problems.join(', ')} (as sent by ${sender.name})`, [delivery.id]);
        }
        if (sender === session && sent.selfDiscard) {
          this.report('self-delivery', [who], `${who} delivers its own ${delivery.id}, sent with SELF_DISCARD`, [delivery.id]);
        }
      }
    }
  }

  /**
   * Groups occurrences into view instances: same (group, gid, members). When
   * a private group holds the key more than once (gid reuse after the group
   * emptied, seen by one session or by a reconnected one), occurrences are
   * paired by ordinal if every private group holds it equally often, otherwise
   * by shared delivered messages.
   */
  private assignInstances(): void {
    const byKey = new Map<string, ViewOccurrence[]>();
    for (const session of this.sessions) {
      for (const view of session.views) {
        const key = instanceKey(view);
        let list = byKey.get(key);
        if (list === undefined) byKey.set(key, (list = []));
        list.push(view);
      }
    }
    for (const occurrences of byKey.values()) {
      // Keyed by private group, not session: a reconnected client (a new session with
      // the same name) cannot be in the incarnation its old session was in, so its
      // occurrences count as further ones of that name.
      const perSession = new Map<string, ViewOccurrence[]>();
      for (const view of occurrences) {
        let list = perSession.get(view.session.privateGroup);
        if (list === undefined) perSession.set(view.session.privateGroup, (list = []));
        list.push(view);
      }
      const counts = new Set([...perSession.values()].map((list) => list.length));
      if (counts.size === 1) {
        const count = [...counts][0];
        const paired = Array.from({ length: count }, (_, ordinal) => [...perSession.values()].map((list) => list[ordinal]));
        if (paired.every((members) => !mixesIncarnations(members))) {
          for (const members of paired) {
            const instance = this.instances.length;
            for (const view of members) view.instance = instance;
            this.instances.push(members);
          }
          continue;
        }
      }
      // Ambiguous: union occurrences that share a delivered message.
      const parent = occurrences.map((_, index) => index);
      const find = (index: number): number => {
        while (parent[index] !== index) {
          parent[index] = parent[parent[index]];
          index = parent[index];
        }
        return index;
      };
      const firstHolder = new Map<string, number>();
      occurrences.forEach((view, index) => {
        for (const delivery of view.delivered) {
          const other = firstHolder.get(delivery.id);
          if (other === undefined) firstHolder.set(delivery.id, index);
          else parent[find(index)] = find(other);
        }
      });
      const instanceOfRoot = new Map<number, number>();
      occurrences.forEach((view, index) => {
        const root = find(index);
        let instance = instanceOfRoot.get(root);
        if (instance === undefined) {
          instance = this.instances.length;
          instanceOfRoot.set(root, instance);
          this.instances.push([]);
        }
        view.instance = instance;
        this.instances[instance].push(view);
      });
    }
  }

  // -- views ------------------------------------------------------------------

  private checkViewAgreement(): void {
    // Same (group, gid), different member lists.
    const byGid = new Map<string, Map<string, ViewOccurrence[]>>();
    for (const session of this.sessions) {
      for (const view of session.views) {
        const gidKey = `${view.group}\u0000${view.gidKey}`;
        let lists = byGid.get(gidKey);
        if (lists === undefined) byGid.set(gidKey, (lists = new Map()));
        const membersKey = view.members.join('\u0000');
        let list = lists.get(membersKey);
        if (list === undefined) lists.set(membersKey, (list = []));
        list.push(view);
      }
    }
    for (const lists of byGid.values()) {
      if (lists.size < 2) continue;
      const variants = [...lists.values()];
      this.reportMemberDisagreement(variants);
    }
    // Within one instance: same cause, consistent vs sets.
    for (const occurrences of this.instances) {
      const first = occurrences[0];
      const label = `${first.group}@${first.gidKey}`;
      const byName = new Map<string, ViewOccurrence>();
      for (const view of occurrences) {
        byName.set(view.session.privateGroup, view);
        if (view.cause !== first.cause) {
          this.report('view-agreement', [first.session.name, view.session.name], `${label} is caused by ${first.cause} at ${first.session.name} but by ${view.cause} at ${view.session.name}`, undefined, first.group);
        }
      }
      if (first.cause !== 'network') continue;
      for (const view of occurrences) {
        if (view.vsSet === undefined) continue;
        for (const name of view.vsSet) {
          const other = byName.get(name);
          if (other === undefined || other === view || other.vsSet === undefined) continue;
          if (other.session.index < view.session.index && other.vsSet.includes(view.session.privateGroup)) continue;
          if (!sameSet(view.vsSet, other.vsSet)) {
            this.report('view-agreement', [view.session.name, other.session.name], `in ${label}, ${view.session.name} has vs set [${view.vsSet.join(', ')}] holding ${name}, but ${other.session.name} has vs set [${other.vsSet.join(', ')}]`, undefined, first.group);
          }
        }
      }
    }
  }

  /**
   * Spread reuses a gid after a group empties, so two member lists for one
   * gid are only an error when they overlap in time. A pair of sessions A
   * (list L1) and B (list L2) proves that when each is named in the other's
   * list and neither installed the other's list (had they lived through both
   * incarnations, they would have installed both).
   */
  private sessionCounts: Map<string, number> | undefined;

  /** Sessions of `privateGroup` in the run. */
  private sessionsOf(privateGroup: string): number {
    if (this.sessionCounts === undefined) {
      this.sessionCounts = new Map();
      for (const session of this.sessions) this.sessionCounts.set(session.privateGroup, (this.sessionCounts.get(session.privateGroup) ?? 0) + 1);
    }
    return this.sessionCounts.get(privateGroup) ?? 0;
  }

  private reportMemberDisagreement(variants: ViewOccurrence[][]): void {
    const installedLists = new Map<Session, Set<number>>();
    variants.forEach((list, variant) => {
      for (const view of list) {
        let set = installedLists.get(view.session);
        if (set === undefined) installedLists.set(view.session, (set = new Set()));
        set.add(variant);
      }
    });
    // A name in a list stands for the witness only if the witness is the only session
    // of that private group in the run: otherwise the name may be another session's (a
    // reconnected client, possibly one that recorded nothing of the group), in another
    // incarnation of the group.
    const namedIn = (view: ViewOccurrence, list: readonly string[], variant: number): boolean =>
      list.includes(view.session.privateGroup) &&
      !installedLists.get(view.session)?.has(variant) &&
      this.sessionsOf(view.session.privateGroup) === 1;
    for (let i = 0; i < variants.length; i++) {
      for (let j = i + 1; j < variants.length; j++) {
        const listI = variants[i][0].members;
        const listJ = variants[j][0].members;
        const witnessI = variants[i].find((view) => namedIn(view, listJ, j));
        const witnessJ = variants[j].find((view) => namedIn(view, listI, i));
        if (witnessI === undefined || witnessJ === undefined) continue;
        const label = `${witnessI.group}@${witnessI.gidKey}`;
        this.report('view-agreement', [witnessI.session.name, witnessJ.session.name], `${witnessI.session.name} installs ${label} with members [${listI.join(', ')}] but ${witnessJ.session.name} installs it with [${listJ.join(', ')}]`, undefined, witnessI.group);
      }
    }
  }

  /** Regular views, of one group or all groups, in one order at every session. */
  private checkViewOrder(): void {
    const crossGroup = this.options.crossGroupViewOrder !== false;
    const sequences: OrderSequence[] = [];
    for (const session of this.sessions) {
      if (crossGroup) {
        sequences.push({ client: session.name, items: session.views.map((view) => view.instance) });
      } else {
        const perGroup = new Map<string, number[]>();
        for (const view of session.views) {
          let items = perGroup.get(view.group);
          if (items === undefined) perGroup.set(view.group, (items = []));
          items.push(view.instance);
        }
        for (const items of perGroup.values()) sequences.push({ client: session.name, items });
      }
    }
    const label = (instance: number): string => {
      const view = this.instances[instance][0];
      return `${view.group}@${view.gidKey}`;
    };
    for (const conflict of findOrderConflicts(sequences, this.instances.length)) {
      if (conflict.kind === 'inversion') {
        this.report('view-sequence', [conflict.firstClient, conflict.secondClient], `${conflict.firstClient} installs ${label(conflict.a)} before ${label(conflict.b)}, but ${conflict.secondClient} installs them in the opposite order`);
      } else {
        this.report('view-sequence', conflict.clients, `views installed in a cyclic order across sessions: ${conflict.items.map(label).join(', ')}`);
      }
    }
  }

  // -- virtual synchrony and SAFE ------------------------------------------------

  private checkVirtualSynchrony(): void {
    const byTransition = new Map<string, ViewOccurrence[]>();
    for (const session of this.sessions) {
      for (const view of session.views) {
        if (view.next === undefined) continue;
        const next = view.next;
        let classKey: string;
        if (next.cause === 'network') {
          if (next.vsSet === undefined) continue; // cannot tell who moved together
          classKey = [...next.vsSet].sort().join('\u0000');
        } else {
          classKey = '';
        }
        const key = `${view.instance}>${next.instance}>${classKey}`;
        let list = byTransition.get(key);
        if (list === undefined) byTransition.set(key, (list = []));
        list.push(view);
      }
    }
    this.checkTransitionalSets();
    for (const together of byTransition.values()) {
      if (together.length < 2) continue;
      const first = together[0];
      const next = first.next as ViewOccurrence;
      const label = `${first.group}@${first.gidKey} -> ${next.gidKey}`;
      const missing = this.compareDeliveredSets(together, (view) => view.delivered);
      for (const { view, ids, holder } of missing) {
        this.report('virtual-synchrony', [view.session.name, holder.session.name], `${view.session.name} and ${holder.session.name} move together through ${label}, but ${view.session.name} does not deliver in ${first.group}@${first.gidKey} ${listIds(ids)} that ${holder.session.name} delivers there`, ids, first.group);
      }
    }
  }

  /**
   * Members of one vs set of a network view came through the change
   * together, so those that had a previous view of the group had the same one.
   */
  private checkTransitionalSets(): void {
    for (const occurrences of this.instances) {
      const first = occurrences[0];
      if (first.cause !== 'network') continue;
      const previousBySet = new Map<string, ViewOccurrence>();
      for (const view of occurrences) {
        if (view.vsSet === undefined) continue;
        const previous = view.previous;
        if (previous === undefined) continue;
        const setKey = [...view.vsSet].sort().join('\u0000');
        const other = previousBySet.get(setKey);
        if (other === undefined) {
          previousBySet.set(setKey, previous);
        } else if (other.instance !== previous.instance && instanceKey(other) !== instanceKey(previous)) {
          // (Equal keys in different instances: gid and member list reused, the pairing
          // of occurrences may be wrong; not a proof.)
          this.report('virtual-synchrony', [other.session.name, view.session.name], `${other.session.name} and ${view.session.name} share the vs set [${view.vsSet.join(', ')}] of ${first.group}@${first.gidKey}, but came from different views (${other.group}@${other.gidKey} and ${previous.group}@${previous.gidKey})`, undefined, first.group);
        }
      }
    }
  }

  /**
   * For occurrences that must agree on their delivered sets, returns, per
   * occurrence, the ids that some other occurrence delivered and it did not
   * (a sender missing its own SELF_DISCARD message is excused).
   */
  private compareDeliveredSets(
    views: readonly ViewOccurrence[],
    deliveredOf: (view: ViewOccurrence) => readonly Delivery[],
  ): { view: ViewOccurrence; ids: string[]; holder: ViewOccurrence }[] {
    const holderOf = new Map<string, ViewOccurrence>();
    const sets = new Map<ViewOccurrence, Set<string>>();
    for (const view of views) {
      const set = new Set<string>();
      for (const delivery of deliveredOf(view)) {
        if (!serviceAtLeast(delivery.service, this.vsMinService)) continue;
        set.add(delivery.id);
        if (!holderOf.has(delivery.id)) holderOf.set(delivery.id, view);
      }
      sets.set(view, set);
    }
    const result: { view: ViewOccurrence; ids: string[]; holder: ViewOccurrence }[] = [];
    for (const view of views) {
      const set = sets.get(view) as Set<string>;
      if (set.size === holderOf.size) continue;
      const ids: string[] = [];
      for (const id of holderOf.keys()) {
        if (set.has(id) || this.excused(id, view.session)) continue;
        ids.push(id);
      }
      if (ids.length > 0) result.push({ view, ids, holder: holderOf.get(ids[0]) as ViewOccurrence });
    }
    return result;
  }

  /** A session need not deliver its own SELF_DISCARD message. */
  private excused(id: string, session: Session): boolean {
    const sent = this.sentById.get(id);
    return sent !== undefined && sent.session === session && sent.selfDiscard;
  }

  private checkSafe(): void {
    for (const occurrences of this.instances) {
      const early = new Map<string, ViewOccurrence>();
      for (const view of occurrences) {
        const limit = view.transitionalAt >= 0 ? view.transitionalAt : view.delivered.length;
        for (let index = 0; index < limit; index++) {
          const delivery = view.delivered[index];
          if (delivery.service === 'SAFE' && !early.has(delivery.id)) early.set(delivery.id, view);
        }
      }
      if (early.size === 0) continue;
      for (const view of occurrences) {
        const livedThrough = view.end === 'next' || view.end === 'self-leave' || view.transitionalAt >= 0;
        if (!livedThrough) continue;
        const delivered = deliveredSetOf(view);
        const missing: string[] = [];
        let holder: ViewOccurrence | undefined;
        for (const [id, by] of early) {
          if (delivered.has(id) || this.excused(id, view.session)) continue;
          missing.push(id);
          holder ??= by;
        }
        if (missing.length === 0 || holder === undefined) continue;
        const how = view.transitionalAt >= 0 ? 'receives its transitional signal' : view.end === 'next' ? 'installs its next view' : 'leaves';
        this.report('safe', [view.session.name, holder.session.name], `${holder.session.name} delivers SAFE ${listIds(missing)} in ${view.group}@${view.gidKey} before that view's transitional signal, but ${view.session.name}, a member of that view that ${how}, never delivers it in that view`, missing, view.group);
      }
    }
  }

  // -- ordering ---------------------------------------------------------------

  private checkTotalOrder(): void {
    const number = new Map<string, number>();
    const ids: string[] = [];
    const sequences: OrderSequence[] = [];
    for (const session of this.sessions) {
      const items: number[] = [];
      for (const delivery of session.deliveries) {
        if (delivery.service !== 'AGREED' && delivery.service !== 'SAFE') continue;
        let item = number.get(delivery.id);
        if (item === undefined) {
          item = ids.length;
          number.set(delivery.id, item);
          ids.push(delivery.id);
        }
        items.push(item);
      }
      sequences.push({ client: session.name, items });
    }
    for (const conflict of findOrderConflicts(sequences, ids.length)) {
      if (conflict.kind === 'inversion') {
        const a = ids[conflict.a];
        const b = ids[conflict.b];
        this.report('total-order', [conflict.firstClient, conflict.secondClient], `${conflict.firstClient} delivers ${a} before ${b}, but ${conflict.secondClient} delivers ${b} before ${a}`, [a, b]);
      } else {
        const cycle = conflict.items.map((item) => ids[item]);
        this.report('total-order', conflict.clients, `AGREED/SAFE deliveries admit no common order: the orders of ${conflict.clients.join(', ')} form a cycle through ${cycle.join(', ')}`, cycle);
      }
    }
  }

  private checkFifo(): void {
    for (const session of this.sessions) {
      const last = new Map<Session, SendInfo>();
      for (const delivery of session.deliveries) {
        const sent = delivery.sent;
        if (sent === undefined || !serviceAtLeast(sent.service, 'FIFO')) continue;
        const previous = last.get(sent.session);
        if (previous !== undefined && sent.seq < previous.seq) {
          this.report('fifo', [session.name, sent.session.name], `${session.name} delivers ${sent.id} after ${previous.id}, but ${sent.session.name} sent ${sent.id} first`, [sent.id, previous.id]);
          continue;
        }
        last.set(sent.session, sent);
      }
    }
  }

  /**
   * Vector clocks over sessions: clock[k] = number of session k's sends in a
   * message's causal past. A delivery waits until its send was processed, so
   * sessions are replayed in an order consistent with causality; a log that
   * admits no such order (a delivery that causally precedes its own send) is
   * reported and its blocking delivery skipped.
   */
  private checkCausal(): void {
    const width = this.sessions.length;
    const past = new Map<SendInfo, Int32Array>();
    const cursors = new Int32Array(width);
    const clocks = this.sessions.map(() => new Int32Array(width));
    let remaining = this.sessions.reduce((sum, session) => sum + session.events.length, 0);
    while (remaining > 0) {
      let progressed = false;
      for (const session of this.sessions) {
        const clock = clocks[session.index];
        const events = session.events;
        while (cursors[session.index] < events.length) {
          const event = events[cursors[session.index]];
          if (event.kind === 'send') {
            past.set(event, clock.slice());
            clock[session.index] = Math.max(clock[session.index], event.seq + 1);
          } else if (event.sent !== undefined) {
            const sentPast = past.get(event.sent);
            if (sentPast === undefined) break; // its send is not replayed yet
            mergeClock(clock, sentPast);
            const senderIndex = event.sent.session.index;
            clock[senderIndex] = Math.max(clock[senderIndex], event.sent.seq + 1);
          }
          cursors[session.index]++;
          remaining--;
          progressed = true;
        }
      }
      if (progressed || remaining === 0) continue;
      // Every unfinished session waits for a send that waits on it.
      const session = this.sessions.find((candidate) => cursors[candidate.index] < candidate.events.length) as Session;
      const event = session.events[cursors[session.index]] as Delivery;
      const sender = (event.sent as SendInfo).session;
      this.report('causal', [session.name, sender.name], `${session.name} delivers ${event.id} before ${sender.name} could have sent it: the logs form a causal cycle (each session delivers a message whose send follows, in its sender's log, a delivery that is still waiting)`, [event.id]);
      cursors[session.index]++;
      remaining--;
    }
    for (const session of this.sessions) {
      const union = new Int32Array(width);
      const witness: (SendInfo | undefined)[] = new Array<SendInfo | undefined>(width);
      for (const delivery of session.deliveries) {
        const sent = delivery.sent;
        if (sent === undefined || !serviceAtLeast(sent.service, 'CAUSAL')) continue;
        const senderIndex = sent.session.index;
        const earlier = witness[senderIndex];
        if (union[senderIndex] > sent.seq && earlier !== undefined && earlier.session !== sent.session) {
          this.report('causal', [session.name, sent.session.name, earlier.session.name], `${session.name} delivers ${earlier.id} before ${sent.id}, but ${sent.id} causally precedes ${earlier.id} (${earlier.session.name} had ${sent.id} in its past when it sent ${earlier.id})`, [earlier.id, sent.id]);
        }
        const sentPast = past.get(sent);
        if (sentPast === undefined) continue;
        for (let k = 0; k < width; k++) {
          if (sentPast[k] > union[k]) {
            union[k] = sentPast[k];
            witness[k] = sent;
          }
        }
      }
    }
  }

  // -- self-delivery and quiescence -------------------------------------------------

  private checkSelfDelivery(): void {
    for (const session of this.sessions) {
      if (session.disconnected) continue;
      // For truncated logs: the latest own send that came back, by send number.
      let lastReturned = -1;
      if (this.options.truncated === true) {
        for (const send of session.sends) {
          if (session.deliveredIds.has(send.id)) lastReturned = Math.max(lastReturned, send.seq);
        }
      }
      for (const send of session.sends) {
        if (send.selfDiscard || !send.addressedAtSend || send.service === 'UNRELIABLE') continue;
        if (session.deliveredIds.has(send.id)) continue;
        if (this.options.truncated === true && send.seq > lastReturned) continue;
        this.report('self-delivery', [session.name], `${session.name} sends ${send.id} (${send.service} to [${send.groups.join(', ')}]) while addressed by it and stays connected, but never delivers it`, [send.id]);
      }
    }
  }

  private checkQuiescence(): void {
    const finals = new Map<string, ViewOccurrence[]>();
    for (const session of this.sessions) {
      if (session.disconnected) continue;
      for (const view of session.views) {
        if (view.end !== 'eol') continue;
        let list = finals.get(view.group);
        if (list === undefined) finals.set(view.group, (list = []));
        list.push(view);
      }
    }
    for (const [group, views] of finals) {
      const instances = new Map<number, ViewOccurrence>();
      for (const view of views) if (!instances.has(view.instance)) instances.set(view.instance, view);
      if (instances.size > 1) {
        const described = [...instances.values()].map((view) => `${view.session.name} in ${group}@${view.gidKey} [${view.members.join(', ')}]`);
        this.report('quiescence', [...instances.values()].map((view) => view.session.name), `connected members of ${group} end in different views: ${described.join('; ')}`, undefined, group);
        continue;
      }
      for (const { view, ids, holder } of this.compareDeliveredSets(views, (occurrence) => occurrence.delivered)) {
        this.report('quiescence', [view.session.name, holder.session.name], `in the final view ${group}@${view.gidKey}, ${view.session.name} does not deliver ${listIds(ids)} that ${holder.session.name} delivers`, ids, group);
      }
      const finalViews = new Set(views);
      for (const sender of views) {
        for (const send of sender.session.sends) {
          const sentIn = send.viewAtSend.get(group);
          if (sentIn === undefined || !finalViews.has(sentIn) || !serviceAtLeast(send.service, this.vsMinService)) continue;
          for (const view of views) {
            if (view.session === sender.session && send.selfDiscard) continue;
            if (deliveredSetOf(view).has(send.id)) continue;
            this.report('quiescence', [view.session.name, sender.session.name], `${sender.session.name} sends ${send.id} to ${group} in the final view ${group}@${view.gidKey}, but ${view.session.name}, connected in that view until the end, never delivers it there`, [send.id], group);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------

function deliveredSetOf(view: ViewOccurrence): Set<string> {
  view.deliveredSet ??= new Set(view.delivered.map((delivery) => delivery.id));
  return view.deliveredSet;
}

function mergeClock(into: Int32Array, from: Int32Array): void {
  for (let k = 0; k < into.length; k++) if (from[k] > into[k]) into[k] = from[k];
}

/**
 * True when occurrences paired as one view instance cannot be one: an occurrence
 * delivered, in that view, a message sent by one session of a private group while
 * another session of that group is an installer. The installer is the group's member
 * in the view, and another session of the same name lived wholly before or after it:
 * its messages are ordered before its kill, hence before the next session's join, and
 * a kill ends every view its session was in. (Pairing by ordinal goes wrong this way
 * when an emptied group reached the same gid and member list again while an installer
 * of the first incarnation left no record of it.)
 */
function mixesIncarnations(members: readonly ViewOccurrence[]): boolean {
  const installer = new Map<string, Session>();
  for (const view of members) installer.set(view.session.privateGroup, view.session);
  for (const view of members) {
    for (const delivery of view.delivered) {
      const sender = delivery.sent?.session;
      if (sender === undefined) continue;
      const other = installer.get(sender.privateGroup);
      if (other !== undefined && other !== sender) return true;
    }
  }
  return false;
}

function instanceKey(view: ViewOccurrence): string {
  return `${view.group}\u0000${view.gidKey}\u0000${view.members.join('\u0000')}`;
}

function sameGid(a: GroupId, b: GroupId): boolean {
  return a.procId === b.procId && a.time === b.time && a.index === b.index;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  if (left.size !== right.size) return false;
  for (const item of left) if (!right.has(item)) return false;
  return true;
}

function listIds(ids: readonly string[]): string {
  if (ids.length <= IDS_LISTED_MAX) return ids.join(', ');
  return `${ids.slice(0, IDS_LISTED_MAX).join(', ')} and ${ids.length - IDS_LISTED_MAX} more`;
}

function describeEntryType(entry: unknown): string {
  return typeof entry === 'object' && entry !== null && 'type' in entry ? String((entry as { type: unknown }).type) : typeof entry;
}

const CAUSES: readonly string[] = ['join', 'leave', 'disconnect', 'network'];

/** Returns why an entry is malformed, or undefined when it is well formed. */
function validateEntry(entry: unknown): string | undefined {
  if (typeof entry !== 'object' || entry === null) return 'entry is not an object';
  const value = entry as Record<string, unknown>;
  const isService = (service: unknown): boolean => typeof service === 'string' && (SERVICES as readonly string[]).includes(service);
  const isNames = (names: unknown): boolean => Array.isArray(names) && names.every((name) => typeof name === 'string');
  const isGid = (gid: unknown): boolean => {
    if (typeof gid !== 'object' || gid === null) return false;
    const fields = gid as Record<string, unknown>;
    return Number.isInteger(fields.procId) && Number.isInteger(fields.time) && Number.isInteger(fields.index);
  };
  switch (value.type) {
    case 'sent':
      if (typeof value.id !== 'string') return "'sent' needs a string id";
      if (!isService(value.service)) return `'sent' ${value.id} has unknown service ${String(value.service)}`;
      if (!isNames(value.groups)) return `'sent' ${value.id} needs groups: string[]`;
      if (typeof value.selfDiscard !== 'boolean') return `'sent' ${value.id} needs selfDiscard: boolean`;
      return undefined;
    case 'data':
      if (typeof value.id !== 'string') return "'data' needs a string id";
      if (typeof value.sender !== 'string') return `'data' ${value.id} needs a sender`;
      if (!isService(value.service)) return `'data' ${value.id} has unknown service ${String(value.service)}`;
      if (!isNames(value.groups)) return `'data' ${value.id} needs groups: string[]`;
      return undefined;
    case 'membership':
      if (typeof value.group !== 'string') return "'membership' needs a group";
      if (value.kind === 'regular') {
        if (!isGid(value.gid)) return `regular membership of ${value.group} needs gid {procId,time,index}`;
        if (!isNames(value.members)) return `regular membership of ${value.group} needs members: string[]`;
        if (typeof value.cause !== 'string' || !CAUSES.includes(value.cause)) return `regular membership of ${value.group} has unknown cause ${String(value.cause)}`;
        if (value.vsSet !== undefined && !isNames(value.vsSet)) return `regular membership of ${value.group} has a malformed vsSet`;
        return undefined;
      }
      if (value.kind === 'transitional') return isGid(value.gid) ? undefined : `transitional membership of ${value.group} needs gid`;
      if (value.kind === 'self-leave') return undefined;
      return `membership of ${value.group} has unknown kind ${String(value.kind)}`;
    case 'join':
    case 'leave':
      return typeof value.group === 'string' ? undefined : `'${value.type}' needs a group`;
    case 'disconnected':
      return undefined;
    default:
      return `unknown entry type ${String(value.type)}`;
  }
}
