/**
 * The replicated state of the vip group, built only from the group's totally ordered
 * stream (views and AGREED messages), so every member holds the same state at the same
 * point of the stream. Pure: no I/O, no clock.
 *
 * A view in which members only departed (each survivor came through with us) keeps the
 * state and drops the departed members at once, so their interfaces are free to take
 * over immediately. A view that adds anyone (a join or a healed partition) starts a state
 * exchange: each member announces itself and what it holds, tagged with the view; until
 * every member's announcement is delivered the state is not `synced` and nobody acts.
 */
import { type Assignment, type ClusterState, type MemberState, assign, planBalance } from './assignment.js';

export type VipMessage =
  | { type: 'state'; view: string; mature: boolean; prefers: string[]; refuses: string[]; holds: string[]; interfaces: string[] }
  | { type: 'acquired'; vif: string }
  | { type: 'released'; vif: string }
  | { type: 'mature' }
  | { type: 'prefs'; prefers: string[]; refuses: string[] }
  | { type: 'balance' };

const MESSAGE_TYPES = new Set(['state', 'acquired', 'released', 'mature', 'prefs', 'balance']);

export function encodeVipMessage(message: VipMessage): string {
  return JSON.stringify({ vip: 1, ...message });
}

/** The message, or null for anything that is not one of ours. */
export function decodeVipMessage(data: Uint8Array): VipMessage | null {
  try {
    const parsed = JSON.parse(Buffer.from(data).toString('utf8')) as { vip?: number; type?: string };
    return parsed.vip === 1 && MESSAGE_TYPES.has(parsed.type ?? '') ? (parsed as VipMessage) : null;
  } catch {
    return null;
  }
}

export interface ViewChange {
  /** A key unique to the view (its group id). */
  key: string;
  members: readonly string[];
  /** The members that came through from our previous view with us. */
  cameWithUs: readonly string[];
}

export interface ViewOutcome {
  /** Members that departed, with the interfaces they held. */
  departed: { name: string; held: string[] }[];
  /** True when a state exchange started: announce ourselves with `view`. */
  exchange: boolean;
}

export class VipGroupState {
  readonly interfaces: readonly string[];
  readonly quorum: number;
  readonly budget: number;
  private records = new Map<string, MemberState>();
  private moves: Record<string, string> = {};
  private viewKey: string | null = null;
  private expected: readonly string[] = [];
  /** Announcements of the current exchange; null once synced. */
  private exchange: Map<string, MemberState> | null = null;
  /** Members that announced another interface list (a configuration mismatch). */
  readonly mismatched = new Set<string>();

  constructor(interfaces: readonly string[], quorum: number, budget: number) {
    this.interfaces = interfaces;
    this.quorum = quorum;
    this.budget = budget;
  }

  get synced(): boolean {
    return this.viewKey !== null && this.exchange === null;
  }

  get view(): string | null {
    return this.viewKey;
  }

  get members(): readonly MemberState[] {
    return this.expected.map((name) => this.records.get(name)).filter((m): m is MemberState => m !== undefined);
  }

  onView(view: ViewChange): ViewOutcome {
    const departed = [...this.records.values()]
      .filter((member) => !view.members.includes(member.name))
      .map((member) => ({ name: member.name, held: [...member.holds] }));
    const onlyDepartures = this.synced && view.members.every((name) => this.records.has(name) && view.cameWithUs.includes(name));
    this.viewKey = view.key;
    this.expected = [...view.members];
    for (const { name } of departed) this.records.delete(name);
    for (const vif of Object.keys(this.moves)) if (!view.members.includes(this.moves[vif])) delete this.moves[vif];
    if (onlyDepartures) return { departed, exchange: false };
    this.exchange = new Map();
    this.moves = {};
    return { departed, exchange: true };
  }

  /** Applies a delivered message; returns true when the state changed. */
  onMessage(sender: string, message: VipMessage): boolean {
    if (message.type === 'state') return this.onAnnouncement(sender, message);
    const record = this.exchange === null ? this.records.get(sender) : this.exchange.get(sender);
    // Before its announcement, a member's messages are already reflected in it.
    if (record === undefined) return false;
    const update = (changes: Partial<MemberState>) => {
      const next = { ...record, ...changes };
      (this.exchange ?? this.records).set(sender, next);
    };
    switch (message.type) {
      case 'acquired':
        if (!record.holds.includes(message.vif)) update({ holds: [...record.holds, message.vif] });
        this.dropCompletedMoves();
        return true;
      case 'released':
        update({ holds: record.holds.filter((vif) => vif !== message.vif) });
        return true;
      case 'mature':
        update({ mature: true });
        return true;
      case 'prefs':
        update({ prefers: message.prefers, refuses: message.refuses });
        if (this.synced) this.moves = planBalance(this.cluster(), this.budget);
        this.dropCompletedMoves();
        return true;
      case 'balance':
        if (!this.synced) return false;
        this.moves = planBalance(this.cluster(), this.budget);
        this.dropCompletedMoves();
        return true;
    }
  }

  /**
   * A move is done once its member holds the address. (Also when it held the address
   * already as the move was planned, e.g. after a merge: then no `acquired` follows.)
   */
  private dropCompletedMoves(): void {
    const records = this.exchange ?? this.records;
    for (const [vif, to] of Object.entries(this.moves)) if (records.get(to)?.holds.includes(vif) === true) delete this.moves[vif];
  }

  private onAnnouncement(sender: string, message: Extract<VipMessage, { type: 'state' }>): boolean {
    if (this.exchange === null || message.view !== this.viewKey || !this.expected.includes(sender)) return false;
    if (message.interfaces.join(' ') !== this.interfaces.join(' ')) this.mismatched.add(sender);
    else this.mismatched.delete(sender);
    const known = (ids: string[]) => ids.filter((id) => this.interfaces.includes(id));
    this.exchange.set(sender, {
      name: sender,
      mature: message.mature,
      prefers: known(message.prefers),
      refuses: known(message.refuses),
      holds: known(message.holds),
    });
    if (this.expected.every((name) => this.exchange!.has(name))) {
      this.records = this.exchange;
      this.exchange = null;
    }
    return true;
  }

  cluster(): ClusterState {
    return { interfaces: this.interfaces, members: this.members, moves: this.moves, quorum: this.quorum };
  }

  /** Who should hold what; every interface unassigned while not synced. */
  assignment(): Assignment {
    if (!this.synced) return new Map(this.interfaces.map((vif) => [vif, null]));
    return assign(this.cluster());
  }

  record(name: string): MemberState | undefined {
    return this.records.get(name);
  }
}
