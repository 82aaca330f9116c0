// Whole-daemon chaos runs in the deterministic simulator (test/sim/cluster.ts): DaemonNodes
// with simulated clients through crashes, restarts, partitions, merges and loss; every
// client's log checked by the EVS checker after a final heal. Two ring sources:
//   model  the EVS ring model (test/sim/cluster-evs-ring.ts): fast, reaches every corner
//   totem  TotemRing itself over simulated datagrams (test/sim/cluster-totem.ts)
//
//   npx vitest run test/evs-chaos                          quick sets: CHAOS_SEEDS model seeds
//                                                          (default 300), TOTEM_SEEDS totem seeds
//                                                          (default 150); 10–20 s together
//   SEED=<n> [RING=totem] npx vitest run test/evs-chaos    replay one seed (prints its trace)
//   SOAK_SEEDS=5000 [RING=totem] npx vitest run test/evs-chaos
//                                                          long soak, seeds FIRST_SEED.. (default 1)
//
// A failure prints the line that replays it: `re-run: SEED=<n> … npx vitest run test/evs-chaos`.
import { describe, expect, it } from 'vitest';
import { checkEvs, formatViolations } from '../src/checker/index.js';
import { Cluster, type ClusterResult, drawClusterScenario } from './sim/cluster.js';

type RingKind = 'model' | 'totem';

const single = process.env.SEED !== undefined ? Number(process.env.SEED) : null;
const soak = process.env.SOAK_SEEDS !== undefined ? Number(process.env.SOAK_SEEDS) : null;
const first = Number(process.env.FIRST_SEED ?? 1);
const onlyRing = (process.env.RING as RingKind | undefined) ?? null;

function seedsFor(ring: RingKind, quickCount: number): number[] {
  if (onlyRing !== null && onlyRing !== ring) return [];
  if ((single !== null || soak !== null) && onlyRing === null && ring !== 'model') return [];
  if (single !== null) return [single];
  const count = soak ?? quickCount;
  return Array.from({ length: count }, (_, i) => first + i);
}

const RUNS: { ring: RingKind; seeds: number[]; msPerSeed: number }[] = [
  { ring: 'model', seeds: seedsFor('model', Number(process.env.CHAOS_SEEDS ?? 300)), msPerSeed: 100 },
  { ring: 'totem', seeds: seedsFor('totem', Number(process.env.TOTEM_SEEDS ?? 150)), msPerSeed: 200 },
];

function runSeed(seed: number, ring: RingKind): { cluster: Cluster; result: ClusterResult } {
  const cluster = new Cluster(drawClusterScenario(seed, { ring }));
  const rerun = `re-run: SEED=${seed}${ring === 'model' ? '' : ` RING=${ring}`} npx vitest run test/evs-chaos`;
  let result: ClusterResult;
  try {
    result = cluster.runScenario();
  } catch (error) {
    // Not quiet in time (a liveness failure): still say whether what happened so far was safe.
    const safety = checkEvs(cluster.logs.logs(), { truncated: true });
    const e = error instanceof Error ? error : new Error(String(error));
    e.message =
      `seed ${seed} (${cluster.describe()}): ${e.message}\n` +
      `EVS checker over the logs so far (no quiescence): ${safety.length === 0 ? 'nothing found' : formatViolations(safety)}\n` +
      `${cluster.trace.slice(-30).join('\n')}\n${rerun}`;
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
  for (const { ring, seeds, msPerSeed } of RUNS) {
    it.skipIf(seeds.length === 0)(
      `${ring} ring: ${seeds.length} seeded schedules of crashes, restarts, partitions, merges and loss pass the checker`,
      () => {
        console.log(`EVS chaos (${ring}): seeds ${seeds[0]}..${seeds[seeds.length - 1]} (re-run one: SEED=<n>${ring === 'model' ? '' : ` RING=${ring}`} npx vitest run test/evs-chaos)`);
        const totals = Object.fromEntries(TOTALS.map((key) => [key, 0])) as Record<(typeof TOTALS)[number], number>;
        for (const seed of seeds) {
          const { cluster, result } = runSeed(seed, ring);
          if (single !== null) console.log(`${JSON.stringify(result)}\n${cluster.describe()}\n${cluster.trace.join('\n')}`);
          for (const key of TOTALS) totals[key] += result[key];
        }
        console.log(`EVS chaos (${ring}) totals over ${seeds.length} seeds: ${TOTALS.map((key) => `${key}=${totals[key]}`).join(' ')}`);
        expect(totals.deliveries).toBeGreaterThan(0);
        if (ring === 'model' && seeds.length >= 50) {
          // The quick set must reach the corners it exists for.
          expect(totals.transitions).toBeGreaterThan(0);
          expect(totals.changedGroupViews).toBeGreaterThan(0);
          expect(totals.abandoned).toBeGreaterThan(0);
        }
      },
      Math.max(60_000, seeds.length * msPerSeed * 5),
    );
  }

  it('a seed replays identically', () => {
    const a = runSeed(7, 'model').cluster;
    const b = runSeed(7, 'model').cluster;
    expect(JSON.stringify(a.logs.logs())).toBe(JSON.stringify(b.logs.logs()));
  });
});
