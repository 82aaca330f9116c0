/**
 * The replication engine's core under seeded chaos (test/sim/replication-cluster.ts): 3–5
 * replicas, partitions, merges, replica crashes and restarts, a transfer workload. Every seed
 * must keep one green order, lose no acknowledged transfer, keep the money total and converge
 * once healed.
 *
 *   npx vitest run test/replication-sim                 SEEDS seeds from FIRST_SEED (default 40 from 1)
 *   SEED=<n> npx vitest run test/replication-sim        replay one seed and print its events
 */
import { describe, expect, it } from 'vitest';
import { ReplicationSimulation } from './sim/replication-cluster.js';

const single = process.env.SEED !== undefined ? Number(process.env.SEED) : null;
const firstSeed = Number(process.env.FIRST_SEED ?? 1);
const seedCount = Number(process.env.SEEDS ?? 40);
const seeds = single !== null ? [single] : Array.from({ length: seedCount }, (_, index) => firstSeed + index);

function simulate(seed: number) {
  const simulation = new ReplicationSimulation({ seed, replicas: 3 + (seed % 3), steps: 1500, checkpointEvery: 5 + (seed % 40) });
  let problems: string[];
  let report;
  try {
    report = simulation.run();
    problems = simulation.check();
  } catch (error) {
    problems = [String(error)];
  }
  if (single !== null || problems.length > 0) {
    console.log(`SEED=${seed}\n${simulation.events.join('\n')}\n${problems.join('\n')}`);
  }
  return { problems, report, simulation };
}

describe('replication engine under seeded chaos', () => {
  it('keeps one green order, every acknowledged action and the money total; converges after heal', () => {
    let acknowledged = 0;
    for (const seed of seeds) {
      const { problems, report } = simulate(seed);
      expect(problems, `re-run: SEED=${seed} npx vitest run test/replication-sim`).toEqual([]);
      acknowledged += report!.acknowledged;
    }
    // The workload must actually commit through the chaos, not just refuse.
    expect(acknowledged).toBeGreaterThan(seeds.length * 10);
  }, Math.max(120_000, seeds.length * 1000));
});
