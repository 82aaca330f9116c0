// The vip assignment is a pure function of the replicated state: properties over random
// clusters (fast-check) and the group state machine fed the same ordered stream.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assign, type ClusterState, type MemberState, planBalance } from '../src/apps/vip/assignment.js';
import { VipGroupState } from '../src/apps/vip/group-state.js';

const VIFS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7'];

const memberArbitrary = (name: string): fc.Arbitrary<MemberState> =>
  fc.record({
    name: fc.constant(name),
    mature: fc.boolean(),
    prefers: fc.subarray(VIFS, { maxLength: 2 }),
    refuses: fc.subarray(VIFS, { maxLength: 2 }),
    holds: fc.subarray(VIFS),
  });

const clusterArbitrary: fc.Arbitrary<ClusterState> = fc
  .uniqueArray(fc.constantFrom('#a#d1', '#b#d2', '#c#d3', '#d#d4', '#e#d5'), { minLength: 1, maxLength: 5 })
  .chain((names) =>
    fc.record({
      interfaces: fc.constant(VIFS),
      members: fc.tuple(...names.map(memberArbitrary)),
      moves: fc.dictionary(fc.constantFrom(...VIFS), fc.constantFrom(...names)),
      quorum: fc.integer({ min: 1, max: 3 }),
    }),
  );

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = (seed * (i + 7)) % (i + 1);
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

const eligible = (state: ClusterState, vif: string) => state.members.filter((m) => m.mature && !m.refuses.includes(vif));

describe('vip assignment', () => {
  it('gives every address to exactly one eligible member whenever one exists and the quorum holds', () => {
    fc.assert(
      fc.property(clusterArbitrary, (state) => {
        const result = assign(state);
        expect([...result.keys()]).toEqual(VIFS);
        for (const vif of VIFS) {
          const holder = result.get(vif)!;
          if (state.members.length < state.quorum || eligible(state, vif).length === 0) expect(holder).toBeNull();
          else expect(eligible(state, vif).map((m) => m.name)).toContain(holder);
        }
      }),
    );
  });

  it('is the same on every member: independent of the order members and moves are listed in', () => {
    fc.assert(
      fc.property(clusterArbitrary, fc.integer({ min: 1, max: 1000 }), (state, seed) => {
        const reordered = { ...state, members: shuffled(state.members, seed) };
        expect(assign(reordered)).toEqual(assign(state));
        expect(planBalance(reordered, 2)).toEqual(planBalance(state, 2));
      }),
    );
  });

  it('keeps an address where it is when its holder is still eligible and no move is planned', () => {
    fc.assert(
      fc.property(clusterArbitrary, (state) => {
        const calm = { ...state, moves: {}, quorum: 1 };
        const result = assign(calm);
        for (const vif of VIFS) {
          const holders = calm.members.filter((m) => m.holds.includes(vif) && m.mature && !m.refuses.includes(vif));
          if (holders.length === 1) expect(result.get(vif)).toBe(holders[0].name);
        }
      }),
    );
  });

  it('balancing plans at most the budget of moves per round', () => {
    fc.assert(
      fc.property(clusterArbitrary, fc.integer({ min: 0, max: 4 }), (state, budget) => {
        const start = { ...state, moves: {} };
        const before = assign(start);
        const moves = planBalance(start, budget);
        const after = assign({ ...start, moves });
        // A move takes an address from a holder that may keep it; where a free address (or one
        // whose holder is not eligible) goes is a take-over, not a move.
        const held = (vif: string) => eligible(start, vif).some((m) => m.holds.includes(vif));
        const moved = VIFS.filter((vif) => held(vif) && before.get(vif) !== after.get(vif));
        expect(moved.length).toBeLessThanOrEqual(budget);
      }),
    );
  });

  it('repeated balance rounds even the load out to within one (no preferences, no refusals)', () => {
    fc.assert(
      fc.property(clusterArbitrary, (state) => {
        let current: ClusterState = {
          ...state,
          quorum: 1,
          moves: {},
          members: state.members.map((m) => ({ ...m, mature: true, prefers: [], refuses: [] })),
        };
        for (let round = 0; round < VIFS.length + 2; round++) {
          const moves = planBalance(current, 1);
          const result = assign({ ...current, moves });
          // The moves complete: every member now holds exactly what it was given.
          current = { ...current, moves: {}, members: current.members.map((m) => ({ ...m, holds: VIFS.filter((v) => result.get(v) === m.name) })) };
        }
        const load = current.members.map((m) => m.holds.length);
        expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(1);
        expect(load.reduce((a, b) => a + b, 0)).toBe(VIFS.length);
      }),
    );
  });

  it('a lone member of a partition covers every address (as wackamole does) unless a quorum is set', () => {
    const alone: MemberState = { name: '#a#d1', mature: true, prefers: [], refuses: [], holds: ['10.0.0.1'] };
    expect([...assign({ interfaces: VIFS, members: [alone], moves: {}, quorum: 1 }).values()].every((h) => h === '#a#d1')).toBe(true);
    expect([...assign({ interfaces: VIFS, members: [alone], moves: {}, quorum: 2 }).values()].every((h) => h === null)).toBe(true);
  });

  it('three fresh members with six addresses: two each; a preferred address goes to its preferrer', () => {
    const six = VIFS.slice(0, 6);
    const members = ['#a#d1', '#b#d2', '#c#d3'].map((name) => ({ name, mature: true, prefers: [] as string[], refuses: [], holds: [] }));
    const result = assign({ interfaces: six, members, moves: {}, quorum: 1 });
    for (const m of members) expect([...result.values()].filter((h) => h === m.name)).toHaveLength(2);
    members[2].prefers = ['10.0.0.1'];
    expect(assign({ interfaces: six, members, moves: {}, quorum: 1 }).get('10.0.0.1')).toBe('#c#d3');
  });
});

