/**
 * Simulated multi-daemon rings under loss, duplication, reordering and delay.
 * One seed drives a whole run; SEED=<n> re-runs just that seed.
 * SIM_SEEDS=<count> SIM_BASE=<n> explores more seeds (default: 50 fixed seeds).
 */
import { describe as suite, expect, it } from 'vitest';
import { describe, drawScenario, runScenario } from './sim/scenario.js';

const envSeed = process.env.SEED;
const seeds: number[] =
  envSeed !== undefined
    ? [Number(envSeed) >>> 0]
    : Array.from({ length: Number(process.env.SIM_SEEDS ?? 50) }, (_, i) => (Number(process.env.SIM_BASE ?? 1) + i) >>> 0);

function runSeed(seed: number): ReturnType<typeof runScenario> {
  const scenario = drawScenario(seed);
  console.log(`SEED=${seed} ${describe(scenario)}`);
  try {
    return runScenario(scenario);
  } catch (error) {
    console.log(`re-run: SEED=${seed} npx vitest run test/ring-sim`);
    throw error;
  }
}

suite('ring simulator', () => {
  it(`orders, delivers and falls silent under faults (${seeds.length} seeds)`, () => {
    let messages = 0;
    let safe = 0;
    for (const seed of seeds) {
      const result = runSeed(seed);
      messages += result.delivered;
      safe += result.safeChecked;
    }
    expect(messages).toBeGreaterThan(0);
    if (envSeed === undefined) expect(safe).toBeGreaterThan(0);
  }, 30_000 + seeds.length * 200); // SIM_SEEDS explorations run long

  it('is deterministic: the same seed gives the same run', () => {
    const seed = seeds[0];
    const a = runScenario(drawScenario(seed));
    const b = runScenario(drawScenario(seed));
    expect(b.orderHash).toBe(a.orderHash);
    expect(b.steps).toBe(a.steps);
    expect(b.datagrams).toBe(a.datagrams);
  });
});
