/**
 * Ring chaos: crashes, restarts, partitions, heals, loss, duplication and reordering,
 * checked for ring-level EVS, then liveness after a final heal (test/sim/ring-chaos.ts).
 * SEED=<n> re-runs one seed; CHAOS_SEEDS=<count> CHAOS_BASE=<n> explores more
 * (default: 100 fixed seeds, a few seconds). `npm run soak` runs 3000 seeds from a new
 * base each time (CHAOS_SEEDS to change the count); a failure prints SEED= and how to replay it.
 */
import { describe, expect, it } from 'vitest';
import { describeChaos, drawChaos, runChaos } from './sim/ring-chaos.js';

const envSeed = process.env.SEED;
/** `npm run soak`: many seeds from a base that changes every run (printed, so a failure can be replayed). */
const soak = process.env.CHAOS_SOAK !== undefined;
const base = process.env.CHAOS_BASE !== undefined ? Number(process.env.CHAOS_BASE) : soak ? (Date.now() * 7919) >>> 0 : 1;
const count = Number(process.env.CHAOS_SEEDS ?? (soak ? 3000 : 100));
const seeds: number[] = envSeed !== undefined ? [Number(envSeed) >>> 0] : Array.from({ length: count }, (_, i) => (base + i) >>> 0);
if (soak) console.log(`soak: ${count} seeds from CHAOS_BASE=${base}`);

describe('ring chaos', () => {
  it(`keeps EVS through crashes, restarts and partitions, and converges after the heal (${seeds.length} seeds)`, () => {
    let deliveries = 0;
    let changes = 0;
    let safe = 0;
    let worstConvergeMs = 0;
    for (const seed of seeds) {
      const scenario = drawChaos(seed);
      if (envSeed !== undefined || process.env.CHAOS_VERBOSE !== undefined) console.log(`SEED=${seed} ${describeChaos(scenario)}`);
      try {
        const result = runChaos(scenario);
        deliveries += result.deliveries;
        changes += result.configurationChanges;
        safe += result.safeChecked;
        worstConvergeMs = Math.max(worstConvergeMs, result.convergedAfterMs);
      } catch (error) {
        console.log(`SEED=${seed} ${describeChaos(scenario)}\nre-run: SEED=${seed} npx vitest run test/ring-chaos (SIM_TRACE=1 lists every node's configurations)`);
        throw error;
      }
    }
    console.log(`${seeds.length} seeds: ${deliveries} deliveries, ${safe} SAFE checked, ${changes} configuration events, slowest convergence ${worstConvergeMs.toFixed(0)} ms after the heal`);
    expect(deliveries).toBeGreaterThan(0);
    if (envSeed === undefined) expect(changes).toBeGreaterThan(seeds.length);
  }, 60_000 + seeds.length * 1_000);

  it('is deterministic: the same seed gives the same run', () => {
    const a = runChaos(drawChaos(seeds[0]));
    const b = runChaos(drawChaos(seeds[0]));
    expect(b.orderHash).toBe(a.orderHash);
    expect(b.steps).toBe(a.steps);
  });
});
