/**
 * Ring ids across restarts (src/ring/ring-id.ts): a daemon restarted again and again within
 * one simulated second, alone or together with another daemon, never forms a ring id twice,
 * because it starts each life above the highest ring time its earlier lives formed (what the
 * daemon keeps in its ring identity file; the simulator hands it over the same way). With
 * nothing kept, the same schedule does reuse ids (the clock alone cannot keep them apart),
 * which the ring-level EVS checker, watching every run, reports.
 */
import { describe, expect, it } from 'vitest';
import type { TotemOptions } from '../src/ring/totem.js';
import type { MembershipId, RingEvent } from '../src/ring/types.js';
import { Checker } from './sim/checker.js';
import { type FaultOptions, type SimNode, Simulator } from './sim/network.js';

const clean: FaultOptions = { loss: 0, duplicate: 0, delayMs: 0.1, jitterMs: 0.05 };
const HASH = 0x72657374;
const RESTARTS = 4;

type Regular = Extract<RingEvent, { kind: 'regular' }>;

function regulars(node: SimNode): Regular[] {
  return node.events.map((record) => record.event).filter((event): event is Regular => event.kind === 'regular');
}

const key = (id: MembershipId) => `${id.procId}/${id.time}`;

/**
 * Three daemons; `restarted` are cut off from the rest and restarted together RESTARTS times
 * within one second, each time as soon as their new ring is installed; then the network heals.
 * Returns the ring ids the restarted daemons installed, in order, and the second they fell in.
 */
function restartCutOff(restarted: number[], overrides: Partial<TotemOptions>[] = []): { sim: Simulator; checker: Checker; ids: string[]; seconds: Set<number> } {
  const sim = new Simulator(3, 3, clean, { configHash: HASH }, 20, overrides);
  const checker = new Checker(sim);
  expect(sim.run(2_000, checker.poll(() => checker.converged()))).toBe(true);
  sim.partition([restarted]);
  sim.run(Math.ceil(sim.nowMs / 1000) * 1000 + 1); // the start of a second: all restarts fall in it
  const seconds = new Set<number>();
  const leader = sim.nodes[restarted[0]];
  for (let i = 0; i < RESTARTS; i++) {
    seconds.add(Math.floor(sim.nowMs / 1000));
    for (const index of restarted) sim.restart(index);
    const installed = () => leader.ring !== null && leader.ring.status().state === 'op' && restarted.every((index) => sim.nodes[index].ring!.status().state === 'op');
    expect(sim.run(sim.nowMs + 1_000, checker.poll(installed))).toBe(true);
  }
  seconds.add(Math.floor(sim.nowMs / 1000));
  const ids = restarted.flatMap((index) => regulars(sim.nodes[index]).map((event) => key(event.membId)));
  sim.heal();
  expect(sim.run(sim.nowMs + 3_000, checker.poll(() => checker.converged()))).toBe(true);
  checker.checkFinal();
  return { sim, checker, ids, seconds };
}

describe('a daemon restarted within one second', () => {
  it('alone: each life forms a ring of one with a new id, and it merges back after the heal', () => {
    const { sim, ids, seconds } = restartCutOff([0]);
    expect(seconds.size).toBe(1);
    const lives = sim.nodes[0].incarnations;
    expect(lives.length).toBe(RESTARTS + 1);
    // One ring id per ring installed; each life forms above the one before.
    const ownRings = ids.filter((id) => id.startsWith(`${sim.vids[0]}/`));
    expect(ownRings.length).toBeGreaterThanOrEqual(RESTARTS);
    expect(new Set(ownRings).size).toBe(ownRings.length);
    const formed = lives.map((life) => life.formedRingTime());
    expect(formed).toEqual([...formed].sort((a, b) => a - b));
    expect(new Set(formed.slice(1)).size).toBe(RESTARTS);
    expect(regulars(sim.nodes[0]).at(-1)!.members).toEqual(sim.vids);
  });

  it('two daemons together: every ring they form has a new id, though neither remembers the other', () => {
    const { sim, ids, seconds } = restartCutOff([0, 1]);
    expect(seconds.size).toBe(1);
    const perDaemon = [0, 1].map((index) => regulars(sim.nodes[index]).map((event) => key(event.membId)));
    for (const installed of perDaemon) expect(new Set(installed).size).toBe(installed.length);
    // Both installed the same rings, each once per life: RESTARTS rings of the pair, all distinct.
    const pairRings = new Set(ids.filter((id) => id.startsWith(`${sim.vids[0]}/`)));
    expect(pairRings.size).toBeGreaterThanOrEqual(RESTARTS);
  });

  it('with nothing kept across restarts, the same schedule reuses a ring id, and the checker says so', () => {
    const forgetful: Partial<TotemOptions>[] = [{ ringTimeFloor: 0 }];
    const sim = new Simulator(3, 3, clean, { configHash: HASH }, 20, forgetful);
    const checker = new Checker(sim);
    expect(sim.run(2_000, checker.poll(() => checker.converged()))).toBe(true);
    sim.partition([[0]]);
    sim.run(Math.ceil(sim.nowMs / 1000) * 1000 + 1);
    expect(() => {
      for (let i = 0; i < RESTARTS; i++) {
        sim.restart(0);
        sim.run(sim.nowMs + 1_000, () => sim.nodes[0].ring?.status().state === 'op');
      }
    }).toThrow(/ring id \S+ names/);
  });
});
