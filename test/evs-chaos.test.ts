// Whole-daemon chaos runs in the deterministic simulator (test/sim/cluster.ts), every
// client's log checked by the EVS checker after a final heal.
//
//   npx vitest run test/evs-chaos                      quick set (CHAOS_SEEDS seeds, default 400)
//   SEED=<n> npx vitest run test/evs-chaos             replay one seed (prints the trace)
//   SOAK_SEEDS=5000 npx vitest run test/evs-chaos      long soak (seeds FIRST_SEED.., default 1)
//
// A failure prints `re-run: SEED=<n> npx vitest run test/evs-chaos`.
import { describe, expect, it } from 'vitest';
import { checkEvs, formatViolations } from '../src/checker/index.js';
import { Cluster, type ClusterResult, drawClusterScenario } from './sim/cluster.js';

const single = process.env.SEED !== undefined ? Number(process.env.SEED) : null;
const soak = process.env.SOAK_SEEDS !== undefined ? Number(process.env.SOAK_SEEDS) : null;
const first = Number(process.env.FIRST_SEED ?? 1);
const count = single !== null ? 1 : (soak ?? Number(process.env.CHAOS_SEEDS ?? 400));
const seeds = single !== null ? [single] : Array.from({ length: count }, (_, i) => first + i);

function runSeed(seed: number): { cluster: Cluster; result: ClusterResult } {
  const cluster = new Cluster(drawClusterScenario(seed));
  const rerun = `re-run: SEED=${seed} npx vitest run test/evs-chaos`;
  let result: ClusterResult;
  try {
    result = cluster.runScenario();
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    e.message = `seed ${seed} (${cluster.describe()}): ${e.message}\n${cluster.trace.slice(-30).join('\n')}\n${rerun}`;
    throw e;
  }
  const violations = checkEvs(cluster.logs.logs(), { expectQuiescent: true });
  if (violations.length > 0) {
    throw new Error(`seed ${seed} (${cluster.describe()}): the EVS checker found\n${formatViolations(violations)}\n${cluster.trace.join('\n')}\n${rerun}`);
  }
  return { cluster, result };
}

const TOTALS = ['sessions', 'deliveries', 'configurations', 'crashes', 'transitions', 'networkViews', 'changedGroupViews', 'exchanges', 'abandoned'] as const;

describe('EVS chaos (whole daemons, simulated network)', () => {
  console.log(`EVS chaos: seeds ${seeds[0]}..${seeds[seeds.length - 1]} (re-run one: SEED=<n> npx vitest run test/evs-chaos)`);

  it(
    `${seeds.length} seeded schedules of crashes, restarts, partitions, merges and loss pass the checker`,
    () => {
      const totals = Object.fromEntries(TOTALS.map((key) => [key, 0])) as Record<(typeof TOTALS)[number], number>;
      for (const seed of seeds) {
        const { cluster, result } = runSeed(seed);
        if (single !== null) console.log(`${JSON.stringify(result)}\n${cluster.describe()}\n${cluster.trace.join('\n')}`);
        for (const key of TOTALS) totals[key] += result[key];
      }
      console.log(`EVS chaos totals over ${seeds.length} seeds: ${TOTALS.map((key) => `${key}=${totals[key]}`).join(' ')}`);
      expect(totals.deliveries).toBeGreaterThan(0);
      if (seeds.length >= 50) {
        // The quick set must reach the corners it exists for.
        expect(totals.transitions).toBeGreaterThan(0);
        expect(totals.changedGroupViews).toBeGreaterThan(0);
        expect(totals.abandoned).toBeGreaterThan(0);
      }
    },
    Math.max(60_000, seeds.length * 2_000),
  );

  it('a seed replays identically', () => {
    const a = runSeed(7).cluster;
    const b = runSeed(7).cluster;
    expect(JSON.stringify(a.logs.logs())).toBe(JSON.stringify(b.logs.logs()));
  });
});
