/** Helpers shared by the benchmarks. */
import { readFileSync } from 'node:fs';

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

/** With --help: prints the opening comment of the script at `moduleUrl` (its usage) and exits. */
export function exitWithUsageIfAsked(moduleUrl: string): void {
  if (!process.argv.includes('--help')) return;
  console.log(readFileSync(new URL(moduleUrl), 'utf8').split('*/')[0].replace(/^\/\*\*\n| \* ?/gm, ''));
  process.exit(0);
}