describe('vip group state', () => {
  const interfaces = VIFS.slice(0, 6);
  function announce(state: VipGroupState, view: string, name: string, holds: string[], mature = true) {
    state.onMessage(name, { type: 'state', view, mature, prefers: [], refuses: [], holds, interfaces });
  }

  it('a join starts an exchange; nothing is assigned until every member announced itself', () => {
    const state = new VipGroupState(interfaces, 1, Infinity);
    expect(state.onView({ key: 'v1', members: ['#a#d1', '#b#d2'], cameWithUs: ['#a#d1'] }).exchange).toBe(true);
    announce(state, 'v1', '#a#d1', interfaces);
    expect(state.synced).toBe(false);
    announce(state, 'v0', '#b#d2', []); // stale view: ignored
    expect(state.synced).toBe(false);
    announce(state, 'v1', '#b#d2', []);
    expect(state.synced).toBe(true);
    expect([...state.assignment().values()].every((h) => h === '#a#d1')).toBe(true);
    state.onMessage('#a#d1', { type: 'balance' });
    const after = state.assignment();
    expect([...after.values()].filter((h) => h === '#b#d2')).toHaveLength(3);
  });

  it('a departure keeps the state and frees the departed member’s addresses at once', () => {
    const state = new VipGroupState(interfaces, 1, Infinity);
    state.onView({ key: 'v1', members: ['#a#d1', '#b#d2', '#c#d3'], cameWithUs: [] });
    announce(state, 'v1', '#a#d1', interfaces.slice(0, 2));
    announce(state, 'v1', '#b#d2', interfaces.slice(2, 4));
    announce(state, 'v1', '#c#d3', interfaces.slice(4));
    const outcome = state.onView({ key: 'v2', members: ['#a#d1', '#b#d2'], cameWithUs: ['#a#d1', '#b#d2'] });
    expect(outcome).toEqual({ exchange: false, departed: [{ name: '#c#d3', held: interfaces.slice(4) }] });
    const result = state.assignment();
    expect(result.get(interfaces[4])).not.toBeNull();
    expect(result.get(interfaces[5])).not.toBeNull();
    expect(result.get(interfaces[4])).not.toBe(result.get(interfaces[5]));
  });

  it('a move is done once its member holds the address, even when no acquisition followed', () => {
    const state = new VipGroupState(interfaces, 1, 1);
    state.onView({ key: 'v1', members: ['#a#d1', '#b#d2'], cameWithUs: [] });
    announce(state, 'v1', '#a#d1', interfaces.slice(0, 5));
    announce(state, 'v1', '#b#d2', interfaces.slice(5));
    state.onMessage('#a#d1', { type: 'balance' });
    const [[moved, to]] = Object.entries(state.cluster().moves);
    expect(to).toBe('#b#d2');
    state.onMessage('#a#d1', { type: 'released', vif: moved });
    state.onMessage('#b#d2', { type: 'acquired', vif: moved });
    expect(state.cluster().moves).toEqual({});
    // b later holds it without this move (say, it is given back by hand): no stale move pulls it.
    expect(planBalance({ ...state.cluster(), moves: { [interfaces[5]]: '#b#d2' } }, 0)).toEqual({});
  });

  it('a healed partition where both sides held an address: one winner, the other must release', () => {
    const state = new VipGroupState(interfaces, 1, Infinity);
    state.onView({ key: 'v9', members: ['#a#d1', '#b#d2'], cameWithUs: ['#a#d1'] });
    announce(state, 'v9', '#a#d1', interfaces);
    announce(state, 'v9', '#b#d2', interfaces);
    const result = state.assignment();
    expect([...result.values()].every((h) => h === '#a#d1')).toBe(true);
    state.onMessage('#b#d2', { type: 'released', vif: interfaces[0] });
    expect(state.record('#b#d2')!.holds).not.toContain(interfaces[0]);
  });
});
