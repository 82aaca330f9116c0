/**
 * Who should hold each virtual interface: a pure, deterministic function of the
 * replicated cluster state. Every member evaluates it at the same points of the
 * totally ordered message stream, so all members reach the same answer without a
 * coordinator or a vote.
 *
 * Rules, in order:
 *  - a component smaller than the quorum holds nothing;
 *  - only mature members that do not refuse an interface may be given it;
 *  - a held interface stays where it is (no needless moves) unless a planned move
 *    names another eligible member; when two members hold it (a healed partition),
 *    a preferring holder wins, else the first by name;
 *  - an interface nobody (eligible) holds goes to its planned mover, else to the
 *    least loaded member that prefers it, else to the least loaded member;
 *  - balancing (planBalance) plans at most `budget` moves per round: first towards
 *    members that prefer an interface, then from the most to the least loaded.
 */

export interface MemberState {
  /** The member's private group name: unique and the same on every member. */
  name: string;
  mature: boolean;
  /** Interface ids this member prefers. */
  prefers: readonly string[];
  /** Interface ids this member must not be given (its `ip` failed, or released by hand). */
  refuses: readonly string[];
  /** Interface ids this member has announced it holds. */
  holds: readonly string[];
}

export interface ClusterState {
  /** Every interface id, in configuration order. */
  interfaces: readonly string[];
  members: readonly MemberState[];
  /** Planned moves: interface id → member that should take it. */
  moves: Readonly<Record<string, string>>;
  quorum: number;
}

/** Interface id → the member that should hold it, or null. */
export type Assignment = Map<string, string | null>;

function byName(a: MemberState, b: MemberState): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function eligibleFor(member: MemberState | undefined, vif: string): member is MemberState {
  return member !== undefined && member.mature && !member.refuses.includes(vif);
}

/** The members holding `vif`, best claim first (a preferring holder, then by name). */
export function holdersOf(members: readonly MemberState[], vif: string): MemberState[] {
  const holders = members.filter((member) => member.holds.includes(vif)).sort(byName);
  return [...holders.filter((m) => m.prefers.includes(vif)), ...holders.filter((m) => !m.prefers.includes(vif))];
}

function leastLoaded(candidates: MemberState[], load: Map<string, number>): MemberState | undefined {
  let best: MemberState | undefined;
  for (const member of candidates) {
    if (best === undefined || load.get(member.name)! < load.get(best.name)!) best = member;
  }
  return best;
}

export function assign(state: ClusterState): Assignment {
  const result: Assignment = new Map(state.interfaces.map((vif) => [vif, null]));
  if (state.members.length < state.quorum) return result;
  const members = [...state.members].sort(byName);
  const byMember = new Map(members.map((member) => [member.name, member]));
  const load = new Map(members.map((member) => [member.name, 0]));
  const give = (vif: string, member: MemberState) => {
    result.set(vif, member.name);
    load.set(member.name, load.get(member.name)! + 1);
  };
  const open: string[] = [];
  for (const vif of state.interfaces) {
    const mover = byMember.get(state.moves[vif] ?? '');
    const holder = holdersOf(members, vif).find((member) => eligibleFor(member, vif));
    if (eligibleFor(mover, vif)) give(vif, mover);
    else if (holder !== undefined) give(vif, holder);
    else open.push(vif);
  }
  for (const vif of open) {
    const eligible = members.filter((member) => eligibleFor(member, vif));
    const chosen = leastLoaded(eligible.filter((m) => m.prefers.includes(vif)), load) ?? leastLoaded(eligible, load);
    if (chosen !== undefined) give(vif, chosen);
  }
  return result;
}

/**
 * The planned moves after one balance round: the existing (still useful) moves plus at
 * most `budget` new ones. Deterministic like assign().
 */
export function planBalance(state: ClusterState, budget: number): Record<string, string> {
  const members = [...state.members].sort(byName);
  const byMember = new Map(members.map((member) => [member.name, member]));
  const moves: Record<string, string> = {};
  // A move is kept while its member may still take the address and does not hold it yet.
  for (const [vif, to] of Object.entries(state.moves)) {
    const mover = byMember.get(to);
    if (eligibleFor(mover, vif) && !mover.holds.includes(vif)) moves[vif] = to;
  }
  const target = assign({ ...state, moves });
  const load = new Map(members.map((member) => [member.name, 0]));
  for (const owner of target.values()) if (owner !== null) load.set(owner, load.get(owner)! + 1);
  const move = (vif: string, to: MemberState) => {
    const from = target.get(vif)!;
    load.set(from, load.get(from)! - 1);
    load.set(to.name, load.get(to.name)! + 1);
    target.set(vif, to.name);
    moves[vif] = to.name;
  };

  for (let used = 0; used < budget; used++) {
    const preferenceMove = state.interfaces.flatMap((vif) => {
      const owner = target.get(vif);
      if (owner === null || owner === undefined || byMember.get(owner)!.prefers.includes(vif)) return [];
      const preferring = members.filter((m) => m.prefers.includes(vif) && eligibleFor(m, vif));
      const to = leastLoaded(preferring, load);
      return to === undefined ? [] : [{ vif, to }];
    })[0];
    if (preferenceMove !== undefined) {
      move(preferenceMove.vif, preferenceMove.to);
      continue;
    }
    const loadMove = evenOut(state.interfaces, members, target, load);
    if (loadMove === undefined) break;
    move(loadMove.vif, loadMove.to);
  }
  return moves;
}

/** One move from a member holding two or more above another eligible member, if any. */
function evenOut(
  interfaces: readonly string[],
  members: MemberState[],
  target: Assignment,
  load: Map<string, number>,
): { vif: string; to: MemberState } | undefined {
  const heaviestFirst = [...members].sort((a, b) => load.get(b.name)! - load.get(a.name)! || byName(a, b));
  for (const from of heaviestFirst) {
    const movable = interfaces.filter((vif) => target.get(vif) === from.name && !from.prefers.includes(vif)).reverse();
    for (const vif of movable) {
      const lighter = members.filter((m) => m.name !== from.name && eligibleFor(m, vif) && load.get(m.name)! + 1 < load.get(from.name)!);
      const to = leastLoaded(lighter, load);
      if (to !== undefined) return { vif, to };
    }
  }
  return undefined;
}
