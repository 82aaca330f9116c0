/** Helpers shared by the benchmarks. */

/** The value after `--name` on the command line, or `fallback`. */
export function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Spread 5.0.1's LAN membership timeouts as spread.conf lines (all nine must be given). */
export const SPREAD_LAN_TIMEOUT_LINES = [
  'TokenTimeout = 1250',
  'HurryTimeout = 500',
  'AliveTimeout = 250',
  'JoinTimeout = 250',
  'RepTimeout = 625',
  'SegTimeout = 500',
  'GatherTimeout = 1250',
  'FormTimeout = 1250',
  'LookupTimeout = 30000',
];
